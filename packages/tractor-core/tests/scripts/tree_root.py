"""A root actor with a child and a grandchild; prints their pids as one JSON
line, then sleeps until killed.

usage: tree_root.py <tcp|uds> '<registry address as JSON>' [start method] [stuck]

``stuck``: the grandchild spins holding the GIL (``spinning``), or ignores
SIGTERM and its cancel (``deaf``); anything else: it behaves.
"""

import functools
import json
import os
import sys

import trio

import tractor

_leaf: dict[str, int] = {}


def spin() -> None:
    while True:
        pass


def ignore_sigterm() -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)


async def ignore_cancel() -> None:
    with trio.CancelScope(shield=True):
        await trio.sleep(3600)


async def hold_tree(stuck: str | None = None) -> None:
    async with tractor.open_nursery() as an:
        leaf = await an.start_actor('grandchild', enable_modules=[__name__])
        async with trio.open_nursery() as tn:
            if stuck == 'spinning':
                tn.start_soon(leaf.run, spin)
            elif stuck == 'deaf':
                await leaf.run(ignore_sigterm)
                tn.start_soon(leaf.run, ignore_cancel)
            _leaf['pid'] = leaf.channel.aid.pid
            await trio.sleep_forever()


def leaf_pid() -> int | None:
    return _leaf.get('pid')


async def main(proto: str, reg_addr: tuple, start_method: str | None, stuck: str | None) -> None:
    async with tractor.open_nursery(
        enable_transports=[proto], registry_addrs=[reg_addr], start_method=start_method
    ) as an:
        child = await an.start_actor('child', enable_modules=[__name__])
        async with trio.open_nursery() as tn:
            tn.start_soon(functools.partial(child.run, hold_tree, stuck=stuck))
            while (grandchild := await child.run(leaf_pid)) is None:
                await trio.sleep(0.02)
            print(
                json.dumps(
                    {'root': os.getpid(), 'child': child.channel.aid.pid, 'grandchild': grandchild}
                ),
                flush=True,
            )
            await trio.sleep_forever()


if __name__ == '__main__':
    trio.run(
        main,
        sys.argv[1],
        tuple(json.loads(sys.argv[2])),
        (sys.argv[3:] or [None])[0],
        (sys.argv[4:] or [None])[0],
    )
