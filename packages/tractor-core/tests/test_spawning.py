"""Spawning actors, their identities, addresses and process titles."""

import os
import socket

import pytest
import trio

import slow_boot_plugin
import tractor
import tractor_core_testfns as fns
from tractor._forkserver.plugin import supported as forkserver_supported
from tractor_core_testfns import addresses, whoami
from tractor_testsupport.procs import cmdline

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


async def local_whoami() -> dict:
    """Defined in this test file, which a child can only load by path."""
    return {'name': tractor.current_actor().name, 'module': __name__}


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _tuples(addrs) -> list[tuple]:
    """Addresses that crossed the wire come back as lists."""
    return [tuple(a) for a in addrs]


async def test_start_actor_and_run(runtime_kwargs, tpt_proto):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('child', enable_modules=FNS)
            info = await portal.run(whoami)
            assert info['name'] == 'child'
            assert info['pid'] != os.getpid()
            assert info['is_root'] is False
            assert portal.channel.aid.pid == info['pid']
            assert portal.channel.aid.name == 'child'
            assert list(portal.channel.aid.uid) == info['uid']
            assert info['aid'] == [*info['uid'], info['pid']]
            assert portal.channel.raddr.proto_key == tpt_proto
            assert portal.channel.connected()
            assert await portal.cancel_actor()


async def test_function_from_unimportable_file(runtime_kwargs):
    """A module the child cannot import by name (this test file) is loaded
    from its path, so functions defined right here are servable."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('by-path', enable_modules=[__name__])
            assert await portal.run(local_whoami) == {'name': 'by-path', 'module': __name__}
            await an.cancel()


async def test_root_identity(runtime_kwargs, reg_addr):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs):
            actor = tractor.current_actor()
            assert tractor.is_root_process()
            assert tractor.current_actor().parent_portal is None
            assert actor.name == 'root'
            assert actor.uid == (actor.aid.name, actor.aid.uuid)
            assert actor.aid.pid == os.getpid()
            assert actor.accept_addrs and all(type(a) is tuple for a in actor.accept_addrs)
            assert actor.reg_addrs == [reg_addr]
            assert all(type(a) is tuple for a in actor.reg_addrs)


@pytest.mark.parametrize('start_method', ['trio', 'forkserver'])
async def test_a_child_starts_connected_to_its_parent(start_method, runtime_kwargs, tpt_proto):
    """A child of either built-in backend inherits its channel to the
    parent (an unnamed unix socket pair): it dials nothing and runs no
    preamble to boot, whatever the tree's transport, and the channel
    still names the child's listen address on that transport."""
    if start_method == 'forkserver' and not forkserver_supported():
        pytest.skip('the fork server needs pidfd_open and SCM_RIGHTS (Linux)')
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method=start_method, **runtime_kwargs) as an:
            portal = await an.start_actor('inherits', enable_modules=FNS)
            sock = portal.channel.stream.socket
            assert sock.family == socket.AF_UNIX and sock.getsockname() == ''
            assert portal.channel.raddr.proto_key == tpt_proto
            assert await portal.run(fns.parent_socket) == {
                'family': int(socket.AF_UNIX),
                'peer': '',
            }
            assert (await portal.run(whoami))['name'] == 'inherits'
            await an.cancel()


async def test_a_child_slower_to_boot_than_the_handshake_bound(runtime_kwargs, monkeypatch):
    """The handshake bound (``TRACTOR_HANDSHAKE_TIMEOUT``) times an
    exchange between running actors, not a child's start: a child that takes
    longer than it to boot (here a plugin's slow import) is bounded by
    ``TRACTOR_SPAWN_TIMEOUT`` alone, as when it dialed its parent. (The
    'trio' backend: a fork server's template would import the plugin once,
    for all its children.)"""
    bound = 0.3
    monkeypatch.setattr(tractor._accept, 'HANDSHAKE_TIMEOUT', bound)
    monkeypatch.setenv('TRACTOR_HANDSHAKE_TIMEOUT', str(bound))
    monkeypatch.setenv('TRACTOR_TEST_SLOW_BOOT', str(3 * bound))
    here = os.path.dirname(slow_boot_plugin.__file__)  # children import it by name
    monkeypatch.setenv(
        'PYTHONPATH', os.pathsep.join(filter(None, [here, os.environ.get('PYTHONPATH')]))
    )
    tractor.register_plugin(slow_boot_plugin)
    try:
        with trio.fail_after(30):
            async with tractor.open_nursery(start_method='trio', **runtime_kwargs) as an:
                start = trio.current_time()
                portal = await an.start_actor('slow', enable_modules=FNS)
                assert trio.current_time() - start > 3 * bound  # it was that slow
                assert (await portal.run(whoami))['name'] == 'slow'
                await an.cancel()
    finally:
        tractor.unregister_plugin(slow_boot_plugin)


