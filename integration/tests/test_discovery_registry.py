"""The registry and its bootstrap, inside one actor tree (over TCP and UDS):
who the registrar is, who registers when, what names resolve to, and how
boot treats the registry addresses."""

from __future__ import annotations

import os
import socket

import pytest
import trio

import tractor
from tractor.discovery import LocalPortal, mk_maddr
from tractor.discovery._registrar import local_registrar

pytestmark = pytest.mark.slow


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


async def facts() -> dict:
    actor = tractor.current_actor()
    return {
        'name': actor.name,
        'uid': list(actor.uid),
        'is_registrar': actor.is_registrar,
        'reg_addrs': [list(a) for a in actor.reg_addrs],
        'accept_addrs': [list(a) for a in actor.accept_addrs],
    }


async def spawn_grandchild_facts() -> dict:
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('grandchild', enable_modules=[__name__])
        out = await portal.run(facts)
        await portal.cancel_actor()
    return out


async def find_uid(name: str) -> list | None:
    """Run in a subactor: a registry lookup from an actor with no channel
    to the target (so the registrar answers, not the fast path)."""
    async with tractor.find_actor(name) as portal:
        return None if portal is None else list(portal.channel.uid)


async def find_all_uids(name: str) -> list:
    async with tractor.find_actor(name, only_first=False) as portals:
        return [list(p.channel.uid) for p in portals]


async def table() -> dict:
    """The registrar's whole table, ``{uid: [wire addrs]}`` (tuples)."""
    async with tractor.get_registry() as reg:
        entries = await reg.run_from_ns('self', 'get_registry')
    return {tuple(uid): [(p, list(f)) for p, f in addrs] for uid, addrs in entries.items()}


def _wire(addrs) -> list:
    return sorted((mk_maddr(tuple(a)).proto_key, list(a)) for a in addrs)


# -- who is the registrar -------------------------------------------------------
async def test_root_is_registrar_by_default(tpt_proto, monkeypatch):
    """With no registry_addrs the transport's default registry address is
    probed; nobody answers, so the root becomes the registrar and binds it.
    (The TCP default is moved off 1616 by $TRACTOR_TCP_REGISTRY and the UDS
    default lives in this session's private runtime dir.)"""
    port = free_tcp_port()
    monkeypatch.setenv('TRACTOR_TCP_REGISTRY', f'127.0.0.1:{port}')
    expected = (
        ('127.0.0.1', port)
        if tpt_proto == 'tcp'
        else (os.environ['TRACTOR_RUNTIME_DIR'], 'registry@1616.sock')
    )
    with trio.fail_after(30):
        async with tractor.open_nursery(enable_transports=[tpt_proto]) as an:
            root = tractor.current_actor()
            assert root.is_registrar
            assert root.reg_addrs == [expected]
            assert expected in root.accept_addrs
            async with tractor.get_registry() as reg:
                assert isinstance(reg, LocalPortal)
            portal = await an.start_actor('child', enable_modules=[__name__])
            child = await portal.run(facts)
            assert child['is_registrar'] is False
            await portal.cancel_actor()


async def test_default_registry_addrs_per_transport(monkeypatch):
    """With several transports enabled and no registry_addrs, each
    transport's default registry address is used (and served)."""
    port = free_tcp_port()
    monkeypatch.setenv('TRACTOR_TCP_REGISTRY', f'127.0.0.1:{port}')
    defaults = [('127.0.0.1', port), (os.environ['TRACTOR_RUNTIME_DIR'], 'registry@1616.sock')]
    with trio.fail_after(30):
        async with tractor.open_root_actor(enable_transports=['tcp', 'uds']) as root:
            assert root.is_registrar
            assert root.reg_addrs == defaults
            assert sorted(root.accept_addrs) == sorted(defaults)


async def test_arbiter_terminology_is_retired():
    """Only the Arbiter alias survives; the old call forms do not."""
    assert tractor.Arbiter is tractor.Registrar
    assert not hasattr(tractor, 'get_arbiter')
    with pytest.raises(TypeError, match='arbiter_addr'):
        async with tractor.open_root_actor(arbiter_addr=('127.0.0.1', 1616)):
            pytest.fail('arbiter_addr was accepted')
    with pytest.raises(tractor.NoRuntime):
        tractor.current_actor()


