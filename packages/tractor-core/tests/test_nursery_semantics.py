"""What an actor nursery promises its block: ``an.cancel()`` leaves the
block running, failures are raised once each and all of them, a one-shot
child serves until it is reaped, and a KeyboardInterrupt never hangs."""

import json
import os
import signal
import sys

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import get_state, raise_value_error, serve_forever, sibling_asks
from tractor_testsupport.programs import tree_program

pytestmark = pytest.mark.slow

FNS = [fns.__name__]
BACKENDS = pytest.mark.parametrize('start_method', ['trio', 'forkserver'])


# -- an.cancel() does not cancel the block --------------------------------------


async def test_an_cancel_leaves_the_body_running(runtime_kwargs, pids_gone):
    """Tasks of the block hold contexts on two children; ``an.cancel()``
    reaps the children and returns, the block goes on, and the tasks see
    the documented end of their contexts, not a cancel of their own."""
    seen: dict[str, str] = {}

    async def hold(portal: tractor.Portal, opened: trio.Event) -> None:
        try:
            async with portal.open_context(serve_forever) as (_ctx, first):
                assert first == 'up'
                opened.set()
                await trio.sleep_forever()
        except (tractor.ContextCancelled, tractor.TransportClosed) as err:
            seen[portal.channel.aid.name] = type(err).__name__

    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portals = [await an.start_actor(f'held-{i}', enable_modules=FNS) for i in range(2)]
            pids = [p.channel.aid.pid for p in portals]
            async with trio.open_nursery() as tn:
                for portal in portals:
                    opened = trio.Event()
                    tn.start_soon(hold, portal, opened)
                    await opened.wait()
                await an.cancel()
                assert await pids_gone(pids, timeout=0.1) == []
                # the block is not cancelled: it still waits and runs
                await trio.sleep(0)
                with trio.fail_after(10):
                    while len(seen) < 2:
                        await trio.sleep(0.01)
                tn.cancel_scope.cancel()
            body_went_on = True
    assert body_went_on
    assert set(seen) == {'held-0', 'held-1'}
    assert set(seen.values()) <= {'ContextCancelled', 'TransportClosed'}


async def test_an_cancel_under_collapse_eg_and_nested_nurseries(runtime_kwargs):
    """The same through ``collapse_eg()`` and two levels of trio nurseries:
    no group of bare ``Cancelled`` escapes."""
    with trio.fail_after(30):
        async with (
            tractor.open_nursery(**runtime_kwargs) as an,
            tractor.trionics.collapse_eg(),
            trio.open_nursery() as outer,
        ):
            portal = await an.start_actor('held', enable_modules=FNS)
            done = trio.Event()

            async def inner() -> None:
                async with trio.open_nursery() as tn:

                    async def hold() -> None:
                        try:
                            async with portal.open_context(serve_forever):
                                await trio.sleep_forever()
                        except (tractor.ContextCancelled, tractor.TransportClosed):
                            done.set()

                    tn.start_soon(hold)
                    await trio.sleep_forever()

            outer.start_soon(inner)
            await portal.run(get_state, key='x')  # the context is likely open
            await an.cancel()
            await done.wait()
            outer.cancel_scope.cancel()
        assert done.is_set()


