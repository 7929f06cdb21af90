"""A root actor spawning with start_method='forkserver'; prints one JSON line
with the pids of the root, its fork server and its subactors, then sleeps
until killed.

usage: forkserver_root.py <tcp|uds> '<registry address as JSON>' <tree|idle>

``tree``: a child holding a grandchild (both forked by the root's server);
``idle``: one child spawned and cancelled again, so the server has no child
left when the root dies.
"""

import json
import os
import sys

import trio

import tractor

_leaf: dict[str, int] = {}


async def hold_tree() -> None:
    async with tractor.open_nursery() as an:
        leaf = await an.start_actor('grandchild', enable_modules=[__name__])
        _leaf['pid'] = leaf.channel.aid.pid
        await trio.sleep_forever()


def leaf_pid() -> int | None:
    return _leaf.get('pid')


def fork_server_pids() -> list[int]:
    """Our children running ``tractor._forkserver``."""
    found = []
    for tid in os.listdir('/proc/self/task'):
        with open(f'/proc/self/task/{tid}/children') as f:
            for pid in f.read().split():
                try:
                    with open(f'/proc/{pid}/cmdline', 'rb') as c:
                        if b'tractor._forkserver' in c.read():
                            found.append(int(pid))
                except OSError:
                    pass
    return found


async def main(proto: str, reg_addr: tuple, mode: str) -> None:
    async with tractor.open_nursery(
        enable_transports=[proto], registry_addrs=[reg_addr], start_method='forkserver'
    ) as an:
        child = await an.start_actor('child', enable_modules=[__name__])
        pids = {'root': os.getpid(), 'child': child.channel.aid.pid}
        async with trio.open_nursery() as tn:
            if mode == 'tree':
                tn.start_soon(child.run, hold_tree)
                while (grandchild := await child.run(leaf_pid)) is None:
                    await trio.sleep(0.02)
                pids['grandchild'] = grandchild
            else:
                await child.cancel_actor()
            pids['servers'] = fork_server_pids()
            print(json.dumps(pids), flush=True)
            await trio.sleep_forever()


if __name__ == '__main__':
    trio.run(main, sys.argv[1], tuple(json.loads(sys.argv[2])), sys.argv[3])
