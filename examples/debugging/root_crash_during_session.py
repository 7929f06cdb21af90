"""The root fails while a child is in the debugger: the root's own session
waits for the child's to end (no deadlock), then opens; the error then
tears the tree down as usual.

The root fails when it gets SIGUSR1, a stand-in for any failure that
happens while a developer is at a child's prompt.
"""

import signal
from functools import partial

import trio

import tractor


async def inspect_me(n: int) -> int:
    square = n * n
    await tractor.pause()
    return square


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        portal = await an.start_actor('worker', enable_modules=[__name__])
        with trio.open_signal_receiver(signal.SIGUSR1) as signals:
            async with trio.open_nursery() as tn:
                tn.start_soon(partial(portal.run, inspect_me, n=7))
                async for _ in signals:
                    raise RuntimeError('the root failed during the worker session')


if __name__ == '__main__':
    trio.run(main)
