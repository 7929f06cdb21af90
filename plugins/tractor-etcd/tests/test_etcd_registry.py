"""The etcd registry on one host, against a real etcd (see conftest.py):
registration on a lease, lookups, waiting on a watch, expiry, stale entries,
outages. The multi-host cases are in integration/tests/test_etcd_hosts.py."""

from __future__ import annotations

import os
import signal

import pytest
import trio

import tractor
from tractor.discovery import RegistrarUnreachable, StorePortal
from tractor_etcd import EtcdAddress, EtcdUnreachable, host_id
from tractor_testsupport.etcd import names_in as names
from tractor_testsupport.etcd import stored_names, until_stored, wait_healthy

pytestmark = pytest.mark.slow

TIMEOUT = 30


async def whoami() -> list:
    return list(tractor.current_actor().uid)


async def sleep_forever() -> None:
    await trio.sleep_forever()


def stored(etcd, url: str) -> dict[str, dict]:
    """The entries in etcd under ``url``'s prefix."""
    return stored_names(etcd.endpoint, EtcdAddress.parse(url).prefix)


async def wait_until(etcd, url: str, predicate) -> dict:
    return await until_stored(etcd.endpoint, EtcdAddress.parse(url).prefix, predicate)


# -- addresses ----------------------------------------------------------------
@pytest.mark.parametrize(
    'text, endpoints, prefix',
    [
        ('etcd://127.0.0.1:2379', [('127.0.0.1', 2379)], 'tractor'),
        ('etcd://a:1,b:2,[::1]:3/app', [('a', 1), ('b', 2), ('::1', 3)], 'app'),
        ('etcd://h:2379/x/y/?ttl=3', [('h', 2379)], 'x/y'),
    ],
)
def test_parse_address(text, endpoints, prefix):
    addr = EtcdAddress.parse(text)
    assert addr.endpoints == endpoints
    assert addr.prefix == prefix
    assert EtcdAddress.parse(addr.url) == addr
    from tractor.plugin import wrap_address

    assert wrap_address(text) == addr
    assert wrap_address(addr.to_wire()) == addr  # how subactors get it


@pytest.mark.parametrize(
    'text, why',
    [
        ('etcd://', 'no HOST:PORT'),
        ('etcd://host', 'not HOST:PORT'),
        ('etcd://h:99999', 'outside'),
        ('etcd://h:1?ttl=0', 'TTL'),
        ('etcd://h:1?ttl=x', 'whole seconds'),
        ('etcd://h:1?colour=red', "unknown option 'colour'"),
        ('etcd://h:1?cert=/c.pem', 'both cert= and key='),
    ],
)
def test_bad_address_says_why(text, why):
    with pytest.raises(ValueError, match=why):
        EtcdAddress.parse(text)


def test_tls_and_user_options_round_trip():
    addr = EtcdAddress.parse('etcd://h:1/p?cacert=/ca.pem&cert=/c.pem&key=/k.pem&user=app')
    assert addr.tls and addr.cacert == '/ca.pem' and addr.user == 'app'
    assert EtcdAddress.parse(addr.url) == addr
    assert EtcdAddress.parse('etcd://h:1?tls=1').tls


# -- registration and lookups ------------------------------------------------------
async def test_register_find_call_and_unregister(etcd, etcd_url):
    """Root and child register in etcd (no registrar actor, nothing bound at
    etcd's address); find_actor, query_actor and get_registry work on it;
    graceful exit revokes the leases, so the entries are gone at once (long
    before the 60 s TTL)."""
    etcd_url = etcd_url.replace('ttl=2', 'ttl=60')
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(registry_addrs=[etcd_url]) as an:
            me = tractor.current_actor()
            assert not me.is_registrar
            # no registry socket: random ports only, neither etcd's nor the default 1616
            assert all(a[1] not in (etcd.client_port, 1616) for a in me.accept_addrs)
            portal = await an.start_actor('svc', enable_modules=[__name__])
            entries = stored(etcd, etcd_url)
            assert names(entries) == ['root', 'svc']
            assert {rec['host'] for rec in entries.values()} == {host_id()}
            async with tractor.find_actor('svc') as found:
                assert await found.run(whoami) == list(portal.channel.uid)
            async with tractor.query_actor('svc') as (addr, reg):
                assert isinstance(reg, StorePortal)
                assert addr in [
                    tuple(a[1])
                    for a in [rec for rec in entries.values() if rec['uid'][0] == 'svc'][0]['addrs']
                ]
            async with tractor.get_registry() as reg:
                table = dict(await reg.get_registry())
                assert {uid[0] for uid in table} == {'root', 'svc'}
                assert (await reg.find_actor(name='svc'))[0] == portal.channel.uid
                info = await reg.run_from_ns('self', 'registrar_info')
                assert info['backend'] == 'EtcdRegistry' and info['ttl'] == 60
            await portal.cancel_actor()
            # the child's graceful exit revoked its lease
            await wait_until(etcd, etcd_url, lambda e: names(e) == ['root'])  # the revoke
    assert stored(etcd, etcd_url) == {}


