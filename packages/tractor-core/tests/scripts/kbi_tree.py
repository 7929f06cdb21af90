"""A root with one idle daemon child where a KeyboardInterrupt strikes.

usage: kbi_tree.py <tcp|uds> '<registry address as JSON>' <start method> <where>

``where``: ``body`` (raised in the actor nursery's block), ``sibling`` (a
sibling trio task of the actor nursery raises it), ``context`` (raised inside
an open ``portal.open_context()`` block), ``child`` (the child's RPC task
raises it), ``sigint`` (the test sends SIGINT while a context is open),
``during_cancel`` (the child's loop is stuck in sync code, and a Ctrl-C comes
while ``an.cancel()`` waits out its grace).
Prints the child's pid as one JSON line first (with ``sigint``, once the
context is open; with ``during_cancel``, right before the Ctrl-C).
"""

import json
import signal
import sys
import time

import trio
import trio.testing

import tractor


@tractor.context
async def idle(ctx: tractor.Context) -> None:
    await ctx.started()
    await trio.sleep_forever()


async def raise_kbi() -> None:
    raise KeyboardInterrupt


@tractor.context
async def stuck(ctx: tractor.Context) -> None:
    await ctx.started()
    time.sleep(60)  # noqa: ASYNC251  # sync code on purpose: the child's loop is stuck


@trio.lowlevel.enable_ki_protection  # (so the Ctrl-C goes to the main task)
async def ctrl_c_once_all_wait(ready: str) -> None:
    """Ctrl-C once every task waits: an.cancel() waits out the grace."""
    await trio.testing.wait_all_tasks_blocked()
    print(ready, flush=True)
    signal.raise_signal(signal.SIGINT)


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
            if where not in ('sigint', 'during_cancel'):
                print(ready, flush=True)
            if where == 'body':
                raise KeyboardInterrupt
            if where == 'sibling':
                tn.start_soon(kbi_soon)
                await trio.sleep_forever()
            if where == 'child':
                await portal.run(raise_kbi)
            if where == 'during_cancel':
                async with portal.open_context(stuck):  # the child is stuck now
                    tn.start_soon(ctrl_c_once_all_wait, ready)
                    await an.cancel()
            async with portal.open_context(idle):
                if where == 'context':
                    raise KeyboardInterrupt
                print(ready, flush=True)  # 'sigint': the test sends it now
                await trio.sleep_forever()


if __name__ == '__main__':
    trio.run(main, sys.argv[1], tuple(json.loads(sys.argv[2])), sys.argv[3], sys.argv[4])
