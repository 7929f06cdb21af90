"""Discovery across hosts on real networks: each "host" is a Linux network
namespace on one bridge (tractor_testsupport.netns), etcd runs inside them
(1 member, or 3 for the member-down and partition cases), and the trees are
``programs/discovery_tree.py`` run with ``ip netns exec``.

Needs root, iproute2 and etcd (Debian: ``etcd-server``); without them these
tests skip, saying what is missing (the single-host etcd tests in
plugins/tractor-etcd still run).
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest
import trio

from tractor_testsupport import netns
from tractor_testsupport.etcd import (
    EtcdMember,
    etcd_binary,
    lease_ttl,
    names_in,
    start_cluster,
    until_stored,
    wait_healthy,
)

pytestmark = pytest.mark.slow
TTL = 2
TIMEOUT = 90


@pytest.fixture
def etcd_members(net):
    """One etcd member per host (a single member on a 2-host net's first
    host; all three on a 3-host net), reaped afterwards."""
    if etcd_binary() is None:
        pytest.skip('etcd is not installed (Debian: apt-get install etcd-server)')
    hosts = net.hosts if len(net.hosts) >= 3 else net.hosts[:1]
    members = [EtcdMember(f'm{i}', h.ip, 2379, 2380, prefix=h.run) for i, h in enumerate(hosts)]
    try:
        start_cluster(members)
        yield members
    finally:
        for m in members:
            m.remove()


def url(
    members: list[EtcdMember], prefix: str, order: list[int] | None = None, ttl: int = TTL
) -> str:
    picked = [members[i] for i in (order or range(len(members)))]
    return f'etcd://{",".join(m.endpoint for m in picked)}/{prefix}?ttl={ttl}'


@pytest.fixture
def prefix() -> str:
    return f'h{uuid.uuid4().hex[:8]}'


async def join(
    run_program, host: netns.Host, registry: str, find: str, transports: tuple = ('tcp',)
) -> dict:
    tpts = [arg for key in transports for arg in ('--transport', key)]
    async with run_program(
        'discovery_tree.py',
        'join',
        '--registry',
        registry,
        '--find',
        find,
        '--call',
        '__main__:whoami',
        '--name',
        f'caller-{host.name}',
        *tpts,
        ready='RESULT',
        prefix=host.run,
    ) as prog:
        return prog.info


async def test_cross_host_call_through_etcd(net, etcd_members, prefix, run_program):
    """A tree on host A serves 'svc'; a program on host B finds it through
    etcd and calls it over A's routable TCP address."""
    a, b = net.hosts
    reg = url(etcd_members, prefix)
    with trio.fail_after(TIMEOUT):
        async with run_program(
            'discovery_tree.py', 'tree', '--registry', reg, '--service', 'svc', prefix=a.run
        ) as tree:
            svc = tree.info['services']['svc']
            assert not tree.info['root']['is_registrar']
            # the root bound next to etcd, on A's own address: routable
            assert [tuple(x) for x in tree.info['root']['accept_addrs']][0][0] == a.ip
            got = await join(run_program, b, reg, 'svc')
            assert got['found']['uid'] == svc['uid']
            assert got['found']['proto'] == 'tcp' and got['found_addr'][0] == a.ip
            assert got['called']['pid'] == svc['pid']
            assert got['me']['accept_addrs'][0][0] == b.ip


async def test_ranking_uds_on_the_same_host_tcp_from_another(
    net, etcd_members, prefix, run_program
):
    """A multihomed UDS+TCP actor on A is reached over UDS from A and over
    TCP from B. B has UDS too and shares A's file system (namespaces of one
    machine), so only the entry's host identity keeps B off the UDS path."""
    a, b = net.hosts
    reg = url(etcd_members, prefix)
    with trio.fail_after(TIMEOUT):
        async with run_program(
            'discovery_tree.py',
            'tree',
            '--registry',
            reg,
            '--service',
            'multi:uds,tcp',
            prefix=a.run,
        ) as tree:
            svc = tree.info['services']['multi']
            assert sorted(svc['transports']) == ['tcp', 'uds']
            from_a = await join(run_program, a, reg, 'multi', ('uds', 'tcp'))
            from_b = await join(run_program, b, reg, 'multi', ('uds', 'tcp'))
            assert from_a['found']['uid'] == from_b['found']['uid'] == svc['uid']
            assert from_a['found']['proto'] == 'uds'
            assert from_b['found']['proto'] == 'tcp' and from_b['found_addr'][0] == a.ip


