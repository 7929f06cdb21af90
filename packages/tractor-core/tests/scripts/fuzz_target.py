"""A live actor for the fuzz suite (``test_fuzz_listener.py``).

Boots a root actor (it becomes the registrar of ``<registry address>``)
serving this module as ``__main__``, prints one JSON line (pid, listen
addresses) and serves until its stdin closes.

usage: fuzz_target.py <tcp|uds|tls> '<registry address as JSON>'
"""

import json
import os
import sys

import trio

import tractor

#: tokens passed to mark(): a request that reached the function
MARKS: set[str] = set()


async def ping() -> str:
    return 'pong'


async def echo(value=None):
    return value


def mark(token: str) -> str:
    MARKS.add(token)
    return token


def marks() -> list[str]:
    return sorted(MARKS)


async def stdin_closed() -> None:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        while await stream.receive_some(4096):
            pass


async def main(proto: str, reg_addr: tuple) -> None:
    async with tractor.open_root_actor(
        name='fuzz-target',
        enable_transports=[proto],
        registry_addrs=[reg_addr],
        enable_modules=['__main__'],
    ) as actor:
        print(json.dumps({'pid': os.getpid(), 'addrs': actor.accept_addrs}), flush=True)
        await stdin_closed()


if __name__ == '__main__':
    proto, reg = sys.argv[1], tuple(json.loads(sys.argv[2]))
    trio.run(main, proto, reg)
