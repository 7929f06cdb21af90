"""An asyncio task in an infected child crashes: the debugger opens in the
child's process at the asyncio line that raised, and continuing lets the
error reach the root as a RemoteActorError, exactly as in a trio child."""

import asyncio

import trio

import tractor
from tractor import to_asyncio


async def aio_average(samples: list[float]) -> float:
    await asyncio.sleep(0)
    window = samples[3:]
    return sum(window) / len(window)


async def average(samples: list[float]) -> float:
    return await to_asyncio.run_task(aio_average, samples=samples)


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        await an.run_in_actor(average, samples=[1.0, 2.0, 3.0], name='aio_avg', infect_asyncio=True)


if __name__ == '__main__':
    trio.run(main)
