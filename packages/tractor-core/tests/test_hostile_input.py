"""Garbage on an actor's listening socket closes that one connection; the
actor keeps serving everyone else."""
import os
import random

import msgspec
import pytest
import trio

import tractor
from tractor import _auth, _msg
import tractor_core_testfns as fns
from tractor_core_testfns import call_back, ping

FNS = [fns.__name__]


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, 'big') + body


def hello(**aid) -> bytes:
    fields = {'name': 'stranger', 'uuid': 'not-a-uuid', 'pid': 1, **aid}
    return frame(msgspec.msgpack.encode(_msg.Hello(aid=_msg.Aid(**fields))))


def start(ns: str, func: str, cid: int = 2, **kwargs) -> bytes:
    return frame(msgspec.msgpack.encode(_msg.Start(cid=cid, ns=ns, func=func, kwargs=kwargs)))


async def raw_connect(addr: tuple, proto: str, auth: bool = True) -> trio.SocketStream:
    """A raw socket to ``addr``; with ``auth`` it has passed the
    authentication preamble with this tree's secret (the cookie), so what
    is sent next reaches the actor's message decoder."""
    if proto == 'tcp':
        stream = await trio.open_tcp_stream(*addr)
    else:
        stream = await trio.open_unix_socket(os.path.join(*addr))
    if auth:
        await _auth.authenticate(stream, _auth.current_secret(), initiator=True)
    return stream


async def read_frames_until_eof(stream: trio.SocketStream) -> list:
    """Everything the actor sends us until it closes the connection."""
    data = b''
    try:
        while chunk := await stream.receive_some():
            data += chunk
    except trio.BrokenResourceError:  # reset: it closed with our bytes unread
        pass
    msgs = []
    while len(data) >= 4:
        size = int.from_bytes(data[:4], 'big')
        msgs.append(_msg.decode(data[4:4 + size]))
        data = data[4 + size:]
    return msgs


async def read_hello(stream: trio.SocketStream) -> bytes:
    """The actor speaks first: read its Hello (so that closing our end later
    is a clean EOF, not a reset over unread data). Returns any extra bytes."""
    data = b''
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], 'big'):
        chunk = await stream.receive_some()
        assert chunk, 'the actor closed the connection before its Hello'
        data += chunk
    size = int.from_bytes(data[:4], 'big')
    assert isinstance(_msg.decode(data[4:4 + size]), _msg.Hello)
    return data[4 + size:]


