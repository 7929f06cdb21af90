"""Names users of the established project write every day, behaving as
they know them: overrunnable streams, the current IPC context, a context's
side/chan/maybe_error, streams from async generators, broadcast
subscriptions and the string form of Portal.run."""

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import (
    count_forever,
    count_up,
    fan_out,
    flood_until_overrun,
    get_state,
    ipc_ctx_in_plain_call,
    report_ipc_ctx,
)

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


async def test_overruns_allowed_raise_past_the_bound(runtime_kwargs):
    """With ``allow_overruns=True`` on the reader's end, a writer that does
    not wait runs ahead by up to twice the reader's window, then gets
    ``StreamOverrun`` (typed, the value unsent): never unbounded memory."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('flooder', enable_modules=FNS)
            async with portal.open_context(flood_until_overrun, n=10_000) as (ctx, _):
                async with ctx.open_stream(allow_overruns=True, msg_buffer_size=16) as stream:
                    await stream.send('go')
                    result = await ctx.wait_for_result()
            assert result == {'sent': 32, 'overrun': True}
            await portal.cancel_actor()


async def test_overruns_allowed_for_the_whole_context(runtime_kwargs):
    """``open_context(allow_overruns=True)``, as the established project
    spells it: an option of the context (not an argument for the callee)
    that its streams take unless one says otherwise."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('flooder', enable_modules=FNS)
            async with portal.open_context(flood_until_overrun, allow_overruns=True, n=10_000) as (
                ctx,
                _,
            ):
                async with ctx.open_stream(msg_buffer_size=16) as stream:
                    await stream.send('go')
                    result = await ctx.wait_for_result()
            assert result == {'sent': 32, 'overrun': True}
            # a stream that says otherwise waits as usual
            async with portal.open_context(flood_until_overrun, allow_overruns=True, n=100) as (
                ctx,
                _,
            ):
                async with ctx.open_stream(allow_overruns=False, msg_buffer_size=16) as stream:
                    await stream.send('go')
                    got = [await stream.receive() for _ in range(100)]
                    await stream.send('done')
                assert await ctx.wait_for_result() == {'sent': 100, 'overrun': False}
            assert got == list(range(100))
            with pytest.raises(TypeError, match='allow_overruns'):
                async with portal.open_context(flood_until_overrun, allow_overruns='yes', n=1):
                    pass
            await portal.cancel_actor()


async def test_without_overruns_the_writer_waits(runtime_kwargs):
    """Today's credit flow: the writer blocks instead, and everything sent
    arrives in order."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('flooder', enable_modules=FNS)
            async with portal.open_context(flood_until_overrun, n=100) as (ctx, _):
                async with ctx.open_stream(msg_buffer_size=16) as stream:
                    await stream.send('go')
                    got = [await stream.receive() for _ in range(100)]
                    await stream.send('done')
                assert await ctx.wait_for_result() == {'sent': 100, 'overrun': False}
            assert got == list(range(100))
            await portal.cancel_actor()


async def test_current_ipc_ctx_on_both_sides(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('ctxer', enable_modules=FNS)
            with pytest.raises(RuntimeError, match='no IPC context'):
                tractor.current_ipc_ctx()
            async with portal.open_context(report_ipc_ctx) as (ctx, first):
                assert tractor.current_ipc_ctx() is ctx
                assert ctx.side == 'caller' and ctx.chan is portal.channel
                assert first == [True, 'callee']
            assert await ctx.wait_for_result() == [
                True,
                'callee',
                list(tractor.current_actor().uid),
            ]
            assert ctx.maybe_error is None
            # a plain call has no Context: a clear error
            assert 'plain Portal.run()' in await portal.run(ipc_ctx_in_plain_call)
            await portal.cancel_actor()


async def test_maybe_error_is_what_ended_the_context(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('quitter', enable_modules=FNS)
            with pytest.raises(tractor.ContextCancelled):
                async with portal.open_context(fns.cancel_myself) as (ctx, _):
                    await trio.sleep_forever()
            assert isinstance(ctx.maybe_error, tractor.ContextCancelled)
            await portal.cancel_actor()


async def test_open_stream_from_an_async_generator(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('gen', enable_modules=FNS)
            async with portal.open_stream_from(count_up, n=50) as stream:
                got = [x async for x in stream]
            assert got == list(range(50))
            assert await portal.run(get_state, key='gen_done') is True
            # its error arrives boxed
            with pytest.raises(tractor.RemoteActorError) as err:
                async with portal.open_stream_from(count_up, n=50, fail_at=3) as stream:
                    async for _ in stream:
                        pass
            assert err.value.boxed_type is ValueError
            # leaving early stops (and closes) the generator
            async with portal.open_stream_from(count_forever) as stream:
                async for x in stream:
                    if x == 10:
                        break
            assert await portal.run(get_state, key='gen_closed') is True
            # only async generators of enabled modules
            with pytest.raises(TypeError, match='async generator'):
                async with portal.open_stream_from(fns.ping):
                    pass
            await portal.cancel_actor()


async def test_open_stream_from_respects_the_allowlist(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('strict', enable_modules=[])
            with pytest.raises(tractor.RemoteActorError) as err:
                async with portal.open_stream_from(count_up, n=3):
                    pass
            assert err.value.boxed_type is tractor.ModuleNotExposed
            await portal.cancel_actor()


async def test_stream_subscribe_every_task_gets_every_message(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('fan', enable_modules=FNS)
            results: dict[int, list] = {}
            async with portal.open_context(fan_out, n=100) as (ctx, _):
                async with ctx.open_stream() as stream:
                    subscribed = trio.Semaphore(0)

                    async def reader(i: int) -> None:
                        async with stream.subscribe() as sub:
                            subscribed.release()
                            results[i] = [x async for x in sub]

                    async with trio.open_nursery() as tn:
                        for i in range(3):
                            tn.start_soon(reader, i)
                        for _ in range(3):
                            await subscribed.acquire()
                        await stream.send('go')
            assert results == {i: list(range(100)) for i in range(3)}
            await portal.cancel_actor()


async def test_portal_run_string_form(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('named', enable_modules=FNS)
            assert await portal.run(fns.__name__, 'add', x=2, y=3) == 5
            with pytest.raises(TypeError, match="function's name"):
                await portal.run(fns.__name__)
            await portal.cancel_actor()
