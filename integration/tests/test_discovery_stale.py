"""Stale registry entries (over TCP and UDS): an address that no longer
accepts connections, or that now belongs to another actor, is deleted from
the registrar's table by the lookup that finds it so, and the lookup goes
on (a miss here) instead of hanging or raising a transport error."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
import trio

import tractor
from tractor.discovery import mk_maddr
from tractor.discovery._registrar import local_registrar
from tractor_testsupport.polling import wait_until
from tractor_testsupport.procs import pid_alive

pytestmark = pytest.mark.slow


async def find_uid(name: str) -> list | None:
    async with tractor.find_actor(name) as portal:
        return None if portal is None else list(portal.channel.uid)


async def whoami() -> list:
    return list(tractor.current_actor().uid)


async def _wait_gone(pid: int) -> None:
    """Until ``pid`` (a child we killed) is no longer running."""
    await wait_until(lambda: not pid_alive(pid), f'pid {pid} gone')


async def test_sigkilled_actor_entry_deleted_on_lookup(runtime_kwargs):
    """A SIGKILLed actor cannot unregister: its entry goes once the registrar
    notices the connection it registered over (its registration hold) drop,
    or once a lookup dials it and finds nobody; a lookup never hands it out.
    (The lookup-deletes path alone: test_address_now_serving_another_actor_is_stale.)"""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            reg = local_registrar(tractor.current_actor())
            victim = await an.start_actor('victim', enable_modules=[__name__])
            looker = await an.start_actor('looker', enable_modules=[__name__])
            uid = victim.channel.uid
            os.kill(victim.channel.aid.pid, signal.SIGKILL)  # our own child
            await _wait_gone(victim.channel.aid.pid)
            assert await looker.run(find_uid, name='victim') is None
            assert uid not in await reg.backend.snapshot()
            await an.cancel()


async def test_sigkilled_actor_entry_deleted_on_lookup_in_the_registrar(runtime_kwargs):
    """Same, with the registrar itself looking up (once it has noticed its
    channel to the dead child close, the fast path has nothing to offer)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            root = tractor.current_actor()
            reg = local_registrar(root)
            victim = await an.start_actor('victim', enable_modules=[__name__])
            uid = victim.channel.uid
            os.kill(victim.channel.aid.pid, signal.SIGKILL)
            while root.get_peer_channels('victim'):
                await trio.sleep(0.02)
            async with tractor.find_actor('victim') as portal:
                assert portal is None
            assert uid not in await reg.backend.snapshot()
            async with tractor.query_actor('victim') as (addr, _):
                assert addr is None
            await an.cancel()


async def test_address_now_serving_another_actor_is_stale(runtime_kwargs):
    """An entry whose address answers with a different actor's identity is
    stale: deleted, and the lookup does not hand out the wrong actor."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            reg = local_registrar(tractor.current_actor())
            other = await an.start_actor('other', enable_modules=[__name__])
            ghost = ('ghost', str(uuid.uuid4()))
            await reg.register_actor(list(ghost), [other.channel.raddr.to_wire()])
            looker = await an.start_actor('looker', enable_modules=[__name__])
            assert await looker.run(find_uid, name='ghost') is None
            assert ghost not in await reg.backend.snapshot()
            # the same from the registrar itself
            await reg.register_actor(list(ghost), [other.channel.raddr.to_wire()])
            async with tractor.find_actor('ghost') as portal:
                assert portal is None
            assert ghost not in await reg.backend.snapshot()
            assert await other.run(whoami) == list(other.channel.uid)  # unharmed
            await an.cancel()


async def test_stale_newest_entry_falls_back_to_an_older_live_one(runtime_kwargs, tpt_proto):
    """Two entries share a name and the newest is dead: the lookup deletes
    it and delivers the older live one."""
    if tpt_proto == 'uds':
        dead = mk_maddr((os.environ['TRACTOR_RUNTIME_DIR'], f'dead-{uuid.uuid4().hex[:8]}.sock'))
    else:
        import socket

        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            dead = mk_maddr(s.getsockname())
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            reg = local_registrar(tractor.current_actor())
            live = await an.start_actor('svc', enable_modules=[__name__])
            dead_uid = ('svc', str(uuid.uuid4()))
            await reg.register_actor(list(dead_uid), [dead.to_wire()])
            looker = await an.start_actor('looker', enable_modules=[__name__])
            assert await looker.run(find_uid, name='svc') == list(live.channel.uid)
            assert dead_uid not in await reg.backend.snapshot()
            await an.cancel()


async def _impostor(
    tpt_proto: str, addr: tuple, reply: bytes | None, task_status=trio.TASK_STATUS_IGNORED
):
    """A non-tractor server: answers every connection with ``reply`` (or
    nothing at all) and keeps it open."""
    import socket

    if tpt_proto == 'tcp':
        [listener] = await trio.open_tcp_listeners(addr[1], host=addr[0])
    else:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(os.path.join(*addr))
        sock.listen(16)
        listener = trio.SocketListener(sock)

    async def handle(stream):
        async with stream:
            if reply:
                await stream.send_all(reply)
            await trio.sleep_forever()

    try:
        await trio.serve_listeners(handle, [listener], task_status=task_status)
    finally:
        if tpt_proto == 'uds':
            os.unlink(os.path.join(*addr))


@pytest.mark.parametrize(
    'reply', [b'HTTP/1.1 400 Bad Request\r\n\r\n', None], ids=['garbage', 'silent']
)
async def test_registered_address_held_by_a_non_tractor_server(
    runtime_kwargs, tpt_proto, reply, monkeypatch
):
    """An entry whose address is now held by something that is not tractor:
    the lookup neither hangs nor raises; a server that speaks garbage is
    plainly not the actor (entry deleted), a silent one is given up on
    after the connect bound."""
    import socket

    from tractor.discovery import _client

    monkeypatch.setattr(_client, 'CONNECT_TIMEOUT', 1.0)
    if tpt_proto == 'tcp':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            addr = s.getsockname()
    else:
        addr = (os.environ['TRACTOR_RUNTIME_DIR'], f'imp-{uuid.uuid4().hex[:8]}.sock')
    uid = ('imp', str(uuid.uuid4()))
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs) as root, trio.open_nursery() as tn:
            await tn.start(_impostor, tpt_proto, addr, reply)
            reg = local_registrar(root)
            await reg.register_actor(list(uid), [mk_maddr(addr).to_wire()])
            async with tractor.find_actor('imp') as portal:
                assert portal is None
            if reply is not None:
                assert uid not in await reg.backend.snapshot()
            tn.cancel_scope.cancel()
