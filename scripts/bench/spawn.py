"""spawn: ``start_actor`` until the first ``portal.run`` returns, and
teardown (``cancel_actor`` until the process is reaped), sequentially.
Floors: a bare interpreter start and an ``os.fork()`` + ``waitpid()``."""

from __future__ import annotations

import os
import subprocess
import sys

import trio

import targets
import tractor
from common import median, now, pct, process_cpu, process_faults, tcp_registry


def fork_floor(n: int) -> list[float]:
    """``os.fork()`` of this (warm: runtime imported) process + ``waitpid()``."""
    samples = []
    for _ in range(n):
        t0 = now()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        samples.append(now() - t0)
    return samples


def interpreter_floor(n: int) -> list[float]:
    """``python -c pass`` as a subprocess, start to exit."""
    samples = []
    for _ in range(n):
        t0 = now()
        subprocess.run([sys.executable, '-c', 'pass'], check=True)
        samples.append(now() - t0)
    return samples


async def _reaped(an: tractor.ActorNursery, uid: tuple, pid: int) -> None:
    """Wait until the nursery has reaped the child ``uid`` (no longer in
    its child set), then check its pid is really gone."""
    child = getattr(an, '_children', {}).get(uid)
    exited = getattr(child, 'exited', None)
    if isinstance(exited, trio.Event):
        await exited.wait()
    while uid in an.children:  # the public view (and the fallback)
        await trio.sleep(0.0005)
    if os.path.exists(f'/proc/{pid}'):
        raise RuntimeError(f'pid {pid} of {uid[0]!r} still exists after it was reaped')


async def tractor_spawn(n: int) -> tuple[list[float], list[float], list[float], list[int]]:
    """Spawn and teardown times, and the CPU time and page faults each
    actor took until it answered its first call."""
    spawn, teardown, cpu, faults = [], [], [], []
    async with tractor.open_nursery(registry_addrs=tcp_registry()) as an:
        for i in range(n + 1):  # the first one warms the parent side up
            t0 = now()
            portal = await an.start_actor(f'spawned_{i}', enable_modules=['targets'])
            await portal.run(targets.noop)
            t1 = now()
            aid = portal.channel.aid
            used = process_cpu(aid.pid)
            faulted = process_faults(aid.pid)
            await portal.cancel_actor()
            await _reaped(an, aid.uid, aid.pid)
            t2 = now()
            if i:
                spawn.append(t1 - t0)
                teardown.append(t2 - t1)
                cpu.append(used)
                faults.append(faulted)
    return spawn, teardown, cpu, faults


def run(quick: bool) -> dict[str, float]:
    n = 3 if quick else 20
    fork = fork_floor(20 if quick else 200)
    interp = interpreter_floor(3 if quick else 20)
    spawn, teardown, cpu, faults = trio.run(tractor_spawn, n)
    ms = 1e3
    return {
        'spawn.p50_ms': pct(spawn, 0.5) * ms,
        'spawn.p90_ms': pct(spawn, 0.9) * ms,
        'teardown.p50_ms': pct(teardown, 0.5) * ms,
        'teardown.p90_ms': pct(teardown, 0.9) * ms,
        'spawn.child_cpu_ms': median(cpu) * ms,
        'spawn.child_faults_pages': median(faults),
        'floor.fork_waitpid.p50_ms': pct(fork, 0.5) * ms,
        'floor.python_c_pass.p50_ms': pct(interp, 0.5) * ms,
    }
