"""Registry events in one process: what MemoryRegistry emits, the bounded
per-subscriber queue, metadata, backward compatibility of register, and
the ``tractor`` command's argument parsing."""

from __future__ import annotations

import argparse

import pytest
import trio

from tractor.discovery import MemoryRegistry, Registered, Registrar, Unregistered, WatchOverflow
from tractor.discovery._cli import build_parser, parse_registry
from tractor.discovery._events import Hub, from_wire, meta_fields, to_wire

TCP = ('tcp', ['127.0.0.1', 4000])
TCP2 = ('tcp', ['127.0.0.1', 4001])


def drain(sub) -> list:
    out = []
    while True:
        try:
            out.append(sub.events.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


async def test_memory_registry_emits_every_change():
    reg = MemoryRegistry()
    await reg.register(('old', 'u0'), [TCP])
    async with reg.subscribe() as (current, sub):
        assert [r.uid for r in current] == [('old', 'u0')]
        assert current[0].registered is not None and current[0].pid is None
        await reg.register(('a', 'u1'), [TCP], {'pid': 42, 'host': 'h', 'parent': ['p', 'u']})
        await reg.register(('a', 'u1'), [TCP])  # a refresh changing nothing: no event
        await reg.register(('a', 'u1'), [TCP, TCP2])  # new addresses: an event
        await reg.delete_addr(('a', 'u1'), TCP2)  # one address left: an event
        await reg.delete_addr(('a', 'u1'), TCP)  # none left: unregistered, stale
        await reg.register(('b', 'u2'), [TCP])
        await reg.unregister(('b', 'u2'))
        evs = drain(sub)
    assert [type(e).__name__ for e in evs] == [
        'Registered',
        'Registered',
        'Registered',
        'Unregistered',
        'Registered',
        'Unregistered',
    ]
    first = evs[0]
    assert (first.pid, first.host, first.parent) == (42, 'h', ('p', 'u'))
    assert evs[1].pid == 42  # metadata kept on a refresh without it
    assert evs[1].registered == first.registered  # the first registration's time
    assert evs[3] == Unregistered(uid=('a', 'u1'), reason='stale')
    assert evs[5] == Unregistered(uid=('b', 'u2'), reason='graceful')
    assert len(reg.hub) == 0  # leaving the block ended the subscription


async def test_filters_by_name_and_prefix():
    reg = MemoryRegistry()
    async with reg.subscribe('worker') as (_, exact), reg.subscribe('worker', True) as (_, pre):
        for uid in (('worker', '1'), ('worker_0', '2'), ('other', '3')):
            await reg.register(uid, [TCP])
        assert [e.name for e in drain(exact)] == ['worker']
        assert [e.name for e in drain(pre)] == ['worker', 'worker_0']
    assert [r.name for r in await reg.entries('worker', prefix=True)] == ['worker_0', 'worker']


async def test_slow_subscriber_is_dropped_not_buffered():
    reg = MemoryRegistry()
    async with reg.subscribe(size=3) as (_, slow), reg.subscribe(size=100) as (_, fast):
        for i in range(10):
            await reg.register(('n', f'u{i}'), [TCP])
        assert slow.overflowed and len(reg.hub) == 1  # dropped at once
        assert len(drain(slow)) == 3  # only what fitted was kept
        with pytest.raises(WatchOverflow, match='more than 3 events'):
            slow.check()
        assert len(drain(fast)) == 10
        fast.check()


def test_bad_filters_and_sizes_say_why():
    hub = Hub()
    with pytest.raises(ValueError, match='needs a name prefix'):
        hub.subscribe(None, True)
    with pytest.raises(ValueError, match='non-empty actor name'):
        hub.subscribe('', False)
    with pytest.raises(ValueError, match='1..65536 events'):
        hub.subscribe(None, False, 0)


def test_events_round_trip_and_metadata_is_checked():
    ev = Registered(uid=('a', 'u'), addrs=[TCP], pid=1, host='h', parent=('p', 'q'), registered=2.0)
    assert from_wire(to_wire(ev)) == ev
    gone = Unregistered(uid=('a', 'u'), reason='expired')
    assert from_wire(to_wire(gone)) == gone
    with pytest.raises(ValueError, match='not a registry event'):
        from_wire({'event': 'exploded'})
    assert meta_fields({'pid': -1, 'host': 7, 'parent': ['x'], 'other': 1}) == {}
    assert meta_fields(None) == {}


class NoMetaBackend(MemoryRegistry):
    """A backend written before metadata: register() takes no ``meta``."""

    async def register(self, uid, addrs):  # type: ignore[override]  # the old signature, on purpose
        await super().register(uid, addrs)


async def test_registrar_over_a_backend_without_metadata():
    class FakeActor:
        uid = ('r', 'x')

    reg = Registrar(FakeActor(), backend=NoMetaBackend())  # type: ignore[arg-type]  # a stub actor
    await reg.register_actor(['a', 'u'], [TCP], meta={'pid': 5})
    await reg.register_actor(['b', 'u'], [TCP])  # the old form of the RPC
    listed = {e['uid'][0]: e for e in await reg.list_entries()}
    assert set(listed) == {'a', 'b'} and listed['a']['pid'] is None


@pytest.mark.parametrize(
    'text, proto',
    [
        ('127.0.0.1:1616', 'tcp'),
        ('[::1]:1616', 'tcp'),
        ('/ip4/127.0.0.1/tcp/1616', 'tcp'),
        ('/unix/tmp/registry.sock', 'uds'),
    ],
)
def test_registry_option_parses_addresses(text, proto):
    assert parse_registry(text).proto_key == proto


@pytest.mark.parametrize('text', ['not an address', 'host:notaport', '/nope/x'])
def test_registry_option_refuses_bad_text(text):
    with pytest.raises(argparse.ArgumentTypeError, match='registry address|not'):
        parse_registry(text)


def test_every_command_takes_registry_and_json():
    parser = build_parser()
    for cmd in (['ls'], ['watch'], ['tree'], ['ping', 'x'], ['registrar']):
        args = parser.parse_args([*cmd, '--registry', '127.0.0.1:1', '--json'])
        assert args.json and [a.proto_key for a in args.registry] == ['tcp']


async def test_watch_merges_sources():
    """The merge of several registries' events (fed in directly): each entry
    told once; gone once no answering registry has it; a registry that comes
    back is re-read and what went meanwhile is told gone."""
    from tractor.discovery._watch import Watch, _Lost, _Reset, _Synced

    send, recv = trio.open_memory_channel(100)
    w = Watch(recv)
    x = Registered(uid=('x', '1'), addrs=[TCP])
    y = Registered(uid=('y', '2'), addrs=[TCP2])
    feed = [
        ('a', _Reset()),
        ('a', x),
        ('a', _Synced()),
        ('b', _Reset()),
        ('b', x),
        ('b', y),
        ('b', _Synced()),
        ('a', Unregistered(uid=x.uid)),  # b still has x: not yet
        ('b', Unregistered(uid=x.uid, reason='graceful')),  # now it is gone
        ('a', _Lost()),
        ('a', _Reset()),
        ('a', _Synced()),  # a back, empty: b has y
        ('b', _Lost()),
        ('b', _Reset()),
        ('b', _Synced()),  # b back without y
    ]
    for item in feed:
        send.send_nowait(item)
    send.close()
    got = [ev async for ev in w]
    assert got == [
        x,
        y,
        Unregistered(uid=x.uid, reason='graceful'),
        Unregistered(uid=y.uid, reason=None),
    ]
