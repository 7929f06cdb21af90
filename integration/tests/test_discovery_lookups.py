"""The lookup APIs inside one actor tree (over TCP and UDS): find_actor,
wait_for_actor, query_actor, get_registry, and the connected-peer fast path."""

from __future__ import annotations

import os
import uuid

import pytest
import trio

import tractor
from tractor.discovery import LocalPortal, RegistrarUnreachable, mk_maddr
from tractor.discovery._registrar import local_registrar

pytestmark = pytest.mark.slow


async def whoami() -> dict:
    actor = tractor.current_actor()
    return {'name': actor.name, 'uid': list(actor.uid), 'pid': os.getpid()}


async def wait_then_call(target: str) -> dict:
    """Run in a subactor: block until ``target`` registers, then RPC it."""
    async with tractor.wait_for_actor(target) as portal:
        return {'uid': list(portal.channel.uid), 'answer': await portal.run(whoami)}


async def scoped_lookups(name: str) -> dict:
    """Every portal a lookup dialed is closed once its block exits; a
    registrar portal runs over the actor's shared connection to its
    registrar, which stays up (the actor's registration holds it)."""
    from tractor.discovery._client import client

    shared = await client(tractor.current_actor()).channel(
        tractor.current_actor().registry_addrs[0]
    )
    out = {}
    async with tractor.find_actor(name) as portal:
        chan = portal.channel
        out['find_open'] = chan.connected()
    out['find_closed'] = not chan.connected()
    async with tractor.wait_for_actor(name) as portal:
        chan = portal.channel
        out['wait_open'] = chan.connected()
    out['wait_closed'] = not chan.connected()
    async with tractor.get_registry() as reg:
        out['reg_shared'] = reg.channel is shared
        await reg.aclose()  # a no-op for the shared connection
    out['reg_still_open'] = shared.connected()
    async with tractor.query_actor(name) as (_addr, reg):
        out['query_shared'] = reg.channel is shared
    out['query_still_open'] = shared.connected()
    async with tractor.find_actor(name, only_first=False) as portals:
        chans = [p.channel for p in portals]
        out['all_open'] = len(chans) == 1 and all(c.connected() for c in chans)
    out['all_closed'] = not any(c.connected() for c in chans)
    return out


async def registry_from_child(reg_addr: list) -> dict:
    """get_registry() from a subactor: a real portal to the registrar."""
    out = {}
    async with tractor.get_registry() as reg:
        out['is_portal'] = isinstance(reg, tractor.Portal)
        out['peer'] = list(reg.channel.uid)
        out['text'] = str(reg.channel)
        out['entries'] = [
            [list(u), a] for u, a in (await reg.run_from_ns('self', 'get_registry')).items()
        ]
    async with tractor.get_registry(tuple(reg_addr)) as reg:  # one positional address
        out['positional_peer'] = list(reg.channel.uid)
    return out


async def query_from_child(name: str, reg_addr: list) -> dict:
    out = {}
    async with tractor.query_actor(name) as (addr, reg_portal):
        out['addr'] = addr
        out['addr_is_tuple'] = type(addr) is tuple
        out['reg_is_portal'] = isinstance(reg_portal, tractor.Portal)
        out['reg_peer'] = list(reg_portal.channel.uid)
    async with tractor.query_actor('nobody-here', tuple(reg_addr)) as (addr, reg_portal):
        out['miss'] = addr
        out['miss_reg_peer'] = list(reg_portal.channel.uid)
    return out


async def fast_path_with_registrar_unreachable(name: str, dead_reg: list) -> dict:
    """Hold a portal to ``name``, then look it up again naming only a dead
    registrar: the answer can only come from the connected-peer scan."""
    async with tractor.find_actor(name) as first:
        async with tractor.find_actor(name, registry_addrs=[tuple(dead_reg)]) as again:
            same = again.channel is first.channel
        async with tractor.wait_for_actor(name, registry_addr=tuple(dead_reg)) as again:
            same_wait = again.channel is first.channel
    try:
        async with tractor.find_actor(name, registry_addrs=[tuple(dead_reg)]):
            unreachable = None
    except RegistrarUnreachable as err:
        unreachable = str(err)
    return {'same': same, 'same_wait': same_wait, 'unreachable': unreachable}


def _dead_addr(tpt_proto: str) -> tuple:
    """An address nobody listens on."""
    if tpt_proto == 'uds':
        return (os.environ['TRACTOR_RUNTIME_DIR'], f'dead-{uuid.uuid4().hex[:8]}.sock')
    import socket

    with socket.socket() as s:  # bound, never listening: connects are refused
        s.bind(('127.0.0.1', 0))
        return s.getsockname()


