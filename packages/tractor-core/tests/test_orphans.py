"""No process outlives its tree, even a stuck one (issue #21).

root -> mid -> a grandchild that is stopped, spins holding the GIL, or
ignores SIGTERM and its cancel. With the fork server (the default start
method) every actor of a tree is a child of the tree's fork server, whose
owner is the root: once the root is gone, or done, the server kills every
child still running after ``TRACTOR_ORPHAN_GRACE`` (1 s). So the grandchild
is gone within the cancel grace plus a few seconds of the root's cancel,
and within a few seconds of the root's SIGKILL.

With ``start_method='trio'`` a grandchild is the OS child of its actor
parent. An actor that spawns is a child subreaper (tractor._reaper): when
``mid`` is killed at the end of its grace, its stuck leaf is handed to the
root, which kills it after the orphan grace. When the root is SIGKILLed,
``mid`` loses its parent and gives its children only the orphan grace, not
the cancel grace (the SIGKILL tests run the tree with a 10 s cancel grace to
prove it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor._cancel_ladder import CANCEL_GRACE
from tractor._reaper import ORPHAN_GRACE
from tractor_testsupport.polling import wait_until
from tractor_testsupport.programs import tree_program

pytestmark = pytest.mark.slow

FNS = [fns.__name__]
STUCK = pytest.mark.parametrize('how', ['stopped', 'spinning', 'deaf'])
METHODS = pytest.mark.parametrize('start_method', ['forkserver', 'trio'])
#: the margin the issue allows after the grace (root cancel) or at once
#: (root SIGKILL)
MARGIN = 3.0


async def leaf_of(mid: tractor.Portal) -> int:
    return await wait_until(
        lambda: mid.run(fns.get_state, key='leaf_pid'), "the middle actor's leaf_pid set"
    )


@METHODS
@STUCK
async def test_stuck_grandchild_gone_after_root_cancel(
    how, start_method, runtime_kwargs, pids_gone, alive
):
    with trio.fail_after(60):
        async with tractor.open_nursery(start_method=start_method, **runtime_kwargs) as an:
            mid = await an.run_in_actor(fns.hold_stuck_tree, name='mid', how=how)
            leaf = await leaf_of(mid)
            if how == 'stopped':
                os.kill(leaf, signal.SIGSTOP)
            pids = [mid.channel.aid.pid, leaf]
            assert all(alive(p) for p in pids)
            start = time.monotonic()
            await an.cancel()  # mid is killed at the grace, its leaf is stuck
        left = CANCEL_GRACE + MARGIN - (time.monotonic() - start)
        assert await pids_gone(pids, timeout=max(left, 0.0)) == [], pids


@METHODS
@STUCK
async def test_stuck_grandchild_gone_after_root_sigkill(
    how, start_method, tpt_proto, reg_addr, pids_gone, alive
):
    script = os.path.join(os.path.dirname(__file__), 'scripts', 'tree_root.py')
    with trio.fail_after(60):
        async with tree_program(
            [sys.executable, script, tpt_proto, json.dumps(reg_addr), start_method, how],
            # the orphans' shutdown must not wait for the cancel grace
            env={'TRACTOR_CANCEL_GRACE': '10'},
        ) as prog:
            pids = await prog.report()
            descendants = [pids['child'], pids['grandchild']]
            assert all(alive(p) for p in descendants)
            if how == 'stopped':
                os.kill(pids['grandchild'], signal.SIGSTOP)
            prog.proc.kill()  # SIGKILL: no chance to cancel anything
            await prog.proc.wait()
            assert await pids_gone(descendants, timeout=MARGIN) == [], descendants


@METHODS
@STUCK
async def test_stuck_grandchild_gone_after_its_parent_is_killed(
    how, start_method, runtime_kwargs, pids_gone, alive
):
    """``mid`` is SIGKILLed while the root goes on: its stuck leaf goes too."""
    with trio.fail_after(60):
        async with tractor.open_nursery(start_method=start_method, **runtime_kwargs) as an:
            mid = await an.start_actor('mid', enable_modules=FNS)
            async with trio.open_nursery() as tn:
                tn.start_soon(_run_until_killed, mid, how)
                leaf = await leaf_of(mid)
                if how == 'stopped':
                    os.kill(leaf, signal.SIGSTOP)
                assert alive(leaf)
                os.kill(mid.channel.aid.pid, signal.SIGKILL)
                assert await pids_gone([leaf], timeout=ORPHAN_GRACE + MARGIN) == [], leaf
            await an.cancel()


async def _run_until_killed(mid: tractor.Portal, how: str) -> None:
    with pytest.raises(tractor.TransportClosed):
        await mid.run(fns.hold_stuck_tree, how=how)


async def test_reaper_leaves_the_actors_own_forks_alone(runtime_kwargs):
    """Under 'trio', a child the actor forked without exec shows the
    actor's own title (``tractor._child --uuid <its uuid>``): the reaper's
    sweep after a child exit must not take it for an adopted orphan."""
    with trio.fail_after(60):
        async with tractor.open_nursery(start_method='trio', **runtime_kwargs) as an:
            mid = await an.start_actor('mid', enable_modules=FNS)
            await mid.run(fns.fork_then_spawn_one)
            # past the grace an adopted orphan would get (a bound, not a condition to poll)
            await trio.sleep(ORPHAN_GRACE + 1.0)
            assert await mid.run(fns.release_forked) == 0
            await an.cancel()