@pytest.mark.slow
async def test_subactor_lookup_uses_etcd_and_newest_wins(etcd, etcd_url):
    """Subactors inherit the etcd registry; of two actors with one name the
    newest registration (highest etcd revision) is found."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(registry_addrs=[etcd_url]) as an:
            first = await an.start_actor('dup', enable_modules=[__name__])
            second = await an.start_actor('dup', enable_modules=[__name__])
            asker = await an.start_actor('asker', enable_modules=[__name__])
            assert await asker.run(find_uid, name='dup') == list(second.channel.uid)
            await second.cancel_actor()
            gone = '/'.join(second.channel.uid)
            await wait_until(etcd, etcd_url, lambda e: gone not in e)  # its lease revoked
            assert await asker.run(find_uid, name='dup') == list(first.channel.uid)
            await an.cancel()


async def find_uid(name: str) -> list | None:
    actor = tractor.current_actor()
    assert [str(a) for a in actor.registry_addrs][0].startswith('etcd://')
    async with tractor.find_actor(name) as portal:
        return list(portal.channel.uid) if portal is not None else None


async def test_miss_and_raise_on_none(etcd, etcd_url):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_root_actor(registry_addrs=[etcd_url]):
            async with tractor.find_actor('nobody') as portal:
                assert portal is None
            with pytest.raises(RuntimeError, match='nobody'):
                async with tractor.find_actor('nobody', raise_on_none=True):
                    pass
            async with tractor.query_actor('nobody') as (addr, _):
                assert addr is None


async def test_wait_for_actor_blocks_on_a_watch(etcd, etcd_url):
    """A waiter started before the name exists is woken by the registration."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(registry_addrs=[etcd_url]) as an:
            got = []
            started = trio.Event()

            async def waiter():
                started.set()
                async with tractor.wait_for_actor('late') as portal:
                    got.append(await portal.run(whoami))

            async with trio.open_nursery() as tn:
                tn.start_soon(waiter)
                await started.wait()
                portal = await an.start_actor('late', enable_modules=[__name__])
            assert got == [list(portal.channel.uid)]
            await an.cancel()


async def test_lookup_registry_addrs_and_env_default(etcd, etcd_url, monkeypatch):
    """``TRACTOR_REGISTRY`` makes etcd the default registry (children inherit
    it), and a lookup's own ``registry_addrs`` can name etcd too."""
    monkeypatch.setenv('TRACTOR_REGISTRY', etcd_url)
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery() as an:
            assert [str(a) for a in tractor.current_actor().registry_addrs] == [
                str(EtcdAddress.parse(etcd_url))
            ]
            portal = await an.start_actor('envsvc', enable_modules=[__name__])
            async with tractor.find_actor('envsvc', registry_addrs=[etcd_url]) as found:
                assert await found.run(whoami) == list(portal.channel.uid)
            await an.cancel()


def test_bad_env_registry_names_the_variable(monkeypatch):
    monkeypatch.setenv('TRACTOR_REGISTRY', 'etcd://nohostport')

    async def main():
        async with tractor.open_root_actor():
            pass

    with pytest.raises(ValueError, match='TRACTOR_REGISTRY'):
        trio.run(main)


@pytest.mark.slow
async def test_open_actor_cluster_on_etcd(etcd, etcd_url):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=2, names=['w0', 'w1'], registry_addrs=[etcd_url]
        ) as portals:
            assert sorted(portals) == ['root.w0', 'root.w1']
            # a worker's actor name is its key
            assert names(stored(etcd, etcd_url)) == ['root', 'root.w0', 'root.w1']
            async with tractor.get_registry() as reg:
                uid, _ = await reg.find_actor(name='root.w1')
            assert uid == portals['root.w1'].channel.uid


async def test_ensure_registry_with_etcd_is_a_value_error(etcd, etcd_url):
    with pytest.raises(ValueError, match='ensure_registry=True does not apply'):
        async with tractor.open_root_actor(registry_addrs=[etcd_url], ensure_registry=True):
            pass


