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

This module holds :class:`Context` (its state, delivery, cancellation and
result) and the ``@tractor.context`` marker; the stream itself and the
context's side of opening one are in :mod:`tractor._stream`.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, overload

import msgspec
import trio

from . import _msg
from ._boxing import unpack_error
from ._call import TaskScope
from ._debugger import within_grace
from ._exceptions import ContextCancelled, MsgTypeError, TransportClosed, check_seconds, type_name
from ._inbox import Inbox
from ._stream import _SLACK, MsgStream, StreamSide
from .log import get_logger

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._runtime import Actor

log = get_logger('context')

#: default stream window: stream messages a peer may send ahead of this
#: side's consumption (``open_stream(msg_buffer_size=...)`` changes it)
DEFAULT_WINDOW = 256
#: how long the caller waits for the callee to confirm a cancel (its final
#: Return/Error) before giving up on it and unwinding anyway
CANCEL_ACK_TIMEOUT = 10.0

_NOT_SET = object()

F = TypeVar('F', bound=Callable[..., Any])


@overload
def context(fn: F, *, pld_spec: Any = None) -> F: ...
@overload
def context(fn: None = None, *, pld_spec: Any = None) -> Callable[[F], F]: ...
def context(fn: F | None = None, *, pld_spec: Any = None) -> F | Callable[[F], F]:
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
        f._tractor_context = True  # type: ignore[attr-defined]  # a mark read back with getattr
        f._tractor_pld_spec = pld_spec  # type: ignore[attr-defined]  # a mark read back with getattr
        # built once here, shared by every context of this function
        f._tractor_pld_dec = (  # type: ignore[attr-defined]  # a mark read back with getattr
            msgspec.msgpack.Decoder(pld_spec) if pld_spec is not None else None
        )
        return f

    return mark(fn) if fn is not None else mark


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


