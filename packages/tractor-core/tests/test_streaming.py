"""Streams inside contexts: both directions, order, close, flow control."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import trio

import tractor
from tractor._context import DEFAULT_WINDOW

pytestmark = pytest.mark.slow

TIMEOUT = 30
REPO_ROOT = Path(__file__).resolve().parents[3]

#: what the flooding callee managed to send so far (in its actor)
SENT = [0]


async def get_sent() -> int:
    return SENT[0]


# -- callees -------------------------------------------------------------------


@tractor.context
async def count_to(ctx: tractor.Context, n: int):
    await ctx.started(n)
    async with ctx.open_stream() as stream:
        for i in range(n):
            await stream.send(i)
    return 'sent all'


@tractor.context
async def check_order(ctx: tractor.Context):
    """Receive until the caller closes; return (count, in order?)."""
    await ctx.started()
    n, in_order = 0, True
    async with ctx.open_stream() as stream:
        async for x in stream:
            in_order = in_order and x == n
            n += 1
    return [n, in_order]


@tractor.context
async def echo(ctx: tractor.Context):
    await ctx.started()
    async with ctx.open_stream() as stream:
        async for x in stream:
            await stream.send(x)
    return 'echo done'


@tractor.context
async def send_until_closed(ctx: tractor.Context):
    """Stream a counter until the caller closes its end."""
    await ctx.started()
    sent = 0
    async with ctx.open_stream() as stream:
        # a send after the caller closed its end is dropped: stop then
        while not stream.peer_closed:
            await stream.send(sent)
            sent += 1
    return sent


@tractor.context
async def take_then_close(ctx: tractor.Context, k: int):
    """Receive ``k`` values, then close this side while the caller sends on."""
    await ctx.started()
    async with ctx.open_stream() as stream:
        got = [await stream.receive() for _ in range(k)]
    return got


@tractor.context
async def flood(ctx: tractor.Context):
    """On 'go', send as fast as the stream lets us, counting in SENT."""
    await ctx.started()
    SENT[0] = 0
    async with ctx.open_stream() as stream:
        assert await stream.receive() == 'go'
        while True:
            await stream.send(b'x' * 1024)
            SENT[0] += 1


@tractor.context
async def stream_before_started(ctx: tractor.Context):
    async with ctx.open_stream():
        pass


# -- tests ---------------------------------------------------------------------


async def test_stream_callee_to_caller(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(count_to, n=100) as (ctx, first):
                assert first == 100
                async with ctx.open_stream() as stream:
                    # the callee closing its end ends the loop cleanly
                    got = [x async for x in stream]
                    with pytest.raises(trio.EndOfChannel):
                        await stream.receive()
                assert await ctx.wait_for_result() == 'sent all'
            assert got == list(range(100))
            await an.cancel()


async def test_stream_caller_to_callee(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(check_order) as (ctx, _):
                async with ctx.open_stream() as stream:
                    for i in range(100):
                        await stream.send(i)
                # closing our end ended the callee's `async for`
                assert await ctx.wait_for_result() == [100, True]
            await an.cancel()


async def test_stream_both_ways_at_once(runtime_kwargs):
    """Full duplex: one task sends while another receives the echoes."""
    n = 2000
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(echo) as (ctx, _):
                async with ctx.open_stream() as stream:
                    got = []

                    async def sender():
                        for i in range(n):
                            await stream.send({'i': i, 'text': str(i)})

                    async with trio.open_nursery() as tn:
                        tn.start_soon(sender)
                        for _ in range(n):
                            got.append(await stream.receive())
                assert await ctx.wait_for_result() == 'echo done'
            assert got == [{'i': i, 'text': str(i)} for i in range(n)]
            await an.cancel()


async def test_ten_thousand_messages_in_order(runtime_kwargs):
    n = 10_000
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            # callee -> caller
            async with portal.open_context(count_to, n=n) as (ctx, _):
                async with ctx.open_stream() as stream:
                    got = [x async for x in stream]
            assert got == list(range(n))
            # caller -> callee
            async with portal.open_context(check_order) as (ctx, _):
                async with ctx.open_stream() as stream:
                    for i in range(n):
                        await stream.send(i)
            assert await ctx.wait_for_result() == [n, True]
            await an.cancel()


async def test_early_close_by_caller(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(send_until_closed) as (ctx, _):
                async with ctx.open_stream() as stream:
                    got = []
                    async for x in stream:
                        got.append(x)
                        if len(got) == 5:
                            break
                # this side is closed now
                with pytest.raises(trio.ClosedResourceError):
                    await stream.receive()
                with pytest.raises(trio.ClosedResourceError):
                    await stream.send(1)
            # the callee noticed (stream.peer_closed) and returned
            sent = await ctx.wait_for_result()
            assert got == [0, 1, 2, 3, 4]
            assert sent >= 5
            await an.cancel()


async def test_early_close_by_callee(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(take_then_close, k=3) as (ctx, _):
                async with ctx.open_stream() as stream:
                    sent = 0
                    while not stream.peer_closed:  # until the callee's close reaches us
                        await stream.send(sent)
                        sent += 1
                    await stream.send('dropped')  # the callee reads no more: no error
                    with pytest.raises(trio.EndOfChannel):
                        await stream.receive()
                assert await ctx.wait_for_result() == [0, 1, 2]
            assert sent >= 3
            await an.cancel()


async def test_stream_left_by_a_handled_error(runtime_kwargs):
    """An error that leaves the stream block but is handled in the context
    body still closes our end for the callee (no hang waiting for it)."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(check_order) as (ctx, _):
                with pytest.raises(KeyError):
                    async with ctx.open_stream() as stream:
                        await stream.send(0)
                        await stream.send(1)
                        raise KeyError('handled below')
            assert await ctx.wait_for_result() == [2, True]
            await an.cancel()