async def send_quietly(stream: trio.SocketStream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except trio.BrokenResourceError:
        pass  # the actor may hang up before reading it all


_rng = random.Random(0x7AC7)

#: name -> (bytes to send, whether the actor must hang up on us by itself)
ATTACKS = {
    'random-bytes': (_rng.randbytes(4096), False),
    'huge-length-prefix': ((2**31).to_bytes(4, 'big') + b'\x00' * 64, True),
    'max-length-prefix': (b'\xff\xff\xff\xff', True),
    'truncated-frame': ((100).to_bytes(4, 'big') + b'\x93' * 10, False),
    'empty-frame': (frame(b''), True),
    'msgpack-map': (frame(msgspec.msgpack.encode({'hello': 'world'})), True),
    'msgpack-wrong-fields': (frame(msgspec.msgpack.encode(['Hello', 'x', 3])), True),
    'unknown-tag': (frame(msgspec.msgpack.encode(['Evil', 1, 2])), True),
    'nested-arrays': (frame(b'\x91' * 100_000 + b'\xc0'), True),
    'not-hello-first': (start('os', 'system', command='true'), True),
    'hello-bad-pid': (
        frame(msgspec.msgpack.encode(['Hello', ['x', 'y', 'not-a-pid'], [], 1])), True,
    ),
    'hello-then-garbage': (hello() + _rng.randbytes(512), True),
    'hello-then-truncated': (hello() + (50).to_bytes(4, 'big') + b'\x95', False),
    'hello-then-ready': (
        hello() + frame(msgspec.msgpack.encode(_msg.Ready(accept_addrs=[]))), True,
    ),
    'hello-then-spawnspec': (
        hello() + frame(msgspec.msgpack.encode(_msg.SpawnSpec(
            enable_modules=['os'], module_paths={}, sys_path=[], reg_addrs=[],
            bind_addrs=[], enable_transports=[],
        ))),
        True,
    ),
}


async def check_serving(portal, child_addr, root_addr, attack: str) -> None:
    """The child and the root both still serve new and existing peers."""
    assert await portal.run(ping) == 'pong', attack
    chan = await tractor.current_actor().connect(child_addr)
    try:
        assert await tractor.Portal(chan).run(ping) == 'pong', attack
    finally:
        await chan.aclose()
    assert await portal.run(call_back, addr=list(root_addr)) == 'pong', attack


def _dropped_logs(caplog) -> int:
    return sum(
        1 for r in caplog.records
        if r.name.startswith('tractor') and r.levelname == 'WARNING'
        and ('dropping connection' in r.getMessage() or 'refused connection' in r.getMessage())
    )


@pytest.mark.parametrize('target', ['child', 'root'])
async def test_garbage_is_dropped(target, tpt_proto, runtime_kwargs, caplog):
    with trio.fail_after(60):
        async with tractor.open_nursery(enable_modules=FNS, **runtime_kwargs) as an:
            portal = await an.start_actor('victim', enable_modules=FNS)
            child_addr = portal.channel.raddr.unwrap()
            root_addr = tractor.current_actor().accept_addrs[0]
            addr = child_addr if target == 'child' else root_addr
            logged = _dropped_logs(caplog)
            for attack, (data, hangs_up) in ATTACKS.items():
                stream = await raw_connect(addr, tpt_proto)
                try:
                    assert await read_hello(stream) == b'', attack
                    await send_quietly(stream, data)
                    if hangs_up:
                        # the actor closes this connection on its own,
                        # without a word more
                        assert await read_frames_until_eof(stream) == [], attack
                finally:
                    await stream.aclose()
                await check_serving(portal, child_addr, root_addr, attack)
                if target == 'root' and (hangs_up or attack == 'truncated-frame'):
                    # and says why (the child logs to its own stderr)
                    assert _dropped_logs(caplog) > logged, attack
                logged = _dropped_logs(caplog)
            await an.cancel()


async def test_peer_gets_errors_not_hangups(tpt_proto, runtime_kwargs):
    """A well-framed peer asking for forbidden things gets error replies on
    a connection that stays open; odd listen addresses are ignored."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('strict', enable_modules=FNS)
            addr = portal.channel.raddr.unwrap()
            stream = await raw_connect(addr, tpt_proto)
            try:
                # a Hello claiming addresses on transports nobody has
                body = msgspec.msgpack.encode(_msg.Hello(
                    aid=_msg.Aid(name='odd', uuid='u', pid=1),
                    addrs=[('carrier-pigeon', ['coop', 7]), ('tcp', ['x'])],
                ))
                await stream.send_all(frame(body))
                await stream.send_all(start('os', 'system', cid=2, command='true'))
                await stream.send_all(start(fns.__name__, 'no_such_fn', cid=4))
                await stream.send_all(start(fns.__name__, 'ping', cid=6))
                replies = {}
                data = b''
                while len(replies) < 3:
                    chunk = await stream.receive_some()
                    assert chunk, 'the actor hung up on a well-behaved peer'
                    data += chunk
                    while len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:4], 'big'):
                        size = int.from_bytes(data[:4], 'big')
                        msg = _msg.decode(data[4:4 + size])
                        data = data[4 + size:]
                        if not isinstance(msg, _msg.Hello):
                            replies[msg.cid] = msg
            finally:
                await stream.aclose()
            assert isinstance(replies[2], _msg.Error)
            assert replies[2].type_str.endswith(':ModuleNotExposed')
            assert isinstance(replies[4], _msg.Error)
            assert isinstance(replies[6], _msg.Return)
            assert msgspec.msgpack.decode(replies[6].pld) == 'pong'
            assert await portal.run(ping) == 'pong'
            await an.cancel()


async def test_idle_and_flooding_connections(tpt_proto, runtime_kwargs):
    """Connections that say nothing, and many garbage ones at once, do not
    stop the actor from serving."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('busy', enable_modules=FNS)
            addr = portal.channel.raddr.unwrap()
            idle = [await raw_connect(addr, tpt_proto) for _ in range(5)]
            try:
                assert await portal.run(ping) == 'pong'

                async def garbage(i: int) -> None:
                    stream = await raw_connect(addr, tpt_proto)
                    async with stream:
                        await send_quietly(stream, random.Random(i).randbytes(2048))

                async with trio.open_nursery() as tn:
                    for i in range(30):
                        tn.start_soon(garbage, i)
                chan = await tractor.current_actor().connect(addr)
                try:
                    assert await tractor.Portal(chan).run(ping) == 'pong'
                finally:
                    await chan.aclose()
            finally:
                for stream in idle:
                    await stream.aclose()
            await an.cancel()