# -- leases, stale entries, outages ----------------------------------------------------
@pytest.mark.slow
async def test_sigkilled_actor_entry_expires_with_its_lease(etcd, etcd_url):
    """Nobody looks the killed actor up: its lease alone removes the entry."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(registry_addrs=[etcd_url]) as an:
            portal = await an.start_actor('doomed', enable_modules=[__name__])
            pid = portal.channel.aid.pid
            assert 'doomed' in names(stored(etcd, etcd_url))
            os.kill(pid, signal.SIGKILL)
            await wait_until(etcd, etcd_url, lambda e: 'doomed' not in names(e))
            assert names(stored(etcd, etcd_url)) == ['root']
            await an.cancel()


async def test_stale_entry_is_deleted_on_use(etcd, etcd_url, free_port):
    """An address that refuses connections is deleted by the lookup that met it."""
    dead = ['tcp', ['127.0.0.1', free_port]]
    with trio.fail_after(TIMEOUT):
        async with tractor.open_root_actor(registry_addrs=[etcd_url]):
            async with tractor.get_registry() as reg:
                await reg.register_actor(uid=['ghost', 'g-1'], addrs=[dead])
            assert 'ghost' in names(stored(etcd, etcd_url))
            async with tractor.find_actor('ghost') as portal:
                assert portal is None
            assert 'ghost' not in names(stored(etcd, etcd_url))


@pytest.mark.slow
async def test_etcd_down_lookups_fail_typed_actors_serve_then_reregister(etcd, etcd_url):
    """With etcd gone, lookups raise RegistrarUnreachable (bounded), running
    actors keep calling each other; etcd back with its data lost, every live
    actor registers again by itself."""
    with trio.fail_after(60):
        async with tractor.open_nursery(registry_addrs=[etcd_url]) as an:
            portal = await an.start_actor('keeper', enable_modules=[__name__])
            await trio.to_thread.run_sync(etcd.stop)
            with pytest.raises(RegistrarUnreachable):
                async with tractor.find_actor('keeper-not-connected'):
                    pass
            with pytest.raises(RegistrarUnreachable):
                async with tractor.wait_for_actor('keeper-not-connected'):
                    pass
            with pytest.raises(EtcdUnreachable):
                async with tractor.get_registry() as reg:
                    await reg.find_actors(name='keeper')
            assert await portal.run(whoami) == list(portal.channel.uid)
            etcd.wipe()  # leases gone too: re-registration must re-grant
            etcd.start(f'{etcd.name}={etcd.peer_url}')
            await trio.to_thread.run_sync(wait_healthy, [etcd])
            await wait_until(etcd, etcd_url, lambda e: names(e) == ['keeper', 'root'])
            async with tractor.get_registry() as reg:
                assert (await reg.find_actor(name='keeper'))[0] == portal.channel.uid
            await an.cancel()


# -- watching ----------------------------------------------------------------------
async def test_watch_on_etcd(etcd, etcd_url):
    """tractor.discovery.watch() on the etcd backend: current entries first,
    then etcd's own watch pushes a registration (with its metadata), a
    graceful exit ('graceful') and a SIGKILLed actor's lease running out
    ('expired'); `tractor ls` reads the same entries."""
    from tractor.discovery import Registered, Unregistered, watch

    async def next_event(events, kind, name):
        async for ev in events:
            if isinstance(ev, kind) and ev.name == name:
                return ev
        raise AssertionError('the watch ended')

    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(registry_addrs=[etcd_url]) as an:
            async with watch() as events:
                ev = await next_event(events, Registered, 'root')
                assert ev.pid == os.getpid() and ev.registered
                portal = await an.start_actor('w_svc', enable_modules=[__name__])
                ev = await next_event(events, Registered, 'w_svc')
                assert ev.parent == tractor.current_actor().uid
                # the tractor command reads the same store
                import json
                import sys

                for args, check in (
                    (['ls', 'w_', '--prefix'], lambda out: [e['name'] for e in out] == ['w_svc']),
                    (['watch', 'w_svc', '--count', '1'], lambda out: out['uid'][0] == 'w_svc'),
                    (
                        ['tree'],
                        lambda out: [c['name'] for r in out for c in r['children']] == ['w_svc'],
                    ),
                ):
                    proc = await trio.run_process(
                        [sys.executable, '-m', 'tractor', *args, '--json', '--registry', etcd_url],
                        capture_stdout=True,
                        capture_stderr=True,
                        check=False,
                    )
                    assert proc.returncode == 0, proc.stderr
                    assert check(json.loads(proc.stdout)), proc.stdout
                await portal.cancel_actor()
                ev = await next_event(events, Unregistered, 'w_svc')
                assert ev.reason == 'graceful'
                portal = await an.start_actor('w_victim', enable_modules=[__name__])
                ev = await next_event(events, Registered, 'w_victim')
                os.kill(ev.pid, signal.SIGKILL)
                ev = await next_event(events, Unregistered, 'w_victim')
                assert ev.reason == 'expired'  # its 2 s lease ran out
            await an.cancel()
