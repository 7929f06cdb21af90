"""Supervisors (``tractor.open_supervisor``) over real processes: each
strategy with children SIGKILLed, exiting and raising; each restart type;
restart intensity; portals and lookups across restarts; cancellation from
outside, Ctrl-C and nesting."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from functools import partial

import pytest
import trio

import supervisor_testfns as sfns
import tractor
from tractor import TooManyRestarts
from tractor_testsupport.polling import wait_until
from tractor_testsupport.programs import tree_program

pytestmark = pytest.mark.slow

FNS = ['supervisor_testfns']
#: bound on any one test: a hang fails it instead of stalling the suite
BOUND = 60


@pytest.fixture(params=['tcp'])
def tpt_proto(request) -> str:
    """TCP only, unless a test asks for both transports itself."""
    return request.param


async def until(cond, what: str) -> None:
    """Wait (bounded by the test's own ``fail_after``) until ``cond()``."""
    await wait_until(cond, what, poll=0.01)


def restarted(sup, name: str, n: int = 1):
    return lambda: sup.children[name].restarts >= n and sup.children[name].state == 'running'


def restart_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == 'tractor.supervisor'
        and r.levelno == logging.WARNING
        and r.getMessage().startswith('restarting')
    ]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)  # a child this test spawned


# -- strategies --------------------------------------------------------------

#: which children a failure of 'b' (started second of a, b, c) restarts
RESTARTED = {'one_for_one': ['b'], 'one_for_all': ['a', 'b', 'c'], 'rest_for_one': ['b', 'c']}
REASON = {
    'sigkill': 'was killed by SIGKILL',
    'exit': 'exited with code 3',
    'raise': 'raised RuntimeError: failed on cue',
}


@pytest.mark.parametrize('how', ['sigkill', 'exit', 'raise'])
@pytest.mark.parametrize('strategy', ['one_for_one', 'one_for_all', 'rest_for_one'])
async def test_strategy(runtime_kwargs, strategy, how, caplog, pids_gone, tmp_path):
    """'b' ends (SIGKILLed, exiting with code 3, or, as a one-shot, raising):
    the strategy's group is restarted in start order, under the same names,
    one WARNING line each; the others keep their processes."""
    cue, done = tmp_path / 'cue', tmp_path / 'done'
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(strategy=strategy, **runtime_kwargs) as sup:
            portals = {'a': await sup.start_actor('a', enable_modules=FNS)}
            if how == 'raise':
                portals['b'] = await sup.run_in_actor(
                    sfns.fail_on_cue_once, name='b', cue=str(cue), done=str(done)
                )
            else:
                portals['b'] = await sup.start_actor('b', enable_modules=FNS)
            portals['c'] = await sup.start_actor('c', enable_modules=FNS)
            before = {n: info.pid for n, info in sup.children.items()}
            if how == 'sigkill':
                kill(before['b'])
            elif how == 'exit':
                with pytest.raises(tractor.TransportClosed):
                    await portals['b'].run(sfns.exit_now, code=3)
            else:
                cue.touch()
            group = RESTARTED[strategy]
            await until(lambda: all(restarted(sup, n)() for n in group), 'restarted')
            after = {n: info.pid for n, info in sup.children.items()}
            for name in 'abc':
                assert (after[name] != before[name]) is (name in group), (name, before, after)
                assert sup.children[name].restarts == (name in group)
            for name in ('a', 'c'):
                assert await portals[name].run(sfns.pid) == after[name]
            assert sup.children['b'].last_exit == REASON[how]
            lines = restart_lines(caplog)
            assert [line.split("'")[1] for line in lines] == group, lines
            for line in lines:
                assert 'restart #1' in line
                assert (REASON[how] if line.split("'")[1] == 'b' else "restarted with 'b'") in line
            await sup.cancel()
        assert {c.state for c in sup.children.values()} == {'cancelled'}
    assert await pids_gone([*before.values(), *after.values()]) == []


