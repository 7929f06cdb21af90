"""The TLS stream itself, both ends in this process: its direct path
(``send_nowait``/``drain``), ordering across partial writes, data sent
before the listener's handshake, a cancelled receive, and close."""

from __future__ import annotations

import os

import pytest
import trio

from tractor.plugin import BufferedSendStream
from tractor_tls import TLSAddress, TLSStream, TLSTransport

TIMEOUT = 20


async def _pair(nursery: trio.Nursery) -> tuple[TLSStream, TLSStream]:
    """A dialed stream and the listener's stream for it, both handshaken."""
    tpt = TLSTransport()
    listener, bound = await tpt.listen(TLSAddress('127.0.0.1', 0))
    send, receive = trio.open_memory_channel[TLSStream](1)

    async def accept_one() -> None:
        async with listener:
            server = await listener.accept()
        await server.do_handshake()  # runs alongside the dialer's
        await send.send(server)

    nursery.start_soon(accept_one)
    client = await tpt.connect(bound)
    return client, await receive.receive()


async def _read_exactly(stream: TLSStream, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = await stream.receive_some(65536)
        assert chunk, f'EOF after {len(got)} of {n} bytes'
        got += chunk
    return bytes(got)


async def test_is_a_buffered_send_stream(pki):
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as tn:
            a, b = await _pair(tn)
            assert isinstance(a, BufferedSendStream) and isinstance(b, BufferedSendStream)
            assert a.ssl_object.version() == 'TLSv1.3'
            assert b.ssl_object.getpeercert()
            # a small write the kernel takes at once: done without a drain
            assert a.send_nowait(b'hello')
            assert await _read_exactly(b, 5) == b'hello'
            await a.aclose()
            await b.aclose()


async def test_large_writes_in_order_through_drain(pki):
    """32 MiB given to send_nowait with nobody reading: the kernel cannot
    take it all, so records wait in the stream (``False``), later sends
    queue behind them, and drain() with a reader gets every byte through,
    in order."""
    blocks = [os.urandom(1 << 20) for _ in range(32)]
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as tn:
            a, b = await _pair(tn)
            done = [a.send_nowait(block) for block in blocks]
            assert not all(done), 'the kernel took 32 MiB at once: nothing was left to drain'
            assert not done[-1]  # queued behind the unsent records
            results: list[bytes] = []

            async def reader() -> None:
                results.append(await _read_exactly(b, sum(map(len, blocks))))

            tn.start_soon(reader)
            await a.drain()
            await a.send_all(b'')  # nothing to send: still a checkpoint, no error
        assert results == [b''.join(blocks)]
        await a.aclose()
        await b.aclose()


async def test_send_before_the_listener_handshake(pki):
    """The listener's side buffers what is sent before its handshake ran,
    and drain() runs the handshake and then sends it."""
    with trio.fail_after(TIMEOUT):
        tpt = TLSTransport()
        listener, bound = await tpt.listen(TLSAddress('127.0.0.1', 0))
        async with listener, trio.open_nursery() as tn:
            dialed: list[TLSStream] = []

            async def dial() -> None:
                dialed.append(await tpt.connect(bound))

            tn.start_soon(dial)
            server = await listener.accept()
            assert not server.send_nowait(b'early')  # no handshake yet: it waits
            await server.drain()
        client = dialed[0]
        assert await _read_exactly(client, 5) == b'early'
        await client.aclose()
        await server.aclose()


async def test_cancelled_receive_loses_nothing(pki):
    """A receive cancelled while waiting, or before it starts while
    decrypted bytes are already buffered, takes nothing."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as tn:
            a, b = await _pair(tn)
            with trio.move_on_after(0.05):
                await b.receive_some(100)  # nothing comes: cancelled while waiting
            await a.send_all(b'x' * 900 + b'y' * 100)
            assert await b.receive_some(100) == b'x' * 100  # the rest stays buffered
            with trio.CancelScope() as cs:
                cs.cancel()
                with pytest.raises(trio.Cancelled):
                    await b.receive_some(100)
            assert await _read_exactly(b, 900) == b'x' * 800 + b'y' * 100
            await a.aclose()
            await b.aclose()


async def test_close_notify_is_eof(pki):
    """aclose() sends close_notify: the peer reads b'' (a clean end), and a
    closed stream refuses to send."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as tn:
            a, b = await _pair(tn)
            await a.send_all(b'last')
            await a.aclose()
            assert await _read_exactly(b, 4) == b'last'
            assert await b.receive_some(100) == b''
            with pytest.raises(trio.ClosedResourceError):
                a.send_nowait(b'more')
            await b.aclose()
