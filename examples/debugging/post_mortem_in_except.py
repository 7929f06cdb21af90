"""``await tractor.post_mortem()`` in an ``except`` block: inspect an error
the code handles, then carry on (here the child falls back to a default)."""

import trio

import tractor


async def parse_port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        await tractor.post_mortem()
        return 8080


async def main() -> None:
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('parser', enable_modules=[__name__])
        print('port:', await portal.run(parse_port, text='80a'))
        await portal.cancel_actor()


if __name__ == '__main__':
    trio.run(main)
