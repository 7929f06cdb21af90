"""A ``Channel``: one framed, typed message connection to one peer."""

from __future__ import annotations

import trio

from . import _msg, _session, _settings, _sockio
from ._exceptions import (
    STREAM_ERRORS,
    MsgTypeError,
    NoTransportInstalled,
    TransportClosed,
    transport_closed,
)
from ._session import BATCH_END, TAG_SIZE
from ._transport import Address, BufferedSendStream, wrap_address
from .log import get_logger

log = get_logger('ipc')

_HEADER = 4
#: how much one read asks for (more when a frame needs more). Under glibc's
#: threshold for serving an allocation with its own mmap (128 KiB): a read
#: allocates its result at the size asked for, then shrinks it to what
#: came, and at 256 KiB that was an mmap, an mremap and an munmap (and a
#: fresh page to fault in) on every read of every message
_CHUNK = 64 * 1024
_SIZE_MASK = BATCH_END - 1
#: an authenticated sender closes a batch (and tags it) once it holds this
#: many bytes, so a receiver never buffers more than this plus one frame
#: before it can check them
BATCH_BYTES = 256 * 1024


class FrameError(MsgTypeError):
    """A frame that breaks the framing rules (oversized, truncated)."""


def max_frame_size() -> int:
    return _settings.value('TRACTOR_MAX_FRAME')


#: a peer that reads nothing of a frame for this long (plus 1s per MiB of
#: the frame) is considered gone: ``TRACTOR_SEND_STALL_TIMEOUT`` overrides
SEND_STALL_TIMEOUT = _settings.value('TRACTOR_SEND_STALL_TIMEOUT')


#: a sender whose writes the kernel keeps taking at once yields to other
#: tasks after this many (a write that has to wait yields anyway)
YIELD_EVERY = 64

#: corked stream frames are flushed once this many are buffered...
CORK_FRAMES = 64
#: ...or this many bytes
CORK_BYTES = 64 * 1024


#: bound on sending one control message while unwinding (see
#: :meth:`Channel.send_or_drop`)
CTRL_SEND_TIMEOUT = 5.0


#: a peer must send its 40-byte preamble hello within this (much shorter
#: than the whole handshake's bound): ``TRACTOR_HELLO_TIMEOUT`` overrides
HELLO_TIMEOUT = _settings.value('TRACTOR_HELLO_TIMEOUT')


#: bytes all of a process's connections together may hold in frames they
#: are still receiving (``TRACTOR_PARTIAL_FRAME_BUDGET``; default: four
#: frames of the maximum size)
PARTIAL_FRAME_BUDGET = _settings.value('TRACTOR_PARTIAL_FRAME_BUDGET') or 4 * _settings.value(
    'TRACTOR_MAX_FRAME'
)
#: what they hold now
_partial_bytes = 0


def send_stall_timeout(nbytes: int) -> float:
    return SEND_STALL_TIMEOUT + nbytes / (1 << 20)


