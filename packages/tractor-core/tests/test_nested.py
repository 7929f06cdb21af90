"""Trees deeper than one level: children spawning their own children."""

import os

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import deep, get_state, hold_tree, spawn_grandchildren

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


async def test_grandchildren(runtime_kwargs, reg_addr, pids_gone):
    with trio.fail_after(45):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('parent', enable_modules=FNS)
            tree = await portal.run(spawn_grandchildren, n=3)
            await an.cancel()
    me = tree['me']
    assert me['name'] == 'parent' and me['is_root'] is False
    assert me['parent_pid'] == os.getpid()
    # the OS parent: the spawner itself, or the tree's fork server
    fork_server = me['start_method'] == 'forkserver'
    assert (me['ppid'] != os.getpid()) if fork_server else (me['ppid'] == os.getpid())
    kids = tree['kids']
    assert [k['name'] for k in kids] == ['gc-daemon', 'gc-0', 'gc-1']
    for kid in kids:
        assert kid['parent_pid'] == me['pid']  # spawned by the child, not the root
        # one fork server per tree: the grandchildren's is the child's
        assert kid['ppid'] == (me['ppid'] if fork_server else me['pid'])
        assert kid['is_root'] is False
        # the registry addresses are inherited down the tree
        assert [tuple(a) for a in kid['reg_addrs']] == [reg_addr]
    assert await pids_gone([me['pid'], *(k['pid'] for k in kids)]) == []


async def test_deep_chain(runtime_kwargs):
    with trio.fail_after(45):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.run_in_actor(deep, name='level-3', levels=2)
            assert await portal.wait_for_result() == ['level-3', 'level-2', 'level-1']


async def test_cancel_middle_cancels_grandchildren(runtime_kwargs, pids_gone):
    """Cancelling a child cancels the actors it spawned."""
    with trio.fail_after(45):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('middle', enable_modules=FNS)
            outcome = []

            async def hold() -> None:
                # an.cancel() does not cancel this task: its call ends with
                # the middle actor, cancelled by us
                with pytest.raises(tractor.ContextCancelled) as err:
                    await portal.run(hold_tree)
                outcome.append(err.value.canceller)

            async with trio.open_nursery() as tn:
                tn.start_soon(hold)
                while (leaf := await portal.run(get_state, key='leaf_pid')) is None:
                    await trio.sleep(0.02)
                middle_pid = portal.channel.aid.pid
                me = tractor.current_actor().uid
                await an.cancel()
    assert outcome == [me]
    assert await pids_gone([middle_pid, leaf]) == []
