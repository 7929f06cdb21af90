"""An actor tree over a transport that neither core nor the built-in plugins
know: ``tractor-testtransport`` (Linux abstract unix sockets), found only
through the ``tractor`` entry-point group."""

from __future__ import annotations

import os
import sys
import uuid

import pytest
import trio

import tractor
from tractor.discovery import mk_maddr, parse_maddr
from tractor.plugin import installed_transports

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith('linux'), reason='abstract unix sockets are Linux-only'
    ),
]


def _addr_facts(addr) -> dict:
    """What a test wants to know about one address, in plain data."""
    text = str(addr)
    back = parse_maddr(text)
    return {
        'proto': addr.proto_key,
        'tuple': list(addr.unwrap()),
        'maddr': text,
        'roundtrip': back == addr and back.unwrap() == addr.unwrap(),
    }


async def whoami() -> dict:
    actor = tractor.current_actor()
    return {
        'name': actor.name,
        'pid': os.getpid(),
        'accept': [list(a) for a in actor.accept_addrs],
        'reg': [list(a) for a in actor.reg_addrs],
    }


async def spawn_grandchild() -> dict:
    """Run in the child: start a grandchild over the inherited transport."""
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('grandchild', enable_modules=[__name__])
        info = await portal.run(whoami)
        info['raddr'] = _addr_facts(portal.channel.raddr)
        # discovery works over it too (registry addrs were inherited)
        async with tractor.find_actor('grandchild') as found:
            info['found'] = found is not None and found.channel.raddr.proto_key
        await portal.cancel_actor()
    return info


def test_plugin_is_found_through_the_entry_point():
    tpt = installed_transports()['abstract']
    assert type(tpt).__module__ == 'tractor_testtransport'
    # the plain tuple form is claimed by this transport alone
    tpts = installed_transports()
    assert [k for k, t in tpts.items() if t.claims(('some-name',))] == ['abstract']
    assert not tpt.claims(('127.0.0.1', 1616)) and not tpt.claims(('/tmp', 'x.sock'))
    addr = mk_maddr(('some-name',))
    assert addr.proto_key == 'abstract'
    assert str(addr) == '/abstract/some-name'
    assert parse_maddr('/abstract/some-name') == addr
    assert addr.unwrap() == ('some-name',)
    assert mk_maddr(('127.0.0.1', 1616)).proto_key == 'tcp'
    assert mk_maddr(('/tmp', 'x.sock')).proto_key == 'uds'


async def test_actor_tree_over_abstract_sockets():
    reg = (f'trt-registry-{uuid.uuid4().hex[:12]}',)
    with trio.fail_after(30):
        async with tractor.open_nursery(enable_transports=['abstract'], registry_addrs=[reg]) as an:
            root = tractor.current_actor()
            assert [tuple(a) for a in root.reg_addrs] == [reg]
            assert root.is_registrar and reg in root.accept_addrs
            assert all(len(a) == 1 for a in root.accept_addrs)

            portal = await an.start_actor('child', enable_modules=[__name__])
            raddr = portal.channel.raddr
            assert raddr.proto_key == 'abstract'
            facts = _addr_facts(raddr)
            assert facts['roundtrip'], facts
            assert facts['maddr'] == f'/abstract/{raddr.unwrap()[0]}'

            async with tractor.find_actor('child', registry_addrs=[reg]) as found:
                assert found is not None
                assert found.channel.raddr.proto_key == 'abstract'

            child = await portal.run(whoami)
            assert child['name'] == 'child'
            assert child['pid'] == portal.channel.aid.pid != os.getpid()
            assert child['reg'] == [list(reg)]  # inherited
            assert child['accept'] == [list(raddr.unwrap())]

            grand = await portal.run(spawn_grandchild)
            assert grand['name'] == 'grandchild'
            assert grand['pid'] not in (os.getpid(), child['pid'])
            assert grand['reg'] == [list(reg)]
            assert grand['raddr']['proto'] == 'abstract'
            assert grand['raddr']['roundtrip'], grand['raddr']
            assert all(len(a) == 1 for a in grand['accept'])
            assert grand['found'] == 'abstract'

            assert await portal.cancel_actor()
