"""A user script serving its own functions: run it as a file or with -m.

usage: main_module.py <tcp|uds> '<registry address as JSON>'

Prints ``LOADED <module name> <pid>`` wherever the module body runs,
``MAIN <pid>`` from the ``__main__`` block, and ``RESULT <json>`` lines with
what the functions report from inside the subactors, ``BOXED <json>`` with
what an error class of the script is unboxed as, either way across the tree.
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


class ScriptError(Exception):
    """An error class of the script itself."""


async def fail() -> None:
    raise ScriptError('raised by the script')


async def unboxed_from_parent() -> dict:
    """(in a child) Call ``fail`` in the parent: what its error is here."""
    try:
        await tractor.current_actor().parent_portal.run(fail)
    except tractor.RemoteActorError as err:
        return {'type_str': err.boxed_type_str, 'is_ours': err.boxed_type is ScriptError}
    return {}


async def main(proto: str, reg_addr: tuple) -> None:
    async with tractor.open_nursery(
        enable_transports=[proto], registry_addrs=[reg_addr], enable_modules=[__name__]
    ) as an:
        portal = await an.start_actor('scripted', enable_modules=[__name__])
        try:
            await portal.run(fail)
        except tractor.RemoteActorError as err:
            boxed = {'type_str': err.boxed_type_str, 'is_ours': err.boxed_type is ScriptError}
            print('BOXED', json.dumps(boxed), flush=True)
        print('BOXED', json.dumps(await portal.run(unboxed_from_parent)), flush=True)
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
