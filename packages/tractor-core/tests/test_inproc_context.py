"""The in-process tier: contexts, streams and cancellation over the memory
transport (a root actor calling itself over its own channel; no process
spawned). Callees report what happened to them in ``fns.SEEN`` and signal
``fns.event(...)``, so each test waits on a condition, never on time.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio.testing

import tractor
import tractor_core_inproc_fns as fns
from tractor_testsupport import memory

MODS = [fns.__name__]
#: every test starts from fresh in-process state (see tractor_core_inproc_fns.reset)
pytestmark = pytest.mark.usefixtures('fresh_inproc_fns')


async def test_started_value_and_result():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with portal.open_context(fns.started_then_return, value=[1, 'a']) as (ctx, first):
                assert first == [1, 'a']
                assert ctx.side == 'caller'
                assert await ctx.wait_for_result() == {'side': 'callee', 'value': [1, 'a']}


async def test_stream_both_ways_on_the_generic_path():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with portal.open_context(fns.echo_stream, greeting='hi') as (ctx, path):
                assert path == {'direct': False, 'stream': 'StapledStream'}  # the callee's end
                async with ctx.open_stream() as stream:
                    assert await stream.receive() == 'hi'  # the callee sent first
                    for i in range(300):  # more than a window: credit flows back
                        await stream.send(i)
                        assert await stream.receive() == i
            assert await ctx.wait_for_result() == 300


async def test_two_contexts_on_one_channel_do_not_mix():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with (
                portal.open_context(fns.echo_stream, greeting='one') as (c1, _),
                portal.open_context(fns.echo_stream, greeting='two') as (c2, _),
                c1.open_stream() as s1,
                c2.open_stream() as s2,
            ):
                assert c1.chan is c2.chan and c1.cid != c2.cid
                assert await s2.receive() == 'two'
                assert await s1.receive() == 'one'
                await s1.send('a')
                await s2.send('b')
                assert await s2.receive() == 'b'
                assert await s1.receive() == 'a'


async def test_a_sender_waits_for_credit_at_the_window():
    """Flow control: a producer that is not read stops at the reader's
    window, and goes on as the reader consumes; nothing is lost."""
    window = 8
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with portal.open_context(fns.produce, key='p', n=40) as (ctx, _):
                async with ctx.open_stream(msg_buffer_size=window) as stream:
                    await stream.send('go')  # after the window's Credit
                    await trio.testing.wait_all_tasks_blocked()
                    assert fns.SEEN['p'] == window  # blocked on credit, not done
                    got = [await stream.receive() for _ in range(40)]
            assert got == list(range(40))
            assert await ctx.wait_for_result() == {'sent': 40, 'overrun': False}


async def test_overruns_allowed_raise_past_twice_the_window():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with portal.open_context(fns.produce, key='p', n=1000) as (ctx, _):
                async with ctx.open_stream(allow_overruns=True, msg_buffer_size=16) as stream:
                    await stream.send('go')
                    assert await ctx.wait_for_result() == {'sent': 32, 'overrun': True}


async def test_callee_error_cancels_the_block_and_is_raised_at_exit():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            body_cancelled = False
            with pytest.raises(tractor.RemoteActorError) as info:
                async with portal.open_context(fns.fail_after_started) as (ctx, _):
                    fns.event('fail').set()
                    try:
                        await trio.sleep_forever()
                    except trio.Cancelled:
                        body_cancelled = True
                        raise
            assert body_cancelled
            assert info.value.boxed_type is ValueError
            assert ctx.maybe_error is info.value


async def test_body_error_cancels_the_callee():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            with pytest.raises(KeyError):
                async with portal.open_context(fns.sleep_in_context, key='c') as (ctx, _):
                    await fns.event('c:running').wait()
                    raise KeyError('body failed')
            # the callee was cancelled (and confirmed) before the error left
            assert fns.SEEN['c'] == ('cancelled', actor.uid)
            assert ctx.cancel_called


async def test_ctx_cancel_from_the_caller_exits_quietly():
    """The caller's ctx.cancel() does not cancel its block (as in the
    established project): the result is the callee's ContextCancelled,
    returned, not raised, and the block exits quietly."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with portal.open_context(fns.sleep_in_context, key='c') as (ctx, _):
                await fns.event('c:running').wait()
                await ctx.cancel()
                assert not ctx.cancel_acked
                res = await ctx.wait_for_result()  # the block still runs
                assert isinstance(res, tractor.ContextCancelled)
                assert res.canceller == actor.uid and ctx.cancel_acked
            assert ctx.cancel_called and ctx.cancelled_caught
            assert fns.SEEN['c'] == ('cancelled', actor.uid)


async def test_callee_cancelling_itself_is_a_context_cancelled_for_the_caller():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            with pytest.raises(tractor.ContextCancelled) as info:
                async with portal.open_context(fns.cancel_self) as (ctx, _):
                    await trio.sleep_forever()
            assert info.value.canceller == actor.uid
            assert not ctx.cancel_called  # not a cancel this side asked for


async def test_cancelling_the_callers_scope_reaches_the_callee():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            with trio.CancelScope() as cs:
                async with portal.open_context(fns.sleep_in_context, key='c'):
                    await fns.event('c:running').wait()
                    cs.cancel()
                    await trio.sleep_forever()
            assert cs.cancelled_caught
            assert fns.SEEN['c'] == ('cancelled', actor.uid)

            # the same for a plain call
            with trio.CancelScope() as cs:
                async with trio.open_nursery() as tn:
                    tn.start_soon(partial(portal.run, fns.wait_forever, key='k'))
                    await fns.event('k:running').wait()
                    cs.cancel()
            await fns.event('k:ended').wait()
            assert fns.SEEN['k'] == 'cancelled'


async def test_cancel_actor_cancels_the_rpc_tasks_in_flight():
    """``Portal.cancel_actor`` over the loopback: the actor acknowledges,
    and the calls it serves end as cancelled, by its own request."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            caught: list[BaseException] = []

            async def in_flight() -> None:
                try:
                    await portal.run(fns.wait_forever, key='k')
                except tractor.ContextCancelled as err:
                    caught.append(err)

            async with trio.open_nursery() as tn:
                tn.start_soon(in_flight)
                await fns.event('k:running').wait()
                assert await portal.cancel_actor() is True
            assert fns.SEEN['k'] == 'cancelled'
            assert len(caught) == 1 and caught[0].canceller == actor.uid
            assert actor.cancel_requester == actor.uid


async def test_losing_the_channel_cancels_the_callee_and_fails_the_caller():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            caught: list[BaseException] = []

            async def in_flight() -> None:
                try:
                    await portal.run(fns.wait_forever, key='k')
                except tractor.TransportClosed as err:
                    caught.append(err)

            async with trio.open_nursery() as tn:
                tn.start_soon(in_flight)
                await fns.event('k:running').wait()
                await portal.channel.aclose()
            assert len(caught) == 1
            await fns.event('k:ended').wait()
            assert fns.SEEN['k'] == 'cancelled'
