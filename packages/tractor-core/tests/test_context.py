"""Contexts: cross-actor task pairs (started value, result, errors, cancels).

Callee functions record what happened to them in the module-level ``EVENTS``
list of the actor they run in; ``get_events`` (a plain RPC) reads it back,
so a test can check that a callee really was cancelled.
"""

from __future__ import annotations

import pytest
import trio

import tractor
from tractor import ContextCancelled, MsgTypeError, RemoteActorError

pytestmark = pytest.mark.slow

TIMEOUT = 30

#: what happened to callees in this actor (per process)
EVENTS: list[str] = []


async def get_events() -> list[str]:
    return EVENTS


# -- callees -------------------------------------------------------------------


@tractor.context
async def echo_started(ctx: tractor.Context, value, result=None):
    await ctx.started(value)
    return result


@tractor.context
async def add_one_each(ctx: tractor.Context, start: int):
    await ctx.started(start)
    total = start
    async with ctx.open_stream() as stream:
        async for x in stream:
            total += x
            await stream.send(x + 1)
    return total


@tractor.context
async def fail_before_started(ctx: tractor.Context):
    raise ValueError('refusing to start')


@tractor.context
async def fail_mid_stream(ctx: tractor.Context, after: int):
    await ctx.started()
    async with ctx.open_stream() as stream:
        for i in range(after):
            await stream.send(i)
        raise ValueError(f'failed after {after}')


@tractor.context
async def stream_forever(ctx: tractor.Context, tag: str):
    """Streams a counter until cancelled; records the cancel."""
    await ctx.started(tag)
    try:
        async with ctx.open_stream() as stream:
            i = 0
            while True:
                await stream.send(i)
                i += 1
    except trio.Cancelled:
        EVENTS.append(f'{tag}: cancelled')
        raise


@tractor.context
async def sleep_forever(ctx: tractor.Context, tag: str):
    await ctx.started(tag)
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        EVENTS.append(f'{tag}: cancelled')
        raise


@tractor.context
async def slow_to_start(ctx: tractor.Context, tag: str):
    EVENTS.append(f'{tag}: entered')
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        EVENTS.append(f'{tag}: cancelled')
        raise


@tractor.context
async def cancel_myself(ctx: tractor.Context, after: int):
    await ctx.started()
    async with ctx.open_stream() as stream:
        for i in range(after):
            await stream.send(i)
        await ctx.cancel()
        await trio.sleep_forever()


async def not_a_context(x: int) -> int:
    return x


@tractor.context
async def started_unencodable(ctx: tractor.Context):
    try:
        await ctx.started(object())
    except MsgTypeError as err:
        # nothing was sent: the caller gets the second started() value
        await ctx.started(f'{type(err).__name__}: {err}')
        return 'ok'
    await trio.sleep_forever()


@tractor.context
async def return_unencodable(ctx: tractor.Context):
    await ctx.started()
    return object()


@tractor.context
async def collect(ctx: tractor.Context):
    """Collect what the caller streams; report a failed send of our own."""
    await ctx.started()
    got = []
    async with ctx.open_stream() as stream:
        try:
            await stream.send(object())
        except MsgTypeError as err:
            await stream.send(str(err))
        async for x in stream:
            got.append(x)
    return got


@tractor.context(pld_spec=int | None)
async def ints_only(ctx: tractor.Context):
    await ctx.started()
    total = 0
    async with ctx.open_stream() as stream:
        async for x in stream:
            total += x
    return total


@tractor.context
async def sum_stream_from_parent(ctx: tractor.Context, n: int):
    """(runs in the root) Stream ``range(n)`` to the child that opened this."""
    await ctx.started(tractor.current_actor().name)
    async with ctx.open_stream() as stream:
        for i in range(n):
            await stream.send(i)
    return 'parent done'


@tractor.context
async def call_back_into_parent(ctx: tractor.Context, n: int):
    """(runs in a child) Open a context back into the parent actor, over the
    same connection the parent used to open this one."""
    parent = tractor.current_actor().parent_portal
    await ctx.started()
    async with parent.open_context(sum_stream_from_parent, n=n) as (pctx, pname):
        async with pctx.open_stream() as pstream:
            got = [x async for x in pstream]
        presult = await pctx.wait_for_result()
    return {'parent': pname, 'sum': sum(got), 'n': len(got), 'presult': presult}


