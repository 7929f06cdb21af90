"""Streams end cleanly when their ends race each other: a send that races
the peer's close, a cancel before a stream, a stream opened again, and a
callee's own cancel, each looped so a race shows."""

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import cancel_myself, pong_server, producer, two_phase_echo

pytestmark = pytest.mark.slow

FNS = [fns.__name__]
LOOPS = 20


async def test_bidirectional_ping_pong_is_never_flaky(runtime_kwargs):
    """The bidirectional-streaming example's pattern, 20 times: ten pings,
    ten pongs, the caller closes, the callee's loop ends, no error."""
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('rpc_server', enable_modules=FNS)
            for _ in range(LOOPS):
                async with portal.open_context(pong_server, data=10) as (ctx, sent):
                    assert sent == 11
                    async with ctx.open_stream() as stream:
                        for _ in range(10):
                            await stream.send('ping')
                            assert await stream.receive() == 'pong'
                assert ctx.outcome is None
            await portal.cancel_actor()


async def test_send_racing_the_peer_close_is_not_an_error(runtime_kwargs):
    """The caller reads a few values and closes while the callee is still
    sending: the callee's sends are dropped, never a raw
    ``trio.BrokenResourceError``, and it returns normally, 20 times."""
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('producer', enable_modules=FNS)
            for n in range(LOOPS):
                async with portal.open_context(producer, count=500) as (ctx, _):
                    async with ctx.open_stream() as stream:
                        for _ in range(n % 5 + 1):
                            await stream.receive()
                    assert await ctx.wait_for_result() == 500
            await portal.cancel_actor()


async def test_open_stream_after_cancel_raises_context_cancelled(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('server', enable_modules=FNS)
            async with portal.open_context(pong_server, data=0) as (ctx, _):
                await ctx.cancel()
                with pytest.raises(tractor.ContextCancelled) as err:
                    async with ctx.open_stream():
                        pytest.fail('a stream opened on a cancelled context')
                assert err.value.canceller == tractor.current_actor().uid
            await portal.cancel_actor()


async def test_stream_can_be_opened_again(runtime_kwargs):
    """Both sides close their stream, then open a new one on the same
    context: the second exchange sees nothing of the first."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('echo', enable_modules=FNS)
            for _ in range(LOOPS // 4):
                async with portal.open_context(two_phase_echo) as (ctx, _):
                    for phase in ('a', 'b'):
                        async with ctx.open_stream() as stream:
                            for i in range(3):
                                await stream.send(f'{phase}{i}')
                                assert await stream.receive() == f'{phase}{i}'
                    assert await ctx.wait_for_result() == [['a0', 'a1', 'a2'], ['b0', 'b1', 'b2']]
            await portal.cancel_actor()


async def test_callee_self_cancel_carries_a_traceback(runtime_kwargs):
    """A callee's own ``ctx.cancel()`` reaches the caller as
    ``ContextCancelled`` naming the callee, with where it cancelled."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('quitter', enable_modules=FNS)
            with pytest.raises(tractor.ContextCancelled) as err:
                async with portal.open_context(cancel_myself):
                    await trio.sleep_forever()
            assert err.value.canceller == portal.channel.aid.uid
            assert err.value.tb_str
            assert 'cancel_myself' in err.value.tb_str
            await portal.cancel_actor()


async def test_reopen_after_a_stream_left_by_an_error(runtime_kwargs):
    """The first stream was left by a handled error (no clean close was
    sent): re-opening closes it for the peer first, so neither side waits
    for the other."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('echo', enable_modules=FNS)
            async with portal.open_context(two_phase_echo) as (ctx, _):
                with pytest.raises(KeyError):
                    async with ctx.open_stream() as stream:
                        await stream.send('a0')
                        assert await stream.receive() == 'a0'
                        raise KeyError('handled')
                async with ctx.open_stream() as stream:
                    await stream.send('b0')
                    assert await stream.receive() == 'b0'
                assert await ctx.wait_for_result() == [['a0'], ['b0']]
            await portal.cancel_actor()
