"""The root crashes while a child is up: the debugger opens in the root,
at the line that raised, before the child is cancelled."""

import trio

import tractor


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        await an.start_actor('bystander', enable_modules=[__name__])
        answer = 41
        raise ValueError(f'the root got answer={answer}')


if __name__ == '__main__':
    trio.run(main)