@pytest.mark.parametrize('msg_buffer_size', [None, 16])
async def test_slow_consumer_applies_backpressure(runtime_kwargs, msg_buffer_size):
    """While the caller reads nothing, the callee can send at most one
    window of messages; consuming lets it go on. So the receiver's buffer
    (and memory) stays bounded however fast the sender is."""
    window = msg_buffer_size or DEFAULT_WINDOW

    async def sent_now() -> int:
        return await portal.run(get_sent)

    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            async with portal.open_context(flood) as (ctx, _):
                async with ctx.open_stream(msg_buffer_size=msg_buffer_size) as stream:
                    await stream.send('go')
                    # wait until the sender stopped making progress on its own
                    while await sent_now() < window:
                        await trio.sleep(0.01)
                    # many round trips to that actor later it is still
                    # blocked, having sent exactly one window
                    for _ in range(20):
                        assert await sent_now() == window
                    # consuming hands credit back: the sender goes on, and
                    # again by at most what was consumed plus one window
                    for _ in range(window):
                        assert await stream.receive() == b'x' * 1024
                    while await sent_now() < 2 * window:
                        await trio.sleep(0.01)
                    for _ in range(20):
                        assert await sent_now() == 2 * window
                    await ctx.cancel()
            assert ctx.cancel_called
            await an.cancel()


async def test_stream_misuse(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[__name__])
            with pytest.raises(tractor.RemoteActorError) as info:
                async with portal.open_context(stream_before_started):
                    pass
            assert info.value.boxed_type is RuntimeError
            assert 'started' in str(info.value)

            async with portal.open_context(echo) as (ctx, _):
                with pytest.raises(ValueError):
                    async with ctx.open_stream(msg_buffer_size=0):
                        pass
                async with ctx.open_stream() as stream:
                    await stream.send(1)
                    assert await stream.receive() == 1
                    # one open stream at a time (a closed one can be re-opened)
                    with pytest.raises(RuntimeError, match='already has an open stream'):
                        async with ctx.open_stream():
                            pass
            assert await ctx.wait_for_result() == 'echo done'
            await an.cancel()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


async def test_streaming_example_runs():
    """``python examples/streaming_context.py`` from the repo root works."""
    script = REPO_ROOT / 'examples' / 'streaming_context.py'
    env = {**os.environ, 'TRACTOR_TCP_REGISTRY': f'127.0.0.1:{_free_port()}'}
    with trio.fail_after(60):
        proc = await trio.run_process(
            [sys.executable, str(script.relative_to(REPO_ROOT))],
            cwd=REPO_ROOT,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert 'worker says: squarer ready, scale=2' in out
    assert '4 -> 32' in out
    assert f'sum of the next 995 answers: {2 * sum(x * x for x in range(5, 1000))}' in out
    assert 'worker handled 1000 messages' in out
