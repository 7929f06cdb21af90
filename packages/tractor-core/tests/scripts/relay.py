"""A relay between tree members that holds no secret (``test_relay.py``).

It listens where a member will dial (like a process squatting on a stale
registry address), connects each accepted connection to the target actor,
and forwards the bytes both ways, reading the framing as it goes (the
authentication preamble, then batches of frames, each closed by the
batch-end bit and a 16-byte tag). What it does to the dialer's batches
(the first, batch 0, is the dialer's Hello):

- ``forward``: nothing;
- ``inject``: before batch 1, a forged batch: a ``Start`` of
  ``record(<path>, 'forged')`` with a made-up tag;
- ``replay``: batch 1 again, once the target has answered it;
- ``reorder``: batches 1 and 2 swapped.

Prints its listen address as one JSON line, then relays until killed.

usage: relay.py <tcp|uds> <mode> '<target address as JSON>' <record path>
"""

import json
import os
import sys

import msgspec
import trio

from tractor import _msg

BATCH_END = 1 << 31
TAG = 16


class Pump:
    """Reads one direction: the preamble, then whole batches."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b''

    async def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = await self.stream.receive_some()
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def batch(self) -> bytes:
        out = b''
        while True:
            head = await self.take(4)
            header = int.from_bytes(head, 'big')
            out += head + await self.take(header & (BATCH_END - 1))
            if header & BATCH_END:
                return out + await self.take(TAG)


def forged(path: str) -> bytes:
    body = msgspec.msgpack.encode(
        _msg.Start(
            cid=1001,
            ns='tractor_core_testfns',
            func='record',
            kwargs={'path': path, 'token': 'forged'},
        )
    )
    return (len(body) | BATCH_END).to_bytes(4, 'big') + body + os.urandom(TAG)


async def relay(dialer: trio.SocketStream, mode: str, target: trio.SocketStream, path: str) -> None:
    answered = trio.Event()

    async def up() -> None:
        src = Pump(dialer)
        hello = await src.take(40)
        head = await src.take(2)
        await target.send_all(hello + head + await src.take(int.from_bytes(head, 'big') + 32))
        await target.send_all(await src.batch())  # the dialer's Hello
        first = await src.batch()
        if mode == 'inject':
            await target.send_all(forged(path))
        if mode == 'reorder':
            second = await src.batch()
            await target.send_all(second + first)
        else:
            await target.send_all(first)
        if mode == 'replay':
            await answered.wait()
            await target.send_all(first)
        while True:
            await target.send_all(await src.batch())

    async def down() -> None:
        src = Pump(target)
        await dialer.send_all(await src.take(40))  # hello
        await dialer.send_all(await src.take(33))  # verdict
        await dialer.send_all(await src.batch())  # the target's Hello
        await dialer.send_all(await src.batch())  # its answer to batch 1
        answered.set()
        while True:
            await dialer.send_all(await src.batch())

    async def run(fn, cancel_scope: trio.CancelScope) -> None:
        try:
            await fn()
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # one side hung up: so does the relay
        finally:
            cancel_scope.cancel()

    async with dialer, target:
        async with trio.open_nursery() as tn:
            tn.start_soon(run, up, tn.cancel_scope)
            tn.start_soon(run, down, tn.cancel_scope)


async def main(proto: str, mode: str, target: list, path: str) -> None:
    if proto == 'tcp':
        listener = (await trio.open_tcp_listeners(0, host='127.0.0.1'))[0]
        addr = ['127.0.0.1', listener.socket.getsockname()[1]]
    else:
        # its own runtime dir: empty, no cookie in it
        addr = [os.environ['TRACTOR_RUNTIME_DIR'], f'relay-{os.getpid()}.sock']
        sock = trio.socket.socket(trio.socket.AF_UNIX)
        await sock.bind(os.path.join(*addr))
        sock.listen()
        listener = trio.SocketListener(sock)
    print(json.dumps(addr), flush=True)

    async def handle(dialer: trio.SocketStream) -> None:
        if proto == 'tcp':
            up = await trio.open_tcp_stream(*target)
        else:
            up = await trio.open_unix_socket(os.path.join(*target))
        await relay(dialer, mode, up, path)

    await trio.serve_listeners(handle, [listener])


if __name__ == '__main__':
    proto, mode, target, path = sys.argv[1:]
    trio.run(main, proto, mode, json.loads(target), path)
