"""The spawn-backend contract: backends say whether they can run here and
how preferred they are (which picks the default), the plain ``{name:
async_fn}`` form still works, and a plugin's ``SpawnSpec.ext`` entries
reach every child it spawns, with either built-in backend."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio

import tractor
from tractor._plugins import get_plugin_manager, hookimpl
from tractor._spawn import (
    FALLBACK_START_METHOD,
    SpawnBackend,
    default_start_method,
    resolve_start_method,
    spawn_backends,
)
from tractor._spawn_trio import CHILD_MODULE, child_command, spawn_trio
from tractor._transport import wrap_address
from tractor_core_testfns import parent_socket, whoami

HERE = Path(__file__).parent
FNS = ['tractor_core_testfns']


class Recording:
    """A plugin providing one backend named ``key`` that starts actors
    like ``'trio'`` and records their names."""

    def __init__(self, key: str, **backend) -> None:
        self.key = key
        self.backend = backend
        self.spawned: list[str] = []
        self.procs: list[trio.Process] = []

    async def spawn(self, *, name: str, uuid: str, parent_addr: str) -> trio.Process:
        self.spawned.append(name)
        proc = await spawn_trio(name=name, uuid=uuid, parent_addr=parent_addr)
        self.procs.append(proc)
        return proc

    @hookimpl
    def tractor_spawn_methods(self) -> dict:
        if self.backend.pop('plain', False):
            return {self.key: self.spawn}
        return {self.key: SpawnBackend(self.spawn, **self.backend)}


@pytest.fixture
def register():
    """``register(plugin)``: registered in this process for the test only."""
    pm = get_plugin_manager()
    done = []

    def add(plugin):
        pm.register(plugin, name=f'test-plugin-{id(plugin)}')
        done.append(plugin)
        return plugin

    yield add
    for plugin in done:
        pm.unregister(plugin)


def test_default_is_the_preferred_available_backend():
    async def fn(**_kw):
        raise AssertionError('never spawned')

    never = SpawnBackend(fn, available=lambda: False, priority=100)
    assert (
        default_start_method({'a': SpawnBackend(fn, priority=5), 'trio': SpawnBackend(fn)}) == 'a'
    )
    assert default_start_method({'never': never, 'trio': SpawnBackend(fn)}) == 'trio'
    # a tie goes to core's fallback, wherever it comes in the order
    assert default_start_method({'other': SpawnBackend(fn), 'trio': SpawnBackend(fn)}) == 'trio'
    assert default_start_method({'x': never}) == FALLBACK_START_METHOD


async def test_unavailable_backend_is_not_the_default_and_naming_it_says_so(
    register, runtime_kwargs, monkeypatch
):
    monkeypatch.delenv('TRACTOR_START_METHOD', raising=False)
    before = default_start_method()
    register(
        Recording(
            'nowhere', available=lambda: False, priority=1000, needs='a test machine of dreams'
        )
    )
    assert 'nowhere' in spawn_backends()
    assert default_start_method() == before
    needs = r"'nowhere' is not available here \(it needs a test machine of dreams\)"
    with pytest.raises(ValueError, match=needs):
        resolve_start_method('nowhere')
    monkeypatch.setenv('TRACTOR_START_METHOD', 'nowhere')
    with pytest.raises(ValueError, match='not available here'):
        resolve_start_method(None)
    with trio.fail_after(30):
        with pytest.raises(ValueError, match='not available here'):
            async with tractor.open_nursery(**runtime_kwargs):
                pass
    with pytest.raises(ValueError, match=r"unknown start_method 'no-such-backend'"):
        resolve_start_method('no-such-backend')


async def test_preferred_available_backend_is_the_default(register, runtime_kwargs, monkeypatch):
    monkeypatch.delenv('TRACTOR_START_METHOD', raising=False)
    rec = register(Recording('preferred', priority=1000))
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            assert tractor.current_actor().start_method == 'preferred'
            portal = await an.start_actor('picked', enable_modules=FNS)
            assert (await portal.run(whoami))['start_method'] == 'preferred'
            await an.cancel()
    assert rec.spawned == ['picked']


async def test_plain_function_backend_still_works(register, runtime_kwargs, monkeypatch):
    monkeypatch.delenv('TRACTOR_START_METHOD', raising=False)
    before = default_start_method()
    rec = register(Recording('plain-fn', plain=True))
    backend = spawn_backends()['plain-fn']
    assert backend.available() and backend.priority == 0
    assert default_start_method() == before  # never preferred over core's
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('plain', enable_modules=FNS, start_method='plain-fn')
            info = await portal.run(whoami)
            assert info['start_method'] == 'plain-fn' and info['parent_pid'] == os.getpid()
            await an.cancel()
    assert rec.spawned == ['plain']


async def spawn_without_the_socket(*, name: str, uuid: str, parent_addr: str) -> trio.Process:
    """Starts actors as ``'trio'`` does, but like a backend that cannot
    hand a child an inherited socket: the child dials ``parent_addr``."""
    cmd = child_command(name=name, uuid=uuid, parent_addr=parent_addr)
    at = cmd.args.index('--parent-fd')
    args = cmd.args[:at] + cmd.args[at + 2 :]
    try:
        return await trio.lowlevel.open_process(
            [sys.executable, '-m', CHILD_MODULE, *args],
            pass_fds=[fd for fd in cmd.pass_fds if fd != int(cmd.args[at + 1])],
            env=cmd.env,
        )
    finally:
        cmd.close_fds()


async def test_a_child_without_its_inherited_socket_dials_its_parent(register, runtime_kwargs):
    """The inherited channel to the parent is an optimisation: a child
    started without it (a backend that cannot pass sockets) dials the
    parent's listener and authenticates, and boots all the same."""

    class Dialing:
        @hookimpl
        def tractor_spawn_methods(self) -> dict:
            return {'dialing': SpawnBackend(spawn_without_the_socket)}

    register(Dialing())
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('dialer', enable_modules=FNS, start_method='dialing')
            info = await portal.run(parent_socket)
            assert info['peer'], info  # a named peer: the parent's listener
            assert (await portal.run(whoami))['start_method'] == 'dialing'
            await an.cancel()


