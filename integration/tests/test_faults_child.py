"""A child SIGKILLed in the middle of work (over TCP and UDS): the caller
gets a typed error (``TransportClosed``) instead of hanging, for a plain
RPC, for a stream it reads and for a stream it writes; the nursery then
reaps the dead child and carries on.

The root SIGKILLed is covered by ``packages/tractor-core/tests/
test_cancellation.py::test_sigkill_root_leaves_no_process`` (every
descendant exits) and a middle actor by ``test_sigkill_middle_actor``.
"""

from __future__ import annotations

import os
import signal

import pytest
import trio

import tractor

pytestmark = pytest.mark.slow

#: per-process state a test reads back (set in the child)
STATE: dict[str, object] = {}
#: bound on anything here: a hang fails the test instead of stalling CI
BOUND = 30


def get_state(key: str):
    return STATE.get(key)


async def busy() -> None:
    STATE['busy'] = True
    await trio.sleep_forever()


@tractor.context
async def producer(ctx: tractor.Context) -> None:
    await ctx.started(os.getpid())
    async with ctx.open_stream() as stream:
        n = 0
        while True:
            await stream.send(n)
            n += 1


@tractor.context
async def consumer(ctx: tractor.Context) -> None:
    await ctx.started(os.getpid())
    async with ctx.open_stream() as stream:
        async for _ in stream:
            pass


async def until_set(portal: tractor.Portal, key: str) -> None:
    while not await portal.run(get_state, key=key):
        await trio.sleep(0.02)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)  # a child this test spawned


async def test_child_killed_mid_rpc(runtime_kwargs):
    with trio.fail_after(BOUND):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            victim = await an.start_actor('victim', enable_modules=[__name__])
            bystander = await an.start_actor('bystander', enable_modules=[__name__])
            outcome: list[BaseException] = []

            async def call() -> None:
                try:
                    await victim.run(busy)
                except BaseException as err:
                    outcome.append(err)
                    if not isinstance(err, Exception):
                        raise

            async with trio.open_nursery() as tn:
                tn.start_soon(call)
                await until_set(victim, 'busy')
                kill(victim.channel.aid.pid)
            assert len(outcome) == 1
            assert isinstance(outcome[0], tractor.TransportClosed), repr(outcome[0])
            assert not victim.channel.connected()
            # a new call to the dead child fails the same way, at once
            with pytest.raises(tractor.TransportClosed):
                await victim.run(get_state, key='busy')
            # everyone else is fine, and the nursery can spawn again
            assert await bystander.run(get_state, key='busy') is None
            again = await an.start_actor('again', enable_modules=[__name__])
            assert await again.run(get_state, key='x') is None
            await an.cancel()


@pytest.mark.parametrize('direction', ['reading', 'writing'])
async def test_child_killed_mid_stream(direction, runtime_kwargs):
    """The caller is in ``receive()`` (reading a stream the child writes)
    or in ``send()`` (writing a stream the child reads) when the child is
    killed: the block raises TransportClosed."""
    fn = producer if direction == 'reading' else consumer
    with trio.fail_after(BOUND):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            victim = await an.start_actor('victim', enable_modules=[__name__])
            got = 0
            with pytest.raises(tractor.TransportClosed):
                async with victim.open_context(fn) as (ctx, pid):
                    async with ctx.open_stream() as stream:
                        while True:
                            if direction == 'reading':
                                await stream.receive()
                            else:
                                await stream.send(got)
                            got += 1
                            if got == 1000:
                                kill(pid)  # mid-stream: it is sending/reading right now
            assert got >= 1000
            assert not victim.channel.connected()
            await an.cancel()
