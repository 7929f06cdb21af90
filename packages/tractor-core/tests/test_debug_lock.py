"""The debugger's tree-wide terminal lock, without a terminal: who holds it,
who waits, what a holder's death does, and Ctrl-C while it is held. (The
sessions themselves are driven through a pseudo-terminal in
integration/tests/test_debugger.py.)"""

from __future__ import annotations

import bdb
import os
import signal
import sys

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor.debug import _api
from tractor.debug._lock import tree_lock

pytestmark = pytest.mark.slow


async def _hold(portal: tractor.Portal, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Hold the terminal through ``portal``'s actor until cancelled or it dies."""
    try:
        async with portal.open_context(fns.hold_terminal) as (_ctx, pid):
            task_status.started(pid)
            await trio.sleep_forever()
    except tractor.TransportClosed:
        pass  # the holder was killed


async def test_lock_goes_to_the_next_waiter_when_the_holder_dies(runtime_kwargs):
    """An actor that dies holding the terminal frees it (the root notices the
    lost connection); the actor waiting next gets it, in request order."""
    with trio.fail_after(30):
        async with tractor.open_nursery(debug_mode=True, **runtime_kwargs) as an:
            lock = tree_lock(tractor.current_actor())
            names = ['holder', 'first', 'second']
            portals = {n: await an.start_actor(n, enable_modules=[fns.__name__]) for n in names}
            async with trio.open_nursery() as tn:
                holder_pid = await tn.start(_hold, portals['holder'])
                assert lock.owner is not None and lock.owner[0] == 'holder'
                tn.start_soon(_hold, portals['first'])
                await lock.wait_until(lambda lk: lk.pending == 2)
                tn.start_soon(_hold, portals['second'])
                await lock.wait_until(lambda lk: lk.pending == 3)
                assert lock.owner[0] == 'holder'

                os.kill(holder_pid, signal.SIGKILL)
                await lock.wait_until(lambda lk: lk.owner is not None and lk.owner[0] != 'holder')
                assert lock.owner[0] == 'first'
                assert lock.pending == 2
                tn.cancel_scope.cancel()
            with trio.fail_after(10):
                await lock.wait_idle()
            assert lock.owner is None
            await an.cancel()


async def test_ctrl_c_is_ignored_while_the_terminal_is_held(runtime_kwargs):
    """While an actor holds the terminal the root ignores SIGINT (the tree
    stays up under the developer); afterwards the handler is put back and
    Ctrl-C works as before."""
    before = signal.getsignal(signal.SIGINT)
    with trio.fail_after(30):
        async with tractor.open_nursery(debug_mode=True, **runtime_kwargs) as an:
            lock = tree_lock(tractor.current_actor())
            portal = await an.start_actor('holder', enable_modules=[fns.__name__])
            async with trio.open_nursery() as tn:
                await tn.start(_hold, portal)
                assert signal.getsignal(signal.SIGINT) is not before
                os.kill(os.getpid(), signal.SIGINT)
                # the handler has run by the next checkpoints: nothing raised
                for _ in range(3):
                    await trio.lowlevel.checkpoint()
                assert lock.owner[0] == 'holder'
                tn.cancel_scope.cancel()
            await lock.wait_idle()
            assert signal.getsignal(signal.SIGINT) is before
            await an.cancel()


def test_crash_selection():
    """A post-mortem opens on the first error of this actor's own code: not on
    cancels, exits, a developer quitting pdb, another actor's error (debugged
    where it happened), or an error already debugged."""
    remote = tractor.RemoteActorError('boom', boxed_type_str='ValueError')
    mine = KeyError('mine')
    assert _api._crash_of(BaseExceptionGroup('g', [remote, mine])) is mine
    assert _api._crash_of(remote) is None
    assert _api._crash_of(bdb.BdbQuit()) is None
    assert _api._crash_of(KeyboardInterrupt()) is None
    assert _api._crash_of(BaseExceptionGroup('g', [KeyboardInterrupt(), remote])) is None
    setattr(mine, _api._DEBUGGED, True)
    assert _api._crash_of(BaseExceptionGroup('g', [remote, mine])) is None


def test_breakpoint_hook_restored(monkeypatch):
    monkeypatch.delenv('PYTHONBREAKPOINT', raising=False)
    saved = sys.breakpointhook
    with _api.breakpoint_hook():
        assert sys.breakpointhook is not saved
    assert sys.breakpointhook is saved
    monkeypatch.setenv('PYTHONBREAKPOINT', 'mymod.hook')
    with _api.breakpoint_hook():
        assert sys.breakpointhook is saved  # the user's choice wins


async def test_post_mortem_needs_an_exception(runtime_kwargs):
    async with tractor.open_root_actor(**runtime_kwargs):
        with pytest.raises(RuntimeError, match='except block'):
            await tractor.post_mortem()


def test_pause_needs_a_runtime():
    with pytest.raises(tractor.NoRuntime):
        tractor.pause_from_sync()


def _cont(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)  # our own child, if still there
    except ProcessLookupError:
        pass  # already killed and reaped


async def test_no_lock_without_debug_mode(runtime_kwargs):
    """A root without debug mode serves no terminal lock at all: an explicit
    session in a child (post_mortem() needs no debug mode) runs without it,
    and the root neither counts it nor touches its Ctrl-C handler."""
    before = signal.getsignal(signal.SIGINT)
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('holder', enable_modules=[fns.__name__])
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run_from_ns('tractor.debug._lock', 'wait_tree_idle')
            assert info.value.boxed_type is tractor.ModuleNotExposed
            async with portal.open_context(fns.hold_terminal) as (ctx, pid):
                assert pid == portal.channel.aid.pid
                assert not tree_lock(tractor.current_actor()).busy
                assert signal.getsignal(signal.SIGINT) is before
                await ctx.cancel()
            await an.cancel()


async def test_wedged_holder_without_debug_mode_does_not_block_cancel(runtime_kwargs, pids_gone):
    """The lock is served (one child runs in debug mode), that child takes it
    and is then stopped: the root, not in debug mode, does not consult the
    lock, so ``an.cancel()`` kills what does not exit, as always."""
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            holder = await an.run_in_actor(fns.keep_terminal, name='holder', debug_mode=True)
            await an.run_in_actor(fns.ignore_cancel, name='stubborn')
            while not await holder.run(fns.get_state, key='terminal'):
                await trio.sleep(0.02)
            assert tree_lock(tractor.current_actor()).owner[0] == 'holder'
            holder_pid = holder.channel.aid.pid
            os.kill(holder_pid, signal.SIGSTOP)
            try:
                await an.cancel()  # the old runtime waited here forever
            finally:
                _cont(holder_pid)
    assert await pids_gone([holder_pid]) == []


async def test_stopped_holder_frees_the_terminal(runtime_kwargs, pids_gone):
    """In debug mode the root watches a local holder: one that is stopped
    (or gone) while its connection lingers has its session ended, and the
    terminal (and Ctrl-C) are free again."""
    before = signal.getsignal(signal.SIGINT)
    with trio.fail_after(60):
        async with tractor.open_nursery(debug_mode=True, **runtime_kwargs) as an:
            lock = tree_lock(tractor.current_actor())
            holder = await an.run_in_actor(fns.keep_terminal, name='holder')
            while not await holder.run(fns.get_state, key='terminal'):
                await trio.sleep(0.02)
            assert lock.busy and signal.getsignal(signal.SIGINT) is not before
            holder_pid = holder.channel.aid.pid
            os.kill(holder_pid, signal.SIGSTOP)
            try:
                await lock.wait_idle()
            finally:
                _cont(holder_pid)
            assert signal.getsignal(signal.SIGINT) is before
            await an.cancel()
    assert await pids_gone([holder_pid]) == []
