"""memory: the private (USS) and resident (RSS) memory of an idle subactor
(spawned with the default start method, after it answered one call), next
to a floor process: one forked from a template warmed the way the fork
server warms its own (``preload()``, ``gc.collect()``, ``gc.freeze()``),
that runs ``trio.run(trio.sleep_forever)``. Read from
``/proc/<pid>/smaps_rollup`` (Linux)."""

from __future__ import annotations

import trio

import targets
import tractor
from common import helper_process, median, process_faults, tcp_registry

#: the floor: prints its forked child's pid once the child is inside
#: trio.run; both end when their shared stdin closes
FLOOR = """
import gc, os, sys, trio
from tractor._forkserver.child import preload
preload()
gc.collect()
gc.freeze()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    async def idle():
        os.write(w, b'x')
        await trio.lowlevel.wait_readable(sys.stdin.fileno())  # idle until EOF
    trio.run(idle)
    os._exit(0)
os.close(w)
os.read(r, 1)
print(pid, flush=True)
sys.stdin.read()
os.waitpid(pid, 0)
"""


def memory_of(pid: int) -> tuple[float, float, int]:
    """(USS, RSS) of ``pid`` in MiB, and its page faults since its fork
    (each private page of a forked process is one it faulted in)."""
    fields: dict[str, int] = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == 'kB':
                fields[parts[0].rstrip(':')] = int(parts[1])
    uss = fields.get('Private_Clean', 0) + fields.get('Private_Dirty', 0)
    return uss / 1024, fields.get('Rss', 0) / 1024, process_faults(pid)


def floor(n: int) -> list[tuple[float, float, int]]:
    samples = []
    for _ in range(n):
        with helper_process(FLOOR) as pid:
            samples.append(memory_of(int(pid)))
    return samples


async def actors(n: int) -> list[tuple[float, float, int]]:
    samples = []
    async with tractor.open_nursery(registry_addrs=tcp_registry()) as an:
        for i in range(n):
            portal = await an.start_actor(f'idle_{i}', enable_modules=['targets'])
            await portal.run(targets.noop)
            samples.append(memory_of(portal.channel.aid.pid))
        await an.cancel()
    return samples


def run(quick: bool) -> dict[str, float]:
    n = 2 if quick else 8
    actor = trio.run(actors, n)
    base = floor(n)
    return {
        'memory.actor.uss_mib': median([s[0] for s in actor]),
        'memory.actor.rss_mib': median([s[1] for s in actor]),
        'memory.actor.faults_pages': median([s[2] for s in actor]),
        'floor.memory.uss_mib': median([s[0] for s in base]),
        'floor.memory.rss_mib': median([s[1] for s in base]),
        'floor.memory.faults_pages': median([s[2] for s in base]),
        'floor.cow_fault_us': median([cow_fault_cost() for _ in range(3 if quick else 7)]),
    }


def cow_fault_cost(pages: int = 2048) -> float:
    """What one copy-on-write fault costs here, in µs: a forked child
    writes one byte into each of ``pages`` pages its parent wrote before the
    fork, then again into the same (now private) pages; the difference per
    page, in the child's CPU time."""
    import os
    import time

    buf = bytearray(pages * 4096)
    for i in range(0, len(buf), 4096):
        buf[i] = 1  # the parent's own pages
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exception may leave this block
        try:
            times = []
            for mark in (2, 3):  # first pass faults every page, second none
                t0 = time.process_time()
                for i in range(0, len(buf), 4096):
                    buf[i] = mark
                times.append(time.process_time() - t0)
            os.write(w, repr((times[0] - times[1]) / pages * 1e6).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        out = os.read(r, 64)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return float(out)
