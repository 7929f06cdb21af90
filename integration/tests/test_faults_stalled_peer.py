"""A peer that stops reading (SIGSTOPped) while an actor streams to it
(over TCP and UDS): the sender's memory stays bounded (stream credit and
whole-frame sends hold at most a window), and once a frame has been stuck
for ``TRACTOR_SEND_STALL_TIMEOUT`` (set low here; 30 s by default) the
sender drops that peer: its stream raises ``TransportClosed`` and it
serves everyone else as before."""

from __future__ import annotations

import os
import signal

import pytest
import trio

import tractor
from tractor_testsupport.polling import wait_until

pytestmark = pytest.mark.slow

STATE: dict[str, object] = {}
BOUND = 60
#: frames well above a socket buffer's worth in flight, below the window
CHUNK = 256 * 1024
#: the sender's resident memory may grow by less than this
RSS_BOUND = 50 * 1024 * 1024


def get_state(key: str):
    return STATE.get(key)


def peers(name: str) -> int:
    return len(tractor.current_actor().get_peer_channels(name))


def rss() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmRSS')


async def ping() -> str:
    return 'pong'


@tractor.context
async def firehose(ctx: tractor.Context, size: int) -> None:
    """Stream ``size``-byte chunks as fast as the reader takes them."""
    await ctx.started()
    chunk = b'x' * size
    try:
        async with ctx.open_stream() as stream:
            while True:
                await stream.send(chunk)
    except BaseException as err:
        STATE['firehose'] = type(err).__name__
        raise


async def consume(sender: str) -> None:
    """Read the sender's firehose, counting chunks."""
    async with (
        tractor.find_actor(sender) as portal,
        portal.open_context(firehose, size=CHUNK) as (ctx, _),
        ctx.open_stream() as stream,
    ):
        async for _ in stream:
            STATE['got'] = STATE.get('got', 0) + 1


async def until(portal: tractor.Portal, fn, check, **kwargs):
    async def checked() -> tuple | None:
        value = await portal.run(fn, **kwargs)
        return (value,) if check(value) else None

    found = await wait_until(checked, f'{fn.__name__}() in {portal!r} passes its check', poll=0.05)
    return found[0]


async def test_stalled_reader_is_dropped(runtime_kwargs, monkeypatch):
    monkeypatch.setenv('TRACTOR_SEND_STALL_TIMEOUT', '1')  # children read it at boot
    with trio.fail_after(BOUND):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            sender = await an.start_actor('sender', enable_modules=[__name__])
            reader = await an.start_actor('reader', enable_modules=[__name__])
            reader_pid = reader.channel.aid.pid

            async def read() -> None:
                try:
                    await reader.run(consume, sender='sender')
                except tractor.TransportClosed:
                    pass  # we kill it below

            async with trio.open_nursery() as tn:
                tn.start_soon(read)
                await until(reader, get_state, lambda n: (n or 0) >= 200, key='got')
                assert await sender.run(peers, name='reader') == 1
                before = await sender.run(rss)
                os.kill(reader_pid, signal.SIGSTOP)  # our child stops reading
                try:
                    # the stuck send times out and the sender hangs up on it
                    assert await until(sender, get_state, bool, key='firehose') == 'TransportClosed'
                    await until(sender, peers, lambda n: n == 0, name='reader')
                    grown = await sender.run(rss) - before
                    print(f'sender RSS grew {grown / 2**20:.2f} MiB while its reader was stopped')
                    assert grown < RSS_BOUND, f'sender grew by {grown / 2**20:.1f} MiB'
                    assert await sender.run(ping) == 'pong'
                finally:
                    os.kill(reader_pid, signal.SIGKILL)
            await an.cancel()
