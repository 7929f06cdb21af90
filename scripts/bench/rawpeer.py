"""The far end of the raw-socket floors: a bare trio server that speaks
tractor's framing (4-byte length + msgpack ``Msg``) and nothing else.

``python rawpeer.py tcp`` listens on 127.0.0.1 (random port) and prints the
port; ``python rawpeer.py tls`` the same through the TLS plugin's listener
(its own ``TLSStream``s, certificates from ``TRACTOR_TLS_*``);
``python rawpeer.py sslstream`` through a ``trio.SSLListener`` with the
plugin's TLS settings and certificates;
``python rawpeer.py uds PATH`` listens on PATH and prints it. Each
connection opens with one frame ``[mode, n]``:

- ``'pingpong'``: decode every frame and answer it (``Start`` with the
  ``Return`` a noop call gets, ``Yield`` with the same ``Yield``);
- ``'sink'``: decode ``n`` frames, then answer one ``b'k'`` byte;
- ``'quit'``: stop serving and exit.
"""

from __future__ import annotations

import socket
import sys

import msgspec
import trio

from common import FrameReader
from tractor import _msg


async def _pingpong(stream: trio.abc.Stream, reader: FrameReader) -> None:
    out = bytearray()
    while True:
        try:
            msg = await reader.recv()
        except EOFError:
            return
        if type(msg) is _msg.Start:
            reply = _msg.Return(cid=msg.cid, pld=None)
        else:
            reply = _msg.Yield(cid=msg.cid, pld=msg.pld)
        out.clear()
        _msg.append_frame(reply, out)
        await stream.send_all(out)


async def _sink(stream: trio.abc.Stream, reader: FrameReader, n: int) -> None:
    for _ in range(n):
        await reader.recv()
    await stream.send_all(b'k')


async def _serve(stream: trio.abc.Stream, quit: trio.CancelScope) -> None:
    async with stream:
        reader = FrameReader(stream)
        try:
            mode, n = msgspec.msgpack.decode(await reader.raw())
        except EOFError:
            return
        if mode == 'pingpong':
            await _pingpong(stream, reader)
        elif mode == 'sink':
            await _sink(stream, reader, n)
        elif mode == 'quit':
            quit.cancel()


async def main(kind: str, path: str | None) -> None:
    if kind == 'tls':
        from tractor_tls import TLSAddress, TLSTransport

        listener, bound = await TLSTransport().listen(TLSAddress('127.0.0.1', 0))
        print(bound.port, flush=True)
        await serve_connections(listener)
        return
    if kind == 'sslstream':
        from tractor_tls import contexts

        (tcp,) = await trio.open_tcp_listeners(0, host='127.0.0.1')
        print(tcp.socket.getsockname()[1], flush=True)
        await serve_connections(trio.SSLListener(tcp, contexts()[0]))
        return
    if kind == 'tcp':
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.bind(('127.0.0.1', 0))
        where = str(sock.getsockname()[1])
    else:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(path)
        where = path
    sock.listen(16)
    listener = trio.SocketListener(sock)
    print(where, flush=True)
    await serve_connections(listener)


async def serve_connections(listener: trio.abc.Listener) -> None:
    """Serve every connection ``listener`` accepts until one says ``'quit'``
    (also run in the benchmark's own process, for the one-process floor)."""
    async with listener, trio.open_nursery() as tn:
        while True:
            stream = await listener.accept()
            tn.start_soon(_serve, stream, tn.cancel_scope)


if __name__ == '__main__':
    trio.run(main, sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
