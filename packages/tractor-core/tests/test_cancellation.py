"""Cancellation: graceful, hard, ignored, scoped, and actors that vanish."""

import functools
import json
import os
import signal
import sys

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import get_state, hold_tree, ignore_cancel, long_sleep, payload_len
from tractor_testsupport.polling import wait_until
from tractor_testsupport.procs import children_of, cmdline
from tractor_testsupport.programs import tree_program

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


async def poll_remote(portal: tractor.Portal, key: str, want=None):
    """Ask ``portal``'s actor for ``STATE[key]`` until it is set (or equals
    ``want``); callers bound the wait."""

    async def matched() -> tuple | None:
        value = await portal.run(get_state, key=key)
        return (value,) if value is not None and (want is None or value == want) else None

    found = await wait_until(matched, f'STATE[{key!r}] of {portal!r} is {want or "set"!r}')
    return found[0]


async def test_graceful_cancel(runtime_kwargs, pids_gone, alive):
    """an.cancel() stops daemons, including one busy in a call, and returns
    once they are reaped."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            idle = await an.start_actor('idle', enable_modules=FNS)
            busy = await an.start_actor('busy', enable_modules=FNS)
            pids = [idle.channel.aid.pid, busy.channel.aid.pid]
            outcome = {}

            async def call_busy() -> None:
                try:
                    await busy.run(long_sleep)
                except tractor.ContextCancelled as err:
                    outcome['err'] = err

            async with trio.open_nursery() as tn:
                tn.start_soon(call_busy)
                await poll_remote(busy, 'sleep', 'sleeping')
                await an.cancel()
            # cancel() returns only once every child is reaped
            assert [p for p in pids if alive(p)] == []
            # the caller of the interrupted call learns who cancelled it
            err = outcome['err']
            assert err.canceller == tractor.current_actor().uid
            assert err.src_uid == busy.channel.aid.uid
    assert await pids_gone(pids) == []


async def test_hard_kill(runtime_kwargs, alive):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portals = [await an.start_actor(f'doomed-{i}', enable_modules=FNS) for i in range(2)]
            pids = [p.channel.aid.pid for p in portals]
            errors = []

            async def call(portal) -> None:
                try:
                    await portal.run(long_sleep)
                except tractor.TransportClosed as err:
                    errors.append(err)

            async with trio.open_nursery() as tn:
                for portal in portals:
                    tn.start_soon(call, portal)
                for portal in portals:
                    await poll_remote(portal, 'sleep', 'sleeping')
                await an.cancel(hard_kill=True)
            assert [p for p in pids if alive(p)] == []
            # killed without a goodbye: callers see the connection drop
            assert len(errors) == 2
            assert not any(p.channel.connected() for p in portals)


async def test_child_ignoring_cancel_is_killed(runtime_kwargs, alive):
    """A child whose task shields itself from cancellation is killed after
    the grace period ($TRACTOR_CANCEL_GRACE) instead of hanging the parent."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('stubborn', enable_modules=FNS)
            pid = portal.channel.aid.pid
            async with trio.open_nursery() as tn:
                tn.start_soon(portal.run, ignore_cancel)
                await poll_remote(portal, 'shielded')
                tn.cancel_scope.cancel()  # the remote task ignores this too
            assert alive(pid)
            # the actor acknowledges the cancel request but cannot finish it
            await an.cancel()
            assert not alive(pid)


async def test_cancel_scope_cancels_remote_task(runtime_kwargs):
    """Cancelling the caller's scope around portal.run() cancels the task in
    the callee; the callee keeps serving."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=FNS)
            async with trio.open_nursery() as tn:
                cs = trio.CancelScope()

                async def call() -> None:
                    with cs:
                        await portal.run(long_sleep, key='scoped')

                tn.start_soon(call)
                await poll_remote(portal, 'scoped', 'sleeping')
                cs.cancel()
            assert cs.cancelled_caught
            assert await poll_remote(portal, 'scoped', 'cancelled') == 'cancelled'
            # a cancelled call leaves the actor usable
            with trio.move_on_after(0.01):
                await portal.run(long_sleep, key='again')
            assert await poll_remote(portal, 'again', 'cancelled') == 'cancelled'
            await an.cancel()


async def test_outer_cancel_reaps_children(runtime_kwargs, pids_gone):
    """Cancelling a scope around the whole actor nursery cancels its children."""
    pids = []
    with trio.fail_after(30):
        with trio.CancelScope() as outer:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                for i in range(2):
                    p = await an.start_actor(f'kid-{i}', enable_modules=FNS)
                    pids.append(p.channel.aid.pid)
                await an.run_in_actor(long_sleep, name='oneshot')
                outer.cancel()
                await trio.sleep_forever()
        assert outer.cancelled_caught
    assert await pids_gone(pids) == []


async def test_sigkill_middle_actor(runtime_kwargs, pids_gone):
    """root -> middle -> leaf; SIGKILL the middle: the root's call into it
    fails promptly and the orphaned leaf shuts itself down."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            middle = await an.start_actor('middle', enable_modules=FNS)
            middle_pid = middle.channel.aid.pid
            errors = []
            tree = {}

            async def kill_when_tree_is_up() -> None:
                tree['leaf_pid'] = await poll_remote(middle, 'leaf_pid')
                os.kill(middle_pid, signal.SIGKILL)

            async with trio.open_nursery() as tn:
                tn.start_soon(kill_when_tree_is_up)
                try:
                    await middle.run(hold_tree)
                except (tractor.TransportClosed, tractor.RemoteActorError) as err:
                    errors.append(err)
            assert len(errors) == 1
            assert not middle.channel.connected()
            leaf_pid = tree['leaf_pid']
            assert await pids_gone([middle_pid, leaf_pid]) == []
            # the nursery carries on: it can still spawn
            again = await an.start_actor('again', enable_modules=FNS)
            assert await again.run(get_state, key='nothing') is None
            await an.cancel()


