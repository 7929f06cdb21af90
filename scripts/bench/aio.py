"""aio: infected asyncio actors (trio as a guest of an asyncio loop).

- ``portal.run(noop)`` into an infected actor over TCP, in rounds that
  alternate with the same call into a plain trio actor of the same tree (the
  reference of the 1.5x goal);
- ``to_asyncio.run_task()`` of a no-op coroutine, timed inside the infected
  actor.

Floor of both: a bare loop hop, measured in this process without tractor: a
trio task, a guest of a fresh asyncio loop, has the host loop set a
``trio.Event`` it waits on (``loop.call_soon(event.set)``), so every sample is
one trio -> asyncio -> trio round, idle wake-up of the guest included.
"""

from __future__ import annotations

import asyncio

import trio

import aio_targets
import tractor
from common import now, over, pct, tcp_registry
from rpc import ROUNDS, _calls


def _bare_hops(n: int) -> list[float]:
    async def trio_main() -> list[float]:
        loop = asyncio.get_running_loop()
        samples = []
        for _ in range(n):
            event = trio.Event()
            t0 = now()
            loop.call_soon(event.set)
            await event.wait()
            samples.append(now() - t0)
        return samples

    async def host() -> list[float]:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        trio.lowlevel.start_guest_run(
            trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=done.set_result,
        )
        return (await done).unwrap()

    return asyncio.run(host())


async def _measure(n: int) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {'infected': [], 'trio': []}
    async with tractor.open_nursery(registry_addrs=tcp_registry(), enable_transports=['tcp']) as an:
        infected = await an.start_actor(
            'aio_bench', enable_modules=['targets', 'aio_targets'], infect_asyncio=True
        )
        plain = await an.start_actor('trio_bench', enable_modules=['targets'])
        infected, plain = await over(infected, 'tcp'), await over(plain, 'tcp')
        for portal in (infected, plain):
            await _calls(portal, {}, max(10, n // 20))  # warm-up
        for _ in range(ROUNDS):
            runs['infected'].extend(await _calls(infected, {}, n // ROUNDS))
            runs['trio'].extend(await _calls(plain, {}, n // ROUNDS))
        runs['run_task'] = await infected.run(aio_targets.run_task_samples, n=n)
        await an.cancel()
    return runs


def run(quick: bool) -> dict[str, float]:
    n = 200 if quick else 4000
    floor = _bare_hops(n)
    runs = trio.run(_measure, n)
    figures = {
        'floor.aio_guest_hop.p50_us': pct(floor, 0.5) * 1e6,
        'floor.aio_guest_hop.p99_us': pct(floor, 0.99) * 1e6,
    }
    for key, prefix in (
        ('infected', 'aio.portal_run'),
        ('trio', 'aio.trio_portal_run'),
        ('run_task', 'aio.run_task'),
    ):
        samples = runs[key]
        figures[f'{prefix}.p50_us'] = pct(samples, 0.5) * 1e6
        figures[f'{prefix}.p99_us'] = pct(samples, 0.99) * 1e6
        figures[f'{prefix}.per_s'] = len(samples) / sum(samples)
    return figures
