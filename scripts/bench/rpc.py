"""rpc: ``portal.run(noop)`` round trips (p50/p99, calls/s) over TCP and
UDS (and TLS, from the tls family), without and with a 10 KiB argument.
Floor: a raw trio ping-pong of the same ``Start``/``Return`` frames over
the same socket type (see :func:`raw.floor_kinds` for TLS). Rounds of the
calls and the floors alternate so that background load hits all alike."""

from __future__ import annotations

from contextlib import AsyncExitStack

import trio

import targets
import tractor
from common import now, pct, registry
from raw import floor_kinds, pingpong, raw_peer
from tractor import _msg

DATA = b'x' * 10 * 1024
CASES = {'noop': {}, '10k': {'data': DATA}}
ROUNDS = 4


async def _calls(portal: tractor.Portal, kwargs: dict, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = now()
        await portal.run(targets.noop, **kwargs)
        samples.append(now() - t0)
    return samples


async def _measure(key: str, n: int, tmpdir: str) -> dict[str, float]:
    reg = registry(key, tmpdir)
    runs: dict[tuple[str, str], list[float]] = {}
    async with AsyncExitStack() as stack:
        peers = {
            role: await stack.enter_async_context(raw_peer(kind, tmpdir))
            for role, kind in floor_kinds(key).items()
        }
        an = await stack.enter_async_context(
            tractor.open_nursery(registry_addrs=reg, enable_transports=[key])
        )
        portal = await an.start_actor(f'rpc_{key}', enable_modules=['targets'])
        proto = portal.channel.raddr.proto_key
        if proto != key:
            raise RuntimeError(f'the {key} benchmark runs over {proto}')
        for case, kwargs in CASES.items():
            # the frame that portal.run(targets.noop, **kwargs) sends
            start = _msg.Start(cid=2, ns=targets.__name__, func='noop', kwargs=kwargs)
            await _calls(portal, kwargs, max(10, n // 20))  # warm-up
            for connect in peers.values():
                await pingpong(connect, start, max(10, n // 20))
            for _ in range(ROUNDS):
                runs.setdefault(('tractor', case), []).extend(
                    await _calls(portal, kwargs, n // ROUNDS)
                )
                for role, connect in peers.items():
                    runs.setdefault((role, case), []).extend(
                        await pingpong(connect, start, n // ROUNDS)
                    )
        await portal.cancel_actor()
    figures = {}
    prefixes = {
        'tractor': f'rpc.{key}',
        'floor': f'floor.raw_pingpong.{key}',
        'own': f'floor.raw_pingpong.{key}_own',
    }
    for (who, case), samples in runs.items():
        prefix = f'{prefixes[who]}.{case}'
        figures[f'{prefix}.p50_us'] = pct(samples, 0.5) * 1e6
        figures[f'{prefix}.p99_us'] = pct(samples, 0.99) * 1e6
        figures[f'{prefix}.per_s'] = len(samples) / sum(samples)
    return figures


def run(quick: bool, tmpdir: str) -> dict[str, float]:
    n = 200 if quick else 4000
    figures = {}
    for key in ('tcp', 'uds'):
        figures.update(trio.run(_measure, key, n, tmpdir))
    return figures
