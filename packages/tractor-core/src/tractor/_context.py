"""Contexts: a linked pair of tasks in two actors, with an optional stream.

Every remote call is a context: ``Portal.run`` is a context whose callee just
returns, ``Portal.open_context`` one whose callee calls ``ctx.started()`` and
may open a bidirectional :class:`MsgStream`.

Streams are flow-controlled by credits: a sender may have at most
``window`` messages unconsumed at the receiver; the receiver hands credit
back as it consumes. So a slow receiver slows the sender (memory stays
bounded) without ever blocking the connection for other contexts.
"""
from __future__ import annotations

import functools
import inspect
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, TypeVar

import msgspec
import trio

from . import _msg
from ._exceptions import ContextCancelled, MsgTypeError, RemoteActorError, TransportClosed
from .log import get_logger

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._runtime import Actor

log = get_logger('context')

#: default stream window: messages a sender may have in flight unconsumed
DEFAULT_WINDOW = 256
_NOT_SET = object()

F = TypeVar('F', bound=Callable[..., Any])


def context(fn: F | None = None, *, pld_spec: Any = None) -> F:
    """Mark ``async def fn(ctx: tractor.Context, **kwargs)`` as a context
    endpoint, openable with ``Portal.open_context(fn, **kwargs)``.

    ``pld_spec`` optionally restricts the payloads the callee receives on
    its stream to one msgspec-decodable type.
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
        return f

    return mark(fn) if fn is not None else mark  # type: ignore[return-value]


def is_context_fn(fn: Callable) -> bool:
    return getattr(fn, '_tractor_context', False) is True


class Context:
    """One side of a cross-actor task pair.

    ``side`` is ``'caller'`` (opened it) or ``'callee'`` (runs the target
    function). See ``started()``, ``open_stream()``, ``cancel()`` and
    ``wait_for_result()``.
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
    ) -> None:
        self._actor = actor
        self.chan = chan
        self.cid = cid
        self.side = side
        self.fn_name = fn_name
        self._window = window
        self._inbox_send, self._inbox = trio.open_memory_channel[_msg._Msg](window + 8)
        self._credit = window
        self._credit_changed = trio.Event()
        self._owed = 0
        self._pld_dec = msgspec.msgpack.Decoder(pld_spec) if pld_spec is not None else None
        self._scope: trio.CancelScope | None = None
        self._started = False
        self._result: Any = _NOT_SET
        self._remote_error: RemoteActorError | None = None
        self._local_error: BaseException | None = None
        self._done = trio.Event()
        self._cancel_called = False
        self._stream: MsgStream | None = None
        self._stop_sent = False
        self.canceller: tuple[str, str] | None = None

    def __repr__(self) -> str:
        peer = self.chan.aid.name if self.chan.aid else '?'
        return f'<Context {self.side} {self.fn_name} cid={self.cid} peer={peer!r}>'

    # -- inbound (called synchronously by the channel's message loop) -----
    def _deliver(self, msg: _msg._Msg) -> None:
        if isinstance(msg, _msg.Credit):
            self._credit += msg.n
            self._credit_changed.set()
            return
        if isinstance(msg, _msg.Return):
            self._result = msg.pld
            self._done.set()
        elif isinstance(msg, _msg.Error):
            from ._runtime import unpack_error

            err = unpack_error(msg, self.chan)
            self._remote_error = err
            self._done.set()
            own_cancel = (
                isinstance(err, ContextCancelled)
                and self._cancel_called
                and err.canceller == self._actor.uid
            )
            if self._scope is not None and not own_cancel:
                self._scope.cancel()
        elif isinstance(msg, _msg.Cancel):
            self.canceller = self.chan.uid
            if self._scope is not None:
                self._scope.cancel()
            return
        try:
            self._inbox_send.send_nowait(msg)
        except trio.WouldBlock:
            # only a peer ignoring its credit can get here
            raise MsgTypeError(
                f'{self.chan.aid and self.chan.aid.name!r} overran the stream '
                f'window ({self._window}) of {self!r}'
            ) from None

    def _lost(self, err: BaseException) -> None:
        """The channel died under us: wake whoever waits."""
        if not self._done.is_set():
            self._remote_error = err  # type: ignore[assignment]
            self._done.set()
            if self._scope is not None:
                self._scope.cancel()
        self._credit_changed.set()
        self._inbox_send.close()

    async def _next_msg(self) -> _msg._Msg:
        try:
            return await self._inbox.receive()
        except trio.EndOfChannel:
            err = self._remote_error or TransportClosed(f'{self!r}: channel closed')
            raise err from None

    async def _consumed(self) -> None:
        self._owed += 1
        if self._owed >= max(1, self._window // 4) and not self._done.is_set():
            n, self._owed = self._owed, 0
            try:
                await self.chan.send(_msg.Credit(cid=self.cid, n=n))
            except TransportClosed:
                pass

    def _decode(self, raw: msgspec.Raw) -> Any:
        return _msg.decode_pld(raw, self._pld_dec)

    # -- public API --------------------------------------------------------
    @property
    def cancel_called(self) -> bool:
        """Whether this side asked for the context to be cancelled."""
        return self._cancel_called

    @property
    def cancelled_caught(self) -> bool:
        return isinstance(self._remote_error, ContextCancelled)

    @property
    def outcome(self) -> Any:
        if self._remote_error is not None:
            return self._remote_error
        return None if self._result is _NOT_SET else self._decode(self._result)

    async def started(self, value: Any = None) -> None:
        """(callee) Unblock the caller's ``open_context`` with ``value``."""
        if self.side != 'callee':
            raise RuntimeError('only the callee side of a context calls started()')
        if self._started:
            raise RuntimeError(f'{self!r}: started() was already called')
        await self.chan.send(_msg.Started(cid=self.cid, pld=value))
        self._started = True

    @asynccontextmanager
    async def open_stream(self, msg_buffer_size: int | None = None) -> AsyncIterator[MsgStream]:
        """A bidirectional stream with the other side, closed on block exit.

        ``msg_buffer_size`` enlarges how many messages the peer may send
        ahead of this side's consumption (default :data:`DEFAULT_WINDOW`).
        """
        if self.side == 'callee' and not self._started:
            raise RuntimeError('call `await ctx.started()` before opening a stream')
        if self._stream is not None:
            raise RuntimeError(f'{self!r} already has an open stream')
        if msg_buffer_size is not None and msg_buffer_size > self._window:
            extra = msg_buffer_size - self._window
            self._window = msg_buffer_size
            old_send, old_recv = self._inbox_send, self._inbox
            self._inbox_send, self._inbox = trio.open_memory_channel[_msg._Msg](msg_buffer_size + 8)
            while True:
                try:
                    self._inbox_send.send_nowait(old_recv.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await self.chan.send(_msg.Credit(cid=self.cid, n=extra))
        stream = MsgStream(self)
        self._stream = stream
        try:
            yield stream
        finally:
            await stream.aclose()

    async def cancel(self) -> None:
        """Cancel the task pair.

        From the caller: ask the callee to cancel; the caller's block then
        ends quietly (no ``ContextCancelled`` for a cancel it asked for).
        From the callee: cancel its own task; the caller sees
        ``ContextCancelled`` naming the callee as canceller.
        """
        self._cancel_called = True
        if self.side == 'callee':
            self.canceller = self._actor.uid
            if self._scope is not None:
                self._scope.cancel()
            return
        if self._done.is_set():
            return
        with trio.move_on_after(5) as cs:
            cs.shield = True
            try:
                await self.chan.send(_msg.Cancel(cid=self.cid))
            except TransportClosed:
                pass

    async def wait_for_result(self) -> Any:
        """(caller) The callee's return value; raises its error instead.

        Stream messages still queued are dropped (and credited back).
        """
        if self.side != 'caller':
            raise RuntimeError('only the caller side waits for the result')
        while not self._done.is_set():
            msg = await self._next_msg()
            if isinstance(msg, _msg.Yield):
                await self._consumed()
                log.debug('%r dropped a stream message while waiting for the result', self)
        if self._remote_error is not None:
            raise self._remote_error
        return self._decode(self._result)

    result = wait_for_result


class MsgStream(trio.abc.Channel[Any]):
    """A bidirectional, flow-controlled message stream inside a context.

    ``send``/``receive``/``async for``; ``aclose()`` tells the peer this side
    sends no more, which ends the peer's iteration with ``trio.EndOfChannel``.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._eoc = False
        self._closed = False

    @property
    def ctx(self) -> Context:
        return self._ctx

    async def send(self, value: Any) -> None:
        ctx = self._ctx
        if self._closed:
            raise trio.ClosedResourceError('this stream was closed by this side')
        if ctx._done.is_set() and ctx._remote_error is not None:
            raise ctx._remote_error
        while ctx._credit <= 0:
            ctx._credit_changed = trio.Event()
            await ctx._credit_changed.wait()
            if ctx._done.is_set() and ctx._remote_error is not None:
                raise ctx._remote_error
        await ctx.chan.send(_msg.Yield(cid=ctx.cid, pld=value))
        ctx._credit -= 1

    async def receive(self) -> Any:
        if self._eoc:
            raise trio.EndOfChannel
        if self._closed:
            raise trio.ClosedResourceError('this stream was closed by this side')
        ctx = self._ctx
        msg = await ctx._next_msg()
        if isinstance(msg, _msg.Yield):
            await ctx._consumed()
            return ctx._decode(msg.pld)
        if isinstance(msg, (_msg.Stop, _msg.Return)):
            self._eoc = True
            raise trio.EndOfChannel
        if isinstance(msg, _msg.Error):
            assert ctx._remote_error is not None
            raise ctx._remote_error
        raise MsgTypeError(f'{ctx!r}: unexpected {type(msg).__name__} on a stream')

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        ctx = self._ctx
        if not ctx._stop_sent and not ctx._done.is_set():
            ctx._stop_sent = True
            with trio.CancelScope(shield=True):
                try:
                    await ctx.chan.send(_msg.Stop(cid=ctx.cid))
                except TransportClosed:
                    pass

    def __aiter__(self) -> MsgStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