@tractor.context
async def source(ctx: tractor.Context, n: int):
    """(B) Stream ``range(n)``."""
    await ctx.started(tractor.current_actor().name)
    async with ctx.open_stream() as stream:
        for i in range(n):
            await stream.send(i)
    return n


@tractor.context
async def relay(ctx: tractor.Context, n: int):
    """(A) Spawn B, open a context into it and relay its stream (times 10)
    to our own caller: a context inside a context across three actors."""
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('B', enable_modules=[__name__])
        async with portal.open_context(source, n=n) as (bctx, bname):
            await ctx.started({'name': bname, 'pid': portal.channel.aid.pid})
            async with bctx.open_stream() as bstream, ctx.open_stream() as stream:
                async for x in bstream:
                    await stream.send(x * 10)
            bresult = await bctx.wait_for_result()
        await an.cancel()
    return bresult


@tractor.context
async def whoami(ctx: tractor.Context, greeting: str):
    name = tractor.current_actor().name
    await ctx.started(f'{greeting} {name}')
    async with ctx.open_stream() as stream:
        async for x in stream:
            await stream.send(f'{name}:{x}')
    return name


# -- tests ---------------------------------------------------------------------


async def test_context_decorator_misuse(runtime_kwargs):
    with pytest.raises(TypeError, match='async'):
        tractor.context(lambda ctx: None)

    with pytest.raises(TypeError, match='ctx'):

        @tractor.context
        async def no_ctx_param(x):
            pass

    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            # both mistakes are caught locally, before anything is sent
            with pytest.raises(TypeError, match='not a @tractor.context'):
                async with portal.open_context(not_a_context, x=1):
                    pass
            with pytest.raises(TypeError, match='open_context'):
                await portal.run(echo_started, value=1)
            # by name only the callee can tell: its TypeError comes boxed
            with pytest.raises(RemoteActorError) as info:
                await portal.run_from_ns(__name__, 'echo_started', value=1)
            assert info.value.boxed_type is TypeError
            assert 'open_context' in str(info.value)
            # and the actor keeps serving
            assert await portal.run(not_a_context, x=7) == 7
            await an.cancel()