class Channel:
    """A connection to one peer actor, carrying :mod:`tractor._msg` messages.

    ``raddr``/``laddr`` are transport addresses (``.proto_key``,
    ``.unwrap()``), ``aid`` is the peer's identity after the handshake.
    Sends append whole frames to an outgoing buffer that one flush at a
    time writes out (see :meth:`send`); receives happen from one task only
    (the actor's message loop for this channel).

    Over a socket, a flush first writes directly (:mod:`tractor._sockio`),
    and over a :class:`~tractor.plugin.BufferedSendStream` (TLS) through its
    ``send_nowait``: when the kernel takes it all, a send is a cancel point
    but not a schedule point (every :data:`YIELD_EVERY` sends yield, for
    fairness); only a write that has to wait for the peer arms the stall
    bound.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        raddr: Address | None = None,
        laddr: Address | None = None,
        initiator: bool = False,
    ) -> None:
        self.stream = stream
        self._sock = _sockio.direct_socket(stream)
        #: the direct path of a stream that is not a plain socket
        self._send_nowait = stream.send_nowait if isinstance(stream, BufferedSendStream) else None
        self._unyielded = 0
        #: the last socket read got less than it asked for (see _sockio)
        self._drained = False
        # who reads (tractor._runtime: Actor._read_channel, Actor._lead):
        #: a task waiting for its reply that reads the channel itself
        self._lead: trio.lowlevel.Task | None = None
        #: a waiting task may lead now: opened by the reader stepping aside
        #: and by a leader handing back, closed by a leader as it starts (so
        #: never open while a task leads)
        self._lead_open = False
        #: a delivery of the reader's woke a waiting task
        self._woke = False
        #: the reader, parked while a task leads
        self._reader_parked: trio.lowlevel.Task | None = None
        #: what a leading task read and left to the reader: a message it
        #: does not route itself, or the error reading raised
        self._handoff: _msg._Msg | BaseException | None = None
        self.raddr = raddr
        self.laddr = laddr
        self.initiator = initiator
        self.aid: _msg.Aid | None = None
        self.max_frame = max_frame_size()
        self._flush_lock = trio.StrictFIFOLock()
        self._wbuf = bytearray()
        self._spare = bytearray()
        self._corked = 0
        self._writer_wakeup: trio.Event | None = None
        self._buf = b''
        self._pos = 0
        self._closed = False
        self._eof = False
        self._cid_seq = 0
        #: the authenticated session (tractor._session) once the preamble ran:
        #: every batch of frames is then tagged and checked
        self.session: _session.Session | None = None
        #: where the unsealed batch starts in ``_wbuf``, and the length
        #: prefix of its last frame (-1: nothing to seal)
        self._bstart = 0
        self._blast = -1
        #: end of the checked batch being read from ``_buf`` (its tag
        #: follows), 0 when none
        self._vend = 0
        #: what the peer proved in its Hello (a spawned child's token)
        self.peer_spawn_proof = b''
        self._ended = trio.Event()

    # -- identity ---------------------------------------------------------
    @property
    def uid(self) -> tuple[str, str] | None:
        return self.aid.uid if self.aid else None

    def next_cid(self) -> int:
        """A call id that the peer never allocates on this channel."""
        self._cid_seq += 1
        return self._cid_seq * 2 + (0 if self.initiator else 1)

    def set_raddr_from(self, wire_addrs: list) -> None:
        """Pick the peer's address from the addresses it listens on."""
        addrs = []
        for wire in wire_addrs:
            try:
                addrs.append(wrap_address(wire))
            except (ValueError, TypeError, LookupError, NoTransportInstalled) as err:
                # malformed, or a transport this process does not have
                log.debug('ignoring peer address %r: %s', wire, err)
        if not addrs:
            return
        same = [a for a in addrs if self.laddr is not None and a.proto_key == self.laddr.proto_key]
        self.raddr = (same or addrs)[0]

    def connected(self) -> bool:
        return not self._closed and not self._eof

    async def wait_closed(self) -> None:
        """Return once this channel is closed (by either side's teardown)."""
        await self._ended.wait()

    def start_session(self, session: _session.Session, preface: bytes = b'') -> None:
        """From now on, tag every batch sent and check every batch received
        (called by :func:`handshake` right after the preamble). ``preface``
        is the rest of the preamble (a listener's verdict): raw bytes that go
        out with the first frame, in the same write, outside its batch."""
        if self._wbuf or len(self._buf) > self._pos:
            raise RuntimeError('a session starts before the first frame')
        self.session = session
        if preface:
            self._wbuf += preface
            self._bstart = len(preface)

    def __repr__(self) -> str:
        peer = self.aid.name if self.aid else '?'
        return f'<Channel to {peer!r} raddr={self.raddr} laddr={self.laddr}>'

    # -- sending ----------------------------------------------------------
    async def send(self, msg: _msg._Msg, cork: bool = False) -> None:
        """Send ``msg``; ``MsgTypeError`` (nothing sent) if it cannot be encoded.

        With ``cork=True`` (stream messages) the frame may wait in the
        outgoing buffer, without yielding, until :data:`CORK_FRAMES` frames or
        :data:`CORK_BYTES` bytes accumulate or this channel's writer task
        gets to run (i.e. as soon as the sender blocks on anything). A burst
        of stream messages thus costs one socket write, not one each.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise TransportClosed(f'channel to {self.aid and self.aid.name!r} is closed')
        buf = self._wbuf
        start = len(buf)
        try:
            _msg.append_frame(msg, buf)  # raises MsgTypeError before any write
        except BaseException:
            del buf[start:]
            raise
        size = len(buf) - start - _HEADER
        if size > self.max_frame:
            del buf[start:]
            raise MsgTypeError(
                f'message of {size} bytes exceeds the maximum frame size {self.max_frame}'
            )
        if size > _msg.MAX_DEPTH and type(msg) is _msg.Start:
            # what the receiver refuses by dropping the connection (a peer
            # sending it is broken) is refused here, for this call only
            # (shorter frames cannot nest that deep)
            try:
                _msg.check_depth(msg.kwargs)
            except MsgTypeError:
                del buf[start:]
                raise
        if self.session is not None:
            self._blast = start
            if len(buf) - self._bstart > BATCH_BYTES:
                self._seal()
        if cork and self._writer_wakeup is not None:
            corked = self._corked = self._corked + 1
            if corked < CORK_FRAMES and len(buf) < CORK_BYTES:
                if corked == 1:
                    # the first frame since the buffer was last taken: the
                    # writer, once woken, writes all that is buffered then
                    # (and a frame after that take counts from 1 again)
                    self._writer_wakeup.set()
                return
        await self.flush()

    async def send_or_drop(self, msg: _msg._Msg, timeout: float | None = None) -> None:
        """Send a control message even while the caller unwinds: shielded,
        bounded by ``timeout`` (default :data:`CTRL_SEND_TIMEOUT`); a
        connection that is gone (or a send that cannot finish in time) drops
        it, logged at debug level.

        The one send-or-drop of the runtime: replies and errors the actor
        answers with, and a context's Cancel/Stop/Credit while it unwinds.
        """
        with trio.move_on_after(CTRL_SEND_TIMEOUT if timeout is None else timeout) as cs:
            cs.shield = True
            try:
                await self.send(msg)
            except (TransportClosed, trio.ClosedResourceError):
                log.debug('could not send %s to %r: connection gone', type(msg).__name__, self.aid)

    async def flush(self) -> None:
        """Write everything buffered, in order, as whole frames.

        A frame is written whole or not at all: a cancel that landed
        mid-write would leave a partial frame and corrupt the stream for
        every other context on it. The direct write cannot be interrupted;
        what the kernel did not take at once is written shielded, and a peer
        that stops reading for longer than the stall bound is treated as gone.
        """
        lock = self._flush_lock
        if lock.locked():
            # a write is waiting for the peer to drain: queue behind it
            async with lock:
                stalled, nbytes = await self._write_buffered(locked=True)
        else:
            # no await before the lock is taken (if it is needed at all):
            # no other writer can slip in between
            stalled, nbytes = await self._write_buffered(locked=False)
        if stalled:
            await self.aclose()  # a partial frame may be out: unusable
            raise TransportClosed(
                f'{self.aid and self.aid.name!r} stopped reading: a send '
                f'stalled for {send_stall_timeout(nbytes):.0f}s'
            )
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def _write_buffered(self, locked: bool) -> tuple[bool, int]:
        """Write out the buffer: directly, and (holding the flush lock) the
        part the kernel did not take. Returns whether the stall bound ran
        out, and the number of bytes."""
        data = self._wbuf
        if not data:
            return False, 0
        if self._blast >= 0:
            self._seal()
        self._bstart = 0
        self._wbuf, self._spare = self._spare, data
        self._corked = 0
        nbytes = len(data)
        try:
            if self._sock is not None:
                sent = _sockio.try_send(self._sock, data)
            elif self._send_nowait is not None:
                # all of it taken; what is not written yet waits in the
                # stream, and _send_rest drains it
                sent = nbytes + (0 if self._send_nowait(data) else 1)
            else:
                sent = 0
            if sent == nbytes:
                self._unyielded += 1
                return False, nbytes
            self._unyielded = 0  # send_all yields
            if locked:
                return await self._send_rest(data, sent), nbytes
            self._flush_lock.acquire_nowait()  # free: nothing awaited since flush() checked
            try:
                return await self._send_rest(data, sent), nbytes
            finally:
                self._flush_lock.release()
        except STREAM_ERRORS as err:
            self._closed = True
            raise transport_closed(f'cannot send to {self.aid and self.aid.name!r}', err) from err
        finally:
            if nbytes > 1 << 20:
                self._spare = bytearray()  # don't pin a huge buffer
            else:
                data.clear()

    def _seal(self) -> None:
        """Close the batch of frames appended since the last seal: the
        last one's batch-end bit and the tag (a batch is what one write
        takes, or :data:`BATCH_BYTES`)."""
        assert self.session is not None
        buf = self._wbuf
        self.session.seal(buf, self._bstart, self._blast)
        self._bstart = len(buf)
        self._blast = -1

    async def _send_rest(self, data: bytearray, sent: int) -> bool:
        """Write ``data[sent:]`` shielded, within the stall bound (the only
        place a cancel scope is needed: this write waits for the peer), or,
        when ``sent`` is past the end, drain what a
        :class:`~tractor.plugin.BufferedSendStream` took but did not write
        yet. Returns whether the bound ran out."""
        with trio.CancelScope(shield=True) as cs:
            cs.deadline = trio.current_time() + send_stall_timeout(len(data))
            if sent > len(data):
                await self.stream.drain()  # type: ignore[attr-defined]  # a BufferedSendStream
            else:
                with memoryview(data) as view, view[sent:] as rest:
                    await self.stream.send_all(rest)
        return cs.cancelled_caught

    async def run_writer(self) -> None:
        """Flush corked frames whenever the tasks filling them yield.

        Runs for the channel's lifetime (the actor starts it next to the
        channel's reader); without it, ``cork=True`` sends write through.
        """
        self._writer_wakeup = wakeup = trio.Event()
        try:
            while not self._closed:
                await wakeup.wait()
                self._writer_wakeup = wakeup = trio.Event()
                if self._wbuf:
                    # behind a write that waits for the peer, if need be:
                    # skipping would strand these frames until the next send
                    await self.flush()
        except TransportClosed:
            pass
        finally:
            self._writer_wakeup = None

    def input_buffered(self) -> bool:
        """Whether bytes of the peer's next frame are already read (the
        reader will go on without waiting for the socket first). A reply
        sent meanwhile may be corked: the next replies join it in one write,
        which goes out as soon as the reader waits (see ``send``)."""
        return self._pos < len(self._buf)

    # -- receiving --------------------------------------------------------
    async def recv(self) -> _msg._Msg:
        """The next message; ``TransportClosed`` at EOF, ``MsgTypeError`` for
        a malformed or oversized frame, or (in a session) a batch that fails
        its integrity check (the connection is then unusable)."""
        if self.session is None:
            return await self._recv_plain()
        # in a session (every connection once authenticated): the next frame
        # of a checked batch, reading and checking the next batch first when
        # the current one is done (inline: this runs once per message)
        if self._pos >= self._vend:
            await self._read_batch()
        buf, pos = self._buf, self._pos
        start = pos + _HEADER
        end = start + (int.from_bytes(buf[pos:start], 'big') & _SIZE_MASK)
        if end >= self._vend:
            self._pos = end + TAG_SIZE  # past the batch's tag
            self._vend = 0
        else:
            self._pos = end
        return _msg.decode(memoryview(buf)[start:end])

    async def _recv_plain(self) -> _msg._Msg:
        """The next frame of a channel without a session (before the
        preamble ran, or a test's bare channel)."""
        while True:
            avail = len(self._buf) - self._pos
            if avail >= _HEADER:
                size = int.from_bytes(self._buf[self._pos : self._pos + _HEADER], 'big')
                if size > self.max_frame:
                    raise FrameError(f'frame of {size} bytes exceeds the maximum {self.max_frame}')
                end = self._pos + _HEADER + size
                if len(self._buf) >= end:
                    view = memoryview(self._buf)[self._pos + _HEADER : end]
                    self._pos = end
                    return _msg.decode(view)
                await self._fill(_HEADER + size - avail)
            else:
                await self._fill(_HEADER - avail)

    async def _read_batch(self) -> None:
        """Buffer the next whole batch and check its tag: nothing of it is
        decoded before that. Bounded: frames by ``max_frame``, a batch by
        :data:`BATCH_BYTES` plus one frame."""
        session = self.session
        assert session is not None
        bound = self.max_frame + BATCH_BYTES + 2 * _HEADER
        max_frame = self.max_frame
        rel = 0  # the next frame's offset from the batch's start (self._pos)
        while True:
            # scan what is buffered without yielding (the common case: the
            # whole batch came in one read); offsets stay valid across
            # _fill, which moves the unread bytes to the buffer's start
            buf, pos = self._buf, self._pos
            have = len(buf) - pos
            while have >= rel + _HEADER:
                p = pos + rel
                header = int.from_bytes(buf[p : p + _HEADER], 'big')
                size = header & _SIZE_MASK
                if size > max_frame:
                    raise FrameError(f'frame of {size} bytes exceeds the maximum {max_frame}')
                end = rel + _HEADER + size
                if end > bound:
                    raise FrameError(f'a batch of frames exceeds {bound} bytes before its tag')
                if header & BATCH_END:
                    if have < end + TAG_SIZE:
                        await self._fill(end + TAG_SIZE - have)
                        buf, pos = self._buf, self._pos
                    view = memoryview(buf)
                    session.verify(view[pos : pos + end], view[pos + end : pos + end + TAG_SIZE])
                    self._vend = pos + end
                    return
                rel = end
            await self._fill(rel + _HEADER - have)

    async def _fill(self, need: int) -> None:
        """Read at least ``need`` more bytes, joining chunks only once so a
        large frame costs one copy, not one per chunk. Waiting for a large
        frame draws on the process's budget for partial frames
        (:data:`PARTIAL_FRAME_BUDGET`): one connection may announce a frame
        of up to ``max_frame``, but all of them together cannot make this
        actor buffer more than the budget."""
        # (one function, the budget's bookkeeping and the reading both: each
        # wait for the socket resumes every frame of the reading stack)
        global _partial_bytes
        held = 0
        if need > _CHUNK:
            held = len(self._buf) - self._pos + need
            if _partial_bytes + held > PARTIAL_FRAME_BUDGET:
                raise FrameError(
                    f'a frame needing {held} more bytes would take this actor past its budget '
                    f'of {PARTIAL_FRAME_BUDGET} bytes for partially received frames '
                    f'({_partial_bytes} held by other connections): refused'
                )
            _partial_bytes += held
        # a generic stream's chunks may be bytearrays
        chunks: list[bytes | bytearray] = (
            [self._buf[self._pos :]] if self._pos < len(self._buf) else []
        )
        chunk: bytes | bytearray
        got = 0
        try:
            while got < need:
                if self._closed:
                    # closed by this side before this read began (e.g. a
                    # reader task started after the close): its fd may
                    # belong to another socket by now, never wait on it
                    raise TransportClosed(f'channel to {self.aid and self.aid.name!r} is closed')
                try:
                    if self._sock is not None:
                        ask = max(_CHUNK, need - got)
                        chunk = await _sockio.receive_some(self._sock, ask, drained=self._drained)
                        self._drained = len(chunk) < ask
                    else:
                        chunk = await self.stream.receive_some(max(_CHUNK, need - got))
                except STREAM_ERRORS as err:
                    self._eof = True
                    raise transport_closed(
                        f'connection to {self.aid and self.aid.name!r} lost', err
                    ) from err
                if not chunk:
                    self._eof = True
                    pending = sum(map(len, chunks))
                    if pending:
                        raise FrameError(f'connection closed mid-frame ({pending} bytes pending)')
                    raise TransportClosed(f'{self.aid and self.aid.name!r} closed the connection')
                chunks.append(chunk)
                got += len(chunk)
        except BaseException:
            if got:
                # cut short after some bytes came (a task reading for its
                # reply was cancelled while it waited for more): keep them
                # for whoever reads next
                self._buf = b''.join(chunks)
                self._pos = 0
            raise
        finally:
            _partial_bytes -= held
        self._buf = (
            chunks[0] if len(chunks) == 1 and isinstance(chunks[0], bytes) else b''.join(chunks)
        )
        self._pos = 0

    async def aclose(self) -> None:
        if self._closed:
            return
        if self._wbuf and not self._eof:
            # corked stream frames still buffered: a short best effort
            with trio.move_on_after(1.0) as cs:
                cs.shield = True
                try:
                    await self.flush()
                except TransportClosed:
                    pass
        self._closed = True
        self._ended.set()
        if self._writer_wakeup is not None:
            self._writer_wakeup.set()
        with trio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            except (trio.BrokenResourceError, OSError):
                pass

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
