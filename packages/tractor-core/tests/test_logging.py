"""Logging: records name their actor and task; levels reach the whole tree."""

import json
import logging
import re

import pytest
import trio

import tractor
import tractor_core_testfns as fns

pytestmark = pytest.mark.slow


async def test_records_carry_actor_and_task(runtime_kwargs, caplog):
    log = tractor.log.get_logger('tests.records')
    assert log.name == 'tractor.tests.records'
    caplog.set_level(logging.INFO, logger='tractor.tests.records')
    log.info('outside')
    with trio.fail_after(30):
        async with tractor.open_root_actor(name='logger-root', **runtime_kwargs):

            async def named_task() -> None:
                log.info('inside')

            async with trio.open_nursery() as tn:
                tn.start_soon(named_task, name='my-task')
    outside, inside = [r for r in caplog.records if r.name == log.name]
    assert outside.actor.startswith('-:')
    assert inside.actor.startswith('logger-root:')
    assert inside.task == 'my-task'


async def test_start_actor_loglevel(runtime_kwargs):
    """``loglevel=`` on start_actor sets the child's level only."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor(
                'verbose', enable_modules=[fns.__name__], loglevel='debug'
            )
            assert await portal.run(fns.log_level) == 'DEBUG'
            await an.cancel()


def _lines(stderr: bytes, text: str) -> list[str]:
    return [line for line in stderr.decode().splitlines() if text in line]


@pytest.mark.parametrize('how', ['argument', 'env'])
async def test_loglevel_reaches_children(how, tpt_proto, reg_addr, run_script):
    """``loglevel=`` given to the root (or ``TRACTOR_LOGLEVEL``) applies in
    the children too; console lines show which actor wrote them."""
    args = [tpt_proto, json.dumps(reg_addr)]
    if how == 'argument':
        proc = await run_script('log_tree.py', *args, 'info', timeout=45)
    else:
        proc = await run_script(
            'log_tree.py', *args, '-', timeout=45, env={'TRACTOR_LOGLEVEL': 'info'}
        )
    assert proc.returncode == 0, proc.stderr.decode()
    for tag, actor in (('the-root', 'root'), ('the-child', 'chatty-child')):
        for level in ('info', 'warning'):
            lines = _lines(proc.stderr, f'{level} line from {tag}')
            assert len(lines) == 1, proc.stderr.decode()
            assert re.search(rf'\[{actor}:\d+ ', lines[0]), lines[0]
            assert level.upper() in lines[0]


async def test_default_level_hides_info(tpt_proto, reg_addr, run_script):
    proc = await run_script(
        'log_tree.py',
        tpt_proto,
        json.dumps(reg_addr),
        '-',
        timeout=45,
        env={'TRACTOR_LOGLEVEL': ''},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert not _lines(proc.stderr, 'info line from')


async def test_runtime_level_shows_the_bookkeeping(runtime_kwargs, caplog):
    """``loglevel='runtime'`` (15, between DEBUG and INFO) shows the
    runtime's bookkeeping: the modules an actor serves, peers coming and
    going."""
    caplog.set_level(tractor.log.RUNTIME, logger='tractor')
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('booked', enable_modules=[fns.__name__])
            assert await portal.run(fns.add, x=1, y=2) == 3
            await an.cancel()
    texts = [r.getMessage() for r in caplog.records if r.levelno == tractor.log.RUNTIME]
    assert any("peer 'booked' connected" in t for t in texts), texts
    assert any("peer 'booked' disconnected" in t for t in texts), texts
