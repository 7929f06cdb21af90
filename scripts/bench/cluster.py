"""cluster: ``open_actor_cluster(count=N)`` until every worker answered one
call, and its teardown (block exit until every worker is reaped); also the
CPU time each worker used until it answered, and the ready time per worker
(how the cost grows: a cluster of 64 against one of 8)."""

from __future__ import annotations

import trio

import targets
import tractor
from common import median, now, process_cpu, tcp_registry


async def _measure(counts: tuple[int, ...], reps: int) -> dict[int, tuple[list, list, list]]:
    out: dict[int, tuple[list, list, list]] = {n: ([], [], []) for n in counts}
    async with tractor.open_root_actor(registry_addrs=tcp_registry()):
        for _rep in range(reps):
            for n in counts:
                t0 = now()
                async with tractor.open_actor_cluster(modules=['targets'], count=n) as portals:
                    async with trio.open_nursery() as tn:
                        for portal in portals.values():
                            tn.start_soon(portal.run, targets.noop)
                    t1 = now()
                    cpu = [process_cpu(p.channel.aid.pid) for p in portals.values()]
                t2 = now()
                out[n][0].append(t1 - t0)
                out[n][1].append(t2 - t1)
                out[n][2].append(sum(cpu) / n)
    return out


def run(quick: bool) -> dict[str, float]:
    counts = (2, 4) if quick else (2, 4, 8, 16, 64)
    res = trio.run(_measure, counts, 1 if quick else 3)
    figures = {}
    for n, (ready, teardown, cpu) in res.items():
        figures[f'cluster.{n}.ready_ms'] = median(ready) * 1e3
        figures[f'cluster.{n}.ready_per_worker_ms'] = median(ready) * 1e3 / n
        figures[f'cluster.{n}.teardown_ms'] = median(teardown) * 1e3
        figures[f'cluster.{n}.cpu_per_worker_ms'] = median(cpu) * 1e3
    return figures
