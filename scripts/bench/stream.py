"""stream: one-way messages/s through a context stream and the echo round
trip, over TCP (and TLS, from the tls family). Floors: the same ``Yield`` frames sent one way in batches of
up to 64 per write to a receiver that decodes each, and ping-ponged."""

from __future__ import annotations

import trio

import targets
import tractor
from common import now, over, pct, registry
from raw import floor_kinds, oneway, pingpong, raw_peer
from tractor import _msg

#: every stream message (and its raw floor frame) carries this value
PAYLOAD = b'x' * 32
ROUNDS = 3


async def _oneway(portal: tractor.Portal, n: int) -> float:
    async with portal.open_context(targets.sink) as (ctx, _):
        async with ctx.open_stream() as stream:
            t0 = now()
            for _ in range(n):
                await stream.send(PAYLOAD)
        # the callee returns once it has drained the stream
        got = await ctx.wait_for_result()
        elapsed = now() - t0
    assert got == n, (got, n)
    return n / elapsed


async def _echo(portal: tractor.Portal, n: int) -> list[float]:
    samples = []
    async with portal.open_context(targets.echo) as (ctx, _):
        async with ctx.open_stream() as stream:
            for _ in range(n):
                t0 = now()
                await stream.send(PAYLOAD)
                await stream.receive()
                samples.append(now() - t0)
    return samples


async def _measure(n_oneway: int, n_echo: int, tmpdir: str, key: str = 'tcp') -> dict[str, float]:
    yield_msg = _msg.Yield(cid=2, pld=PAYLOAD)
    rates: dict[str, list[float]] = {'tractor': [], 'raw': []}
    echoes: dict[str, list[float]] = {'tractor': [], 'raw': []}
    async with (
        raw_peer(floor_kinds(key)['floor'], tmpdir) as connect,
        tractor.open_nursery(registry_addrs=registry(key, tmpdir), enable_transports=[key]) as an,
    ):
        portal = await over(await an.start_actor('stream_target', enable_modules=['targets']), key)
        await _oneway(portal, n_oneway // 10)  # warm-up
        await oneway(connect, yield_msg, n_oneway // 10)
        for _ in range(ROUNDS):
            rates['tractor'].append(await _oneway(portal, n_oneway))
            rates['raw'].append(await oneway(connect, yield_msg, n_oneway))
            echoes['tractor'] += await _echo(portal, n_echo // ROUNDS)
            echoes['raw'] += await pingpong(connect, yield_msg, n_echo // ROUNDS)
        await portal.cancel_actor()
    return {
        f'stream.{key}.oneway_per_s': max(rates['tractor']),
        f'floor.raw_oneway_batched.{key}.per_s': max(rates['raw']),
        f'stream.{key}.echo.p50_us': pct(echoes['tractor'], 0.5) * 1e6,
        f'floor.raw_pingpong.{key}.yield.p50_us': pct(echoes['raw'], 0.5) * 1e6,
    }


def run(quick: bool, tmpdir: str) -> dict[str, float]:
    if quick:
        return trio.run(_measure, 2000, 300, tmpdir)
    return trio.run(_measure, 50_000, 3000, tmpdir)