async def test_joining_an_embedded_registrar_on_another_host(net, run_program):
    """Without etcd: a root on B pointed at the registrar on A binds B's own
    address (the interface routing to A), not A's IP, and registers it."""
    a, b = net.hosts
    reg = f'/ip4/{a.ip}/tcp/1616'
    with trio.fail_after(TIMEOUT):
        async with run_program(
            'discovery_tree.py', 'tree', '--registry', reg, '--service', 'svc', prefix=a.run
        ) as tree:
            assert tree.info['root']['is_registrar']
            got = await join(run_program, b, reg, 'svc')
            assert got['me']['accept_addrs'][0][0] == b.ip
            assert got['found']['uid'] == tree.info['services']['svc']['uid']
            assert got['called']['pid'] == tree.info['services']['svc']['pid']


async def test_sigkill_expires_and_etcd_restart_reregisters(net, etcd_members, prefix, run_program):
    """SIGKILL on A: the entry is gone after the TTL, with nobody looking it
    up. etcd stopped and restarted empty: every live actor registers again."""
    a, b = net.hosts
    (member,) = etcd_members
    reg = url(etcd_members, prefix)
    with trio.fail_after(TIMEOUT):
        async with run_program(
            'discovery_tree.py',
            'tree',
            '--registry',
            reg,
            '--service',
            'doomed',
            '--service',
            'keeper',
            prefix=a.run,
        ) as tree:
            seen = await until_stored(member.endpoint, prefix, lambda e: len(e) == 3)
            assert names_in(seen) == ['doomed', 'keeper', 'root']
            os.kill(tree.info['services']['doomed']['pid'], signal.SIGKILL)
            await until_stored(member.endpoint, prefix, lambda e: names_in(e) == ['keeper', 'root'])

            await trio.to_thread.run_sync(member.stop)
            member.wipe()
            member.start(f'{member.name}={member.peer_url}')
            await trio.to_thread.run_sync(wait_healthy, [member])
            await until_stored(member.endpoint, prefix, lambda e: names_in(e) == ['keeper', 'root'])
            got = await join(run_program, b, reg, 'keeper')
            assert got['called']['pid'] == tree.info['services']['keeper']['pid']


@pytest.mark.parametrize('net', [3], indirect=True)
async def test_one_of_three_members_down(net, etcd_members, prefix, run_program):
    """With the member every client talks to first stopped, keepalives,
    registrations and lookups go on through the other two."""
    a, b, _c = net.hosts
    ttl = 6  # keepalives every 2 s: the remaining TTL visibly drops and rises
    reg = url(etcd_members, prefix, ttl=ttl)  # m0 (on A) first
    with trio.fail_after(TIMEOUT):
        async with run_program(
            'discovery_tree.py', 'tree', '--registry', reg, '--service', 'svc', prefix=a.run
        ) as tree:
            await until_stored(etcd_members[1].endpoint, prefix, lambda e: len(e) == 2)
            await trio.to_thread.run_sync(etcd_members[0].stop)
            live = etcd_members[1].endpoint
            entries = await until_stored(live, prefix, lambda e: len(e) == 2)
            lease = next(r['lease'] for r in entries.values() if r['uid'][0] == 'svc')
            # the keepalive reaches a live member: the remaining TTL rises again
            low = ttl
            with trio.fail_after(3 * ttl):
                while (left := await trio.to_thread.run_sync(lease_ttl, live, lease)) <= low:
                    assert left > 0, 'the lease ran out: no keepalive got through'
                    low = left
                    await trio.sleep(0.1)
            got = await join(run_program, b, reg, 'svc')  # registers itself too
            assert got['called']['pid'] == tree.info['services']['svc']['pid']
            assert names_in(await until_stored(live, prefix, lambda e: len(e) == 2)) == [
                'root',
                'svc',
            ]


@pytest.mark.parametrize('net', [3], indirect=True)
async def test_partitioned_host_entries_expire_then_come_back(
    net, etcd_members, prefix, run_program
):
    """Host C cut off: its entries expire within the TTL on the majority
    side; healed, C's actors register again by themselves."""
    a, _b, c = net.hosts
    reg = url(etcd_members, prefix, order=[2, 0, 1])  # C's own member first
    majority = etcd_members[0].endpoint
    with trio.fail_after(TIMEOUT):
        async with run_program(
            'discovery_tree.py', 'tree', '--registry', reg, '--service', 'onc', prefix=c.run
        ):
            await until_stored(majority, prefix, lambda e: names_in(e) == ['onc', 'root'])
            net.partition(c)
            try:
                await until_stored(majority, prefix, lambda e: not e)
            finally:
                net.heal(c)
            await until_stored(majority, prefix, lambda e: names_in(e) == ['onc', 'root'], 30)
            got = await join(run_program, a, url(etcd_members, prefix), 'onc')
            assert got['found_addr'][0] == c.ip