# -- restart types -------------------------------------------------------------


async def test_permanent_is_restarted_even_after_a_cancel(runtime_kwargs):
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            portal = await sup.start_actor('perm', enable_modules=FNS)
            pid = await portal.run(sfns.pid)
            assert await portal.cancel_actor()
            await until(restarted(sup, 'perm'), 'restarted')
            assert await portal.run(sfns.pid) != pid
            assert sup.children['perm'].last_exit == "was cancelled by 'root'"
            await sup.cancel()


async def test_transient_daemon(runtime_kwargs):
    """Restarted after a kill and after an exit of its own (even with code
    0); not after a cancel, whoever asked for it (here a sibling that found
    it through the registrar)."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            portal = await sup.start_actor('tr', restart='transient', enable_modules=FNS)
            kill(await portal.run(sfns.pid))
            await until(restarted(sup, 'tr', 1), 'restarted after the kill')
            # the call itself ends with the actor: its connection drops, or
            # it reports being cancelled by its own shutdown
            with pytest.raises((tractor.TransportClosed, tractor.ContextCancelled)):
                await portal.run(sfns.exit_cleanly)
            await until(restarted(sup, 'tr', 2), 'restarted after exiting with 0')
            assert sup.children['tr'].last_exit == 'shut down on its own'
            other = await sup.start_actor('other', enable_modules=FNS)
            assert await other.run(sfns.cancel_peer, name='tr') is True
            await until(lambda: sup.children['tr'].state == 'done', 'ended for good')
            assert sup.children['tr'].restarts == 2
            assert sup.children['tr'].last_exit == "was cancelled by 'other'"
            with pytest.raises(tractor.TransportClosed, match='will not be restarted'):
                await portal.run(sfns.pid)
            await sup.cancel()


async def test_temporary_is_never_restarted(runtime_kwargs):
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            portal = await sup.start_actor('tmp', restart='temporary', enable_modules=FNS)
            kill(await portal.run(sfns.pid))
            await until(lambda: sup.children['tmp'].state == 'failed', 'ended for good')
            assert sup.children['tmp'].restarts == 0
            with pytest.raises(tractor.TransportClosed, match='will not be restarted'):
                await portal.run(sfns.pid)
            one = await sup.run_in_actor(sfns.fail, name='oneshot', restart='temporary', msg='once')
            with pytest.raises(tractor.RemoteActorError) as info:
                await one.wait_for_result()
            assert info.value.boxed_type is ValueError
            assert sup.children['oneshot'].restarts == 0
        # every child ended for good: the block exits by itself, no error
    assert sup.children['oneshot'].state == 'failed'


async def test_transient_one_shot_reruns_until_it_returns(runtime_kwargs, tmp_path):
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(max_restarts=5, within=60, **runtime_kwargs) as sup:
            portal = await sup.run_in_actor(sfns.flaky, path=str(tmp_path / 'runs'), failures=2)
            assert await portal.wait_for_result() == 2
        # the block ended on its own once the one-shot returned
        assert sup.children['flaky'].state == 'done'
        assert sup.children['flaky'].restarts == 2


async def test_returned_one_shot_serves_until_its_result_is_read(runtime_kwargs, pids_gone):
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            one = await sup.run_in_actor(sfns.pid, name='once')
            other = await sup.start_actor('other', enable_modules=FNS)
            await until(lambda: sup.children['once'].state == 'done', 'returned')
            # still there for its siblings
            once_pid = await other.run(sfns.lookup_pid, name='once')
            assert await one.wait_for_result() == once_pid
            assert await pids_gone([once_pid]) == []
            assert sup.children['once'].restarts == 0
            await sup.cancel()


def test_bad_arguments_fail_before_anything_starts():
    async def main(**kw):
        async with tractor.open_supervisor(**kw):
            pass

    for kw, match in [
        ({'strategy': 'one_for_none'}, 'strategy must be one of'),
        ({'max_restarts': -1}, 'max_restarts'),
        ({'within': 0}, 'within'),
        ({'backoff': (2.0, 1.0)}, 'backoff'),
        ({'backoff': 'fast'}, 'backoff'),
    ]:
        with pytest.raises(ValueError, match=match):
            trio.run(partial(main, **kw))
    assert tractor.current_actor(err_on_no_runtime=False) is None


async def test_bad_restart_type_and_duplicate_names(runtime_kwargs):
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            with pytest.raises(ValueError, match='restart must be one of'):
                await sup.start_actor('x', restart='sometimes', enable_modules=FNS)
            await sup.start_actor('x', enable_modules=FNS)
            with pytest.raises(ValueError, match="already has a child named 'x'"):
                await sup.start_actor('x', enable_modules=FNS)
            assert list(sup.children) == ['x']
            await sup.cancel()
            with pytest.raises(RuntimeError, match='starts no more children'):
                await sup.start_actor('y', enable_modules=FNS)


# -- intensity -----------------------------------------------------------------


async def test_too_many_restarts(runtime_kwargs, pids_gone):
    """The third failure within the window, with max_restarts=2: every
    other child is cancelled, the block raises TooManyRestarts naming the
    child and the count, the last failure as its cause, nothing is left."""
    with trio.fail_after(BOUND):
        with pytest.raises(TooManyRestarts) as info:
            async with tractor.open_supervisor(max_restarts=2, within=60, **runtime_kwargs) as sup:
                bystander = await sup.start_actor('bystander', enable_modules=FNS)
                pids = [await bystander.run(sfns.pid)]
                await sup.run_in_actor(sfns.exit_now, name='crasher', code=7)
                await trio.sleep_forever()  # cancelled when the supervisor gives up
    err = info.value
    assert err.child == 'crasher' and err.restarts == 2 and err.max_restarts == 2
    assert "'crasher'" in str(err) and '2 restart(s)' in str(err)
    assert isinstance(err.__cause__, tractor.ActorFailure)
    assert 'exited with code 7' in str(err.__cause__)
    assert sup.children['crasher'].restarts == 2
    assert sup.children['bystander'].state == 'cancelled'
    assert await pids_gone(pids) == []


async def test_restarts_spaced_beyond_the_window_never_add_up(runtime_kwargs, tmp_path):
    """With a backoff longer than ``within``, each restart finds the window
    empty: max_restarts=1 never trips, however many failures come."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(
            max_restarts=1, within=0.2, backoff=(0.3, 0.3), **runtime_kwargs
        ) as sup:
            portal = await sup.run_in_actor(sfns.flaky, path=str(tmp_path / 'runs'), failures=3)
            assert await portal.wait_for_result() == 3
        assert sup.children['flaky'].restarts == 3


