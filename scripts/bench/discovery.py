"""discovery: ``find_actor`` of a peer the caller is not connected to
(open + close of the block), ``query_actor`` and ``wait_for_actor`` for an
already registered name, p50, over TCP.

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


async def _measure(n: int) -> dict[str, list[float]]:
    async with tractor.open_nursery(registry_addrs=tcp_registry()) as an:
        await an.start_actor('lookup_target', enable_modules=['targets'])
        prober = await an.start_actor('prober', enable_modules=['targets'])
        samples = await prober.run(targets.lookup_samples, name='lookup_target', n=n)
        await an.cancel()
    return samples


def run(quick: bool) -> dict[str, float]:
    samples = trio.run(_measure, 10 if quick else 300)
    return {f'discovery.{kind}.p50_us': pct(s, 0.5) * 1e6 for kind, s in samples.items()}
