"""open_actor_cluster(): the fleet is torn down on block exit, gracefully or
by kill with ``hard_kill=True``; worker errors and KeyboardInterrupt
propagate. Every test checks that no worker process outlives its block.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest
import trio

import tractor
from tractor import Portal

pytestmark = pytest.mark.slow

# -- functions the workers serve ------------------------------------------------


async def nap(marker_dir: str, shielded: bool = False) -> None:
    """Sleep until cancelled, leaving a marker on start and one if the task
    unwinds (a shielded nap ignores graceful cancellation altogether)."""
    me = tractor.current_actor().name
    Path(marker_dir, f'napping.{me}').touch()
    try:
        with trio.CancelScope(shield=shielded):
            await trio.sleep_forever()
    finally:
        Path(marker_dir, f'unwound.{me}').touch()


async def fail(msg: str) -> None:
    raise ValueError(f'{msg} from {tractor.current_actor().name}')


async def pid() -> int:
    return os.getpid()


@tractor.context
async def hold(ctx: tractor.Context, marker_dir: str) -> None:
    """Stream-less context: report started, then wait to be cancelled."""
    me = tractor.current_actor().name
    await ctx.started(me)
    try:
        await trio.sleep_forever()
    finally:
        Path(marker_dir, f'unwound.{me}').touch()


# -- a worker that fails to boot ----------------------------------------------

FAIL_BOOT_ENV = 'TRACTOR_CLUSTER_TEST_FAIL_BOOT'


def _maybe_fail_boot() -> None:
    """Runs while a worker imports this module (before it is ready): the
    worker named in the environment variable refuses to boot."""
    actor = tractor.current_actor(err_on_no_runtime=False)
    if actor is not None and not actor.is_root and actor.name == os.environ.get(FAIL_BOOT_ENV):
        raise RuntimeError(f'{actor.name} refuses to boot')


_maybe_fail_boot()


# -- helpers ---------------------------------------------------------------------


def markers(d: Path, kind: str) -> list[str]:
    return sorted(p.name.split('.', 1)[1] for p in d.glob(f'{kind}.*'))


async def worker_pids(portal_map: dict[str, Portal]) -> list[int]:
    return [await p.run(pid) for p in portal_map.values()]


def leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for exc in group.exceptions for leaf in leaves(exc)]
    return [group]


# -- graceful teardown on block exit -------------------------------------------------


async def test_block_exit_cancels_fleet_gracefully(
    runtime_kwargs, tmp_path, recording_spawner, alive, wait_until
):
    """By default the fleet is cancelled through the graceful ladder: each
    worker's running task unwinds and the processes exit cleanly, all before
    the block returns."""
    outcomes: dict[str, BaseException] = {}

    async def call(key: str, portal: Portal) -> None:
        try:
            await portal.run(nap, marker_dir=str(tmp_path))
        except Exception as err:
            outcomes[key] = err

    with trio.fail_after(60):
        async with tractor.open_root_actor(**runtime_kwargs), trio.open_nursery() as tn:
            async with tractor.open_actor_cluster(
                modules=[__name__], count=3, start_method=recording_spawner.key
            ) as portal_map:
                pids = await worker_pids(portal_map)
                for key, portal in portal_map.items():
                    tn.start_soon(call, key, portal)
                await wait_until(lambda: len(markers(tmp_path, 'napping')) == 3)
            assert not any(alive(p) for p in pids)
            await wait_until(lambda: len(outcomes) == 3)
    workers = ['root.worker_0', 'root.worker_1', 'root.worker_2']
    assert markers(tmp_path, 'unwound') == workers
    assert recording_spawner.returncodes() == {w: 0 for w in workers}
    # the callers learn their calls ended with the workers
    assert all(
        isinstance(e, (tractor.RemoteActorError, tractor.TransportClosed))
        for e in outcomes.values()
    ), outcomes


async def test_stubborn_worker_killed_after_grace(
    runtime_kwargs, tmp_path, recording_spawner, sigkill, alive, wait_until
):
    """A worker ignoring the graceful cancel (shielded sleep) is still gone
    when the block exits: the ladder ends with a kill."""

    async def call(portal: Portal, shielded: bool) -> None:
        try:
            await portal.run(nap, marker_dir=str(tmp_path), shielded=shielded)
        except Exception:
            pass

    with trio.fail_after(60):
        async with tractor.open_root_actor(**runtime_kwargs), trio.open_nursery() as tn:
            async with tractor.open_actor_cluster(
                modules=[__name__], count=2, start_method=recording_spawner.key
            ) as portal_map:
                pids = await worker_pids(portal_map)
                tn.start_soon(call, portal_map['root.worker_0'], True)
                tn.start_soon(call, portal_map['root.worker_1'], False)
                await wait_until(lambda: len(markers(tmp_path, 'napping')) == 2)
            assert not any(alive(p) for p in pids)
    assert recording_spawner.returncodes() == {'root.worker_0': sigkill, 'root.worker_1': 0}
    assert markers(tmp_path, 'unwound') == ['root.worker_1']


@pytest.mark.parametrize('shielded', [False, True], ids=['cooperative', 'stubborn'])
async def test_hard_kill_kills_workers_outright(
    shielded, runtime_kwargs, tmp_path, recording_spawner, sigkill, alive, wait_until
):
    """``hard_kill=True`` skips the graceful ladder: no worker task gets to
    unwind (cooperative or not), every worker exits by SIGKILL and none is
    left when the block returns."""
    with trio.fail_after(60):
        async with tractor.open_root_actor(**runtime_kwargs), trio.open_nursery() as tn:

            async def call(portal: Portal) -> None:
                try:
                    await portal.run(nap, marker_dir=str(tmp_path), shielded=shielded)
                except Exception:
                    pass

            async with tractor.open_actor_cluster(
                modules=[__name__], count=3, hard_kill=True, start_method=recording_spawner.key
            ) as portal_map:
                pids = await worker_pids(portal_map)
                for portal in portal_map.values():
                    tn.start_soon(call, portal)
                await wait_until(lambda: len(markers(tmp_path, 'napping')) == 3)
            assert not any(alive(p) for p in pids)
    assert recording_spawner.returncodes() == {f'root.worker_{i}': sigkill for i in range(3)}
    assert markers(tmp_path, 'unwound') == []


async def test_hard_kill_on_error_exit(runtime_kwargs, recording_spawner, sigkill, alive):
    """The kill also applies when the block exits by an exception."""
    with trio.fail_after(60):
        with pytest.raises(RuntimeError, match='body failed'):
            async with tractor.open_actor_cluster(
                modules=[__name__],
                count=2,
                hard_kill=True,
                start_method=recording_spawner.key,
                **runtime_kwargs,
            ) as portal_map:
                pids = await worker_pids(portal_map)
                raise RuntimeError('body failed')
    assert not any(alive(p) for p in pids)
    assert recording_spawner.returncodes() == {'root.worker_0': sigkill, 'root.worker_1': sigkill}


# -- errors ---------------------------------------------------------------------------


async def test_one_failing_worker_cancels_all(runtime_kwargs, tmp_path, alive, wait_until):
    """One worker raising cancels the work running in all the others, tears
    the fleet down, and surfaces as RemoteActorError (boxing the ValueError)."""
    with trio.fail_after(60):
        with pytest.raises(tractor.RemoteActorError) as err:
            async with (
                tractor.open_actor_cluster(
                    modules=[__name__], count=3, **runtime_kwargs
                ) as portal_map,
                tractor.trionics.collapse_eg(),
                trio.open_nursery() as tn,
            ):
                pids = await worker_pids(portal_map)
                bad, *others = portal_map.values()
                for portal in others:
                    tn.start_soon(partial(portal.run, nap, marker_dir=str(tmp_path)))
                await wait_until(lambda: len(markers(tmp_path, 'napping')) == 2)
                tn.start_soon(partial(bad.run, fail, msg='boom'))
    assert err.value.boxed_type is ValueError
    assert 'boom from root.worker_0' in str(err.value)
    assert err.value.src_uid[0] == 'root.worker_0'
    assert markers(tmp_path, 'unwound') == ['root.worker_1', 'root.worker_2']
    assert not any(alive(p) for p in pids)


async def test_one_failing_worker_without_collapse_is_grouped(runtime_kwargs, alive):
    """Without collapse_eg() the lone error arrives as trio's nursery made
    it: an ExceptionGroup holding the RemoteActorError."""
    with trio.fail_after(60):
        with pytest.raises(BaseExceptionGroup) as err:
            async with (
                tractor.open_actor_cluster(
                    modules=[__name__], count=2, **runtime_kwargs
                ) as portal_map,
                trio.open_nursery() as tn,
            ):
                pids = await worker_pids(portal_map)
                tn.start_soon(partial(portal_map['root.worker_1'].run, fail, msg='kaboom'))
    (leaf,) = leaves(err.value)
    assert isinstance(leaf, tractor.RemoteActorError)
    assert leaf.boxed_type is ValueError
    assert not any(alive(p) for p in pids)


async def test_several_failing_workers_in_exception_group(runtime_kwargs, alive):
    """Where several workers fail, their errors arrive together in an
    ExceptionGroup (which collapse_eg() leaves intact)."""

    async def verdict(portal: Portal) -> None:
        # shielded so each call waits for its own worker's verdict instead of
        # being cancelled by whichever sibling fails first
        with trio.CancelScope(shield=True):
            await portal.run(fail, msg='bust')

    with trio.fail_after(60):
        with pytest.raises(BaseExceptionGroup) as err:
            async with (
                tractor.open_actor_cluster(
                    modules=[__name__], count=3, **runtime_kwargs
                ) as portal_map,
                tractor.trionics.collapse_eg(),
                trio.open_nursery() as tn,
            ):
                pids = await worker_pids(portal_map)
                for portal in portal_map.values():
                    tn.start_soon(verdict, portal)
    found = leaves(err.value)
    assert all(isinstance(e, tractor.RemoteActorError) for e in found), found
    assert all(e.boxed_type is ValueError for e in found)
    assert sorted(e.src_uid[0] for e in found) == [
        'root.worker_0',
        'root.worker_1',
        'root.worker_2',
    ]
    assert not any(alive(p) for p in pids)


async def test_failing_worker_in_gather_contexts(runtime_kwargs, tmp_path, alive):
    """A context failing in one worker cancels the contexts held with the
    others and surfaces as RemoteActorError."""
    with trio.fail_after(60):
        with pytest.raises(tractor.RemoteActorError) as err:
            async with (
                tractor.open_actor_cluster(
                    modules=[__name__], count=3, **runtime_kwargs
                ) as portal_map,
                tractor.trionics.collapse_eg(),
            ):
                pids = await worker_pids(portal_map)
                portals = list(portal_map.values())
                async with tractor.trionics.gather_contexts(
                    [p.open_context(hold, marker_dir=str(tmp_path)) for p in portals]
                ) as opened:
                    assert sorted(first for _, first in opened) == [
                        'root.worker_0',
                        'root.worker_1',
                        'root.worker_2',
                    ]
                    await portals[1].run(fail, msg='ctx-boom')
    assert err.value.boxed_type is ValueError
    assert markers(tmp_path, 'unwound') == ['root.worker_0', 'root.worker_1', 'root.worker_2']
    assert not any(alive(p) for p in pids)


async def test_worker_boot_failure_surfaces_and_reaps(runtime_kwargs, monkeypatch):
    """A worker that fails while booting: the cluster does not open, the
    error arrives as one RemoteActorError (no group for a lone failure) and
    the workers that did boot are reaped."""
    monkeypatch.setenv(FAIL_BOOT_ENV, 'root.worker_1')
    with trio.fail_after(60):
        with pytest.raises(tractor.RemoteActorError) as err:
            async with tractor.open_actor_cluster(modules=[__name__], count=3, **runtime_kwargs):
                pytest.fail('the cluster opened')
    assert err.value.boxed_type is RuntimeError
    assert 'root.worker_1 refuses to boot' in str(err.value)


async def test_boot_failure_with_hard_kill_kills_the_rest(
    runtime_kwargs, monkeypatch, recording_spawner, sigkill
):
    """``hard_kill`` also governs the teardown after a failed boot: the
    workers that did not fail are killed, not cancelled."""
    monkeypatch.setenv(FAIL_BOOT_ENV, 'root.worker_0')
    with trio.fail_after(60):
        with pytest.raises(tractor.RemoteActorError):
            async with tractor.open_actor_cluster(
                modules=[__name__],
                count=3,
                hard_kill=True,
                start_method=recording_spawner.key,
                **runtime_kwargs,
            ):
                pytest.fail('the cluster opened')
    codes = recording_spawner.returncodes()
    assert {name: codes[name] for name in ('root.worker_1', 'root.worker_2')} == {
        'root.worker_1': sigkill,
        'root.worker_2': sigkill,
    }
    assert codes['root.worker_0'] is not None


async def test_boot_failure_with_several_workers_failing(runtime_kwargs):
    """Every worker failing to boot (an allowlisted module that does not
    exist): the cluster does not open and only RemoteActorErrors surface."""
    with trio.fail_after(60):
        with pytest.raises((tractor.RemoteActorError, BaseExceptionGroup)) as err:
            async with tractor.open_actor_cluster(
                modules=['tractor_cluster_tests_no_such_module'], count=2, **runtime_kwargs
            ):
                pytest.fail('the cluster opened')
    found = leaves(err.value)
    assert found and all(isinstance(e, tractor.RemoteActorError) for e in found), found
    assert all(e.boxed_type is ModuleNotFoundError for e in found)


# -- KeyboardInterrupt -----------------------------------------------------------------


async def test_keyboard_interrupt_tears_down_and_propagates(
    runtime_kwargs, tmp_path, alive, wait_until
):
    """A KeyboardInterrupt raised in the body (the seed's demo) tears the
    fleet down and comes out as itself through collapse_eg()."""
    with trio.fail_after(60):
        with pytest.raises(KeyboardInterrupt):
            async with (
                tractor.open_actor_cluster(
                    modules=[__name__], count=3, **runtime_kwargs
                ) as portal_map,
                tractor.trionics.collapse_eg(),
                trio.open_nursery() as tn,
            ):
                pids = await worker_pids(portal_map)
                for portal in portal_map.values():
                    tn.start_soon(partial(portal.run, nap, marker_dir=str(tmp_path)))
                await wait_until(lambda: len(markers(tmp_path, 'napping')) == 3)
                raise KeyboardInterrupt
    assert markers(tmp_path, 'unwound') == ['root.worker_0', 'root.worker_1', 'root.worker_2']
    assert not any(alive(p) for p in pids)


async def test_keyboard_interrupt_with_hard_kill(runtime_kwargs, recording_spawner, sigkill, alive):
    with trio.fail_after(60):
        with pytest.raises(KeyboardInterrupt):
            async with (
                tractor.open_actor_cluster(
                    modules=[__name__],
                    count=2,
                    hard_kill=True,
                    start_method=recording_spawner.key,
                    **runtime_kwargs,
                ) as portal_map,
                tractor.trionics.collapse_eg(),
            ):
                pids = await worker_pids(portal_map)
                raise KeyboardInterrupt
    assert not any(alive(p) for p in pids)
    assert recording_spawner.returncodes() == {'root.worker_0': sigkill, 'root.worker_1': sigkill}


async def test_outer_cancellation_tears_down(runtime_kwargs, alive):
    """Cancelling the task holding the cluster (a trio cancel scope around
    it) reaps the fleet as well."""
    with trio.fail_after(60):
        with trio.CancelScope() as cs:
            async with tractor.open_actor_cluster(
                modules=[__name__], count=2, **runtime_kwargs
            ) as portal_map:
                pids = await worker_pids(portal_map)
                cs.cancel()
                await trio.sleep_forever()
    assert cs.cancelled_caught
    assert not any(alive(p) for p in pids)


async def test_debug_mode_error_still_propagates(runtime_kwargs, alive):
    """With ``debug_mode=True`` but no terminal on stdin (the suite gives its
    actors /dev/null) a worker error propagates as usual: no session waits
    for input that cannot come."""
    with trio.fail_after(60):
        with pytest.raises(tractor.RemoteActorError) as err:
            async with tractor.open_actor_cluster(
                modules=[__name__], count=2, debug_mode=True, **runtime_kwargs
            ) as portal_map:
                pids = await worker_pids(portal_map)
                await portal_map['root.worker_1'].run(fail, msg='dbg')
    assert err.value.boxed_type is ValueError
    assert not any(alive(p) for p in pids)