async def test_an_cancel_twice_and_then_exit(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            await an.start_actor('once', enable_modules=FNS)
            await an.cancel()
            await an.cancel()
            assert an.children == {}
            with pytest.raises(RuntimeError, match='cancelled'):
                await an.start_actor('again', enable_modules=FNS)


# -- failures: all of them, each once -----------------------------------------------


async def test_two_failing_children_raise_both(runtime_kwargs):
    """Two one-shot children that fail at once: an ``ExceptionGroup`` of
    both errors, even though the first fails while the second is still
    booting."""
    with trio.fail_after(30):
        with pytest.raises(BaseExceptionGroup) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                await an.run_in_actor(raise_value_error, name='first', msg='one')
                await an.run_in_actor(raise_value_error, name='second', msg='two')
    errors = info.value.exceptions
    assert all(isinstance(e, tractor.RemoteActorError) for e in errors), errors
    assert sorted(e.src_uid[0] for e in errors) == ['first', 'second']
    assert all(e.boxed_type is ValueError for e in errors)


async def test_two_failing_children_through_collapse_eg(runtime_kwargs):
    """``collapse_eg()`` keeps a group of two as a group."""
    with trio.fail_after(30):
        with pytest.raises(BaseExceptionGroup) as info:
            async with tractor.trionics.collapse_eg():
                async with tractor.open_nursery(**runtime_kwargs) as an:
                    await an.run_in_actor(raise_value_error, name='first', msg='one')
                    await an.run_in_actor(raise_value_error, name='second', msg='two')
    assert len(info.value.exceptions) == 2


async def test_one_failure_raised_once_at_result(runtime_kwargs):
    """``await portal.result()`` raises the child's error; the nursery does
    not raise it a second time (no group of the same error twice)."""
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                portal = await an.run_in_actor(raise_value_error, name='boom', msg='once')
                await portal.result()
    assert info.value.boxed_type is ValueError
    assert 'once' in str(info.value)


async def test_failure_handled_at_result_is_not_raised_again(runtime_kwargs):
    """An error the block caught from ``result()`` is handled: the nursery
    exits cleanly."""
    caught = []
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.run_in_actor(raise_value_error, name='boom', msg='handled')
            try:
                await portal.result()
            except tractor.RemoteActorError as err:
                caught.append(err)
    assert [e.boxed_type for e in caught] == [ValueError]


# -- a one-shot child serves until reaped -------------------------------------------


async def test_one_shot_child_serves_until_reaped(runtime_kwargs):
    """A ``run_in_actor`` child whose function already returned still
    answers its siblings' calls until the parent collected its result."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            done = await an.run_in_actor(fns.nothing, name='done_early')
            # give it every chance to have returned before the sibling calls
            daemon = await an.start_actor('asker', enable_modules=FNS)
            for _ in range(3):
                assert await daemon.run(sibling_asks, name='done_early') == 'pong'
            assert await done.result() is None
            await daemon.cancel_actor()


# -- KeyboardInterrupt never hangs ----------------------------------------------------

SCRIPT = os.path.join(os.path.dirname(__file__), 'scripts', 'kbi_tree.py')


@pytest.mark.slow
@BACKENDS
@pytest.mark.parametrize('where', ['body', 'sibling', 'context', 'child', 'sigint'])
async def test_keyboard_interrupt_never_hangs(tpt_proto, reg_addr, pids_gone, start_method, where):
    """KeyboardInterrupt (or Ctrl-C) from the block, a sibling task, inside
    a context or from a child: the program exits with it within the cancel
    grace, leaving no process."""
    grace = float(os.environ.get('TRACTOR_CANCEL_GRACE', 3.0))
    with trio.fail_after(grace + 20):
        async with tree_program(
            [sys.executable, SCRIPT, tpt_proto, json.dumps(reg_addr), start_method, where]
        ) as prog:
            child = (await prog.report())['child']
            if where == 'sigint':
                prog.proc.send_signal(signal.SIGINT)
            with trio.fail_after(grace + 5):
                stderr = await prog.finish()
            assert prog.proc.returncode != 0
            assert b'KeyboardInterrupt' in stderr, stderr.decode()
            assert await pids_gone([child]) == []


@pytest.mark.slow
async def test_ctrl_c_during_a_cancel_does_not_restart_the_grace(tpt_proto, reg_addr, pids_gone):
    """Ctrl-C while ``an.cancel()`` waits for a child stuck in sync code
    (inside a context with it): the nursery's exit cancels again, but the
    child keeps the grace its first cancel gave it (one graceful request;
    the second ladder only waits out what is left, then kills), and the
    context does not wait for the stuck callee to confirm: Ctrl-C never
    lengthens the teardown."""
    with trio.fail_after(30):
        async with tree_program(
            [sys.executable, SCRIPT, tpt_proto, json.dumps(reg_addr), 'trio', 'during_cancel'],
            env={'TRACTOR_LOGLEVEL': 'cancel', 'TRACTOR_CANCEL_GRACE': '2'},
        ) as prog:
            child = (await prog.report())['child']
            stderr = (await prog.finish()).decode()
    assert prog.proc.returncode != 0
    assert 'KeyboardInterrupt' in stderr, stderr
    assert stderr.count('a graceful request, then a kill') == 1, stderr
    assert stderr.count('again: killed in') == 1, stderr
    # the context the Ctrl-C left sent its Cancel without waiting for a
    # callee that cannot answer
    assert 'did not confirm the cancel' not in stderr, stderr
    assert await pids_gone([child]) == []


async def test_child_failure_cancels_nested_trio_nurseries_in_the_body(runtime_kwargs):
    """One-cancels-all reaches tasks in trio nurseries inside the block;
    the group of their ``Cancelled`` is absorbed as a cancel, and only the
    child's error is raised."""
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                async with trio.open_nursery() as outer:

                    async def sleeper() -> None:
                        async with trio.open_nursery() as inner:
                            inner.start_soon(trio.sleep_forever)
                            inner.start_soon(trio.sleep_forever)

                    outer.start_soon(sleeper)
                    outer.start_soon(sleeper)
                    await an.run_in_actor(raise_value_error, name='failer', msg='deep')
    assert info.value.boxed_type is ValueError


async def test_outer_cancel_is_a_cancel_not_a_body_error(runtime_kwargs):
    """A cancel from outside reaching a trio nursery in the block leaves as
    a cancel of that outer scope (a group of only ``Cancelled`` is never a
    body error), and the children are reaped."""
    with trio.fail_after(30):
        with trio.CancelScope() as outer_scope:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                portal = await an.start_actor('idle', enable_modules=FNS)
                async with trio.open_nursery() as tn:
                    tn.start_soon(trio.sleep_forever)
                    tn.start_soon(portal.run, fns.long_sleep)
                    await portal.run(get_state, key='x')
                    outer_scope.cancel()
                    await trio.sleep_forever()
        assert outer_scope.cancelled_caught


async def test_spawn_racing_an_cancel_is_refused_and_reaped(runtime_kwargs):
    """A start_actor() under way when ``an.cancel()`` runs does not hand
    out a child the nursery will never reap: it raises, and the block
    exits (no hang at block exit)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            outcome = []

            async def late() -> None:
                try:
                    await an.start_actor('late', enable_modules=FNS)
                except RuntimeError as err:
                    outcome.append(str(err))
                else:
                    outcome.append('spawned')

            async with trio.open_nursery() as tn:
                tn.start_soon(late)
                await trio.sleep(0)  # the spawn has started
                await an.cancel()
            assert an.children == {}
    assert outcome and ('cancelled' in outcome[0]), outcome


async def test_hard_kill_during_a_one_shot_call_is_not_a_failure(runtime_kwargs, pids_gone):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.run_in_actor(fns.long_sleep, name='sleeper')
            pid = portal.channel.aid.pid
            while await portal.run(get_state, key='sleep') != 'sleeping':
                await trio.sleep(0.01)
            await an.cancel(hard_kill=True)
            body_went_on = True
            with pytest.raises(tractor.ContextCancelled):
                await portal.result()
    assert body_went_on
    assert await pids_gone([pid]) == []


async def test_handled_error_then_cut_short_is_raised(runtime_kwargs):
    """The block handled a child's error from ``result()``, then one
    cancels all cut the rest of it short: the error is raised at exit, so
    skipping that code is never silent."""
    reached = []
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError):
            async with tractor.open_nursery(**runtime_kwargs) as an:
                portal = await an.run_in_actor(raise_value_error, name='boom', msg='x')
                try:
                    await portal.result()
                except tractor.RemoteActorError:
                    pass
                await trio.sleep(1)  # a checkpoint: one cancels all stops the block here
                reached.append('after')
    assert reached == []


async def test_graceful_cancel_of_a_stuck_one_shot_stays_within_one_grace(
    runtime_kwargs, pids_gone
):
    """A one-shot child that ignores the cancel is killed one cancel grace
    after ``an.cancel()``, not two."""
    grace = float(os.environ.get('TRACTOR_CANCEL_GRACE', 3.0))
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.run_in_actor(fns.ignore_cancel, name='stuck')
            while await portal.run(get_state, key='shielded') != 'entered':
                await trio.sleep(0.01)
            start = trio.current_time()
            await an.cancel()
            took = trio.current_time() - start
    # (a bound on what the runtime waits, from its own setting, not a speed test)
    assert took < 1.5 * grace, took
