"""Discovery across separate programs (over TCP and UDS): joining a live
tree from outside, the same code standing alone, and lookups that span two
registrars. The other program is ``programs/discovery_tree.py``."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
import trio

import tractor
from tractor.discovery import mk_maddr

pytestmark = pytest.mark.slow


def fresh_addr(tpt_proto: str) -> tuple:
    """A registry address nobody uses yet."""
    if tpt_proto == 'tcp':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()
    return (os.environ['TRACTOR_RUNTIME_DIR'], f'registry@{uuid.uuid4().hex[:8]}.sock')


def tree_args(reg_addr: tuple, tpt_proto: str, *services: str) -> list[str]:
    args = ['tree', '--registry', str(mk_maddr(reg_addr)), '--transport', tpt_proto]
    for name in services:
        args += ['--service', name]
    return args


async def whoami() -> dict:
    actor = tractor.current_actor()
    return {'name': actor.name, 'uid': list(actor.uid)}


async def find_bobs(regs: list, remote_uid: list) -> dict:
    """Run in a subactor connected to no 'bob'; the other program's bob
    serves its own ``__main__``, ours this module."""
    regs = [tuple(r) for r in regs]
    out = {}
    async with tractor.find_actor('bob', registry_addrs=regs, only_first=False) as portals:
        out['all'] = [list(p.channel.uid) for p in portals]
        out['answers'] = [
            await p.run_from_ns('__main__', 'whoami')
            if list(p.channel.uid) == remote_uid
            else await p.run(whoami)
            for p in portals
        ]
    async with tractor.find_actor('bob', registry_addrs=regs[::-1]) as portal:
        out['first_reversed'] = list(portal.channel.uid)
    async with tractor.find_actor('bob', registry_addrs=regs) as portal:
        out['first'] = list(portal.channel.uid)
    return out


async def test_find_actor_only_first_false_across_two_registrars(
    run_program, runtime_kwargs, reg_addr, tpt_proto
):
    """This tree (registrar A) and another program's tree (registrar B)
    each run a 'bob'; a lookup naming both registrars delivers both bobs
    with only_first=False, and the first registrar's bob otherwise."""
    other_reg = fresh_addr(tpt_proto)
    async with run_program('discovery_tree.py', *tree_args(other_reg, tpt_proto, 'bob')) as prog:
        remote_bob = prog.info['services']['bob']['uid']
        assert prog.info['root']['is_registrar']
        with trio.fail_after(30):
            async with tractor.open_nursery(**runtime_kwargs) as an:
                local_bob = list(
                    (await an.start_actor('bob', enable_modules=[__name__])).channel.uid
                )
                looker = await an.start_actor('looker', enable_modules=[__name__])
                out = await looker.run(
                    find_bobs, regs=[list(reg_addr), list(other_reg)], remote_uid=remote_bob
                )
                assert sorted(out['all']) == sorted([local_bob, remote_bob])
                assert sorted(a['uid'] for a in out['answers']) == sorted([local_bob, remote_bob])
                assert out['first'] == local_bob
                assert out['first_reversed'] == remote_bob
                await an.cancel()


async def test_join_existing_tree_from_outside(run_program, reg_addr, tpt_proto):
    """A separate program boots its root against a live tree's registrar:
    it joins as a plain root (random addresses of the same transport),
    registers there, finds and calls the tree's service, and unregisters
    when it exits."""
    async with run_program(
        'discovery_tree.py', *tree_args(reg_addr, tpt_proto, 'data_feed')
    ) as prog:
        feed = prog.info['services']['data_feed']
        with trio.fail_after(30):
            async with (
                tractor.open_root_actor(
                    name='joiner', registry_addrs=[reg_addr], enable_transports=[tpt_proto]
                ) as me,
                tractor.find_actor('data_feed') as portal,
            ):
                assert not me.is_registrar
                assert reg_addr not in me.accept_addrs
                assert {mk_maddr(a).proto_key for a in me.accept_addrs} == {tpt_proto}
                answer = await portal.run_from_ns('__main__', 'whoami')
                assert answer['uid'] == feed['uid'] and answer['name'] == 'data_feed'
                async with tractor.get_registry() as reg:
                    assert isinstance(reg, tractor.Portal)
                    assert list(reg.channel.uid) == prog.info['root']['uid']
                    entry = await reg.run_from_ns('self', 'find_actor', name='joiner')
                    assert tuple(entry[0]) == me.uid
                joiner_uid = list(me.uid)
            # gone from the tree's registry once it exited
            async with tractor.open_root_actor(
                name='checker', registry_addrs=[reg_addr], enable_transports=[tpt_proto]
            ):
                async with tractor.get_registry() as reg:
                    entries = await reg.run_from_ns('self', 'get_registry')
                uids = [list(u) for u in entries]
                assert joiner_uid not in uids and feed['uid'] in uids


