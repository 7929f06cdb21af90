"""A one-shot child crashes: the debugger opens in the child's process, at
the line that raised; when the developer continues or quits, the child's
error reaches the root as a RemoteActorError, as it would without debug mode."""

import trio

import tractor


async def divide(numbers: list[int]) -> float:
    total = sum(numbers)
    count = len(numbers) - 3
    return total / count


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        await an.run_in_actor(divide, numbers=[1, 2, 3], name='divider')


if __name__ == '__main__':
    trio.run(main)