# -- find_actor ------------------------------------------------------------------------
async def test_find_actor_miss_yields_none(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs):
            async with tractor.find_actor('nobody') as portal:
                assert portal is None
            # a miss is None with only_first=False too, not an empty list
            async with tractor.find_actor('nobody', only_first=False) as portals:
                assert portals is None


async def test_find_actor_only_first_false_deduplicates_across_registrars(runtime_kwargs, reg_addr):
    """The same registrar named twice: each actor is delivered once."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            await an.start_actor('dup', enable_modules=[__name__])
            async with tractor.find_actor(
                'dup', registry_addrs=[reg_addr, reg_addr], only_first=False
            ) as portals:
                assert [p.channel.aid.name for p in portals] == ['dup']
            await an.cancel()


async def lookups_with_list_addrs(name: str, reg: list) -> dict:
    """Run in a child, ``reg`` arriving as msgpack made it (a list)."""
    assert isinstance(reg, list)
    out = {}
    async with tractor.wait_for_actor(name, registry_addr=reg) as portal:
        out['wait'] = portal.channel.aid.name
    async with tractor.find_actor(name, registry_addrs=[reg]) as portal:
        out['find'] = portal.channel.aid.name
    async with tractor.query_actor(name, reg) as (addr, _):
        out['query'] = addr is not None
    async with tractor.get_registry(reg) as portal:
        out['registry'] = portal is not None
    return out


async def test_addresses_survive_a_round_trip_through_rpc(runtime_kwargs, reg_addr):
    """msgpack turns an address tuple into a list: every lookup takes the
    list as it takes the tuple."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            await an.start_actor('target', enable_modules=[__name__])
            asker = await an.start_actor('asker', enable_modules=[__name__])
            out = await asker.run(lookups_with_list_addrs, name='target', reg=list(reg_addr))
            assert out == {'wait': 'target', 'find': 'target', 'query': True, 'registry': True}
            await an.cancel()


async def test_find_actor_raise_on_none_raises_runtime_error(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs):
            with pytest.raises(RuntimeError, match='nobody'):
                async with tractor.find_actor('nobody', raise_on_none=True):
                    pytest.fail('the block must not run')
            with pytest.raises(RuntimeError, match='nobody'):
                async with tractor.find_actor('nobody', only_first=False, raise_on_none=True):
                    pytest.fail('the block must not run')