def test_backoff_doubles_up_to_its_cap():
    from tractor._restarts import _check_args, backoff_delay

    pair = _check_args('one_for_one', 3, 5.0, (0.1, 0.5), 30.0)
    assert [backoff_delay(pair, n) for n in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    # a lone number doubles up to `within`
    pair = _check_args('one_for_one', 3, 1.0, 0.25, 30.0)
    assert [backoff_delay(pair, n) for n in range(4)] == [0.25, 0.5, 1.0, 1.0]
    assert backoff_delay(pair, 10_000) == 1.0


async def test_calls_wait_at_most_restart_wait(runtime_kwargs):
    """A call made while the child is restarting (here held back by a long
    backoff) gives up after ``restart_wait`` with TransportClosed; cancelling
    the supervisor cuts the backoff short."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(
            backoff=(3600, 3600), restart_wait=0.2, **runtime_kwargs
        ) as sup:
            portal = await sup.start_actor('slow', enable_modules=FNS)
            kill(await portal.run(sfns.pid))
            await until(lambda: sup.children['slow'].state == 'restarting', 'restarting')
            with pytest.raises(tractor.TransportClosed, match='not back within restart_wait=0.2s'):
                await portal.run(sfns.pid)
            await sup.cancel()
        assert sup.children['slow'].state == 'cancelled'
        assert sup.children['slow'].restarts == 0


async def test_nested_supervisor_escalates(runtime_kwargs):
    """A supervisor inside a child gives up; the child's function fails with
    its TooManyRestarts, and the outer supervisor (max_restarts=0) gives up
    in turn with that error as the cause."""
    with trio.fail_after(BOUND):
        with pytest.raises(TooManyRestarts) as info:
            async with tractor.open_supervisor(max_restarts=0, **runtime_kwargs) as sup:
                await sup.run_in_actor(sfns.supervise_dying, name='middle', max_restarts=1)
    assert info.value.child == 'middle' and info.value.restarts == 0
    cause = info.value.__cause__
    assert isinstance(cause, tractor.RemoteActorError)
    assert cause.boxed_type is TooManyRestarts
    assert "'grandchild'" in str(cause)


# -- portals and lookups across restarts ----------------------------------------


@pytest.mark.parametrize('tpt_proto', ['tcp', 'uds'])
async def test_portal_follows_restarts(runtime_kwargs):
    """A call in flight when the child dies raises TransportClosed at once;
    the next call waits for the new incarnation and goes to it; contexts
    open on the new one too."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            portal = await sup.start_actor('svc', enable_modules=FNS)
            first = await portal.run(sfns.pid)
            assert isinstance(portal, tractor.Portal)
            assert portal.channel.aid.pid == first
            async with trio.open_nursery() as tn:

                async def in_flight():
                    with pytest.raises(tractor.TransportClosed):
                        await portal.run(sfns.sleep_marked)

                tn.start_soon(in_flight)
                while not await portal.run(sfns.get_state, key='sleeping'):
                    await trio.sleep(0.01)  # until the call runs in the child
                kill(first)
            second = await portal.run(sfns.pid)  # right away: waits for the restart
            assert second != first and portal.channel.aid.pid == second
            assert sup.children['svc'].restarts == 1
            async with portal.open_context(sfns.started_pid) as (ctx, ctx_pid):
                assert ctx_pid == second
                async with ctx.open_stream() as stream:
                    await stream.send('hi')
                    assert await stream.receive() == 'hi'
            kill(second)
            # a call sent before the death is noticed would be in flight
            # (TransportClosed): this one waits until the supervisor saw it
            await until(
                lambda: sup.children['svc'].state != 'running' or sup.children['svc'].restarts >= 2,
                'death noticed',
            )
            assert await portal.run(sfns.pid) not in (first, second)
            await sup.cancel()


async def test_find_actor_reaches_the_new_incarnation(runtime_kwargs):
    """After a restart, lookups by name (here, our own and a sibling's
    through the registrar) reach the new process."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            portal = await sup.start_actor('named', enable_modules=FNS)
            other = await sup.start_actor('looker', enable_modules=FNS)
            old = await portal.run(sfns.pid)
            assert await other.run(sfns.lookup_pid, name='named') == old
            kill(old)
            await until(restarted(sup, 'named'), 'restarted')
            new = sup.children['named'].pid
            assert new != old
            async with tractor.find_actor('named') as found:
                assert await found.run(sfns.pid) == new
            assert await other.run(sfns.lookup_pid, name='named') == new
            await sup.cancel()


# -- cancellation from outside, Ctrl-C ----------------------------------------------


async def test_outside_cancel_restarts_nothing(runtime_kwargs, caplog, pids_gone):
    """A cancel of a scope around the supervisor stops every child (the
    permanent ones included) and restarts none of them during teardown."""
    with trio.fail_after(BOUND):
        with trio.CancelScope() as outer:
            async with tractor.open_supervisor(strategy='one_for_all', **runtime_kwargs) as sup:
                portals = [await sup.start_actor(f'p{i}', enable_modules=FNS) for i in range(3)]
                pids = [await p.run(sfns.pid) for p in portals]
                await sup.run_in_actor(sfns.sleep_forever, name='oneshot', restart='permanent')
                outer.cancel()
                await trio.sleep_forever()
    assert outer.cancelled_caught
    assert restart_lines(caplog) == []
    assert {c.state for c in sup.children.values()} == {'cancelled'}
    assert all(c.restarts == 0 for c in sup.children.values())
    assert await pids_gone(pids) == []


@pytest.mark.parametrize('mode', ['sigint', 'raise'])
async def test_ctrl_c_tears_the_supervised_tree_down(tpt_proto, reg_addr, pids_gone, mode):
    """SIGINT to the root (children ignore it), or KeyboardInterrupt raised
    in the supervisor's block: the program exits with KeyboardInterrupt,
    no child restarted, no process left."""
    script = os.path.join(os.path.dirname(__file__), 'scripts', 'supervised_root.py')
    with trio.fail_after(BOUND):
        async with tree_program(
            [sys.executable, script, tpt_proto, json.dumps(reg_addr), mode]
        ) as prog:
            pids = await prog.report()
            if mode == 'sigint':
                prog.proc.send_signal(signal.SIGINT)
            stderr = await prog.finish()
            assert prog.proc.returncode != 0
            assert b'KeyboardInterrupt' in stderr, stderr.decode()
            assert b'restarting' not in stderr, stderr.decode()
            assert await pids_gone(pids) == []


async def test_a_failed_restart_counts_as_a_failure(runtime_kwargs, tmp_path, monkeypatch):
    """A child whose new incarnation cannot start (its module no longer
    imports) is retried, each attempt a restart, until the intensity is
    exceeded; the spawn error is the cause."""
    flag = tmp_path / 'broken'
    monkeypatch.setenv('SUP_TEST_BREAK_IMPORT', str(flag))
    with trio.fail_after(BOUND):
        with pytest.raises(TooManyRestarts) as info:
            async with tractor.open_supervisor(max_restarts=2, within=60, **runtime_kwargs) as sup:
                portal = await sup.start_actor(
                    'fragile', enable_modules=[*FNS, 'supervisor_breakable']
                )
                flag.touch()
                kill(await portal.run(sfns.pid))
                await trio.sleep_forever()
    assert info.value.child == 'fragile' and info.value.restarts == 2
    cause = info.value.__cause__
    assert isinstance(cause, tractor.RemoteActorError) and cause.boxed_type is ImportError
    assert 'broken on purpose' in str(cause)
    assert sup.children['fragile'].restarts == 2


async def test_group_restart_leaves_temporary_siblings_stopped(runtime_kwargs, pids_gone):
    """one_for_all: a temporary sibling is stopped with the group and not
    restarted (state 'cancelled'); the permanent ones come back."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(strategy='one_for_all', **runtime_kwargs) as sup:
            keeper = await sup.start_actor('keeper', enable_modules=FNS)
            temp = await sup.start_actor('temp', restart='temporary', enable_modules=FNS)
            temp_pid = await temp.run(sfns.pid)
            kill(await keeper.run(sfns.pid))
            await until(restarted(sup, 'keeper'), 'keeper restarted')
            assert sup.children['temp'].state == 'cancelled'
            assert sup.children['temp'].restarts == 0
            assert await pids_gone([temp_pid]) == []
            with pytest.raises(tractor.TransportClosed, match='will not be restarted'):
                await temp.run(sfns.pid)
            await sup.cancel()


async def test_infected_asyncio_child_is_supervised(runtime_kwargs):
    """Spawn options pass through, infect_asyncio included: an asyncio-infected
    child is watched and restarted like any other."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            portal = await sup.start_actor('aio', infect_asyncio=True, enable_modules=FNS)
            kill(await portal.run(sfns.pid))
            await until(restarted(sup, 'aio'), 'restarted')
            assert await portal.run(sfns.pid) == sup.children['aio'].pid
            await sup.cancel()
