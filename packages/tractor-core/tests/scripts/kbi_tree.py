"""A root with one idle daemon child where a KeyboardInterrupt strikes.

usage: kbi_tree.py <tcp|uds> '<registry address as JSON>' <start method> <where>

``where``: ``body`` (raised in the actor nursery's block), ``sibling`` (a
sibling trio task of the actor nursery raises it), ``context`` (raised inside
an open ``portal.open_context()`` block), ``child`` (the child's RPC task
raises it), ``sigint`` (the test sends SIGINT while a context is open).
Prints the child's pid as one JSON line first (with ``sigint``, once the
context is open).
"""

import json
import sys

import trio

import tractor


@tractor.context
async def idle(ctx: tractor.Context) -> None:
    await ctx.started()
    await trio.sleep_forever()


async def raise_kbi() -> None:
    raise KeyboardInterrupt


async def main(proto: str, reg_addr: tuple, start_method: str, where: str) -> None:
    async def kbi_soon() -> None:
        await trio.sleep(0.2)
        raise KeyboardInterrupt

    async with trio.open_nursery() as tn:
        async with tractor.open_nursery(
            enable_transports=[proto], registry_addrs=[reg_addr], start_method=start_method
        ) as an:
            portal = await an.start_actor('idle', enable_modules=[__name__])
            ready = json.dumps({'child': portal.channel.aid.pid})
            if where != 'sigint':
                print(ready, flush=True)
            if where == 'body':
                raise KeyboardInterrupt
            if where == 'sibling':
                tn.start_soon(kbi_soon)
                await trio.sleep_forever()
            if where == 'child':
                await portal.run(raise_kbi)
            async with portal.open_context(idle):
                if where == 'context':
                    raise KeyboardInterrupt
                print(ready, flush=True)  # 'sigint': the test sends it now
                await trio.sleep_forever()


if __name__ == '__main__':
    trio.run(main, sys.argv[1], tuple(json.loads(sys.argv[2])), sys.argv[3], sys.argv[4])
