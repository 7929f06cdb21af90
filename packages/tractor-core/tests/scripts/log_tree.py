"""Log from a root and a child actor.

usage: log_tree.py <tcp|uds> '<registry address as JSON>' <loglevel or "-">

The root passes ``loglevel=`` (unless "-"); each actor logs one INFO and one
WARNING line through ``tractor.log``.
"""

import json
import sys

import trio

import tractor

log = tractor.log.get_logger('user.script')


async def chatter(tag: str) -> None:
    log.info('info line from %s', tag)
    log.warning('warning line from %s', tag)


async def main(proto: str, reg_addr: tuple, level: str | None) -> None:
    async with tractor.open_nursery(
        enable_transports=[proto], registry_addrs=[reg_addr], loglevel=level
    ) as an:
        await chatter('the-root')
        portal = await an.start_actor('chatty-child', enable_modules=[__name__])
        await portal.run(chatter, tag='the-child')
        await an.cancel()


if __name__ == '__main__':
    level = None if sys.argv[3] == '-' else sys.argv[3]
    trio.run(main, sys.argv[1], tuple(json.loads(sys.argv[2])), level)