async def test_start_actor_returns_serving(runtime_kwargs, tpt_proto, reg_addr):
    """Right after start_actor() the child accepts new connections on its
    listen address (not just on the channel it used to boot)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('server', enable_modules=FNS)
            raddr = portal.channel.raddr
            assert raddr.proto_key == tpt_proto
            plain = raddr.unwrap()
            assert type(plain) is tuple
            addrs = await portal.run(addresses)
            assert addrs['all_tuples']
            assert plain in _tuples(addrs['accept_addrs'])
            assert _tuples(addrs['reg_addrs']) == [reg_addr]
            # a fresh connection to that address is served at once
            chan = await tractor.current_actor().connect(plain)
            try:
                info = await tractor.Portal(chan).run(whoami)
                assert info['name'] == 'server'
            finally:
                await chan.aclose()
            await an.cancel()


async def test_spawn_many_concurrently(runtime_kwargs, pids_gone):
    n = 4
    portals: dict[str, tractor.Portal] = {}
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:

            async def spawn(name: str) -> None:
                portals[name] = await an.start_actor(name, enable_modules=FNS)

            async with trio.open_nursery() as tn:
                for i in range(n):
                    tn.start_soon(spawn, f'worker-{i}')
            assert sorted(portals) == [f'worker-{i}' for i in range(n)]

            infos: dict[str, dict] = {}

            async def ask(name: str) -> None:
                infos[name] = await portals[name].run(whoami)

            async with trio.open_nursery() as tn:
                for name in portals:
                    tn.start_soon(ask, name)
            assert {name: info['name'] for name, info in infos.items()} == {
                name: name for name in portals
            }
            pids = {info['pid'] for info in infos.values()}
            assert len(pids) == n and os.getpid() not in pids
            assert len({tuple(info['uid']) for info in infos.values()}) == n
            assert set(an.children) == {tuple(i['uid']) for i in infos.values()}
            await an.cancel()
        assert await pids_gone(pids) == []


async def test_same_name_twice(runtime_kwargs):
    """Names are not unique: two actors may share one, uids differ."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            p1 = await an.start_actor('twin', enable_modules=FNS)
            p2 = await an.start_actor('twin', enable_modules=FNS)
            i1, i2 = await p1.run(whoami), await p2.run(whoami)
            assert i1['name'] == i2['name'] == 'twin'
            assert i1['uid'] != i2['uid'] and i1['pid'] != i2['pid']
            await an.cancel()


async def test_run_in_actor_many(runtime_kwargs):
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portals = [await an.run_in_actor(whoami, name=f'oneshot-{i}') for i in range(3)]
            infos = [await p.wait_for_result() for p in portals]
        assert [i['name'] for i in infos] == [f'oneshot-{i}' for i in range(3)]
        # results stay available after the nursery closed, via the alias too
        assert await portals[0].result() == infos[0]


async def test_bind_addrs(tpt_proto, runtime_kwargs, reg_addr):
    """start_actor(bind_addrs=[...]) binds exactly where asked."""
    if tpt_proto == 'tcp':
        want = ('127.0.0.1', free_tcp_port())
    else:
        want = (reg_addr[0], f'bound-{os.getpid()}.sock')
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('bound', enable_modules=FNS, bind_addrs=[want])
            addrs = await portal.run(addresses)
            assert _tuples(addrs['accept_addrs']) == [want]
            assert portal.channel.raddr.unwrap() == want
            chan = await tractor.current_actor().connect(want)
            try:
                assert (await tractor.Portal(chan).run(whoami))['name'] == 'bound'
            finally:
                await chan.aclose()
            await an.cancel()
    if tpt_proto == 'uds':  # the socket file is cleaned up with the actor
        assert not os.path.exists(os.path.join(*want))


