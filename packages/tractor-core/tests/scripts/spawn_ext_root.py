"""A root that registers ``spawn_ext_plugin`` in code, spawns a child that
spawns a grandchild (both with the given start method), and one child the
plugin refuses; prints one JSON line with what each spawned actor's plugin
received and the refusal's text, then exits.

usage: spawn_ext_root.py <tcp|uds> '<registry address as JSON>' <start method>
(``spawn_ext_plugin`` must be importable: PYTHONPATH names the tests folder)
"""

import json
import os
import sys

import trio

import spawn_ext_plugin
import tractor

MOD = spawn_ext_plugin.__name__


async def spawn_grandchild() -> dict:
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('grandchild', enable_modules=[MOD])
        got = await portal.run(spawn_ext_plugin.received)
        await an.cancel()
    return got


async def main(proto: str, reg_addr: tuple, method: str) -> None:
    out = {}
    with trio.fail_after(60):
        async with tractor.open_nursery(
            enable_transports=[proto], registry_addrs=[reg_addr], start_method=method
        ) as an:
            out['root'] = [tractor.current_actor().name, os.getpid()]
            child = await an.start_actor('child', enable_modules=[MOD, __name__])
            out['child'] = await child.run(spawn_ext_plugin.received)
            out['grandchild'] = await child.run(spawn_grandchild)
            try:
                await an.start_actor('refuse', enable_modules=[MOD])
            except Exception as err:
                out['refused'] = f'{type(err).__name__}: {err}'
            await an.cancel()
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    tractor.register_plugin(spawn_ext_plugin)
    trio.run(main, sys.argv[1], tuple(json.loads(sys.argv[2])), sys.argv[3])