class Context(TaskScope, StreamSide):
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
        self._inbox: Inbox[_msg._Msg] = Inbox(window + _SLACK, chan)
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
        #: ``_done.is_set()`` as a plain flag, for the stream's send path
        self._finished = False
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
        #: (caller) ``open_context(allow_overruns=True)``: this side's
        #: streams allow overruns unless ``open_stream()`` says otherwise
        self._allow_overruns = False
        #: (callee) where this side called ctx.cancel(): the caller's
        #: ContextCancelled carries it as its traceback
        self._cancel_tb = ''
        self.canceller: tuple[str, str] | None = None

    def __repr__(self) -> str:
        peer = self.chan.aid.name if self.chan.aid else '?'
        return f'<Context {self.side} {self.fn_name} cid={self.cid} peer={peer!r}>'

    def _finish(self) -> None:
        """The pair is over (a reply, an error, or the channel lost)."""
        self._finished = True
        self._done.set()

    def _wake_sender(self) -> None:
        ev = self._credit_changed
        if ev is not None:
            ev.set()

    # -- inbound (called synchronously by the channel's message loop) -------
    def _deliver(self, msg: _msg._Msg) -> None:
        kind = type(msg)
        if kind is _msg.Yield:  # (most messages of a stream: queued at once)
            if not self._inbox.put(msg):
                self._overran()
            return
        if kind is _msg.Credit:
            self._credit += msg.n  # type: ignore[attr-defined]  # dispatch on a saved type(msg)
            if msg.overrun:  # type: ignore[attr-defined]  # dispatch on a saved type(msg)
                self._overrun_ok = True
            self._wake_sender()
            return
        if kind is _msg.Stop:
            self._peer_closed = True
            self._stops_queued += 1
            self._wake_sender()
        elif kind is _msg.Return:
            self._result = msg.pld  # type: ignore[attr-defined]  # dispatch on a saved type(msg)
            self._finish()
            self._wake_sender()
        elif kind is _msg.Error:
            err = unpack_error(msg)  # type: ignore[arg-type]  # dispatch on a saved type(msg)
            self._remote_error = err
            if isinstance(err, ContextCancelled) and self.canceller is None:
                self.canceller = err.canceller
            self._finish()
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
            self._overran()

    def _overran(self) -> None:
        # only a peer ignoring its credit can get here
        raise MsgTypeError(
            f'{self.chan.aid and self.chan.aid.name!r} overran the stream '
            f'window ({self._window}) of {self!r}'
        )

    def _lost(self, err: BaseException) -> None:
        """The channel died under us: wake whoever waits."""
        if not self._finished:
            self._remote_error = err
            self._finish()
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

    async def _cancel_and_wait(self, timeout: float = CANCEL_ACK_TIMEOUT) -> None:
        """(caller) Ask the callee to cancel, then wait (shielded, bounded)
        for its final reply, so the pair is really over when this returns."""
        if self._done.is_set():
            return
        self._cancel_called = True
        if not self._cancel_sent:
            self._cancel_sent = True
            await self.chan.send_or_drop(_msg.Cancel(cid=self.cid))
        if self._ack_waited or timeout <= 0:
            return
        self._ack_waited = True
        with trio.CancelScope(shield=True):
            # longer while the callee may be at a debugger prompt
            await within_grace(self._actor, timeout, self._done.wait)
        if not self._done.is_set():
            log.warning('%r: the callee did not confirm the cancel within %.1fs', self, timeout)

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

    def _own_cancel_error(self) -> ContextCancelled:
        err = ContextCancelled(
            f'{self!r} was cancelled by this side',
            boxed_type_str=type_name(ContextCancelled),
            src_uid=self._actor.uid,
        )
        err.canceller = self._actor.uid
        return err

    async def cancel(self, timeout: float | None = None) -> None:
        """Cancel the task pair.

        From the caller: ask the callee to cancel its task, and return once
        the request went out (shielded, within ``timeout`` seconds, default
        5; a connection that cannot take it drops it). This side's block is *not*
        cancelled (a context is not a trio cancel scope, as in the
        established project): what follows in it still runs. The callee's
        answer is a ``ContextCancelled`` whose ``canceller`` is this actor:
        ``wait_for_result()`` returns it (``cancel_acked`` is then true), a
        stream's ``receive()`` raises it, and the ``open_context`` block
        exits quietly for it. A callee that returned first gives its result.
        From the callee: cancel its own task; the caller then sees
        ``ContextCancelled`` whose ``canceller`` is the callee's uid.
        """
        check_seconds('Context.cancel(timeout=...)', timeout)
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
            await self.chan.send_or_drop(_msg.Cancel(cid=self.cid), timeout)

    @property
    def cancel_acked(self) -> bool:
        """(caller) Whether the callee confirmed a ``cancel()`` of this
        side: it ended with a ``ContextCancelled`` whose ``canceller`` is
        this actor."""
        return self._is_own_cancel(self._remote_error)

    async def wait_for_result(self) -> Any:
        """(caller) The callee's return value; raises its error instead,
        except the ``ContextCancelled`` answering this side's own
        ``cancel()``, which is returned (the cancel was asked for).

        Stream messages still queued are dropped (and credited back).
        """
        if self.side != 'caller':
            raise RuntimeError('only the caller side waits for the result')
        stream = self._stream
        if (
            stream is not None
            and stream._closed
            and not self._stop_sent
            and not self._cancel_called
            and not self._done.is_set()
        ):
            # the stream block was left by an error the body then handled:
            # the callee may be waiting for our end to close
            self._stop_sent = True
            await self.chan.send_or_drop(_msg.Stop(cid=self.cid))
        while not self._done.is_set():
            msg = await self._next_msg()
            if type(msg) is _msg.Yield:
                await self._consumed(msg)
        err = self._remote_error
        if err is not None:
            if self._is_own_cancel(err):
                return err
            raise err
        return self._decode(self._result)

    result = wait_for_result
