"""A crash two levels down: the grandchild's own process opens the debugger;
the middle actor and the root only relay its error afterwards."""

import trio

import tractor


async def deepest(depth: int) -> None:
    secret = depth * 7
    raise RuntimeError(f'failed at depth {depth} (secret {secret})')


async def middle() -> None:
    async with tractor.open_nursery() as an:
        await an.run_in_actor(deepest, depth=2, name='grandchild')


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        await an.run_in_actor(middle, name='middle')


if __name__ == '__main__':
    trio.run(main)
