"""A registrar registers the children it spawns itself (over TCP and UDS):
the child's entry is in the table, with its pid, host and parent, by the
time ``start_actor()`` returns; the child dials no second connection to its
parent for registering or looking up; and the entry goes as the child does,
``'graceful'`` when it exits, ``'stale'`` at once when it is SIGKILLed (the
loss of the spawn connection is noticed as a registration hold's would
be). A child that is not the registrar's registers its own children."""

from __future__ import annotations

import os
import signal
import socket

import pytest
import trio

import tractor
from tractor.discovery import Registered, Unregistered, _registrar, watch
from tractor.discovery._registrar import local_registrar

pytestmark = pytest.mark.slow


async def lookup_parent() -> list | None:
    """(in a child) Find the root by name through the registrar; the uid."""
    async with tractor.find_actor('root') as portal:
        return None if portal is None else list(portal.channel.uid)


async def spawn_grandchild() -> dict:
    """(in a child, not a registrar) Spawn a grandchild and say how it
    reached the registry: its entry's parent, and the grandchild's count
    of channels to its own parent (it registered itself over another)."""
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('grandchild', enable_modules=[__name__])
        chans = await portal.run(channels_to, name='root')
        await an.cancel()
    return {'pid': portal.channel.aid.pid, 'chans_to_root': chans}


async def channels_to(name: str) -> int:
    return len(tractor.current_actor().get_peer_channels(name))


async def entry(uid: tuple[str, str]) -> Registered | None:
    reg = local_registrar(tractor.current_actor())
    assert reg is not None
    found = [r for r in await reg.backend.entries(uid[0]) if r.uid == uid]
    return found[0] if found else None


async def next_event(events, kind, name: str):
    async for ev in events:
        if isinstance(ev, kind) and ev.name == name:
            return ev
    raise AssertionError(f'the watch ended before {kind.__name__} {name}')


async def test_registrar_registers_its_child_over_the_spawn_connection(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(name='root', **runtime_kwargs) as an:
            root = tractor.current_actor()
            child = await an.start_actor('child', enable_modules=[__name__])
            uid, pid = child.channel.uid, child.channel.aid.pid
            rec = await entry(uid)  # no wait: it is there once the spawn returns
            assert rec is not None, 'the child is not registered once start_actor() returned'
            assert (rec.pid, rec.host, rec.parent) == (pid, socket.gethostname(), root.uid)
            # one connection between them, whatever the child asked the registry
            assert await child.run(lookup_parent) == list(root.uid)
            assert len(root.get_peer_channels(uid=uid)) == 1
            assert await child.run(channels_to, name='root') == 1
            # a child that is not the registrar: its child registers itself
            got = await child.run(spawn_grandchild)
            assert got['chans_to_root'] == 1  # its registrar connection
            await an.cancel()


async def test_child_registered_by_its_parent_leaves_the_registry_with_it(
    runtime_kwargs, monkeypatch
):
    """Unregistered 'graceful' on a clean exit; 'stale' when SIGKILLed, from
    the lost spawn connection, not from the grace for re-registering (made
    longer than the test's bound here)."""
    monkeypatch.setattr(_registrar, 'REREGISTER_GRACE', 3600.0)
    with trio.fail_after(30):
        async with tractor.open_nursery(name='root', **runtime_kwargs) as an:
            async with watch('pr_', prefix=True) as events:
                calm = await an.start_actor('pr_calm', enable_modules=[__name__])
                ev = await next_event(events, Registered, 'pr_calm')
                assert ev.pid == calm.channel.aid.pid
                await calm.cancel_actor()
                ev = await next_event(events, Unregistered, 'pr_calm')
                assert ev.reason == 'graceful'

                victim = await an.start_actor('pr_victim', enable_modules=[__name__])
                await next_event(events, Registered, 'pr_victim')
                os.kill(victim.channel.aid.pid, signal.SIGKILL)  # our own child
                ev = await next_event(events, Unregistered, 'pr_victim')
                assert ev.reason == 'stale'
                assert await entry(victim.channel.uid) is None
            await an.cancel()
