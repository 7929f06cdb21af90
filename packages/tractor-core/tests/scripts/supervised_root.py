"""A root actor supervising two children; prints their pids as one JSON
list, then waits for Ctrl-C (``sigint``) or raises KeyboardInterrupt in the
supervisor's block itself (``raise``).

usage: supervised_root.py <tcp|uds> '<registry address as JSON>' <sigint|raise>
"""

import json
import os
import sys

import trio

import tractor


async def pid() -> int:
    return os.getpid()


async def main(proto: str, reg_addr: tuple, mode: str) -> None:
    async with tractor.open_supervisor(
        strategy='one_for_all',
        enable_transports=[proto],
        registry_addrs=[reg_addr],
        loglevel='warning',
    ) as sup:
        a = await sup.start_actor('a', enable_modules=[__name__])
        b = await sup.start_actor('b', enable_modules=[__name__])
        print(json.dumps([await a.run(pid), await b.run(pid)]), flush=True)
        if mode == 'raise':
            raise KeyboardInterrupt
        await trio.sleep_forever()


if __name__ == '__main__':
    trio.run(main, sys.argv[1], tuple(json.loads(sys.argv[2])), sys.argv[3])
