"""No process outlives its tree, even a stuck one (issue #21).

root -> mid -> a grandchild that is stopped, spins holding the GIL, or
ignores SIGTERM and its cancel. With the fork server (the default start
method) every actor of a tree is a child of the tree's fork server, whose
owner is the root: once the root is gone, or done, the server kills every
child still running after ``TRACTOR_ORPHAN_GRACE`` (1 s). So the grandchild
is gone within the cancel grace plus a few seconds of the root's cancel,
and within a few seconds of the root's SIGKILL.

Not covered yet: ``start_method='trio'``, where a grandchild is the OS
child of its actor parent and is reparented to init when that parent is
killed (see docs/reliability.md).
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
from tractor_testsupport.polling import wait_until
from tractor_testsupport.programs import tree_program

pytestmark = pytest.mark.slow

FNS = [fns.__name__]
STUCK = pytest.mark.parametrize('how', ['stopped', 'spinning', 'deaf'])
#: the margin the issue allows after the grace (root cancel) or at once
#: (root SIGKILL)
MARGIN = 3.0


async def leaf_of(mid: tractor.Portal) -> int:
    return await wait_until(
        lambda: mid.run(fns.get_state, key='leaf_pid'), "the middle actor's leaf_pid set"
    )


@STUCK
async def test_stuck_grandchild_gone_after_root_cancel(how, runtime_kwargs, pids_gone, alive):
    with trio.fail_after(60):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
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


@STUCK
async def test_stuck_grandchild_gone_after_root_sigkill(how, tpt_proto, reg_addr, pids_gone, alive):
    script = os.path.join(os.path.dirname(__file__), 'scripts', 'tree_root.py')
    with trio.fail_after(60):
        async with tree_program(
            [sys.executable, script, tpt_proto, json.dumps(reg_addr), 'forkserver', how]
        ) as prog:
            pids = await prog.report()
            descendants = [pids['child'], pids['grandchild']]
            assert all(alive(p) for p in descendants)
            if how == 'stopped':
                os.kill(pids['grandchild'], signal.SIGSTOP)
            prog.proc.kill()  # SIGKILL: no chance to cancel anything
            await prog.proc.wait()
            assert await pids_gone(descendants, timeout=MARGIN) == [], descendants
