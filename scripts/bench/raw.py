"""The client side of the raw-socket floors (the server is ``rawpeer.py``,
a separate process): ping-pong and batched one-way throughput of the very
frames the runtime sends, over the same socket type."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import msgspec
import trio

from common import HERE, FrameReader, frame, now
from tractor import _msg

Connect = Callable[[], Awaitable[trio.abc.Stream]]


def floor_kinds(key: str) -> dict[str, str]:
    """The raw peers a family's floors run against, by role: ``'floor'`` is
    the floor; TLS also measures ``'own'``, the TLS plugin's own stream (the
    floor there is ``trio.SSLStream`` with the same settings)."""
    return {'floor': 'sslstream', 'own': 'tls'} if key == 'tls' else {'floor': key}


@asynccontextmanager
async def raw_peer(kind: str, tmpdir: str) -> AsyncIterator[Connect]:
    """Start ``rawpeer.py`` for ``kind`` (``'tcp'``, ``'uds'``, ``'tls'``:
    the TLS plugin's own stream over TCP, or ``'sslstream'``: a
    ``trio.SSLStream`` with the plugin's TLS settings; certificates from
    ``TRACTOR_TLS_*``); yields a function that opens a new connection to
    it. The peer is reaped on exit."""
    cmd = [sys.executable, str(HERE / 'rawpeer.py'), kind]
    if kind == 'uds':
        cmd.append(os.path.join(tmpdir, f'raw-{os.getpid()}.sock'))
    proc = await trio.lowlevel.open_process(cmd, stdout=-1)
    try:
        line = b''
        with trio.fail_after(30):
            while not line.endswith(b'\n'):
                chunk = await proc.stdout.receive_some(256)
                if not chunk:
                    raise RuntimeError(f'rawpeer exited early ({cmd})')
                line += chunk
        where = line.decode().strip()

        async def connect() -> trio.abc.Stream:
            if kind == 'tcp':
                return await trio.open_tcp_stream('127.0.0.1', int(where))
            if kind == 'tls':
                from tractor_tls import TLSAddress, TLSTransport

                # the very stream (and TLS settings) a TLS channel runs on
                return await TLSTransport().connect(TLSAddress('127.0.0.1', int(where)))
            if kind == 'sslstream':
                from tractor_tls import contexts

                tcp = await trio.open_tcp_stream('127.0.0.1', int(where))
                ssl_stream = trio.SSLStream(tcp, contexts()[1], server_hostname='127.0.0.1')
                await ssl_stream.do_handshake()
                return ssl_stream
            return await trio.open_unix_socket(where)

        yield connect
        stream = await connect()
        async with stream:
            await stream.send_all(frame_mode('quit'))
        with trio.fail_after(10):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
            await proc.stdout.aclose()


def frame_mode(mode: str, n: int = 0) -> bytes:
    body = msgspec.msgpack.encode([mode, n])
    return len(body).to_bytes(4, 'big') + body


async def pingpong(connect: Connect, msg: _msg._Msg, n: int) -> list[float]:
    """``n`` round trips of ``msg`` (encoded and decoded every time, as the
    runtime does); returns each round trip in seconds."""
    samples = []
    out = bytearray()
    async with await connect() as stream:
        await stream.send_all(frame_mode('pingpong'))
        reader = FrameReader(stream)
        for _ in range(n):
            t0 = now()
            out.clear()
            _msg.append_frame(msg, out)
            await stream.send_all(out)
            await reader.recv()
            samples.append(now() - t0)
    return samples


async def pipelined(connect: Connect, msg: _msg._Msg, n: int, depth: int) -> float:
    """``n`` requests of ``msg`` over one connection, keeping ``depth`` of
    them outstanding (a new one goes out as each answer comes in; each
    encoded, each answer decoded); returns answers/s."""
    out = bytearray()

    def encoded() -> bytearray:
        out.clear()
        _msg.append_frame(msg, out)
        return out

    async with await connect() as stream:
        await stream.send_all(frame_mode('pingpong'))
        reader = FrameReader(stream)
        t0 = now()
        sent = min(depth, n)
        await stream.send_all(b''.join(bytes(encoded()) for _ in range(sent)))
        for _ in range(n):
            await reader.recv()
            if sent < n:
                await stream.send_all(encoded())
                sent += 1
        return n / (now() - t0)


async def oneway(connect: Connect, msg: _msg._Msg, n: int, batch: int = 64) -> float:
    """Send ``n`` copies of ``msg``, up to ``batch`` frames per write, to a
    receiver that decodes each; returns messages/s (until the receiver's
    acknowledgement of the last one)."""
    one = frame(msg)
    full = one * batch
    async with await connect() as stream:
        await stream.send_all(frame_mode('sink', n))
        t0 = now()
        for _ in range(n // batch):
            await stream.send_all(full)
        if n % batch:
            await stream.send_all(one * (n % batch))
        ack = await stream.receive_some(1)
        elapsed = now() - t0
    assert ack == b'k', ack
    return n / elapsed
