"""Supervisors (``tractor.open_supervisor``) over real processes: each
strategy with children SIGKILLed, exiting and raising; each restart type;
restart intensity; portals and lookups across restarts; cancellation from
outside, Ctrl-C and nesting."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys

import pytest
import trio

import tractor
import supervisor_testfns as sfns
from tractor import TooManyRestarts

FNS = ['supervisor_testfns']
#: bound on any one test: a hang fails it instead of stalling the suite
BOUND = 60


@pytest.fixture(params=['tcp'])
def tpt_proto(request) -> str:
    """TCP only, unless a test asks for both transports itself."""
    return request.param


async def until(cond, what: str) -> None:
    """Wait (bounded by the test's own ``fail_after``) until ``cond()``."""
    while not cond():
        await trio.sleep(0.01)


def restarted(sup, name: str, n: int = 1):
    return lambda: sup.children[name].restarts >= n and sup.children[name].state == 'running'


def restart_lines(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.name == 'tractor.supervisor' and r.levelno == logging.WARNING
        and r.getMessage().startswith('restarting')
    ]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)  # a child this test spawned


# -- strategies --------------------------------------------------------------

@pytest.mark.parametrize('how', ['sigkill', 'exit', 'raise'])
async def test_one_for_one(runtime_kwargs, how, caplog, pids_gone, tmp_path):
    """Only the child that ended is restarted, under its own name; its
    sibling keeps its process. One WARNING line per restart."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(**runtime_kwargs) as sup:
            if how == 'raise':
                # a one-shot that raises on its first run, holds on the next
                failing = await sup.run_in_actor(
                    sfns.fail_once_then_hold, name='a', path=str(tmp_path / 'ran'),
                )
            else:
                failing = await sup.start_actor('a', enable_modules=FNS)
            other = await sup.start_actor('b', enable_modules=FNS)
            a_pid, b_pid = sup.children['a'].pid, await other.run(sfns.pid)
            if how == 'sigkill':
                kill(a_pid)
            elif how == 'exit':
                with pytest.raises(tractor.TransportClosed):
                    await failing.run(sfns.exit_now, code=3)
            await until(restarted(sup, 'a'), 'a restarted')
            assert sup.children['a'].pid != a_pid
            assert await other.run(sfns.pid) == b_pid
            assert sup.children['b'].restarts == 0
            info = sup.children['a']
            assert info.restarts == 1
            assert info.last_exit == {
                'sigkill': 'was killed by SIGKILL',
                'exit': 'exited with code 3',
                'raise': 'raised RuntimeError: first run fails',
            }[how]
            lines = restart_lines(caplog)
            assert len(lines) == 1 and "'a'" in lines[0] and 'restart #1' in lines[0], lines
            pids = [sup.children['a'].pid, b_pid]
            await sup.cancel()
        assert {c.state for c in sup.children.values()} == {'cancelled'}
    assert await pids_gone([a_pid, *pids]) == []


async def test_one_for_all_restarts_everyone_in_start_order(runtime_kwargs, caplog, pids_gone):
    """A child exiting (code 3) makes the others cancelled and all of them
    restarted, in start order; each restart is one WARNING line."""
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(strategy='one_for_all', **runtime_kwargs) as sup:
            portals = {n: await sup.start_actor(n, enable_modules=FNS) for n in ('a', 'b', 'c')}
            before = {n: await p.run(sfns.pid) for n, p in portals.items()}
            with pytest.raises(tractor.TransportClosed):
                await portals['b'].run(sfns.exit_now, code=3)
            await until(lambda: all(restarted(sup, n)() for n in before), 'all restarted')
            after = {n: await p.run(sfns.pid) for n, p in portals.items()}
            assert all(after[n] != before[n] for n in before)
            lines = restart_lines(caplog)
            assert [line.split("'")[1] for line in lines] == ['a', 'b', 'c'], lines
            assert 'exited with code 3' in lines[1]
            assert "restarted with 'b'" in lines[0] and "restarted with 'b'" in lines[2]
            await sup.cancel()
    assert await pids_gone([*before.values(), *after.values()]) == []


async def test_rest_for_one_restarts_the_later_ones(runtime_kwargs, tmp_path, pids_gone):
    """A one-shot raising restarts itself and the children started after
    it; the one started before keeps running untouched."""
    cue, done = tmp_path / 'cue', tmp_path / 'done'
    with trio.fail_after(BOUND):
        async with tractor.open_supervisor(strategy='rest_for_one', **runtime_kwargs) as sup:
            first = await sup.start_actor('first', enable_modules=FNS)
            await sup.run_in_actor(sfns.fail_on_cue_once, name='middle', cue=str(cue), done=str(done))
            last = await sup.start_actor('last', enable_modules=FNS)
            first_pid, last_pid = await first.run(sfns.pid), await last.run(sfns.pid)
            cue.touch()
            await until(lambda: all(restarted(sup, n)() for n in ('middle', 'last')), 'restarted')
            assert sup.children['middle'].last_exit == 'raised RuntimeError: failed on cue'
            assert await last.run(sfns.pid) != last_pid
            assert await first.run(sfns.pid) == first_pid
            assert sup.children['first'].restarts == 0
            await sup.cancel()
    assert await pids_gone([first_pid, last_pid]) == []
