"""Helpers shared by the benchmark families: statistics, the machine
description, free ports, and tractor's framing for the raw-socket floors."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import trio

import tractor
from tractor import _msg

HERE = Path(__file__).resolve().parent
#: one decoder for the floors: the same tagged union the runtime decodes
MSG_DECODER = msgspec.msgpack.Decoder(_msg.Msg)
now = time.perf_counter


# -- statistics ------------------------------------------------------------
def pct(samples: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0..1) of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def process_cpu(pid: int) -> float:
    """CPU seconds the process ``pid`` has run so far (Linux): its main
    thread's run time in ns from ``schedstat``, else ``stat``'s clock ticks.
    Works whoever the process's parent is (any spawn backend)."""
    try:
        with open(f'/proc/{pid}/schedstat') as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def process_faults(pid: int) -> int:
    """Minor page faults of the process ``pid`` so far (Linux ``stat``): in
    a forked process, mostly the copy-on-write copies of pages it shares with
    the process it was forked from, counted from the fork."""
    with open(f'/proc/{pid}/stat') as f:
        return int(f.read().rsplit(')', 1)[1].split()[7])


# -- environment -----------------------------------------------------------
@contextmanager
def helper_process(code: str, *args: str) -> Iterator[str]:
    """Run ``python -c code *args`` with a pipe on its stdin; yields the
    first line it prints (its "ready"). Leaving the block closes the pipe,
    which is the helper's signal to end (and that of anything it forked
    that shares the pipe); one still running 10 s later is killed."""
    proc = subprocess.Popen(
        [sys.executable, '-c', code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        yield proc.stdout.readline().strip()
        proc.stdin.close()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tcp_registry() -> list[tuple[str, int]]:
    """A registry address of its own for one actor tree."""
    return [('127.0.0.1', free_tcp_port())]


async def over(portal: tractor.Portal, key: str) -> tractor.Portal:
    """A portal to ``portal``'s actor over a connection dialed on transport
    ``key``, the way any peer reaches it: a spawned child's own channel to
    its parent is the socket pair it inherited, whatever the transport."""
    raddr = portal.channel.raddr
    if raddr is None or raddr.proto_key != key:
        raise RuntimeError(f'the {key} benchmark found its actor listening on {raddr}')
    chan = await tractor.current_actor().connect(raddr)
    if type(chan.stream).__name__ == 'SocketStream' and chan.stream.socket.getpeername() == '':
        raise RuntimeError(f'the {key} benchmark would run over an unnamed socket')
    return tractor.Portal(chan)


def registry(key: str, tmpdir: str) -> list:
    """A registry address of its own on transport ``key`` (TLS in wire
    form: a plain tuple is TCP's)."""
    if key == 'tcp':
        return tcp_registry()
    if key == 'tls':
        return [('tls', ['127.0.0.1', free_tcp_port()])]
    return [(tmpdir, f'reg-{os.getpid()}-{free_tcp_port()}.sock')]


def _cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_rev() -> str | None:
    try:
        out = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def machine() -> dict:
    import trio as _trio

    return {
        'cpu': _cpu_model(),
        'cores': os.cpu_count(),
        'python': platform.python_version(),
        'implementation': platform.python_implementation(),
        'kernel': f'{platform.system()} {platform.release()}',
        'trio': _trio.__version__,
        'msgspec': msgspec.__version__,
        'git': _git_rev(),
        'loadavg_start': list(os.getloadavg()),
        'date': time.strftime('%Y-%m-%d %H:%M:%S %z'),
    }


# -- framing (the raw floors) ------------------------------------------------
def frame(msg: _msg._Msg) -> bytes:
    """``msg`` framed exactly as a tractor channel sends it."""
    buf = bytearray()
    _msg.append_frame(msg, buf)
    return bytes(buf)


class FrameReader:
    """Reads length-prefixed frames from a trio stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.data = b''
        self.pos = 0

    async def raw(self) -> memoryview:
        """The next frame's body (valid until the next call)."""
        while True:
            data, pos = self.data, self.pos
            if len(data) - pos >= 4:
                end = pos + 4 + int.from_bytes(data[pos : pos + 4], 'big')
                if len(data) >= end:
                    self.pos = end
                    return memoryview(data)[pos + 4 : end]
            chunk = await self.stream.receive_some(256 * 1024)
            if not chunk:
                raise EOFError('peer closed the connection')
            self.data = data[pos:] + chunk if pos < len(data) else chunk
            self.pos = 0

    async def recv(self) -> _msg._Msg:
        return MSG_DECODER.decode(await self.raw())