async def test_find_actor_delivers_a_working_portal(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            svc = await an.start_actor('svc', enable_modules=[__name__])
            async with tractor.find_actor('svc', raise_on_none=True) as portal:
                assert (await portal.run(whoami))['uid'] == list(svc.channel.uid)
            await an.cancel()


async def test_lookup_portals_are_closed_when_the_block_exits(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            await an.start_actor('svc', enable_modules=[__name__])
            client = await an.start_actor('client', enable_modules=[__name__])
            out = await client.run(scoped_lookups, name='svc')
            assert all(out.values()), out
            await an.cancel()


# -- fast path ----------------------------------------------------------------------
async def test_fast_path_connected_peer_needs_no_registrar_round_trip(runtime_kwargs):
    """The root (registrar) is connected to its child: a lookup of it is
    answered from that channel and the registrar serves no lookup."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            reg = local_registrar(tractor.current_actor())
            svc = await an.start_actor('svc', enable_modules=[__name__])
            before = dict(reg.served)
            async with tractor.find_actor('svc') as portal:
                assert portal.channel is svc.channel
            async with tractor.wait_for_actor('svc') as portal:
                assert portal.channel is svc.channel
            assert reg.served == before
            assert svc.channel.connected()  # a reused channel is not closed
            await an.cancel()


async def test_fast_path_works_with_the_registrar_unreachable(runtime_kwargs, tpt_proto):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            await an.start_actor('svc', enable_modules=[__name__])
            client = await an.start_actor('client', enable_modules=[__name__])
            out = await client.run(
                fast_path_with_registrar_unreachable,
                name='svc',
                dead_reg=list(_dead_addr(tpt_proto)),
            )
            assert out['same'] and out['same_wait']
            assert out['unreachable'] and 'no registrar answers' in out['unreachable']
            await an.cancel()


# -- wait_for_actor --------------------------------------------------------------------
async def test_wait_for_actor_blocks_until_registered(runtime_kwargs):
    """A waiter started before its target exists blocks inside the
    registrar (one request, parked on an event) and is woken by the
    target's registration: no polling, no repeated lookups."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            reg = local_registrar(tractor.current_actor())
            waiter = await an.run_in_actor(wait_then_call, name='waiter', target='target')
            while reg.backend.waiting('target') != 1:  # the waiter's request arrived
                await trio.sleep(0.01)
            parked = dict(reg.served)
            assert parked['wait'] == 1
            target = await an.start_actor('target', enable_modules=[__name__])
            result = await waiter.wait_for_result()
            assert result['uid'] == list(target.channel.uid)
            assert result['answer']['name'] == 'target'
            assert reg.served['wait'] == 1
            assert reg.served['lookup'] == parked['lookup']
            assert reg.backend.waiting() == 0
            await an.cancel()


async def test_wait_for_actor_in_the_registrar(runtime_kwargs, reg_addr):
    """The registrar itself waits on its own table (registry_addr given)."""
    found = []

    async def wait():
        async with tractor.wait_for_actor('late', registry_addr=reg_addr) as portal:
            found.append(await portal.run(whoami))

    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            reg = local_registrar(tractor.current_actor())
            async with trio.open_nursery() as tn:
                tn.start_soon(wait)
                while reg.backend.waiting('late') != 1:
                    await trio.sleep(0.01)
                late = await an.start_actor('late', enable_modules=[__name__])
            assert found == [await late.run(whoami)]
            await an.cancel()


# -- query_actor ------------------------------------------------------------------------
async def test_query_actor_does_not_dial_the_target(runtime_kwargs, tpt_proto):
    """query_actor yields the registered address without connecting: an
    entry pointing at a dead address is reported (and kept) as is, where a
    find_actor would have dialed it and deleted it."""
    dead = _dead_addr(tpt_proto)
    ghost_uid = ['ghost', str(uuid.uuid4())]
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs):
            async with tractor.get_registry() as reg:
                await reg.run_from_ns(
                    'self', 'register_actor', uid=ghost_uid, addrs=[mk_maddr(dead).to_wire()]
                )
            async with tractor.query_actor('ghost') as (addr, reg_portal):
                assert addr == dead and type(addr) is tuple
                assert isinstance(reg_portal, LocalPortal)
                entry = await reg_portal.run_from_ns('self', 'find_actor', name='ghost')
                assert list(entry[0]) == ghost_uid
            async with tractor.query_actor('nobody') as (addr, reg_portal):
                assert addr is None and isinstance(reg_portal, LocalPortal)


async def test_query_actor_from_a_child(runtime_kwargs, reg_addr):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            root = tractor.current_actor()
            svc = await an.start_actor('svc', enable_modules=[__name__])
            svc_addrs = (await svc.run(whoami), svc.channel.raddr.unwrap())[1]
            client = await an.start_actor('client', enable_modules=[__name__])
            out = await client.run(query_from_child, name='svc', reg_addr=list(reg_addr))
            assert tuple(out['addr']) == svc_addrs
            assert out['reg_is_portal'] and out['reg_peer'] == list(root.uid)
            assert out['miss'] is None and out['miss_reg_peer'] == list(root.uid)
            await an.cancel()


# -- get_registry --------------------------------------------------------------------------
async def test_get_registry_in_the_registrar_is_a_local_portal(runtime_kwargs, reg_addr):
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs) as root:
            async with tractor.get_registry() as reg:
                assert isinstance(reg, LocalPortal) and isinstance(reg, tractor.LocalPortal)
                assert str(mk_maddr(reg_addr)) in str(reg.channel)
                assert reg.channel.uid == root.uid
                entries = await reg.run_from_ns('self', 'get_registry')
                assert list(entries) == [root.uid]  # {uid: addrs}, keyed by tuples
            async with tractor.get_registry(reg_addr) as reg:  # one positional address
                assert isinstance(reg, LocalPortal)


async def test_get_registry_from_a_child_is_a_portal(runtime_kwargs, reg_addr):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            root = tractor.current_actor()
            client = await an.start_actor('client', enable_modules=[__name__])
            out = await client.run(registry_from_child, reg_addr=list(reg_addr))
            assert out['is_portal']
            assert out['peer'] == list(root.uid) == out['positional_peer']
            assert 'root' in out['text']
            uids = [u for u, _ in out['entries']]
            assert list(root.uid) in uids and list(client.channel.uid) in uids
            await an.cancel()


async def test_lookups_need_a_running_actor():
    with pytest.raises(tractor.NoRuntime):
        async with tractor.find_actor('anyone'):
            pass
    with pytest.raises(ValueError):
        async with tractor.find_actor(''):
            pass
