"""A multihomed actor (serving UDS and TCP at once) registers all its
addresses; each caller dials the best one its installed transports can
reach (UDS on the same host, whatever the caller itself serves); an
unreachable best address falls back down the list. The tree's registry runs over each transport in turn."""

from __future__ import annotations

import os
import uuid

import pytest
import trio

import tractor
from tractor.discovery import mk_maddr
from tractor.discovery._registrar import local_registrar

pytestmark = pytest.mark.slow


async def lookup(name: str) -> dict:
    """Run in a caller: how ``name`` was reached, and what query_actor says."""
    async with tractor.find_actor(name) as portal:
        out = {
            'proto': portal.channel.raddr.proto_key,
            'raddr': list(portal.channel.raddr.unwrap()),
            'uid': list(portal.channel.uid),
            'answer': await portal.run(whoami),
        }
    async with tractor.query_actor(name) as (addr, _):
        out['query'] = mk_maddr(addr).proto_key
    return out


async def whoami() -> dict:
    actor = tractor.current_actor()
    return {'name': actor.name, 'accept_addrs': [list(a) for a in actor.accept_addrs]}


async def test_multihomed_actor_registers_all_addresses(runtime_kwargs):
    kw = {**runtime_kwargs, 'enable_transports': ['tcp', 'uds']}
    with trio.fail_after(30):
        async with tractor.open_nursery(**kw) as an:
            multi = await an.start_actor(
                'multi', enable_transports=['uds', 'tcp'], enable_modules=[__name__]
            )
            served = await multi.run(whoami)
            assert sorted(mk_maddr(tuple(a)).proto_key for a in served['accept_addrs']) == [
                'tcp',
                'uds',
            ]
            async with tractor.get_registry() as reg:
                _uid, addrs = await reg.run_from_ns('self', 'find_actor', name='multi')
            assert sorted(map(str, map(mk_maddr, addrs))) == sorted(
                str(mk_maddr(tuple(a))) for a in served['accept_addrs']
            )
            await an.cancel()


async def test_multihomed_actor_reached_over_uds_from_the_same_host(runtime_kwargs):
    kw = {**runtime_kwargs, 'enable_transports': ['tcp', 'uds']}
    with trio.fail_after(30):
        async with tractor.open_nursery(**kw) as an:
            await an.start_actor(
                'multi', enable_transports=['uds', 'tcp'], enable_modules=[__name__]
            )
            caller = await an.start_actor(
                'caller', enable_transports=['tcp', 'uds'], enable_modules=[__name__]
            )
            out = await caller.run(lookup, name='multi')
            assert out['proto'] == 'uds' and out['query'] == 'uds'
            assert out['answer']['name'] == 'multi'
            await an.cancel()


async def test_tcp_only_caller_dials_the_multihomed_actor_over_uds(runtime_kwargs):
    """``enable_transports`` is what an actor *serves*, not what it can dial:
    a TCP-only caller on the same host is handed the UDS address (UDS, then
    local TCP, then remote TCP), by ``find_actor`` and ``query_actor`` alike."""
    kw = {**runtime_kwargs, 'enable_transports': ['tcp', 'uds']}
    with trio.fail_after(30):
        async with tractor.open_nursery(**kw) as an:
            await an.start_actor(
                'multi', enable_transports=['uds', 'tcp'], enable_modules=[__name__]
            )
            caller = await an.start_actor(
                'tcp_caller', enable_transports=['tcp'], enable_modules=[__name__]
            )
            out = await caller.run(lookup, name='multi')
            assert out['proto'] == 'uds' and out['query'] == 'uds'
            assert out['answer']['name'] == 'multi'
            await an.cancel()


async def test_tcp_is_dialed_when_the_entry_has_only_tcp(runtime_kwargs):
    """A UDS-serving caller reaches a TCP-only actor over TCP."""
    kw = {**runtime_kwargs, 'enable_transports': ['tcp', 'uds']}
    with trio.fail_after(30):
        async with tractor.open_nursery(**kw) as an:
            await an.start_actor('tcp_only', enable_transports=['tcp'], enable_modules=[__name__])
            caller = await an.start_actor(
                'uds_caller', enable_transports=['uds'], enable_modules=[__name__]
            )
            out = await caller.run(lookup, name='tcp_only')
            assert out['proto'] == 'tcp' and out['query'] == 'tcp'
            assert out['raddr'][0] == '127.0.0.1'
            await an.cancel()


async def test_unreachable_best_address_falls_back_down_the_list(runtime_kwargs):
    """The entry's UDS address (the best) is dead: the lookup deletes it
    from the entry and reaches the same actor over TCP."""
    kw = {**runtime_kwargs, 'enable_transports': ['tcp', 'uds']}
    dead_uds = mk_maddr((os.environ['TRACTOR_RUNTIME_DIR'], f'dead-{uuid.uuid4().hex[:8]}.sock'))
    with trio.fail_after(30):
        async with tractor.open_nursery(**kw) as an:
            reg = local_registrar(tractor.current_actor())
            multi = await an.start_actor(
                'multi', enable_transports=['tcp'], enable_modules=[__name__]
            )
            uid = multi.channel.uid
            [(_, tcp_addrs)] = [
                (u, a) for u, a in (await reg.backend.snapshot()).items() if u == uid
            ]
            # the registrar now believes 'multi' also serves a (dead) UDS socket
            await reg.register_actor(list(uid), [*tcp_addrs, dead_uds.to_wire()])
            caller = await an.start_actor(
                'caller', enable_transports=['uds', 'tcp'], enable_modules=[__name__]
            )
            out = await caller.run(lookup, name='multi')
            assert out['proto'] == 'tcp' and out['uid'] == list(uid)
            assert (await reg.backend.snapshot())[uid] == tcp_addrs
            await an.cancel()
