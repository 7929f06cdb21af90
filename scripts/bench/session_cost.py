"""The CPU cost of authenticated sessions on the channel hot path.

    uv run python scripts/bench/session_cost.py

Two ``Channel``\\ s over a socketpair in one process, with and without a
session (``tractor._session.Session``: every flushed batch tagged and checked),
rounds alternating so background load hits both alike; prints the median
per message (one-way, corked 32-byte ``Yield`` frames) and per round trip
(``Start`` answered by ``Return``, without and with a 10 KiB argument).
No actor, no scheduler of another process: what is left is the cost of
sealing, scanning and checking the batches.
"""

from __future__ import annotations

import socket
import statistics
import time

import msgspec
import trio

from tractor import _msg, _session
from tractor._ipc import Channel

ROUNDS = 7
ONEWAY = 20_000
PINGPONG = 5_000


def pair(session: bool) -> tuple[Channel, Channel, list]:
    a, b = socket.socketpair()
    ca = Channel(trio.SocketStream(trio.socket.from_stdlib_socket(a)))
    cb = Channel(trio.SocketStream(trio.socket.from_stdlib_socket(b)))
    if session:
        args = (b'secret', b'd' * 32, b'l' * 32, b'')
        ca.start_session(_session.Session.derive(*args, True)[0])
        cb.start_session(_session.Session.derive(*args, False)[0])
    return ca, cb, [a, b]


async def oneway(session: bool) -> float:
    tx, rx, socks = pair(session)
    msg = _msg.Yield(cid=2, pld=msgspec.Raw(msgspec.msgpack.encode(b'x' * 32)))
    async with trio.open_nursery() as tn:
        tn.start_soon(tx.run_writer)

        async def writer() -> None:
            for _ in range(ONEWAY):
                await tx.send(msg, cork=True)
            await tx.flush()

        t0 = time.perf_counter()
        tn.start_soon(writer)
        for _ in range(ONEWAY):
            await rx.recv()
        dt = time.perf_counter() - t0
        tn.cancel_scope.cancel()
    for s in socks:
        s.close()
    return dt / ONEWAY * 1e6


async def pingpong(session: bool, size: int) -> float:
    tx, rx, socks = pair(session)
    start = _msg.Start(cid=2, ns='m', func='noop', kwargs={'data': b'x' * size} if size else {})
    ret = _msg.Return(cid=2, pld=msgspec.Raw(b'\xc0'))
    async with trio.open_nursery() as tn:

        async def echo() -> None:
            while True:
                await rx.recv()
                await rx.send(ret)

        tn.start_soon(echo)
        t0 = time.perf_counter()
        for _ in range(PINGPONG):
            await tx.send(start)
            await tx.recv()
        dt = time.perf_counter() - t0
        tn.cancel_scope.cancel()
    for s in socks:
        s.close()
    return dt / PINGPONG * 1e6


CASES = {
    'one-way, corked 32 B Yield (µs/msg)': lambda s: oneway(s),
    'Start/Return round trip (µs)': lambda s: pingpong(s, 0),
    'Start (10 KiB)/Return round trip (µs)': lambda s: pingpong(s, 10 * 1024),
}


async def main() -> None:
    got: dict[tuple[str, bool], list[float]] = {}
    for _ in range(ROUNDS):
        for name, case in CASES.items():
            for session in (False, True):
                got.setdefault((name, session), []).append(await case(session))
    print('| case | plain | session | cost |\n|---|---:|---:|---:|')
    for name in CASES:
        plain = statistics.median(got[(name, False)])
        sess = statistics.median(got[(name, True)])
        print(
            f'| {name} | {plain:.2f} | {sess:.2f} | {sess - plain:+.2f} ({(sess / plain - 1) * 100:+.0f}%) |'
        )


if __name__ == '__main__':
    trio.run(main)
