"""``debug_mode`` for one child only: the root runs without it, the child
that gets ``debug_mode=True`` opens a session on its crash (the root still
keeps the tree's terminal lock)."""

import trio

import tractor


async def checked_sqrt(x: float) -> float:
    if x < 0:
        raise ValueError(f'cannot take the square root of {x}')
    return x**0.5


async def main() -> None:
    async with tractor.open_nursery() as an:
        await an.run_in_actor(checked_sqrt, x=-4.0, name='sqrt', debug_mode=True)


if __name__ == '__main__':
    trio.run(main)
