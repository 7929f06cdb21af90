"""Functions the infected benchmark actor serves (``enable_modules=['aio_targets']``);
a module of their own so that no other benchmarked actor imports asyncio."""

from __future__ import annotations

import time

from tractor import to_asyncio


async def aio_noop() -> None:
    return None


async def run_task_samples(n: int, warmup: int = 20) -> list[float]:
    """``n`` timed ``to_asyncio.run_task(aio_noop)`` round trips, in seconds."""
    samples = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        await to_asyncio.run_task(aio_noop)
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
    return samples
