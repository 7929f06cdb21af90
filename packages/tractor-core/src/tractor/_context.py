"""Contexts: a linked pair of tasks in two actors, with an optional stream.

Every remote call is a context: ``Portal.run`` is a context whose callee just
returns, ``Portal.open_context`` one whose callee calls ``ctx.started()`` and
may open a bidirectional :class:`MsgStream`.

Wire protocol of one context (all messages carry its ``cid``)::

    caller                         callee
    Start(kind='ctx')      ->
                           <-      Started(first)
    Yield / Stop / Credit  <->     Yield / Stop / Credit
    Cancel                 ->
                           <-      Return(value) | Error(...)

Streams are flow-controlled by credits: a sender may have at most ``window``
stream messages that the receiver has not consumed yet; the receiver hands
credit back (one ``Credit`` message per quarter window) as its application
consumes. So a slow receiver slows the sender and its buffer stays bounded,
without ever blocking the connection that other contexts share. Messages are
delivered by the connection's receive loop straight into the context's
bounded inbox: no task per message, no copy beyond the payload decode.
"""
from __future__ import annotations

import inspect
import traceback
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, TypeVar

import msgspec
import trio

from . import _msg
from ._boxing import unpack_error
from ._call import TaskScope
from ._debugger import within_grace
from ._exceptions import (
    ContextCancelled,
    MsgTypeError,
    StreamOverrun,
    TransportClosed,
    type_name,
)
from ._inbox import Inbox
from .trionics._broadcast import BroadcastReceiver, broadcast_receiver
from .log import get_logger

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._runtime import Actor

log = get_logger('context')

#: a receiver draining a full inbox yields to other tasks this often
_YIELD_EVERY = 64

#: default stream window: stream messages a peer may send ahead of this
#: side's consumption (``open_stream(msg_buffer_size=...)`` changes it)
DEFAULT_WINDOW = 256
#: room in an inbox beyond the window for the few control messages
#: (Started, Stop, Return/Error) that do not take credit
_SLACK = 8
#: how long the caller waits for the callee to confirm a cancel (its final
#: Return/Error) before giving up on it and unwinding anyway
CANCEL_ACK_TIMEOUT = 10.0
#: bound on sending one control message while unwinding
_CTRL_SEND_TIMEOUT = 5.0

_NOT_SET = object()

F = TypeVar('F', bound=Callable[..., Any])


def context(fn: F | None = None, *, pld_spec: Any = None) -> F:
    """Mark ``async def fn(ctx: tractor.Context, **kwargs)`` as a context
    endpoint, to be opened with ``Portal.open_context(fn, **kwargs)``.

    ``pld_spec`` optionally declares the type of every payload of the
    context (the ``started()`` value, stream messages in both directions,
    the return value): each side decodes what it receives with it and raises
    :class:`~tractor.MsgTypeError` on a mismatch. Include ``None`` in a union
    if ``started()`` or the function may produce ``None``.
    """
    def mark(f: F) -> F:
        if not inspect.iscoroutinefunction(f):
            raise TypeError(f'@tractor.context needs an async function, got {f!r}')
        params = inspect.signature(f).parameters
        if 'ctx' not in params:
            raise TypeError(
                f'@tractor.context function {f.__qualname__} must take a `ctx` argument'
            )
        f._tractor_context = True  # type: ignore[attr-defined]
        f._tractor_pld_spec = pld_spec  # type: ignore[attr-defined]
        # built once here, shared by every context of this function
        f._tractor_pld_dec = (  # type: ignore[attr-defined]
            msgspec.msgpack.Decoder(pld_spec) if pld_spec is not None else None
        )
        return f

    return mark(fn) if fn is not None else mark  # type: ignore[return-value]


#: the Context of the running task: the callee's in its function, the
#: caller's inside its ``open_context`` block
_current_ctx: ContextVar[Context | None] = ContextVar('tractor_ipc_ctx', default=None)


def current_ipc_ctx() -> Context:
    """The :class:`Context` of the calling task: inside a ``@tractor.context``
    function (the callee's side) or inside a ``Portal.open_context`` block
    (the caller's side). ``RuntimeError`` elsewhere, including in a plain
    ``Portal.run`` target, which runs without a Context."""
    ctx = _current_ctx.get()
    if ctx is None:
        raise RuntimeError(
            'current_ipc_ctx(): this task runs in no IPC context (only a '
            '@tractor.context function and an open_context() block have one; '
            'a plain Portal.run() target does not)'
        )
    return ctx


