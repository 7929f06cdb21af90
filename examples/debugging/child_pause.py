"""``await tractor.pause()`` in a child opens a live session there; after
``continue`` the child carries on and the program exits normally (or, with
``--then-wait``, idles until Ctrl-C cancels the tree as usual)."""

import sys

import trio

import tractor


async def compute(x: int) -> int:
    doubled = x * 2
    await tractor.pause()
    return doubled + 1


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        portal = await an.start_actor('worker', enable_modules=[__name__])
        result = await portal.run(compute, x=10)
        print(f'result: {result}', flush=True)
        if '--then-wait' in sys.argv:
            print('waiting for Ctrl-C', flush=True)
            await trio.sleep_forever()
        await portal.cancel_actor()


if __name__ == '__main__':
    trio.run(main)
