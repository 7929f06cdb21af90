"""``tractor.devx.maybe_open_crash_handler()``: a post-mortem on an error
that leaves the block, after which the error goes on as usual.

``python crash_handler.py sync``: plain synchronous code, no runtime at all
(e.g. a command line tool's entry point), forced on with ``pdb=True``.
``python crash_handler.py child``: ``async with`` in a child actor, on
because the tree runs in debug mode. ``python crash_handler.py root-sync``:
``with`` in synchronous code the root's main task calls, in debug mode.
"""

import sys

import trio

import tractor


def parse_port(text: str) -> int:
    port = int(text)
    return port


async def load_config(text: str) -> int:
    async with tractor.devx.maybe_open_crash_handler():
        return parse_port(text)


def load_config_sync(text: str) -> int:
    with tractor.devx.maybe_open_crash_handler():
        return parse_port(text)


async def root_sync() -> None:
    async with tractor.open_root_actor(debug_mode=True):
        print('port:', load_config_sync('80a'))


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        portal = await an.start_actor('loader', enable_modules=[__name__])
        print('port:', await portal.run(load_config, text='80a'))


if __name__ == '__main__':
    if sys.argv[1] == 'sync':
        with tractor.devx.maybe_open_crash_handler(pdb=True):
            print('port:', parse_port('80a'))
    elif sys.argv[1] == 'root-sync':
        trio.run(root_sync)
    else:
        trio.run(main)
