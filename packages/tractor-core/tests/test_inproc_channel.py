"""``Channel`` over a plain trio stream (no socket): the generic path that
TLS and the memory transport take. Framing, the authenticated session,
corking, the bounds on a frame and on a peer that stops reading.
"""

from __future__ import annotations

import os
import uuid

import pytest
import trio
import trio.testing

import tractor
from tractor import _ipc, _msg
from tractor._dial import handshake
from tractor._ipc import Channel, FrameError
from tractor_testsupport import memory

SECRET = b's' * 32


def _aid(name: str) -> _msg.Aid:
    return _msg.Aid(name=name, uuid=str(uuid.uuid4()), pid=os.getpid())


class Tamper(trio.abc.Stream):
    """A stream that flips the last byte of each write once armed."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.armed = False

    async def send_all(self, data) -> None:
        if self.armed:
            data = bytearray(data)
            data[-1] ^= 1
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes=None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _session_pair(a_stream=None, b_stream=None) -> tuple[Channel, Channel]:
    """Two channels over a memory stream pair, authenticated to each other
    (the dialer meant to reach the listener's address)."""
    left, right = trio.testing.memory_stream_pair()
    addr = memory.MemoryAddress('peer')
    dialer = Channel(a_stream(left) if a_stream else left, raddr=addr, initiator=True)
    listener = Channel(b_stream(right) if b_stream else right, laddr=addr)
    async with trio.open_nursery() as tn:
        tn.start_soon(handshake, dialer, _aid('a'), 5.0, [], SECRET)
        tn.start_soon(handshake, listener, _aid('b'), 5.0, [addr], SECRET)
    return dialer, listener


async def test_session_frames_in_order_corked_and_large():
    with memory.installed(), trio.fail_after(10):
        a, b = await _session_pair()
        assert a._sock is None and b._sock is None  # the generic path
        assert a.session is not None and b.session is not None
        assert b.aid is not None and b.aid.name == 'a'
        big = os.urandom(3 * _ipc.BATCH_BYTES)  # several batches' worth, one frame
        async with trio.open_nursery() as tn:
            tn.start_soon(a.run_writer)
            for i in range(200):  # a corked burst, flushed by the writer task
                await a.send(_msg.Yield(cid=1, pld=i), cork=True)
            await a.send(_msg.Yield(cid=2, pld=big))
            got = [_msg.decode_pld((await b.recv()).pld) for _ in range(201)]
            await a.aclose()
        assert got[:200] == list(range(200)) and got[200] == big
        with pytest.raises(tractor.TransportClosed):
            await b.recv()
        await b.aclose()


async def test_a_tampered_batch_is_refused():
    with memory.installed(), trio.fail_after(10):
        a, b = await _session_pair(a_stream=Tamper)
        await a.send(_msg.Yield(cid=1, pld='intact'))
        assert _msg.decode_pld((await b.recv()).pld) == 'intact'
        a.stream.armed = True
        await a.send(_msg.Yield(cid=1, pld='changed'))
        with pytest.raises(tractor.MsgTypeError):
            await b.recv()
        await a.aclose()
        await b.aclose()


async def test_plain_frames_and_the_frame_bounds():
    """Without a session (before the handshake's end) frames are only
    length-prefixed; a frame over ``max_frame`` is refused on both ends."""
    with trio.fail_after(10):
        left, right = trio.testing.memory_stream_pair()
        a, b = Channel(left, initiator=True), Channel(right)
        big = os.urandom(2 * _ipc._CHUNK)  # more than one read
        await a.send(_msg.Yield(cid=1, pld=big))
        await a.send(_msg.Yield(cid=1, pld='small'))
        assert _msg.decode_pld((await b.recv()).pld) == big
        assert _msg.decode_pld((await b.recv()).pld) == 'small'

        a.max_frame = 1000
        with pytest.raises(tractor.MsgTypeError, match='maximum frame size'):
            await a.send(_msg.Yield(cid=1, pld=b'x' * 2000))  # nothing written
        await a.send(_msg.Yield(cid=1, pld='after'))
        assert _msg.decode_pld((await b.recv()).pld) == 'after'

        b.max_frame = 1000
        await left.send_all((5000).to_bytes(4, 'big'))
        with pytest.raises(FrameError, match='exceeds the maximum'):
            await b.recv()
        await a.aclose()
        await b.aclose()


async def test_eof_mid_frame_and_a_clean_eof():
    with trio.fail_after(10):
        left, right = trio.testing.memory_stream_pair()
        b = Channel(right)
        await left.send_all((100).to_bytes(4, 'big') + b'only ten b')
        await left.aclose()
        with pytest.raises(FrameError, match='mid-frame'):
            await b.recv()
        await b.aclose()

        left, right = trio.testing.memory_stream_pair()
        b = Channel(right)
        await left.aclose()
        with pytest.raises(tractor.TransportClosed, match='closed the connection'):
            await b.recv()
        await b.aclose()


async def test_a_peer_that_stops_reading_is_dropped(monkeypatch):
    """On the generic path every write goes through ``send_all``, under the
    stall bound: a peer that takes nothing closes the channel."""
    monkeypatch.setattr(_ipc, 'SEND_STALL_TIMEOUT', 0.2)
    with trio.fail_after(10):
        left, right = trio.testing.lockstep_stream_pair()  # no buffer at all
        a = Channel(left, initiator=True)
        with pytest.raises(tractor.TransportClosed, match='stopped reading'):
            await a.send(_msg.Yield(cid=1, pld='never read'))
        assert not a.connected()
        with pytest.raises(tractor.TransportClosed):
            await a.send(_msg.Yield(cid=1, pld='again'))
        await right.aclose()
