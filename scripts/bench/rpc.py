"""rpc: ``portal.run(noop)`` round trips (p50/p99, calls/s) over TCP and
UDS (and TLS, from the tls family), without and with a 10 KiB argument.
Floor: a raw trio ping-pong of the same ``Start``/``Return`` frames over
the same socket type (see :func:`raw.floor_kinds` for TLS). Rounds of the
calls and the floors alternate so that background load hits all alike.

Also with both ends in this one process (:func:`_one_process`): the root
calls itself over a TCP connection it dialed to its own listener, against
the raw ping-pong's client and server as two tasks of one trio run. With
no process to wake on the other side, that round trip is the CPU work of
both ends, which is far steadier than the cross-process figures on a
shared machine (where each wake-up of a sleeping peer costs tens of
microseconds, and varies with it). The same two also report their
Python-level calls per round trip (``sys.setprofile``): a count, which
does not move with the machine at all."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import trio

import targets
import tractor
from common import median, now, over, pct, registry
from raw import floor_kinds, pingpong, pipelined, raw_peer
from rawpeer import serve_connections
from tractor import _msg

DATA = b'x' * 10 * 1024
CASES = {'noop': {}, '10k': {'data': DATA}}
ROUNDS = 4
#: callers sharing one portal in the concurrency case (and requests
#: outstanding on the floor's one connection)
CALLERS = 64


async def _calls(portal: tractor.Portal, kwargs: dict, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = now()
        await portal.run(targets.noop, **kwargs)
        samples.append(now() - t0)
    return samples


async def _concurrent(portal: tractor.Portal, n: int) -> float:
    """``n`` calls made by :data:`CALLERS` tasks at once over one portal;
    returns calls/s."""
    left = n

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await portal.run(targets.noop)

    t0 = now()
    async with trio.open_nursery() as tn:
        for _ in range(CALLERS):
            tn.start_soon(caller)
    return n / (now() - t0)


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
        portal = await over(await an.start_actor(f'rpc_{key}', enable_modules=['targets']), key)
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
        concurrent: dict[str, list[float]] = {'tractor': [], 'floor': []}
        if key == 'tcp':
            start = _msg.Start(cid=2, ns=targets.__name__, func='noop', kwargs={})
            for _ in range(ROUNDS):
                concurrent['tractor'].append(await _concurrent(portal, n))
                concurrent['floor'].append(await pipelined(peers['floor'], start, n, CALLERS))
        await portal.cancel_actor()
    figures = {}
    if concurrent['tractor']:
        figures[f'rpc.{key}.concurrent{CALLERS}.per_s'] = median(concurrent['tractor'])
        figures[f'floor.raw_pipelined{CALLERS}.{key}.per_s'] = median(concurrent['floor'])
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


async def _python_calls(round_trips: Callable[[int], Awaitable[Any]], n: int) -> float:
    """Python-level calls per round trip of ``round_trips(n)``: every
    function call and coroutine resumption ``sys.setprofile`` reports, the
    loop's own included. A count, so it does not move with the machine's
    speed or load the way the timings do."""
    count = 0

    def hook(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal count
        if event == 'call':
            count += 1

    sys.setprofile(hook)
    try:
        await round_trips(n)
    finally:
        sys.setprofile(None)
    return count / n


async def _one_process(n: int) -> dict[str, float]:
    start = _msg.Start(cid=2, ns=targets.__name__, func='noop', kwargs={})
    runs: dict[str, list[float]] = {'tractor': [], 'floor': []}
    async with (
        tractor.open_root_actor(
            registry_addrs=registry('tcp', ''), enable_modules=['targets']
        ) as actor,
        trio.open_nursery() as tn,
    ):
        (listener,) = await trio.open_tcp_listeners(0, host='127.0.0.1')
        port = listener.socket.getsockname()[1]
        tn.start_soon(serve_connections, listener)

        async def connect() -> trio.abc.Stream:
            return await trio.open_tcp_stream('127.0.0.1', port)

        async with tractor.Portal(await actor.connect(actor.listen_addrs[0])) as portal:
            await _calls(portal, {}, max(10, n // 20))  # warm-up
            await pingpong(connect, start, max(10, n // 20))
            for _ in range(ROUNDS):
                runs['tractor'] += await _calls(portal, {}, n // ROUNDS)
                runs['floor'] += await pingpong(connect, start, n // ROUNDS)
            calls = await _python_calls(lambda k: _calls(portal, {}, k), max(100, n // 10))
            floor_calls = await _python_calls(
                lambda k: pingpong(connect, start, k), max(100, n // 10)
            )
        tn.cancel_scope.cancel()
    return {
        'rpc.one_process.tcp.noop.p50_us': pct(runs['tractor'], 0.5) * 1e6,
        'floor.raw_pingpong_one_process.tcp.noop.p50_us': pct(runs['floor'], 0.5) * 1e6,
        'rpc.one_process.tcp.noop.py_calls': calls,
        'floor.raw_pingpong_one_process.tcp.noop.py_calls': floor_calls,
    }


def run(quick: bool, tmpdir: str) -> dict[str, float]:
    n = 200 if quick else 4000
    figures = {}
    for key in ('tcp', 'uds'):
        figures.update(trio.run(_measure, key, n, tmpdir))
    figures.update(trio.run(_one_process, n))
    return figures