#: both spawn backends, whichever is the default
BACKENDS = pytest.mark.parametrize('start_method', ['trio', 'forkserver'])


@BACKENDS
async def test_sigkill_root_leaves_no_process(tpt_proto, reg_addr, pids_gone, alive, start_method):
    """SIGKILL the root of a three-level tree: every descendant exits."""
    script = os.path.join(os.path.dirname(__file__), 'scripts', 'tree_root.py')
    with trio.fail_after(45):
        async with tree_program(
            [sys.executable, script, tpt_proto, json.dumps(reg_addr), start_method]
        ) as prog:
            pids = await prog.report()
            descendants = [pids['child'], pids['grandchild']]
            assert all(alive(p) for p in descendants)
            prog.proc.kill()  # SIGKILL: no chance to cancel anything
            await prog.proc.wait()
            assert prog.proc.returncode == -signal.SIGKILL
            assert await pids_gone(descendants) == []


async def test_cancel_during_large_send(runtime_kwargs):
    """Cancelling a call while its (large) request is being written never
    leaves a torn frame on the connection: later calls still work."""
    payload = b'x' * (8 * 1024 * 1024)  # far more than a socket buffer
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('big', enable_modules=FNS)
            # cancel after a varying number of scheduling rounds, so some
            # land before, during and after the write
            for rounds in range(6):
                async with trio.open_nursery() as tn:
                    tn.start_soon(functools.partial(portal.run, payload_len, value=payload))
                    for _ in range(rounds):
                        await trio.sleep(0)
                    tn.cancel_scope.cancel()
                assert await portal.run(payload_len, value=b'abc') == 3
            assert await portal.run(payload_len, value=payload) == len(payload)
            await an.cancel()


def _actor_pids() -> set[int]:
    """Our subactor processes, once they run ``tractor._child``: children of
    ours or of our fork server's (start_method='forkserver')."""
    return {
        candidate
        for pid in children_of()
        for candidate in (pid, *children_of(pid))
        if b'tractor._child' in cmdline(candidate)
    }


async def test_cancel_during_spawn(runtime_kwargs, pids_gone):
    """Cancelling start_actor() while the child boots kills and reaps it;
    the nursery stays usable."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            before = _actor_pids()
            with trio.CancelScope() as cs:
                async with trio.open_nursery() as tn:
                    tn.start_soon(
                        functools.partial(an.start_actor, 'interrupted', enable_modules=FNS)
                    )
                    while not (new := _actor_pids() - before):
                        await trio.sleep(0.005)
                    cs.cancel()  # the process exists but is not serving yet
            assert await pids_gone(new) == []
            assert an.children == {}
            portal = await an.start_actor('after', enable_modules=FNS)
            assert await portal.run(get_state, key='x') is None
            await an.cancel()


async def test_child_dies_mid_call(runtime_kwargs, pids_gone):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('fragile', enable_modules=FNS)
            pid = portal.channel.aid.pid
            with pytest.raises(tractor.TransportClosed):
                await portal.run(fns.die, code=3)
            assert await pids_gone([pid]) == []
            with pytest.raises(tractor.TransportClosed):
                await portal.run(get_state, key='x')
            assert await portal.cancel_actor() is False


@BACKENDS
async def test_ctrl_c_in_root_tears_down_tree(tpt_proto, reg_addr, pids_gone, start_method):
    """SIGINT to the root (children ignore it) cancels the whole tree
    gracefully: the root exits with KeyboardInterrupt, nothing is left."""
    script = os.path.join(os.path.dirname(__file__), 'scripts', 'tree_root.py')
    with trio.fail_after(45):
        async with tree_program(
            [sys.executable, script, tpt_proto, json.dumps(reg_addr), start_method]
        ) as prog:
            pids = await prog.report()
            prog.proc.send_signal(signal.SIGINT)
            stderr = await prog.finish()
            assert prog.proc.returncode != 0
            assert b'KeyboardInterrupt' in stderr, stderr.decode()
            assert await pids_gone([pids['child'], pids['grandchild']]) == []


async def test_outer_cancel_logs_child_failure(runtime_kwargs, caplog):
    """A child failing while an outer cancel tears its nursery down does not
    turn the cancel into an error, but its failure is logged, not lost."""
    with trio.fail_after(30):
        with trio.CancelScope() as outer:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                portal = await an.run_in_actor(fns.fail_when_cancelled, name='grumpy')
                await poll_remote(portal, 'armed')
                outer.cancel()
                await trio.sleep_forever()
    assert outer.cancelled_caught
    logged = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
    assert any('failed while being cancelled' in m for m in logged), logged