async def test_multihomed_child():
    """A child bound on one TCP and one UDS address serves on both."""
    runtime_dir = os.environ['TRACTOR_RUNTIME_DIR']
    tcp = ('127.0.0.1', free_tcp_port())
    uds = (runtime_dir, f'multi-{os.getpid()}.sock')
    with trio.fail_after(30):
        async with tractor.open_nursery(
            enable_transports=['tcp', 'uds'], registry_addrs=[('127.0.0.1', free_tcp_port())]
        ) as an:
            root = tractor.current_actor()
            assert {tractor._transport.wrap_address(a).proto_key for a in root.accept_addrs} == {
                'tcp',
                'uds',
            }
            portal = await an.start_actor('multi', enable_modules=FNS, bind_addrs=[tcp, uds])
            addrs = await portal.run(addresses)
            assert _tuples(addrs['accept_addrs']) == [tcp, uds]
            for addr in (tcp, uds):
                chan = await root.connect(addr)
                try:
                    assert chan.raddr.proto_key == ('tcp' if addr is tcp else 'uds')
                    assert (await tractor.Portal(chan).run(whoami))['name'] == 'multi'
                finally:
                    await chan.aclose()
            await an.cancel()


@pytest.mark.parametrize('start_method', ['trio', 'forkserver'])
async def test_process_title(start_method, runtime_kwargs):
    """ps/top show which actor a process runs, the same whichever backend
    spawned it: ``tractor: <name> <uuid>`` and then the command line it runs,
    whole; the environment the kernel shows stays intact (finding processes
    by it, as the suite's leak check does, keeps working)."""
    if start_method == 'forkserver' and not forkserver_supported():
        pytest.skip('the fork server needs Linux 5.3+ (pidfds)')
    name = 'a-rather-long-actor-name'  # longer than comm's 15 bytes
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method=start_method, **runtime_kwargs) as an:
            portal = await an.start_actor(name, enable_modules=FNS)
            aid = portal.channel.aid
            with open(f'/proc/{aid.pid}/comm') as f:
                comm = f.read().strip()
            words = cmdline(aid.pid).replace(b'\0', b' ').split()
            with open(f'/proc/{aid.pid}/environ', 'rb') as f:
                environ = f.read().split(b'\0')
            await an.cancel()
    assert comm == f'tractor: {name}'[:15]
    assert words[:7] == [
        b'tractor:',
        name.encode(),
        aid.uuid.encode(),
        b'-m',
        b'tractor._child',
        b'--name',
        name.encode(),
    ]
    assert words[words.index(b'--uuid') + 1] == aid.uuid.encode()
    assert words[words.index(b'--secret-fd') + 1].isdigit()  # not cut short
    assert not [w for w in words if w.startswith(b'--title-room')]
    token = os.environ['TRACTOR_TEST_SESSION']
    assert f'TRACTOR_TEST_SESSION={token}'.encode() in environ


async def test_cancel_actor_reaps(runtime_kwargs, pids_gone):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('short', enable_modules=FNS)
            pid = portal.channel.aid.pid
            assert await portal.cancel_actor() is True
            assert await pids_gone([pid]) == []
            with pytest.raises(tractor.TransportClosed):
                await portal.run(whoami)
            # the nursery block may end now: nothing left to wait for
        assert await pids_gone([pid]) == []
        assert not portal.channel.connected()
        # asking a gone actor again is a quiet False, not an error
        assert await portal.cancel_actor() is False


async def test_bind_addr_in_use(runtime_kwargs, tpt_proto):
    """A child that cannot bind where asked fails start_actor() with the
    child's error instead of hanging."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            taken = tractor.current_actor().accept_addrs[0]  # the root's own
            with pytest.raises(tractor.RemoteActorError) as info:
                await an.start_actor('squatter', enable_modules=FNS, bind_addrs=[taken])
            assert issubclass(info.value.boxed_type, OSError)
            assert an.children == {}
            # the root still serves: a new child can dial it
            portal = await an.start_actor('fine', enable_modules=FNS)
            assert (await portal.run(whoami))['name'] == 'fine'
            await an.cancel()
