"""A root actor at a low fd limit, for the connection-flood and bound tests.

Sets ``RLIMIT_NOFILE`` to ``<limit>`` (soft and hard: boot cannot raise it
again; ``-`` leaves the limit alone), boots a root actor serving ``ping``
on TCP, prints its address as one JSON line, and serves until its stdin
closes. ``TRACTOR_*`` settings come from its environment.

usage: flood_target.py <limit|-> '<registry address as JSON>'
"""

import json
import os
import resource
import sys

import trio

import tractor


async def ping() -> str:
    return 'pong'


async def main(reg_addr: tuple) -> None:
    async with tractor.open_root_actor(
        name='flood-target',
        enable_transports=['tcp'],
        registry_addrs=[reg_addr],
        enable_modules=['__main__'],
    ):
        print(json.dumps(tractor.current_actor().accept_addrs[0]), flush=True)
        stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        async with stream:
            while await stream.receive_some(4096):
                pass


if __name__ == '__main__':
    if sys.argv[1] != '-':
        limit = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    trio.run(main, tuple(json.loads(sys.argv[2])))