async def test_started_value_and_result(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(
                echo_started, value={'a': [1, 2]}, result=('done', 3)
            ) as (ctx, first):
                assert first == {'a': [1, 2]}
                assert ctx.side == 'caller'
                assert await ctx.wait_for_result() == ['done', 3]
            # the result stays readable after the block
            assert await ctx.wait_for_result() == ['done', 3]
            assert not ctx.cancel_called
            await an.cancel()


async def test_callee_error_before_started(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            with pytest.raises(RemoteActorError) as info:
                async with portal.open_context(fail_before_started):
                    pytest.fail('the block must not run')
            assert info.value.boxed_type is ValueError
            assert 'refusing to start' in str(info.value)
            assert info.value.src_uid == portal.channel.aid.uid
            await an.cancel()


async def test_callee_error_mid_stream(runtime_kwargs):
    got = []
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            with pytest.raises(RemoteActorError) as info:
                async with portal.open_context(fail_mid_stream, after=3) as (ctx, _):
                    async with ctx.open_stream() as stream:
                        async for x in stream:
                            got.append(x)
                    pytest.fail('the stream must not end cleanly')
            assert info.value.boxed_type is ValueError
            assert 'failed after 3' in str(info.value)
            assert 'fail_mid_stream' in info.value.tb_str
            await an.cancel()
    # the error cancels the caller's block at once, like an error in a trio
    # task cancels its siblings: values still in flight may be dropped
    assert got == [0, 1, 2][: len(got)]


async def test_callee_error_cancels_a_busy_caller(runtime_kwargs):
    """The caller is not reading the stream: the callee's error still
    cancels the block (and is raised from it)."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            with pytest.raises(RemoteActorError) as info:
                async with portal.open_context(fail_mid_stream, after=0) as (ctx, _):
                    await trio.sleep_forever()
            assert info.value.boxed_type is ValueError
            await an.cancel()


async def test_caller_error_mid_stream_cancels_callee(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            with pytest.raises(KeyError, match='caller bug'):
                async with portal.open_context(stream_forever, tag='s1') as (ctx, _):
                    async with ctx.open_stream() as stream:
                        async for x in stream:
                            if x == 3:
                                raise KeyError('caller bug')
            # the block only exits once the callee confirmed its cancel
            assert await portal.run(get_events) == ['s1: cancelled']
            await an.cancel()


async def test_caller_cancels(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            got = []
            async with portal.open_context(stream_forever, tag='s2') as (ctx, first):
                assert first == 's2'
                async with ctx.open_stream() as stream:
                    async for x in stream:
                        got.append(x)
                        if x == 4:
                            await ctx.cancel()
                pytest.fail("the stream ends with the callee's ContextCancelled")
            # the block is not cancelled by ctx.cancel() (as in the
            # established project): the stream delivers what was sent before
            # the callee's ContextCancelled, which the block's exit swallows
            assert got[:5] == [0, 1, 2, 3, 4] and got == list(range(len(got)))
            assert ctx.cancel_called and ctx.cancel_acked
            assert ctx.cancelled_caught
            assert await portal.run(get_events) == ['s2: cancelled']

            # the same while the callee is idle (not streaming): the block
            # goes on, and its result is the ContextCancelled, returned
            after_cancel = []
            async with portal.open_context(sleep_forever, tag='s3') as (ctx, _):
                await ctx.cancel()
                after_cancel.append(await ctx.wait_for_result())
            (res,) = after_cancel
            assert isinstance(res, tractor.ContextCancelled)
            assert res.canceller == ctx.canceller == tractor.current_actor().uid
            assert await ctx.wait_for_result() is res
            assert await portal.run(get_events) == ['s2: cancelled', 's3: cancelled']
            with pytest.raises(TypeError, match='timeout'):
                await ctx.cancel(timeout='soon')
            await an.cancel()


async def test_callee_cancels_itself(runtime_kwargs):
    got = []
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            with pytest.raises(ContextCancelled) as info:
                async with portal.open_context(cancel_myself, after=3) as (ctx, _):
                    async with ctx.open_stream() as stream:
                        async for x in stream:
                            got.append(x)
            assert info.value.canceller == portal.channel.aid.uid
            assert ctx.canceller == portal.channel.aid.uid
            assert not ctx.cancel_called
            # the actor itself is fine
            assert await portal.run(not_a_context, x=1) == 1
            await an.cancel()
    assert got == [0, 1, 2][: len(got)]  # values in flight may be dropped


async def test_caller_scope_cancel_cancels_callee(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            with trio.CancelScope() as cs:
                async with portal.open_context(stream_forever, tag='s4') as (ctx, _):
                    async with ctx.open_stream() as stream:
                        async for x in stream:
                            if x == 2:
                                cs.cancel()
            assert cs.cancelled_caught
            assert await portal.run(get_events) == ['s4: cancelled']

            # cancelled while waiting for the result on block exit
            with trio.CancelScope() as cs:
                async with portal.open_context(sleep_forever, tag='s5') as (ctx, _):
                    cs.cancel()
            assert cs.cancelled_caught
            assert await portal.run(get_events) == ['s4: cancelled', 's5: cancelled']
            await an.cancel()


async def test_cancel_while_waiting_for_started(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            cs = trio.CancelScope()

            async def opener():
                with cs:
                    async with portal.open_context(slow_to_start, tag='s6'):
                        pytest.fail('the callee never started')

            async with trio.open_nursery() as tn:
                tn.start_soon(opener)
                while 's6: entered' not in await portal.run(get_events):
                    await trio.sleep(0.01)
                cs.cancel()
            assert cs.cancelled_caught
            assert await portal.run(get_events) == ['s6: entered', 's6: cancelled']
            await an.cancel()


async def test_many_contexts_over_one_portal(runtime_kwargs):
    n_ctx, n_msgs = 10, 50

    async def one(portal, i: int, results: dict) -> None:
        async with portal.open_context(add_one_each, start=i * 1000) as (ctx, first):
            assert first == i * 1000
            async with ctx.open_stream() as stream:
                for k in range(n_msgs):
                    await stream.send(i * 1000 + k)
                    assert await stream.receive() == i * 1000 + k + 1
            results[i] = await ctx.wait_for_result()

    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            results: dict[int, int] = {}
            async with trio.open_nursery() as tn:
                for i in range(n_ctx):
                    tn.start_soon(one, portal, i, results)
            assert results == {
                i: i * 1000 + sum(i * 1000 + k for k in range(n_msgs)) for i in range(n_ctx)
            }
            await an.cancel()


async def test_child_opens_context_back_into_parent(runtime_kwargs):
    """Both directions at once over one connection: the root streams to the
    child in one context while the child opens another into the root."""
    with trio.fail_after(TIMEOUT):
        # the root serves this module for its child (open_root_actor option)
        async with tractor.open_nursery(enable_modules=[__name__], **runtime_kwargs) as an:
            portal = await an.start_actor('child', enable_modules=[__name__])
            async with (
                portal.open_context(add_one_each, start=0) as (ctx1, _),
                ctx1.open_stream() as stream1,
            ):
                async with portal.open_context(call_back_into_parent, n=100) as (ctx2, _):
                    for k in range(20):
                        await stream1.send(k)
                        assert await stream1.receive() == k + 1
                    report = await ctx2.wait_for_result()
            assert await ctx1.wait_for_result() == sum(range(20))
            assert report == {
                'parent': tractor.current_actor().name,
                'sum': sum(range(100)),
                'n': 100,
                'presult': 'parent done',
            }
            await an.cancel()


async def test_nested_context_across_three_actors(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('A', enable_modules=[__name__])
            async with portal.open_context(relay, n=50) as (ctx, first):
                assert first['name'] == 'B'
                async with ctx.open_stream() as stream:
                    got = [x async for x in stream]
                assert await ctx.wait_for_result() == 50
            assert got == [i * 10 for i in range(50)]
            await an.cancel()


async def test_nested_context_cancel_reaches_the_far_end(runtime_kwargs, pids_gone):
    """Cancelling the outer context tears down the inner pair and B itself."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('A', enable_modules=[__name__])
            async with portal.open_context(relay, n=10**9) as (ctx, first):
                async with ctx.open_stream() as stream:
                    assert [await stream.receive() for _ in range(5)] == [0, 10, 20, 30, 40]
                    await ctx.cancel()
            assert ctx.cancelled_caught
            # A is still serving; its nested nursery reaped B
            assert await portal.run(not_a_context, x=5) == 5
            assert await pids_gone([first['pid']]) == []
            await an.cancel()


async def test_gather_contexts_fan_out(runtime_kwargs):
    names = ['w0', 'w1', 'w2']
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portals = [await an.start_actor(n, enable_modules=[__name__]) for n in names]
            async with tractor.trionics.gather_contexts(
                [p.open_context(whoami, greeting='hi') for p in portals]
            ) as pairs:
                ctxs = [ctx for ctx, _ in pairs]
                # values in input order
                assert [first for _, first in pairs] == [f'hi {n}' for n in names]
                async with tractor.trionics.gather_contexts(
                    [ctx.open_stream() for ctx in ctxs]
                ) as streams:
                    for k in range(10):
                        for s in streams:
                            await s.send(k)
                        assert [await s.receive() for s in streams] == [f'{n}:{k}' for n in names]
            # every context was exited (and so waited for its result)
            assert [await ctx.wait_for_result() for ctx in ctxs] == names
            await an.cancel()


async def test_gather_contexts_error_cancels_all(runtime_kwargs):
    names = ['w0', 'w1', 'w2']
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portals = [await an.start_actor(n, enable_modules=[__name__]) for n in names]
            with pytest.raises(ZeroDivisionError):
                async with tractor.trionics.gather_contexts(
                    [p.open_context(sleep_forever, tag=n) for p, n in zip(portals, names)]
                ):
                    1 / 0  # noqa: B018 (the division raises)
            for p, n in zip(portals, names):
                assert await p.run(get_events) == [f'{n}: cancelled']
            await an.cancel()


async def test_gather_contexts_plain():
    """Pure trio: values in order, every manager exited, empty input refused."""
    from contextlib import asynccontextmanager

    log: list[str] = []

    @asynccontextmanager
    async def cm(i: int, delay_steps: int):
        for _ in range(delay_steps):  # enter in a different order than given
            await trio.lowlevel.checkpoint()
        log.append(f'enter {i}')
        try:
            yield i * 10
        finally:
            log.append(f'exit {i}')

    with trio.fail_after(TIMEOUT):
        async with tractor.trionics.gather_contexts([cm(i, 5 - i) for i in range(5)]) as vals:
            assert vals == (0, 10, 20, 30, 40)
        assert sorted(log) == sorted(
            [f'enter {i}' for i in range(5)] + [f'exit {i}' for i in range(5)]
        )

        with pytest.raises(ValueError):
            async with tractor.trionics.gather_contexts([]):
                pass

        @asynccontextmanager
        async def broken():
            raise RuntimeError('cannot enter')
            yield

        with pytest.raises(RuntimeError, match='cannot enter'):
            async with tractor.trionics.gather_contexts([cm(1, 0), broken()]):
                pytest.fail('must not enter the body')
        assert log[-1] == 'exit 1'


async def test_unencodable_values(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])

            # as portal.run / open_context kwargs: refused locally
            with pytest.raises(MsgTypeError, match='object'):
                await portal.run(not_a_context, x=object())
            with pytest.raises(MsgTypeError, match='object'):
                async with portal.open_context(echo_started, value=object()):
                    pytest.fail('must not open')
            assert await portal.run(not_a_context, x=3) == 3

            # as a started() value: the callee's send fails, nothing is sent
            async with portal.open_context(started_unencodable) as (ctx, first):
                assert first.startswith('MsgTypeError') and 'object' in first
            assert await ctx.wait_for_result() == 'ok'

            # as a return value: the callee's error, boxed as the TypeError
            # it is (an unencodable value, whatever the spec)
            with pytest.raises(RemoteActorError) as info:
                async with portal.open_context(return_unencodable):
                    pass
            assert info.value.boxed_type is TypeError
            assert 'object' in str(info.value)

            # through a stream, both ways; the stream keeps working after
            async with portal.open_context(collect) as (ctx, _):
                async with ctx.open_stream() as stream:
                    callee_err = await stream.receive()
                    assert 'object' in callee_err
                    await stream.send(1)
                    with pytest.raises(MsgTypeError, match='object'):
                        await stream.send(object())
                    with pytest.raises(MsgTypeError, match='object'):
                        await stream.send({'nested': [object()]})
                    await stream.send(2)
            assert await ctx.wait_for_result() == [1, 2]
            await an.cancel()


async def test_pld_spec(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(ints_only) as (ctx, first):
                assert first is None
                async with ctx.open_stream() as stream:
                    for i in range(5):
                        await stream.send(i)
            assert await ctx.wait_for_result() == 10

            # a payload of another type is refused by the sending side
            # (test_compat_api.py checks the receiver still refuses one too)
            with pytest.raises(MsgTypeError, match='str'):
                async with portal.open_context(ints_only) as (ctx, _):
                    async with ctx.open_stream() as stream:
                        await stream.send(1)
                        await stream.send('two')
                        await trio.sleep_forever()
            await an.cancel()


async def test_a_stream_opened_after_the_callee_returned_ends_at_once(runtime_kwargs):
    """Once the callee returned and its messages were read, a stream opened
    again on the context ends at once (``EndOfChannel``), every time."""
    import tractor_core_testfns as fns

    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('once', enable_modules=[fns.__name__])
            got = []
            async with portal.open_context(fns.return_after_one) as (ctx, _):
                for _ in range(3):
                    async with ctx.open_stream() as stream:
                        got.append([v async for v in stream])
            assert got == [['only'], [], []]
            assert await ctx.wait_for_result() == 'done'
            await an.cancel()
