"""Streams inside a context: :class:`MsgStream`, and the context's side of
opening, re-opening and sizing one (:class:`StreamSide`, a part of
:class:`~tractor._context.Context`).

Flow control is by credits (see :mod:`tractor._context`): ``send`` spends
one, ``receive`` counts what it consumed and hands a batch back. Both run
per message, so they read the context's state directly, with no call in
between for what they can do inline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import trio

from . import _msg
from ._exceptions import MsgTypeError, StreamOverrun, TransportClosed
from .trionics._broadcast import BroadcastReceiver, broadcast_receiver

if TYPE_CHECKING:
    from ._context import Context
    from ._exceptions import ContextCancelled
    from ._inbox import Inbox
    from ._ipc import Channel

#: a receiver draining a full inbox yields to other tasks this often
_YIELD_EVERY = 64
#: room in an inbox beyond the window for the few control messages
#: (Started, Stop, Return/Error) that do not take credit
_SLACK = 8


class StreamSide:
    """The stream half of a :class:`~tractor._context.Context` (a base of
    it, not used alone): opening a stream, re-opening one after the last
    closed, and resizing the window. It works on the context's state
    (window, inbox, credit, the Stop bookkeeping), set in
    ``Context.__init__``."""

    # the Context's state this half reads and writes (declared for the
    # type checker; Context.__init__ sets them)
    chan: Channel
    cid: int
    side: str
    _window: int
    _batch: int
    _inbox: Inbox[_msg._Msg]
    _credit_changed: trio.Event | None
    _pushback: _msg._Msg | None
    _started: bool
    _remote_error: BaseException | None
    _done: trio.Event
    _cancel_called: bool
    _stream: MsgStream | None
    _stop_sent: bool
    _peer_closed: bool
    _stops_queued: int
    _overrun_extra: int
    _allow_overruns: bool

    if TYPE_CHECKING:  # the Context's methods this half calls

        def _is_own_cancel(self, err: BaseException | None) -> bool: ...
        def _own_cancel_error(self) -> ContextCancelled: ...
        async def _consumed(self, msg: _msg._Msg) -> None: ...

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
        await self.chan.send_or_drop(_msg.Credit(cid=self.cid, n=delta))

    @asynccontextmanager
    async def open_stream(
        self, allow_overruns: bool | None = None, msg_buffer_size: int | None = None
    ) -> AsyncIterator[MsgStream]:
        """A bidirectional stream with the other side, closed on block exit.

        ``msg_buffer_size`` is how many stream messages the peer may send
        ahead of this side's consumption (default :data:`~tractor._context.DEFAULT_WINDOW`,
        256): a peer that gets that far ahead blocks in ``send()`` until
        this side receives, so at most that many messages are buffered here.
        With ``allow_overruns=True`` the peer does not wait: it may run ahead
        by twice that, and past it its ``send()`` raises
        :class:`~tractor.StreamOverrun` (memory stays bounded either way).
        The default is what ``Portal.open_context(allow_overruns=...)`` set
        (off).

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
        if allow_overruns is None:
            allow_overruns = self._allow_overruns
        if allow_overruns and not self._overrun_extra:
            # (for the rest of the context: the peer keeps the grant)
            self._overrun_extra = extra = self._window
            self._inbox.grow(self._window + extra + _SLACK)
            await self.chan.send_or_drop(_msg.Credit(cid=self.cid, n=extra, overrun=True))
        if self._stream is not None:
            await self._reopen()
        stream = MsgStream(cast('Context', self))  # (once per stream: not a hot path)
        self._stream = stream
        try:
            yield stream
        except BaseException:
            stream._closed = True
            raise
        await stream.aclose()

    async def _reopen(self) -> None:
        """A stream again after this side closed the last one. The old one
        is over once the peer closed its end too: wait for that, then drop
        what the peer sent on it, up to its Stop (credited back)."""
        if not (self._stop_sent or self._cancel_called or self._done.is_set()):
            # the last stream was left by an error: close our end for the
            # peer first, or both sides would wait for each other
            self._stop_sent = True
            await self.chan.send_or_drop(_msg.Stop(cid=self.cid))
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
        # reused by send(), which puts each value in (a plain value, not Raw)
        self._ymsg: _msg.Yield | None = _msg.Yield(cid=ctx.cid, pld=None)  # type: ignore[arg-type]  # a template
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
            if ctx._peer_closed or ctx._finished:
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
            msg.pld = None  # type: ignore[assignment]  # holds no value between sends
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
            q = ctx._inbox._data  # (Inbox.get_nowait inline: once per message)
            msg = q.popleft() if q else None
            if msg is None:
                if ctx._inbox.closed:  # the channel is gone
                    raise ctx._remote_error or TransportClosed(f'{ctx!r}: channel closed')
                if ctx._finished:
                    # the pair is over and its last message was read (by
                    # an earlier stream): nothing more will come
                    if ctx._remote_error is not None:
                        raise ctx._remote_error
                    self._eoc = True
                    raise trio.EndOfChannel
                self._waited = True
                chan = ctx.chan
                if chan._wbuf:
                    await chan.flush()  # our corked sends go out before we wait
                if chan._lead_open:
                    # read the next message in this task (its first read
                    # waits for the socket: the checkpoint of this receive)
                    await ctx._actor._lead(chan, None, ctx._inbox)
                    msg = ctx._inbox.get_nowait()
                if msg is None:
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
            return _msg.decode_pld(msg.pld, ctx._pld_dec)  # type: ignore[attr-defined]  # dispatch on a saved type(msg)
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
            await ctx.chan.send_or_drop(_msg.Stop(cid=ctx.cid))

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
