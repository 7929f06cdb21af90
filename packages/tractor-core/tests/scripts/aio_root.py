"""An infected root (trio as a guest of asyncio) with an infected child,
each running an asyncio task that waits forever; once both run, prints the
pids as one JSON line, then waits for Ctrl-C (SIGINT).

usage: aio_root.py '<registry address as JSON>' <start method>
"""

import asyncio
import json
import os
import sys
from functools import partial

import trio

import tractor
from tractor import to_asyncio

_started: set[str] = set()


async def aio_forever(where: str) -> None:
    _started.add(where)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print(f'{where}: asyncio task cancelled', flush=True)
        raise


async def child_forever() -> None:
    await to_asyncio.run_task(aio_forever, where='child')


async def started() -> list[str]:
    return sorted(_started)


async def main(reg_addr: tuple, start_method: str) -> None:
    async with tractor.open_nursery(registry_addrs=[reg_addr], start_method=start_method) as an:
        assert tractor.current_actor().is_infected_aio()
        child = await an.start_actor('aio_child', enable_modules=[__name__], infect_asyncio=True)
        async with trio.open_nursery() as tn:
            tn.start_soon(child.run, child_forever)
            tn.start_soon(partial(to_asyncio.run_task, aio_forever, where='root'))
            # both asyncio tasks run before the test may send SIGINT
            while 'root' not in _started or 'child' not in await child.run(started):
                await trio.sleep(0.02)
            print(json.dumps({'root': os.getpid(), 'child': child.channel.aid.pid}), flush=True)
            await trio.sleep_forever()


if __name__ == '__main__':
    try:
        to_asyncio.run_as_asyncio_guest(main, tuple(json.loads(sys.argv[1])), sys.argv[2])
    except* KeyboardInterrupt:
        print('root: KeyboardInterrupt', flush=True)
        raise
