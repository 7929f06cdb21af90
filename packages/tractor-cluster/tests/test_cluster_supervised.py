"""open_actor_cluster(strategy=..., max_restarts=..., within=...): a
self-healing worker pool over a supervisor; without those arguments the
cluster is exactly the plain one."""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
import trio

import tractor
from tractor import Portal

pytestmark = pytest.mark.slow

BOUND = 90


async def square(x: int) -> int:
    return x * x


async def pid() -> int:
    return os.getpid()


def kill(p: int) -> None:
    os.kill(p, signal.SIGKILL)  # a worker this test spawned


@pytest.fixture(params=['tcp'])
def tpt_proto(request) -> str:
    return request.param


@pytest.mark.slow
async def test_pool_heals_under_a_kill_loop(runtime_kwargs):
    """Workers SIGKILLed one after another while callers keep calling
    through the cluster's portals: each worker comes back under its name,
    every call returns or raises TransportClosed (in flight at a kill),
    nothing hangs, and afterwards every worker answers."""
    kills = 6
    with trio.fail_after(BOUND):
        async with tractor.open_actor_cluster(
            modules=[__name__],
            count=3,
            strategy='one_for_one',
            max_restarts=kills,
            within=60,
            **runtime_kwargs,
        ) as portal_map:
            portals = list(portal_map.values())
            assert all(isinstance(p, tractor.SupervisedPortal) for p in portals)
            outcomes: Counter = Counter()
            stop = trio.Event()

            async def caller(portal: Portal, x: int) -> None:
                while not stop.is_set():
                    try:
                        assert await portal.run(square, x=x) == x * x
                        outcomes['ok'] += 1
                    except tractor.TransportClosed:
                        outcomes['closed'] += 1

            async with trio.open_nursery() as tn:
                for i, portal in enumerate(portals * 2):  # two callers per worker
                    tn.start_soon(caller, portal, i)
                seen: set[int] = set()
                for i in range(kills):
                    portal = portals[i % len(portals)]
                    old = await portal.run(pid)
                    seen.add(old)
                    kill(old)
                    while (new := await _pid_after(portal)) in (old, None):
                        pass
                    seen.add(new)
                stop.set()
            assert sum(p.info.restarts for p in portals) == kills
            assert all(p.info.state == 'running' for p in portals)
            assert [await p.run(square, x=4) for p in portals] == [16] * 3
            assert outcomes['ok'] > 0
            assert len(seen) == kills + len(portals)


async def _pid_after(portal: Portal) -> int | None:
    """The worker's pid, or None for a call that raced the kill."""
    try:
        return await portal.run(pid)
    except tractor.TransportClosed:
        return None


async def test_unsupervised_cluster_is_unchanged(runtime_kwargs):
    """No supervision arguments: plain portals, and a killed worker stays
    dead (its portal raises TransportClosed)."""
    with trio.fail_after(BOUND):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=1, **runtime_kwargs
        ) as portal_map:
            (portal,) = portal_map.values()
            assert type(portal) is Portal
            kill(await portal.run(pid))
            with pytest.raises(tractor.TransportClosed):
                while True:
                    await portal.run(pid)


async def test_too_many_restarts_escapes_the_cluster(runtime_kwargs):
    with trio.fail_after(BOUND):
        with pytest.raises(tractor.TooManyRestarts) as info:
            async with tractor.open_actor_cluster(
                modules=[__name__], count=2, max_restarts=0, **runtime_kwargs
            ) as portal_map:
                victim = portal_map['root.worker_1']
                name = victim.channel.aid.name
                kill(await victim.run(pid))
                await trio.sleep_forever()
    assert info.value.child == name


def test_bad_supervision_argument_fails_before_booting():
    async def main():
        async with tractor.open_actor_cluster(modules=[__name__], count=1, strategy='nope'):
            pass

    with pytest.raises(ValueError, match='strategy'):
        trio.run(main)
    assert tractor.current_actor(err_on_no_runtime=False) is None
