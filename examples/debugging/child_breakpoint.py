"""The builtin ``breakpoint()`` in a child (debug mode) opens a session
through the tree's terminal lock, from sync code too; the hook is restored
once the tree is gone."""

import sys

import trio

import tractor


def scale(values: list[int], factor: int) -> list[int]:
    scaled = [v * factor for v in values]
    breakpoint()
    return scaled


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        portal = await an.start_actor('scaler', enable_modules=[__name__])
        print('scaled:', await portal.run(scale, values=[1, 2, 3], factor=3))
        await portal.cancel_actor()
    print('hook restored:', sys.breakpointhook is sys.__breakpointhook__)


if __name__ == '__main__':
    trio.run(main)