async def test_subactors_inherit_registry_addrs(runtime_kwargs, reg_addr):
    """Children and grandchildren share the root's registry with no config."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            root = tractor.current_actor()
            assert root.reg_addrs == [reg_addr]
            portal = await an.start_actor('child', enable_modules=[__name__])
            child = await portal.run(facts)
            grandchild = await portal.run(spawn_grandchild_facts)
            assert [tuple(a) for a in child['reg_addrs']] == root.reg_addrs
            assert [tuple(a) for a in grandchild['reg_addrs']] == root.reg_addrs
            assert not child['is_registrar'] and not grandchild['is_registrar']
            await portal.cancel_actor()


# -- registration -------------------------------------------------------------------
async def test_every_actor_registers_on_boot(runtime_kwargs):
    """Right after start_actor() the registry maps the child's (name, uuid)
    to every address its IPC server is bound to; a sibling finds it by name.
    The registrar (root) is registered too."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            root = tractor.current_actor()
            svc = await an.start_actor('svc', enable_modules=[__name__])
            async with tractor.get_registry() as reg:
                entry = await reg.run_from_ns('self', 'find_actor', name='svc')
            assert entry is not None
            uid, addrs = entry
            assert tuple(uid) == svc.channel.uid
            info = await svc.run(facts)
            assert _wire(info['accept_addrs']) == sorted((p, list(f)) for p, f in addrs)

            sibling = await an.start_actor('sibling', enable_modules=[__name__])
            assert await sibling.run(find_uid, name='svc') == list(svc.channel.uid)
            assert await sibling.run(find_uid, name='root') == list(root.uid)
            assert root.uid in await svc.run(table)
            await an.cancel()


async def test_actor_unregisters_on_graceful_exit(runtime_kwargs):
    """A child cancelled gracefully removes its own entry before it exits
    (checked on the table, before any lookup could delete it as stale)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs):
            reg = local_registrar(tractor.current_actor())
            async with tractor.open_nursery() as an:
                first = await an.start_actor('short_lived')
                second = await an.start_actor('cancelled_by_nursery')
                uids = {first.channel.uid, second.channel.uid}
                assert uids <= set(await reg.backend.snapshot())
                assert await first.cancel_actor()
                await an.cancel()
            # both children have exited (the nursery reaped them)
            assert not uids & set(await table())
            assert reg.served['unregister'] == 2
            assert reg.served['delete'] == 0


# -- names ------------------------------------------------------------------------------
async def test_duplicate_names_resolve_to_last_registered(runtime_kwargs):
    """Names are not unique: two actors named 'bob' are both registered; a
    lookup by name gives the newer one, only_first=False gives both."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            bob1 = await an.start_actor('bob', enable_modules=[__name__])
            bob2 = await an.start_actor('bob', enable_modules=[__name__])
            assert bob1.channel.uid != bob2.channel.uid
            newest = list(bob2.channel.uid)
            # in the root (already connected to both bobs: the fast path)
            async with tractor.find_actor('bob') as portal:
                assert list(portal.channel.uid) == newest
            # in the registry
            async with tractor.get_registry() as reg:
                entry = await reg.run_from_ns('self', 'find_actor', name='bob')
                assert list(entry[0]) == newest
                both = await reg.run_from_ns('self', 'find_actors', name='bob')
            assert [list(u) for u, _ in both] == [newest, list(bob1.channel.uid)]
            # from an actor connected to neither bob
            looker = await an.start_actor('looker', enable_modules=[__name__])
            assert await looker.run(find_uid, name='bob') == newest
            assert await looker.run(find_all_uids, name='bob') == [newest, list(bob1.channel.uid)]
            async with tractor.find_actor('bob', only_first=False) as portals:
                assert {p.channel.uid for p in portals} == {bob1.channel.uid, bob2.channel.uid}
            await an.cancel()


# -- bootstrap ------------------------------------------------------------------------
def _other_proto_addr(tpt_proto: str) -> tuple:
    if tpt_proto == 'tcp':
        return (os.environ['TRACTOR_RUNTIME_DIR'], 'registry@unused.sock')
    return ('127.0.0.1', free_tcp_port())


async def test_registry_addr_protocol_not_enabled_is_value_error(tpt_proto):
    """A registry address whose transport the actor does not enable is a
    ValueError at boot, naming the address and the protocol."""
    bad = _other_proto_addr(tpt_proto)
    with trio.fail_after(30):
        with pytest.raises(ValueError) as info:
            async with tractor.open_root_actor(enable_transports=[tpt_proto], registry_addrs=[bad]):
                pytest.fail('booted with a registry address of a disabled transport')
    assert repr(bad) in str(info.value) and mk_maddr(bad).proto_key in str(info.value)
    with pytest.raises(tractor.NoRuntime):
        tractor.current_actor()


async def test_registrar_binds_registry_addrs_and_random_for_the_rest(reg_addr, tpt_proto):
    """The registrar binds the registry address itself; transports with no
    registry address get a random address of their own."""
    other = 'uds' if tpt_proto == 'tcp' else 'tcp'
    with trio.fail_after(30):
        async with tractor.open_root_actor(
            enable_transports=[tpt_proto, other], registry_addrs=[reg_addr]
        ) as root:
            assert root.is_registrar
            assert root.accept_addrs[0] == reg_addr
            assert {mk_maddr(a).proto_key for a in root.accept_addrs} == {tpt_proto, other}
            assert len(root.accept_addrs) == 2


async def test_ensure_registry_without_a_conflict_boots_as_registrar(runtime_kwargs, reg_addr):
    with trio.fail_after(30):
        async with tractor.open_root_actor(ensure_registry=True, **runtime_kwargs) as root:
            assert root.is_registrar and reg_addr in root.accept_addrs
