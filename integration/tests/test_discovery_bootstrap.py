"""Boot against registry addresses that are not what they seem (over TCP
and UDS): held by a registrar (ensure_registry), by a tractor actor that is
no registrar, by a plain server, or by nothing but a leftover socket file.
Each case ends in a clear outcome within a bound, never a hang."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
import trio

import tractor
from tractor.discovery import _client, mk_maddr

pytestmark = pytest.mark.slow


def fresh_addr(tpt_proto: str) -> tuple:
    if tpt_proto == 'tcp':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()
    return (os.environ['TRACTOR_RUNTIME_DIR'], f'occupied@{uuid.uuid4().hex[:8]}.sock')


async def _listen(tpt_proto: str, addr: tuple) -> trio.SocketListener:
    if tpt_proto == 'tcp':
        [listener] = await trio.open_tcp_listeners(addr[1], host=addr[0])
        return listener
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(os.path.join(*addr))
    sock.listen(16)
    return trio.SocketListener(sock)


#: what the impostor does with each connection
BEHAVIOURS = {
    'silent': [],  # accepts, says nothing, keeps the connection open
    'http': [b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'],
    'framed-garbage': [b'\x00\x00\x00\x05hello'],
    'hangs-up': None,  # accepts and closes at once
}


async def _impostor(
    tpt_proto: str, addr: tuple, behaviour: str, task_status=trio.TASK_STATUS_IGNORED
):
    listener = await _listen(tpt_proto, addr)

    async def handle(stream):
        async with stream:
            writes = BEHAVIOURS[behaviour]
            if writes is None:
                return
            for data in writes:
                await stream.send_all(data)
            await trio.sleep_forever()  # hold the connection until cancelled

    try:
        await trio.serve_listeners(handle, [listener], task_status=task_status)
    finally:
        if tpt_proto == 'uds':
            os.unlink(os.path.join(*addr))


@pytest.mark.parametrize('behaviour', sorted(BEHAVIOURS))
async def test_registry_addr_held_by_a_non_registrar_is_a_clear_error(
    tpt_proto, behaviour, monkeypatch
):
    """Something that is not tractor holds the registry address: boot fails
    with a RuntimeError saying so (the silent case within the probe bound)."""
    monkeypatch.setattr(_client, 'PROBE_TIMEOUT', 1.0)
    addr = fresh_addr(tpt_proto)
    with trio.fail_after(30):
        async with trio.open_nursery() as tn:
            await tn.start(_impostor, tpt_proto, addr, behaviour)
            with pytest.raises(RuntimeError) as info:
                async with tractor.open_root_actor(
                    registry_addrs=[addr], enable_transports=[tpt_proto]
                ):
                    pytest.fail('booted on an address held by a non-registrar')
            tn.cancel_scope.cancel()
    msg = str(info.value)
    assert 'not a tractor registrar' in msg and str(mk_maddr(addr)) in msg
    with pytest.raises(tractor.NoRuntime):
        tractor.current_actor()


async def test_registry_addr_held_by_a_tractor_actor_that_is_not_registrar(run_program, tpt_proto):
    """The registry address points at a live tractor actor that does not
    serve the registry: a RuntimeError naming that actor."""
    reg = fresh_addr(tpt_proto)
    args = ['tree', '--registry', str(mk_maddr(reg)), '--transport', tpt_proto, '--service', 'bob']
    async with run_program('discovery_tree.py', *args) as prog:
        bob_addr = tuple(prog.info['services']['bob']['accept_addrs'][0])
        with trio.fail_after(30):
            with pytest.raises(
                RuntimeError, match=r"tractor actor 'bob', which is not a registrar"
            ):
                async with tractor.open_root_actor(
                    registry_addrs=[bob_addr], enable_transports=[tpt_proto]
                ):
                    pytest.fail('booted against a non-registrar actor')


async def test_ensure_registry_conflict_raises_runtime_error(run_program, tpt_proto):
    """Another program serves the registry: ensure_registry=True fails
    loudly; without it the same boot joins that registrar."""
    reg = fresh_addr(tpt_proto)
    args = ['tree', '--registry', str(mk_maddr(reg)), '--transport', tpt_proto]
    async with run_program('discovery_tree.py', *args) as prog:
        assert prog.info['root']['is_registrar']
        with trio.fail_after(30):
            with pytest.raises(RuntimeError, match='ensure_registry=True'):
                async with tractor.open_root_actor(
                    registry_addrs=[reg], enable_transports=[tpt_proto], ensure_registry=True
                ):
                    pytest.fail('booted as a second registrar')
            async with tractor.open_root_actor(
                registry_addrs=[reg], enable_transports=[tpt_proto]
            ) as root:
                assert not root.is_registrar


async def test_nobody_answering_at_registry_addr_becomes_registrar(tpt_proto):
    """Nothing accepts at the registry address (a port bound by nobody, a
    socket file left behind by a dead process): boot as the registrar."""
    addr = fresh_addr(tpt_proto)
    if tpt_proto == 'uds':  # a leftover socket file with no listener
        leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        leftover.bind(os.path.join(*addr))
        leftover.close()
        assert os.path.exists(os.path.join(*addr))
    with trio.fail_after(30):
        async with tractor.open_root_actor(
            registry_addrs=[addr], enable_transports=[tpt_proto], ensure_registry=True
        ) as root:
            assert root.is_registrar and root.accept_addrs[0] == addr