@pytest.mark.parametrize('start_method', ['trio', 'forkserver'])
async def test_spawn_spec_ext_reaches_children(run_script, tpt_proto, reg_addr, start_method):
    """A plugin registered in code fills ``SpawnSpec.ext`` in each parent
    and reads it in each child (a grandchild too); the fork-server wing
    hands its server path down the same way; an error in the child-side
    hook fails that spawn, naming it."""
    if start_method not in spawn_backends() or not spawn_backends()[start_method].available():
        pytest.skip(f'{start_method!r} cannot run here')
    res = await run_script(
        'spawn_ext_root.py',
        tpt_proto,
        json.dumps(reg_addr),
        start_method,
        env={'PYTHONPATH': os.pathsep.join([str(HERE), os.environ.get('PYTHONPATH', '')])},
        timeout=90,
    )
    assert res.returncode == 0, res.stderr.decode()
    out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    child, grandchild = out['child'], out['grandchild']
    assert child['ours'] == {
        'parent': out['root'][0],
        'parent_pid': out['root'][1],
        'child': 'child',
        'start_method': start_method,
    }
    assert grandchild['ours']['parent'] == 'child' and grandchild['ours']['child'] == 'grandchild'
    assert grandchild['ours']['parent_pid'] not in (0, out['root'][1])
    # the wing's own entry: present exactly when the tree has a fork server
    wing = {'forkserver'} if start_method == 'forkserver' else set()
    # discovery's: the root is the registrar, so it registers its children
    # itself; the child is not the registrar, its child registers itself
    assert set(child['keys']) == {'spawn-ext-test', 'discovery.parent_registers'} | wing
    assert set(grandchild['keys']) == {'spawn-ext-test'} | wing
    assert 'the spawn-ext test plugin refuses this child' in out['refused']


class FailingExt:
    """A plugin whose parent-side ``SpawnSpec.ext`` hook fails for one child."""

    @hookimpl
    def tractor_spawn_spec_ext(self, child_uid) -> dict:
        if child_uid[0] == 'doomed':
            raise LookupError('the test plugin cannot describe this child')
        return {}


async def test_parent_side_ext_error_fails_that_spawn(register, runtime_kwargs):
    """The error reaches start_actor(), the started process is reaped, and
    the nursery spawns on."""
    rec = register(Recording('rec-ext'))
    register(FailingExt())
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='rec-ext', **runtime_kwargs) as an:
            with pytest.raises(LookupError, match='cannot describe this child'):
                await an.start_actor('doomed', enable_modules=FNS)
            (doomed,) = rec.procs
            assert doomed.returncode is not None
            fine = await an.start_actor('fine', enable_modules=FNS)
            assert (await fine.run(whoami))['name'] == 'fine'
            await an.cancel()
    assert rec.spawned == ['doomed', 'fine']


class ReadyHook:
    """A plugin whose ``tractor_child_ready`` records what the parent learns
    of each child once it is Ready, and fails for the child named ``doomed``."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, list]] = {}

    async def _check(self, name: str) -> None:
        await trio.lowlevel.checkpoint()  # awaited by the spawn: it may wait
        if name == 'doomed':
            raise LookupError('the test plugin refuses this ready child')

    @hookimpl
    def tractor_child_ready(self, chan, accept_addrs):
        self.seen[chan.aid.name] = (chan.aid.pid, accept_addrs)
        return self._check(chan.aid.name)


async def test_child_ready_hook_runs_before_start_actor_returns(register, runtime_kwargs):
    """The hook sees the child's pid and the addresses it serves on before
    start_actor() returns; an error in what it returns fails that spawn
    (the process is reaped) and the nursery spawns on."""
    rec = register(Recording('rec-ready'))
    hook = register(ReadyHook())
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='rec-ready', **runtime_kwargs) as an:
            with pytest.raises(LookupError, match='refuses this ready child'):
                await an.start_actor('doomed', enable_modules=FNS)
            (doomed,) = rec.procs
            assert doomed.returncode is not None
            assert hook.seen['doomed'][0] == doomed.pid
            fine = await an.start_actor('fine', enable_modules=FNS)
            pid, accept_addrs = hook.seen['fine']
            me = await fine.run(whoami)
            assert pid == me['pid'] == rec.procs[1].pid
            # the portal's channel names the child by one of those addresses
            assert fine.channel.raddr in [wrap_address(a) for a in accept_addrs]
            await an.cancel()
    assert rec.spawned == ['doomed', 'fine']