async def test_join_code_becomes_registrar_when_none_reachable(tpt_proto):
    """The very same joining code, with nothing at the registry address,
    boots as the registrar of its own (empty) tree."""
    reg_addr = fresh_addr(tpt_proto)
    with trio.fail_after(30):
        async with (
            tractor.open_root_actor(
                name='joiner', registry_addrs=[reg_addr], enable_transports=[tpt_proto]
            ) as me,
            tractor.find_actor('data_feed') as portal,
        ):
            assert portal is None
            assert me.is_registrar and reg_addr in me.accept_addrs
            async with tractor.get_registry() as reg:
                assert isinstance(reg, tractor.LocalPortal)


async def test_separate_program_joins_this_tree(run_program, runtime_kwargs, reg_addr, tpt_proto):
    """The other direction: this process runs the tree, another program
    joins it by registry address, finds the service and calls it."""
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            feed = await an.start_actor('data_feed', enable_modules=[__name__])
            async with run_program(
                'discovery_tree.py',
                'join',
                '--registry',
                str(mk_maddr(reg_addr)),
                '--transport',
                tpt_proto,
                '--find',
                'data_feed',
                '--call',
                f'{__name__}:whoami',
                ready='RESULT',
            ) as prog:
                result = prog.info
            assert result['me']['is_registrar'] is False
            assert result['found']['uid'] == list(feed.channel.uid)
            assert result['found']['proto'] == tpt_proto
            assert result['called'] == {'name': 'data_feed', 'uid': list(feed.channel.uid)}
            # the joiner unregistered on its way out
            async with tractor.get_registry() as reg:
                assert await reg.run_from_ns('self', 'find_actor', name='joiner') is None
            await an.cancel()


async def test_tcp_only_program_reaches_multihomed_actor_over_uds(run_program):
    """A program that serves only TCP joins a tree whose service serves
    UDS and TCP, and reaches it over UDS: what an actor serves does not
    limit what it dials, and UDS ranks first on the same host."""
    reg_addr = fresh_addr('tcp')
    kw = {'registry_addrs': [reg_addr], 'enable_transports': ['tcp', 'uds']}
    with trio.fail_after(60):
        async with tractor.open_nursery(**kw) as an:
            multi = await an.start_actor(
                'multi', enable_transports=['uds', 'tcp'], enable_modules=[__name__]
            )
            async with run_program(
                'discovery_tree.py',
                'join',
                '--registry',
                str(mk_maddr(reg_addr)),
                '--transport',
                'tcp',
                '--find',
                'multi',
                '--call',
                f'{__name__}:whoami',
                ready='RESULT',
            ) as prog:
                result = prog.info
            assert result['found'] == {'uid': list(multi.channel.uid), 'proto': 'uds'}
            assert result['called']['name'] == 'multi'
            await an.cancel()


@pytest.mark.parametrize('with_ensure', [False, True])
async def test_second_program_on_a_served_registry_addr(
    run_program, runtime_kwargs, reg_addr, tpt_proto, with_ensure
):
    """Another program booting on this tree's registry address joins it,
    or, with ensure_registry=True, fails with RuntimeError."""
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs):
            args = tree_args(reg_addr, tpt_proto) + (['--ensure-registry'] if with_ensure else [])
            async with run_program('discovery_tree.py', *args, ready=None, expect_rc=None) as prog:
                tagged = await prog.read_tagged()
                if with_ensure:
                    assert tagged is None  # it never got READY
                    await prog.proc.wait()
                    assert prog.proc.returncode != 0
                    err = prog.stderr()
                    assert 'RuntimeError' in err and 'ensure_registry=True' in err
                else:
                    assert tagged is not None and tagged[0] == 'READY'
                    assert tagged[1]['root']['is_registrar'] is False
