"""discovery: ``find_actor`` of a peer the caller is not connected to
(open + close of the block), ``query_actor`` and ``wait_for_actor`` for an
already registered name, p50, over TCP; then ``find_actor`` and
``query_actor`` again once the registry holds 10,000 more entries (200 with
``--quick``), registered by the prober (how lookups grow with the registry).

The lookups run in a ``prober`` subactor that never holds a channel to the
target (``find_actor`` closes the one it dials when its block exits, and
``targets.lookup_samples`` checks before each round), so the fast path for
already-connected peers never applies. The registrar is the root actor.
"""

from __future__ import annotations

import trio

import targets
import tractor
from common import pct, tcp_registry


async def _measure(n: int, entries: int) -> tuple[dict, dict]:
    async with tractor.open_nursery(registry_addrs=tcp_registry()) as an:
        await an.start_actor('lookup_target', enable_modules=['targets'])
        prober = await an.start_actor('prober', enable_modules=['targets'])
        samples = await prober.run(targets.lookup_samples, name='lookup_target', n=n)
        await prober.run(targets.fill_registry, n=entries)
        big = await prober.run(targets.lookup_samples, name='lookup_target', n=n)
        await an.cancel()
    return samples, big


def run(quick: bool) -> dict[str, float]:
    samples, big = trio.run(_measure, 10 if quick else 300, 200 if quick else 10_000)
    figures = {f'discovery.{kind}.p50_us': pct(s, 0.5) * 1e6 for kind, s in samples.items()}
    for kind in ('find_actor', 'query_actor'):
        figures[f'discovery.big_registry.{kind}.p50_us'] = pct(big[kind], 0.5) * 1e6
    return figures
