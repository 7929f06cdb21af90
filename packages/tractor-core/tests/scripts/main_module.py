"""A user script serving its own functions: run it as a file or with -m.

usage: main_module.py <tcp|uds> '<registry address as JSON>'

Prints ``LOADED <module name> <pid>`` wherever the module body runs,
``MAIN <pid>`` from the ``__main__`` block, and ``RESULT <json>`` lines with
what the functions report from inside the subactors.
"""

import json
import os
import sys

import trio

import tractor

print('LOADED', __name__, os.getpid(), flush=True)


async def where() -> dict:
    return {'module': __name__, 'pid': os.getpid(), 'actor': tractor.current_actor().name}


def sync_where() -> dict:
    return {'module': __name__, 'pid': os.getpid()}


async def main(proto: str, reg_addr: tuple) -> None:
    async with tractor.open_nursery(enable_transports=[proto], registry_addrs=[reg_addr]) as an:
        portal = await an.start_actor('scripted', enable_modules=[__name__])
        print('RESULT', json.dumps(await portal.run(where)), flush=True)
        print('RESULT', json.dumps(await portal.run(sync_where)), flush=True)
        oneshot = await an.run_in_actor(where, name='oneshot')
        print('RESULT', json.dumps(await oneshot.wait_for_result()), flush=True)
        # what a program that did `import main_module` would call: the child
        # also serves the script under its importable name
        print('RESULT', json.dumps(await portal.run_from_ns('main_module', 'where')), flush=True)
        await portal.cancel_actor()


if __name__ == '__main__':
    print('MAIN', os.getpid(), flush=True)
    trio.run(main, sys.argv[1], tuple(json.loads(sys.argv[2])))
