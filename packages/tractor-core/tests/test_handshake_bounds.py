"""The two bounds on a connection that has not authenticated yet, each on
its own: the short hello bound (``TRACTOR_HELLO_TIMEOUT``) and the cap on
handshakes in flight (``TRACTOR_MAX_HANDSHAKES``).

Settings are read at import, so each test runs its actor as a program
(``scripts/flood_target.py``) with the variables in its environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from conftest import SCRIPTS
from tractor import _auth
from tractor_testsupport.polling import wait_until

pytestmark = pytest.mark.slow


class Target:
    """A running ``flood_target.py``: its pid, its address, and (once it
    has exited) what it wrote to stderr."""

    def __init__(self, proc: trio.Process, addr: tuple) -> None:
        self.proc = proc
        self.addr = addr
        self.stderr = ''

    def sockets(self) -> int:
        """How many sockets the target holds open."""
        fds = f'/proc/{self.proc.pid}/fd'
        count = 0
        for fd in os.listdir(fds):
            try:
                count += os.readlink(os.path.join(fds, fd)).startswith('socket:')
            except FileNotFoundError:  # closed while we looked
                pass
        return count

    def warnings(self, text: str) -> list[str]:
        return [line for line in self.stderr.splitlines() if 'WARNING' in line and text in line]


@asynccontextmanager
async def flood_target(**env: str) -> AsyncIterator[Target]:
    """Run the target with ``env`` added to its environment; on leaving the
    block its stdin is closed (it exits) and its stderr collected."""
    with socket.socket() as s:  # a free port for the target's registry
        s.bind(('127.0.0.1', 0))
        reg = ('127.0.0.1', s.getsockname()[1])
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(SCRIPTS / 'flood_target.py'), '-', json.dumps(reg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, 'TRACTOR_LOGLEVEL': 'warning', **env},
    )
    assert proc.stdin and proc.stdout and proc.stderr
    stderr = bytearray()

    async def drain() -> None:  # so the target never blocks on a full pipe
        while chunk := await proc.stderr.receive_some():
            stderr.extend(chunk)

    try:
        async with trio.open_nursery() as tn:
            tn.start_soon(drain)
            line = b''
            while not line.endswith(b'\n'):
                chunk = await proc.stdout.receive_some()
                assert chunk, f'the target exited before it listened: {bytes(stderr)!r}'
                line += chunk
            target = Target(proc, tuple(json.loads(line)))
            try:
                yield target
            finally:
                await proc.stdin.aclose()
                with trio.move_on_after(15) as cs:
                    await proc.wait()
                if cs.cancelled_caught:
                    proc.kill()  # our own child
                    await proc.wait()
            target.stderr = stderr.decode(errors='replace')
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
        await proc.stdout.aclose()
        await proc.stderr.aclose()


async def until_closed(stream: trio.SocketStream) -> float:
    """Read (the actor's hello) until the actor closes the connection;
    returns when that was (``time.monotonic()``)."""
    try:
        while await stream.receive_some():
            pass
    except trio.BrokenResourceError:  # a reset is a close too
        pass
    return time.monotonic()


HELLO_BOUND = 0.5
HANDSHAKE_BOUND = 4.0


async def test_hello_bound_drops_a_silent_connection():
    """A connection that sends nothing, and one that sends the first bytes
    of a hello then stalls, are dropped at the hello bound (0.5 s here),
    long before the handshake bound (4 s); a connection that sends its
    whole hello then stalls is held until the handshake bound. Each drop is
    one warning naming its bound, and the actor serves a real peer
    meanwhile."""
    from test_hostile_input import legit_ping

    with trio.fail_after(60):
        async with flood_target(
            TRACTOR_HELLO_TIMEOUT=str(HELLO_BOUND), TRACTOR_HANDSHAKE_TIMEOUT=str(HANDSHAKE_BOUND)
        ) as target:
            silent = await trio.open_tcp_stream(*target.addr)
            partial = await trio.open_tcp_stream(*target.addr)
            whole = await trio.open_tcp_stream(*target.addr)
            started = time.monotonic()
            hello = _auth.hello_frame(os.urandom(_auth.NONCE_SIZE))
            await partial.send_all(hello[:10])  # a valid start: not refused as garbage
            await whole.send_all(hello)
            closed: dict[str, float] = {}

            async def watch(name: str, stream: trio.SocketStream) -> None:
                async with stream:
                    closed[name] = await until_closed(stream) - started

            async with trio.open_nursery() as tn:
                for name, stream in [('silent', silent), ('partial', partial), ('whole', whole)]:
                    tn.start_soon(watch, name, stream)
                with trio.fail_after(HANDSHAKE_BOUND):  # as a dialing actor bounds it
                    await legit_ping(target.addr)
        for name in ('silent', 'partial'):
            assert HELLO_BOUND * 0.9 <= closed[name] < HELLO_BOUND + 2.0, (name, closed)
        assert HANDSHAKE_BOUND * 0.9 <= closed['whole'] < HANDSHAKE_BOUND + 3.0, closed
    assert len(target.warnings(f'no preamble hello within {HELLO_BOUND}s')) == 2, target.stderr
    assert len(target.warnings(f'handshake not done within {HANDSHAKE_BOUND}s')) == 1, target.stderr
    assert len(target.warnings('refused connection')) == 3, target.stderr


CAP = 8
EXTRA = 12


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='counts fds in /proc')
async def test_handshake_cap_makes_room():
    """With a cap of 8 handshakes and bounds far longer than the test (60 s),
    20 idle connections: the actor drops the 12 oldest at once (one warning
    line), holds exactly 8, and a legitimate peer still connects and calls,
    its handshake dropping the oldest idle one. Only the cap can close
    anything here: without it nothing is closed before the bounds, and the
    actor holds all 20."""
    from test_hostile_input import legit_ping

    with trio.fail_after(45):
        async with flood_target(
            TRACTOR_MAX_HANDSHAKES=str(CAP),
            TRACTOR_HELLO_TIMEOUT='60',
            TRACTOR_HANDSHAKE_TIMEOUT='60',
        ) as target:
            base = target.sockets()
            flood = [await trio.open_tcp_stream(*target.addr) for _ in range(CAP + EXTRA)]
            closed: dict[int, float] = {}

            async def watch(i: int) -> None:
                closed[i] = await until_closed(flood[i])

            try:
                async with trio.open_nursery() as tn:
                    for i in range(len(flood)):
                        tn.start_soon(watch, i)
                    # the oldest EXTRA are dropped, well within the bounds
                    await wait_until(lambda: len(closed) >= EXTRA, 'the oldest dropped', timeout=15)
                    assert sorted(closed) == list(range(EXTRA)), sorted(closed)
                    # and the newest CAP are held, as handshakes in flight
                    await wait_until(
                        lambda: target.sockets() == base + CAP, 'the cap held', timeout=5
                    )
                    # a legitimate peer takes the place of the oldest held one
                    with trio.fail_after(5):
                        await legit_ping(target.addr)
                    await wait_until(lambda: len(closed) > EXTRA, 'one more dropped', timeout=5)
                    assert sorted(closed) == list(range(EXTRA + 1)), sorted(closed)
                    await wait_until(
                        lambda: target.sockets() == base + CAP - 1, 'the rest held', timeout=5
                    )
                    tn.cancel_scope.cancel()
            finally:
                for stream in flood:
                    await stream.aclose()
    dropped = target.warnings('unfinished handshake(s) to make room')
    assert len(dropped) == 1, target.stderr  # rate-limited: one line for them all
    assert f'{CAP} in flight is the cap' in dropped[0]