def is_context_fn(fn: Callable) -> bool:
    return getattr(fn, '_tractor_context', False) is True


class Context(TaskScope):
    """One side of a cross-actor task pair.

    ``side`` is ``'caller'`` (opened it with ``Portal.open_context``) or
    ``'callee'`` (runs the ``@tractor.context`` function). See ``started()``,
    ``open_stream()``, ``cancel()`` and ``wait_for_result()``.
    ``canceller`` is the uid of the actor that cancelled the pair, if any.
    """

    def __init__(
        self,
        actor: Actor,
        chan: Channel,
        cid: int,
        side: str,
        fn_name: str,
        window: int = DEFAULT_WINDOW,
        pld_spec: Any = None,
        pld_dec: msgspec.msgpack.Decoder | None = None,
    ) -> None:
        super().__init__()
        self._actor = actor
        self.chan = chan
        self.cid = cid
        self.side = side
        self.fn_name = fn_name
        #: how many stream messages the peer may have unconsumed here
        self._window = window
        self._batch = max(1, window // 4)
        self._inbox: Inbox[_msg._Msg] = Inbox(window + _SLACK)
        #: how many more stream messages this side may send
        self._credit = window
        self._credit_changed: trio.Event | None = None
        #: consumed messages not yet credited back to the peer
        self._owed = 0
        #: a message taken from the inbox but not handed out (see _consumed)
        self._pushback: _msg._Msg | None = None
        if pld_dec is None and pld_spec is not None:
            pld_dec = msgspec.msgpack.Decoder(pld_spec)
        self._pld_dec = pld_dec
        self._started = False
        self._result: Any = _NOT_SET
        self._remote_error: BaseException | None = None
        self._done = trio.Event()
        self._cancel_called = False
        self._cancel_sent = False
        self._ack_waited = False
        self._stream: MsgStream | None = None
        self._stop_sent = False
        self._peer_closed = False
        #: Stops delivered that no receive() consumed yet (a stream re-opened
        #: by this side skips what the peer sent before closing its end)
        self._stops_queued = 0
        #: the peer allows this side to overrun it (raise, not wait, past credit)
        self._overrun_ok = False
        #: the extra window this side granted the peer (allow_overruns)
        self._overrun_extra = 0
        #: (callee) where this side called ctx.cancel(): the caller's
        #: ContextCancelled carries it as its traceback
        self._cancel_tb = ''
        self.canceller: tuple[str, str] | None = None

    def __repr__(self) -> str:
        peer = self.chan.aid.name if self.chan.aid else '?'
        return f'<Context {self.side} {self.fn_name} cid={self.cid} peer={peer!r}>'

    def _wake_sender(self) -> None:
        ev = self._credit_changed
        if ev is not None:
            ev.set()

    # -- inbound (called synchronously by the channel's message loop) -------
    def _deliver(self, msg: _msg._Msg) -> None:
        kind = type(msg)
        if kind is _msg.Credit:
            self._credit += msg.n  # type: ignore[attr-defined]
            if msg.overrun:  # type: ignore[attr-defined]
                self._overrun_ok = True
            self._wake_sender()
            return
        if kind is _msg.Stop:
            self._peer_closed = True
            self._stops_queued += 1
            self._wake_sender()
        elif kind is _msg.Return:
            self._result = msg.pld  # type: ignore[attr-defined]
            self._done.set()
            self._wake_sender()
        elif kind is _msg.Error:
            err = unpack_error(msg)  # type: ignore[arg-type]
            self._remote_error = err
            if isinstance(err, ContextCancelled) and self.canceller is None:
                self.canceller = err.canceller
            self._done.set()
            self._wake_sender()
            if not self._is_own_cancel(err):
                self._cancel_scope()
        elif kind is _msg.Cancel:
            if self.side == 'callee':
                if self.canceller is None:
                    self.canceller = self.chan.uid
                self._cancel_scope()
            return
        if not self._inbox.put(msg):
            # only a peer ignoring its credit can get here
            raise MsgTypeError(
                f'{self.chan.aid and self.chan.aid.name!r} overran the stream '
                f'window ({self._window}) of {self!r}'
            )

    def _lost(self, err: BaseException) -> None:
        """The channel died under us: wake whoever waits."""
        if not self._done.is_set():
            self._remote_error = err
            self._done.set()
            self._cancel_scope()
        self._wake_sender()
        self._inbox.close()

    def _is_own_cancel(self, err: BaseException | None) -> bool:
        """Whether ``err`` is this context's reply to a cancel this side asked for."""
        return (
            err is not None
            and err is self._remote_error
            and isinstance(err, ContextCancelled)
            and self._cancel_called
            and err.canceller == self._actor.uid
        )

    async def _next_msg(self) -> _msg._Msg:
        msg = self._pushback
        if msg is not None:
            self._pushback = None
            return msg
        try:
            return await self._inbox.get()
        except trio.EndOfChannel:
            err = self._remote_error or TransportClosed(f'{self!r}: channel closed')
            raise err from None

    async def _consumed(self, msg: _msg._Msg) -> None:
        """Count ``msg`` (just taken from the inbox) as consumed and hand a
        batch of credit back once one is owed. If that send is cancelled,
        ``msg`` goes back to the head of the inbox: nothing is lost.

        (The stream's hot path inlines the counting and only calls
        :meth:`_credit_back` once per batch.)"""
        self._owed += 1
        if self._owed >= self._batch:
            await self._credit_back(msg)

    async def _credit_back(self, msg: _msg._Msg) -> None:
        n = self._owed
        if self._done.is_set():
            return
        self._owed = 0
        try:
            await self.chan.send(_msg.Credit(cid=self.cid, n=n))
        except TransportClosed:
            pass
        except BaseException:
            self._owed = n - 1
            self._pushback = msg
            raise

    def _decode(self, raw: msgspec.Raw) -> Any:
        return _msg.decode_pld(raw, self._pld_dec)

    async def _send_ctrl(self, msg: _msg._Msg) -> None:
        """Send a control message even while unwinding (shielded, bounded)."""
        with trio.move_on_after(_CTRL_SEND_TIMEOUT) as cs:
            cs.shield = True
            try:
                await self.chan.send(msg)
            except (TransportClosed, trio.ClosedResourceError):
                pass

    async def _cancel_and_wait(self, timeout: float = CANCEL_ACK_TIMEOUT) -> None:
        """(caller) Ask the callee to cancel, then wait (shielded, bounded)
        for its final reply, so the pair is really over when this returns."""
        if self._done.is_set():
            return
        self._cancel_called = True
        if not self._cancel_sent:
            self._cancel_sent = True
            await self._send_ctrl(_msg.Cancel(cid=self.cid))
        if self._ack_waited:
            return
        self._ack_waited = True
        with trio.CancelScope(shield=True):
            # longer while the callee may be at a debugger prompt
            await within_grace(self._actor, timeout, self._done.wait)
        if not self._done.is_set():
            log.warning('%r: the callee did not confirm the cancel within %.1fs', self, timeout)

    async def _resize_window(self, size: int) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f'msg_buffer_size must be a positive int, got {size!r}')
        delta = size - self._window
        if not delta:
            return
        self._inbox.grow(size + self._overrun_extra + _SLACK)
        self._window = size
        self._batch = max(1, size // 4)
        # a negative credit shrinks what the peer may have in flight
        await self._send_ctrl(_msg.Credit(cid=self.cid, n=delta))

    # -- public API --------------------------------------------------------
    @property
    def cancel_called(self) -> bool:
        """Whether this side asked for the context to be cancelled."""
        return self._cancel_called

    @property
    def cancelled_caught(self) -> bool:
        """Whether the pair ended in a cancel (``ContextCancelled``)."""
        return isinstance(self._remote_error, ContextCancelled)

    @property
    def outcome(self) -> Any:
        """The callee's return value or error, once known (else ``None``)."""
        if self._remote_error is not None:
            return self._remote_error
        return None if self._result is _NOT_SET else self._decode(self._result)

    async def started(self, value: Any = None) -> None:
        """(callee) Unblock the caller's ``open_context`` with ``value``.

        Raises :class:`~tractor.MsgTypeError` (and sends nothing) when
        ``value`` is not msgspec-encodable or breaks the context's
        ``pld_spec``; ``started()`` may then be retried.
        """
        if self.side != 'callee':
            raise RuntimeError('only the callee side of a context calls started()')
        if self._started:
            raise RuntimeError(f'{self!r}: started() was already called')
        if self._pld_dec is not None:  # a declared pld_spec: refuse here, not at the peer
            _msg.check_pld(value, self._pld_dec)
        await self.chan.send(_msg.Started(cid=self.cid, pld=value))
        self._started = True

    @property
    def maybe_error(self) -> BaseException | None:
        """The error that ended the pair (the peer's, a cancel, a lost
        connection), or ``None`` while it runs or when it returned."""
        return self._remote_error

    @asynccontextmanager
    async def open_stream(
        self, allow_overruns: bool = False, msg_buffer_size: int | None = None,
    ) -> AsyncIterator[MsgStream]:
        """A bidirectional stream with the other side, closed on block exit.

        ``msg_buffer_size`` is how many stream messages the peer may send
        ahead of this side's consumption (default :data:`DEFAULT_WINDOW`,
        256): a peer that gets that far ahead blocks in ``send()`` until
        this side receives, so at most that many messages are buffered here.
        With ``allow_overruns=True`` the peer does not wait: it may run ahead
        by twice that, and past it its ``send()`` raises
        :class:`~tractor.StreamOverrun` (memory stays bounded either way).

        A clean exit of the block tells the peer this side is done with the
        stream (its ``receive()`` then raises ``trio.EndOfChannel``, and its
        ``send()`` drops what it is given: nobody reads it any more); an exit
        by an error or a cancel does not: the context delivers that to the
        peer instead. Once closed, a stream can be opened again: the new one
        starts once the peer closed its end of the old one too (so a peer
        that never closes its end makes that wait). After ``ctx.cancel()``
        opening one raises ``ContextCancelled``. Overruns, once allowed, stay
        allowed for the rest of the context.
        """
        if self.side == 'callee' and not self._started:
            raise RuntimeError('call `await ctx.started()` before opening a stream')
        if self._stream is not None and not self._stream._closed:
            raise RuntimeError(f'{self!r} already has an open stream')
        err = self._remote_error
        if err is not None and not self._is_own_cancel(err):
            raise err
        if self._cancel_called:
            if err is not None:
                raise err
            raise self._own_cancel_error()
        if msg_buffer_size is not None:
            await self._resize_window(msg_buffer_size)
        if allow_overruns and not self._overrun_extra:
            # (for the rest of the context: the peer keeps the grant)
            self._overrun_extra = extra = self._window
            self._inbox.grow(self._window + extra + _SLACK)
            await self._send_ctrl(_msg.Credit(cid=self.cid, n=extra, overrun=True))
        if self._stream is not None:
            await self._reopen()
        stream = MsgStream(self)
        self._stream = stream
        try:
            yield stream
        except BaseException:
            stream._closed = True
            raise
        await stream.aclose()

    def _own_cancel_error(self) -> ContextCancelled:
        err = ContextCancelled(
            f'{self!r} was cancelled by this side',
            boxed_type_str=type_name(ContextCancelled),
            src_uid=self._actor.uid,
        )
        err.canceller = self._actor.uid
        return err

    async def _reopen(self) -> None:
        """A stream again after this side closed the last one. The old one
        is over once the peer closed its end too: wait for that, then drop
        what the peer sent on it, up to its Stop (credited back)."""
        if not (self._stop_sent or self._cancel_called or self._done.is_set()):
            # the last stream was left by an error: close our end for the
            # peer first, or both sides would wait for each other
            self._stop_sent = True
            await self._send_ctrl(_msg.Stop(cid=self.cid))
        while not self._peer_closed and not self._done.is_set():
            ev = self._credit_changed
            if ev is None or ev.is_set():
                ev = self._credit_changed = trio.Event()
            await ev.wait()
        self._stop_sent = False
        if self._stops_queued:  # the old stream's Stop is still queued
            while True:
                msg = self._pushback
                if msg is not None:
                    self._pushback = None
                else:
                    msg = self._inbox.get_nowait()
                    if msg is None:
                        break
                kind = type(msg)
                if kind is _msg.Stop:
                    self._stops_queued -= 1
                    break
                if kind is _msg.Yield:
                    await self._consumed(msg)
                else:  # the end of the context: leave it for whoever waits
                    self._pushback = msg
                    break
        # a second Stop queued already: the peer's new stream closed too
        self._peer_closed = self._stops_queued > 0

    async def cancel(self) -> None:
        """Cancel the task pair.

        From the caller: ask the callee to cancel and cancel this side's
        ``open_context`` block; the block then exits quietly once the callee
        confirmed (no ``ContextCancelled`` for a cancel this side asked for).
        From the callee: cancel its own task; the caller then sees
        ``ContextCancelled`` whose ``canceller`` is the callee's uid.
        """
        self._cancel_called = True
        if self.side == 'callee':
            if self.canceller is None:
                self.canceller = self._actor.uid
                self._cancel_tb = ''.join(traceback.format_stack(limit=8)[:-1])
            self._cancel_scope()
            return
        if self._done.is_set():
            return
        if not self._cancel_sent:
            self._cancel_sent = True
            await self._send_ctrl(_msg.Cancel(cid=self.cid))
        self._cancel_scope()

    async def wait_for_result(self) -> Any:
        """(caller) The callee's return value; raises its error instead.

        Stream messages still queued are dropped (and credited back).
        """
        if self.side != 'caller':
            raise RuntimeError('only the caller side waits for the result')
        stream = self._stream
        if (
            stream is not None and stream._closed and not self._stop_sent
            and not self._cancel_called and not self._done.is_set()
        ):
            # the stream block was left by an error the body then handled:
            # the callee may be waiting for our end to close
            self._stop_sent = True
            await self._send_ctrl(_msg.Stop(cid=self.cid))
        while not self._done.is_set():
            msg = await self._next_msg()
            if type(msg) is _msg.Yield:
                await self._consumed(msg)
        if self._remote_error is not None:
            raise self._remote_error
        return self._decode(self._result)

    result = wait_for_result


class MsgStream(trio.abc.Channel[Any]):
    """A bidirectional, flow-controlled message stream inside a context.

    ``send``/``receive``/``async for``/``aclose``. Values must be
    msgspec-encodable (``send`` raises :class:`~tractor.MsgTypeError` before
    sending anything otherwise). ``aclose()`` (or leaving the ``open_stream``
    block) ends the peer's iteration with ``trio.EndOfChannel``; the peer's
    further ``send()`` calls drop their values (nobody reads them). An error
    or cancel of the other side is raised from ``send``/``receive``; a lost
    connection as :class:`~tractor.TransportClosed`.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._eoc = False
        self._closed = False
        self._ymsg: _msg.Yield | None = _msg.Yield(cid=ctx.cid, pld=None)
        self._unyielded = 0
        #: whether this side found nothing to receive since its last send:
        #: traffic is then interactive (request/reply, echo) and the next
        #: send goes straight out instead of being corked, so it neither
        #: waits for nor wakes the channel's writer task
        self._waited = True
        self._broadcaster: BroadcastReceiver | None = None

    @property
    def ctx(self) -> Context:
        return self._ctx

    @property
    def closed(self) -> bool:
        """Whether this side closed the stream."""
        return self._closed

    @property
    def peer_closed(self) -> bool:
        """Whether the other side closed its end (or its task returned):
        it reads nothing more, and ``send()`` drops what it is given."""
        return self._ctx._peer_closed or self._ctx._done.is_set()

    async def send(self, value: Any) -> None:
        """Send ``value``; blocks while the peer has a full window unconsumed."""
        ctx = self._ctx
        if self._closed:
            raise trio.ClosedResourceError('this stream was closed by this side')
        if ctx._pld_dec is not None:  # a declared pld_spec: refuse here, not at the peer
            _msg.check_pld(value, ctx._pld_dec)
        while True:
            if ctx._remote_error is not None:
                raise ctx._remote_error
            if ctx._peer_closed or ctx._done.is_set():
                # The peer closed its end (or returned): it reads no more,
                # so the value is dropped, as the peer would drop it, rather
                # than failing a send that merely raced the close; this
                # side's next receive() raises EndOfChannel. (A cancel of
                # this side still wins: this is a checkpoint.)
                await trio.lowlevel.checkpoint()
                return
            if ctx._credit > 0:
                break
            if ctx._overrun_ok:
                await trio.lowlevel.checkpoint()
                raise StreamOverrun(
                    f'{ctx!r}: the receiver already holds as many unread messages '
                    f'from this side as it allows (it opened its end with '
                    f'allow_overruns=True); {value!r:.60} was not sent'
                )
            ev = ctx._credit_changed
            if ev is None or ev.is_set():
                ev = ctx._credit_changed = trio.Event()
            await ev.wait()
            if self._closed:
                raise trio.ClosedResourceError('this stream was closed by this side')
        ctx._credit -= 1
        # reuse one Yield per stream (a concurrent sender makes its own)
        msg = self._ymsg
        if msg is None:
            msg = _msg.Yield(cid=ctx.cid, pld=value)
        else:
            self._ymsg = None
            msg.pld = value
        cork = not self._waited
        self._waited = False
        try:
            await ctx.chan.send(msg, cork=cork)
        except BaseException:
            ctx._credit += 1
            raise
        finally:
            msg.pld = None
            self._ymsg = msg

    async def receive(self) -> Any:
        """The next value; ``trio.EndOfChannel`` once the peer closed."""
        if self._closed:
            raise trio.ClosedResourceError('this stream was closed by this side')
        if self._eoc:
            raise trio.EndOfChannel
        ctx = self._ctx
        msg = ctx._pushback
        if msg is not None:
            ctx._pushback = None
        else:
            # cancellation is checked before a message is taken, so a
            # cancelled receive never loses one
            await trio.lowlevel.checkpoint_if_cancelled()
            msg = ctx._inbox.get_nowait()
            if msg is None:
                if ctx._inbox.closed:  # the channel is gone
                    raise ctx._remote_error or TransportClosed(f'{ctx!r}: channel closed')
                self._waited = True
                if ctx.chan._wbuf:
                    await ctx.chan.flush()  # our corked sends go out before we wait
                try:
                    msg = await ctx._inbox.get()
                except trio.EndOfChannel:
                    err = ctx._remote_error or TransportClosed(f'{ctx!r}: channel closed')
                    raise err from None
            else:
                # data was queued: no yield per message, but give other
                # tasks a turn every so often
                self._unyielded += 1
                if self._unyielded >= _YIELD_EVERY:
                    self._unyielded = 0
                    await trio.lowlevel.cancel_shielded_checkpoint()
        kind = type(msg)
        if kind is _msg.Yield:
            ctx._owed += 1
            if ctx._owed >= ctx._batch:
                await ctx._credit_back(msg)
            return ctx._decode(msg.pld)  # type: ignore[attr-defined]
        if kind is _msg.Stop or kind is _msg.Return:
            if kind is _msg.Stop:
                ctx._stops_queued -= 1
            self._eoc = True
            raise trio.EndOfChannel
        if kind is _msg.Error:
            assert ctx._remote_error is not None
            raise ctx._remote_error
        raise MsgTypeError(f'{ctx!r}: unexpected {kind.__name__} on a stream')

    async def aclose(self) -> None:
        """Close this side; the peer's iteration ends (idempotent)."""
        if self._closed:
            return
        self._closed = True
        ctx = self._ctx
        ctx._wake_sender()
        if not (ctx._stop_sent or ctx._cancel_called or ctx._done.is_set()):
            ctx._stop_sent = True
            await ctx._send_ctrl(_msg.Stop(cid=ctx.cid))

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[BroadcastReceiver]:
        """A reader of this stream for one of several local tasks: each
        subscriber receives every message from its subscription on. Built on
        :func:`tractor.trionics.broadcast_receiver`, bounded by the stream's
        window: a subscriber that falls that far behind gets
        :class:`~tractor.trionics.Lagged`. Once subscribed, read this stream
        only through subscribers."""
        if self._broadcaster is None:
            self._broadcaster = broadcast_receiver(self, max_buffer_size=self._ctx._window)
        async with self._broadcaster.subscribe() as sub:
            yield sub

    def __aiter__(self) -> MsgStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

