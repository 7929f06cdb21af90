"""Garbage on an actor's listening socket closes that one connection; the
actor keeps serving everyone else."""

from __future__ import annotations

import os
import random

import msgspec
import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor import _auth, _msg, _secret, _session
from tractor_core_testfns import call_back, ping

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, 'big') + body


def hello(**aid) -> bytes:
    fields = {'name': 'stranger', 'uuid': 'not-a-uuid', 'pid': 1, **aid}
    return frame(msgspec.msgpack.encode(_msg.Hello(aid=_msg.Aid(**fields))))


def start(ns: str, func: str, cid: int = 2, **kwargs) -> bytes:
    return frame(msgspec.msgpack.encode(_msg.Start(cid=cid, ns=ns, func=func, kwargs=kwargs)))


class RawPeer:
    """A raw socket to an actor; once authenticated (``session``) what it
    sends sealed reaches the actor's message decoder."""

    def __init__(self, stream: trio.SocketStream, session: _session.Session | None) -> None:
        self.stream = stream
        self.session = session
        self.buf = b''

    def seal(self, *frames: bytes) -> bytes:
        """``frames`` as one batch the actor accepts (its integrity tag)."""
        assert self.session is not None
        return self.session.seal_frames(list(frames))

    async def send_all(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive_some(self) -> bytes:
        return await self.stream.receive_some()

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> RawPeer:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def take_msgs(self) -> list:
        """The messages of the whole batches received so far."""
        bodies, self.buf = self.session.open_batches(self.buf)
        return [_msg.decode(b) for b in bodies]

    async def receive_until(self, kind: type, hung_up: str) -> list:
        """Every message received until one of type ``kind`` came (it last);
        a failed assertion saying ``hung_up`` if the actor closes first."""
        got: list = []
        while not any(isinstance(m, kind) for m in got):
            chunk = await self.receive_some()
            assert chunk, hung_up
            self.buf += chunk
            got += self.take_msgs()
        return got


async def raw_connect(addr: tuple, proto: str, auth: bool = True) -> RawPeer:
    """A raw socket to ``addr``; with ``auth`` it has passed the
    authentication preamble with this tree's secret (the cookie)."""
    if proto == 'tcp':
        stream = await trio.open_tcp_stream(*addr)
    else:
        stream = await trio.open_unix_socket(os.path.join(*addr))
    session = None
    if auth:
        from tractor._transport import wrap_address

        binding = _auth.dial_binding(stream, wrap_address(addr).to_wire())
        session = await _auth.authenticate(
            stream, _secret.current_secret(), initiator=True, binding=binding
        )
    return RawPeer(stream, session)


async def read_frames_until_eof(peer: RawPeer) -> list:
    """Every message the actor sends us until it closes the connection."""
    try:
        while chunk := await peer.receive_some():
            peer.buf += chunk
    except trio.BrokenResourceError:  # reset: it closed with our bytes unread
        pass
    return peer.take_msgs()


async def read_hello(peer: RawPeer) -> list:
    """The actor speaks first: read its Hello (so that closing our end later
    is a clean EOF, not a reset over unread data). Returns any other
    messages that came with it."""
    while True:
        msgs = peer.take_msgs()
        if msgs:
            assert isinstance(msgs[0], _msg.Hello)
            return msgs[1:]
        chunk = await peer.receive_some()
        assert chunk, 'the actor closed the connection before its Hello'
        peer.buf += chunk


async def send_quietly(stream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except trio.BrokenResourceError:
        pass  # the actor may hang up before reading it all


_rng = random.Random(0x7AC7)

#: name -> (what to send, whether the actor must hang up on us by itself);
#: a tuple of frames is sent as one sealed batch (it reaches the decoder),
#: bytes as they are (they reach the framing and the integrity check)
ATTACKS = {
    'random-bytes': (_rng.randbytes(4096), False),
    'huge-length-prefix': ((2**31 - 1).to_bytes(4, 'big') + b'\x00' * 64, True),
    'max-length-prefix': (b'\xff\xff\xff\xff', True),
    'truncated-frame': ((100).to_bytes(4, 'big') + b'\x93' * 10, False),
    'unsealed-frame': (frame(msgspec.msgpack.encode(['Evil', 1, 2])) + b'\0' * 64, True),
    'bad-tag': ((2**31 + 3).to_bytes(4, 'big') + b'\x91\x91\xc0' + b'\0' * 16, True),
    'empty-frame': ((frame(b''),), True),
    'msgpack-map': ((frame(msgspec.msgpack.encode({'hello': 'world'})),), True),
    'msgpack-wrong-fields': ((frame(msgspec.msgpack.encode(['Hello', 'x', 3])),), True),
    'unknown-tag': ((frame(msgspec.msgpack.encode(['Evil', 1, 2])),), True),
    'nested-arrays': ((frame(b'\x91' * 100_000 + b'\xc0'),), True),
    'nested-past-the-bound': ((frame(b'\x91' * (_msg.MAX_DEPTH + 1) + b'\xc0'),), True),
    'not-hello-first': ((start('os', 'system', command='true'),), True),
    'hello-bad-pid': (
        (frame(msgspec.msgpack.encode(['Hello', ['x', 'y', 'not-a-pid'], [], 1])),),
        True,
    ),
    'hello-then-garbage': ((hello(), frame(_rng.randbytes(512))), True),
    'hello-then-truncated': ((hello(), (50).to_bytes(4, 'big') + b'\x95'), False),
    'hello-then-ready': (
        (hello(), frame(msgspec.msgpack.encode(_msg.Ready(accept_addrs=[])))),
        True,
    ),
    'hello-then-spawnspec': (
        (
            hello(),
            frame(
                msgspec.msgpack.encode(
                    _msg.SpawnSpec(
                        enable_modules=['os'],
                        module_paths={},
                        sys_path=[],
                        reg_addrs=[],
                        bind_addrs=[],
                        enable_transports=[],
                    )
                )
            ),
        ),
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
        1
        for r in caplog.records
        if r.name.startswith('tractor')
        and r.levelname == 'WARNING'
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
                    assert await read_hello(stream) == [], attack
                    if isinstance(data, tuple):
                        data = stream.seal(*data)
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
                body = msgspec.msgpack.encode(
                    _msg.Hello(
                        aid=_msg.Aid(name='odd', uuid='u', pid=1),
                        addrs=[('carrier-pigeon', ['coop', 7]), ('tcp', ['x'])],
                    )
                )
                await stream.send_all(stream.seal(frame(body)))
                await stream.send_all(stream.seal(start('os', 'system', cid=2, command='true')))
                await stream.send_all(
                    stream.seal(
                        start(fns.__name__, 'no_such_fn', cid=4), start(fns.__name__, 'ping', cid=6)
                    )
                )
                replies = {}
                while len(replies) < 3:
                    chunk = await stream.receive_some()
                    assert chunk, 'the actor hung up on a well-behaved peer'
                    stream.buf += chunk
                    for msg in stream.take_msgs():
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


def yield_frame(cid: int, value) -> bytes:
    return frame(msgspec.msgpack.encode(_msg.Yield(cid=cid, pld=msgspec.msgpack.encode(value))))


@pytest.mark.parametrize('first_batch', [1, 20])
async def test_a_peer_past_its_stream_credit_is_dropped(
    first_batch, tpt_proto, runtime_kwargs, caplog
):
    """A peer that streams more into a context than its window (plus the
    slack) without waiting for credit is dropped with a log line: the
    actor's memory for that stream stays bounded, and it keeps serving.
    The overflow arrives behind messages still queued (nobody consumes
    them), in one batch or after a first one."""
    window = 16
    with trio.fail_after(30):
        async with tractor.open_nursery(enable_modules=FNS, **runtime_kwargs) as an:
            portal = await an.start_actor('victim', enable_modules=FNS)
            child_addr = portal.channel.raddr.unwrap()
            root_addr = tractor.current_actor().accept_addrs[0]
            peer = await raw_connect(root_addr, tpt_proto)
            try:
                assert await read_hello(peer) == []
                open_ctx = frame(
                    msgspec.msgpack.encode(
                        _msg.Start(
                            cid=2,
                            ns=fns.__name__,
                            func='serve_forever',
                            kwargs={},
                            kind='ctx',
                            window=window,
                        )
                    )
                )
                await peer.send_all(peer.seal(hello(), open_ctx))
                await peer.receive_until(
                    _msg.Started, 'the actor hung up before the context started'
                )
                logged = _dropped_logs(caplog)
                # serve_forever never opens its stream: everything queues
                too_many = window + 8 + 1
                values = [yield_frame(2, i) for i in range(too_many)]
                await peer.send_all(peer.seal(*values[:first_batch]))
                await send_quietly(peer.stream, peer.seal(*values[first_batch:]))
                await read_frames_until_eof(peer)
            finally:
                await peer.aclose()
            assert _dropped_logs(caplog) > logged
            assert any('overran the stream window' in r.getMessage() for r in caplog.records)
            await check_serving(portal, child_addr, root_addr, 'stream overrun')
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


async def open_hostile_listener(proto: str) -> tuple[trio.SocketListener, tuple]:
    """A listener of ours that actors can be made to dial."""
    if proto == 'tcp':
        listener = (await trio.open_tcp_listeners(0, host='127.0.0.1'))[0]
        return listener, ('127.0.0.1', listener.socket.getsockname()[1])
    addr = (os.environ['TRACTOR_RUNTIME_DIR'], f'hostile-{os.urandom(4).hex()}.sock')
    sock = trio.socket.socket(trio.socket.AF_UNIX)
    await sock.bind(os.path.join(*addr))
    sock.listen()
    return trio.SocketListener(sock), addr


def nested(depth: int) -> msgspec.Raw:
    """A msgpack value ``depth`` arrays deep."""
    return msgspec.Raw(b'\x91' * depth + b'\xc0')


#: what a hostile peer the actor dialed answers after the Hello exchange
DIALED_ATTACKS = {
    # RecursionError in the decoder (skipping a payload, decoding kwargs)
    'deep-payload': frame(msgspec.msgpack.encode(_msg.Yield(cid=3, pld=nested(100_000)))),
    'deep-kwargs': frame(
        msgspec.msgpack.encode(
            _msg.Start(cid=3, ns=fns.__name__, func='ping', kwargs={'x': nested(5_000)})
        )
    ),
    # decodable, but past the structural bound
    'past-the-depth-bound': frame(
        msgspec.msgpack.encode(
            _msg.Start(cid=3, ns=fns.__name__, func='ping', kwargs={'x': nested(_msg.MAX_DEPTH)})
        )
    ),
    'huge-array-header': frame(b'\xdd\xff\xff\xff\xff'),
    'wrong-struct': frame(msgspec.msgpack.encode(['Start', 'cid', 2])),
}


@pytest.mark.parametrize('attack', sorted(DIALED_ATTACKS))
async def test_deep_frame_on_a_dialed_connection(attack, tpt_proto, runtime_kwargs):
    """An actor that dialed a peer which then sends a frame it cannot decode
    (nested 100,000 deep: RecursionError in the decoder; past the depth
    bound; an absurd array length) drops that one connection: the call over
    it fails with TransportClosed, the actor lives on and serves.
    (Before the fix, the first two killed the dialing actor.)"""
    served = trio.Event()

    async def hostile(stream: trio.SocketStream) -> None:
        async with stream:
            session = await _auth.authenticate(stream, _secret.current_secret(), initiator=False)
            peer = RawPeer(stream, session)
            await read_hello(peer)
            await send_quietly(stream, peer.seal(hello(), DIALED_ATTACKS[attack]))
            try:
                while await stream.receive_some():  # until the actor hangs up
                    pass
            except trio.BrokenResourceError:
                pass
            served.set()

    with trio.fail_after(60):
        listener, addr = await open_hostile_listener(tpt_proto)
        async with trio.open_nursery() as tn:
            tn.start_soon(trio.serve_listeners, hostile, [listener])
            async with tractor.open_nursery(enable_modules=FNS, **runtime_kwargs) as an:
                portal = await an.start_actor('dialer', enable_modules=FNS)
                with pytest.raises(tractor.RemoteActorError) as info:
                    await portal.run(call_back, addr=list(addr))
                assert info.value.boxed_type is tractor.TransportClosed, info.value
                await served.wait()
                # the dialing actor survived, and still dials and serves
                assert await portal.run(ping) == 'pong'
                root = tractor.current_actor().accept_addrs[0]
                assert await portal.run(call_back, addr=list(root)) == 'pong'
                await an.cancel()
            tn.cancel_scope.cancel()


async def legit_ping(addr: tuple) -> None:
    """One legitimate call over a fresh authenticated connection."""
    peer = await raw_connect(addr, 'tcp')
    async with peer:
        await read_hello(peer)
        await peer.send_all(peer.seal(hello(), start('__main__', 'ping', cid=2)))
        replies = await peer.receive_until(
            _msg.Return, 'the flooded actor hung up on a legitimate peer'
        )
        ret = next(m for m in replies if isinstance(m, _msg.Return))
        assert msgspec.msgpack.decode(ret.pld) == 'pong'


async def test_fd_flood_at_a_low_limit():
    """An actor limited to 256 fds (``resource.setrlimit`` in its program)
    flooded by 600 idle unauthenticated connections, all held open, keeps
    answering legitimate calls: unfinished handshakes are capped
    (``TRACTOR_MAX_HANDSHAKES``), the oldest dropped at once, so the flood
    never holds more than the cap of the actor's fds."""
    import json
    import resource
    import socket
    import subprocess
    import sys

    from conftest import SCRIPTS
    from tractor._dial import HANDSHAKE_TIMEOUT

    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    if limits[0] < 1024:  # the flood itself needs fds here
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(limits[1], 4096), limits[1]))
    with socket.socket() as s:  # a free port for the target's registry
        s.bind(('127.0.0.1', 0))
        reg = ('127.0.0.1', s.getsockname()[1])
    with trio.fail_after(60):
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(SCRIPTS / 'flood_target.py'), '256', json.dumps(reg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        flood: list[trio.SocketStream] = []
        try:
            line = b''
            while not line.endswith(b'\n'):
                chunk = await proc.stdout.receive_some()
                assert chunk, 'the flood target exited before it listened'
                line += chunk
            addr = tuple(json.loads(line))
            for _ in range(600):
                flood.append(await trio.open_tcp_stream(*addr))
            for _ in range(4):  # legitimate calls, the flood still open, each
                # bounded as a dialing actor bounds its handshake
                with trio.fail_after(HANDSHAKE_TIMEOUT):
                    await legit_ping(addr)
        finally:
            for s in flood:
                await s.aclose()
            await proc.stdin.aclose()
            with trio.move_on_after(15) as cs:
                await proc.wait()
            if cs.cancelled_caught:
                proc.kill()  # our own child
                await proc.wait()
            await proc.stdout.aclose()
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)


async def test_boot_raises_the_soft_fd_limit():
    """An actor raises its soft fd limit to the hard one when it boots."""
    import sys

    code = (
        'import resource, trio, tractor\n'
        'soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n'
        'resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n'
        'async def main():\n'
        '    async with tractor.open_root_actor(registry_addrs=[("127.0.0.1", 0)]):\n'
        '        print(resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard))\n'
        'trio.run(main)\n'
    )
    with trio.fail_after(60):
        done = await trio.run_process([sys.executable, '-c', code], capture_stdout=True)
    assert done.stdout.strip().splitlines()[-1] == b'True'


async def test_partial_frames_share_one_budget(tpt_proto, runtime_kwargs, monkeypatch, caplog):
    """Each connection may announce a frame up to the maximum size, but
    together they cannot make an actor buffer more than its budget for
    partially received frames: the connection that would pass it is
    dropped; the others, and the actor, carry on."""
    import logging

    from tractor import _ipc

    caplog.set_level(logging.WARNING, logger='tractor')
    big = 60 * 2**20
    monkeypatch.setattr(_ipc, 'PARTIAL_FRAME_BUDGET', 2 * big + 2**20)
    with trio.fail_after(60):
        async with tractor.open_nursery(enable_modules=FNS, **runtime_kwargs) as an:
            portal = await an.start_actor('probe', enable_modules=FNS)
            root = tractor.current_actor().accept_addrs[0]
            peers = []
            try:
                for _ in range(3):
                    peer = await raw_connect(root, tpt_proto)
                    await read_hello(peer)
                    # a Hello, then the start of a 60 MiB frame that never ends
                    await peer.send_all(peer.seal(hello()) + big.to_bytes(4, 'big') + b'\0' * 1000)
                    peers.append(peer)
                with trio.fail_after(10):
                    while not any(
                        'partially received frames' in r.getMessage() for r in caplog.records
                    ):
                        await trio.sleep(0.02)
                # the third was dropped: it sees EOF; the first two are held
                assert await read_frames_until_eof(peers[2]) == []
                assert _ipc._partial_bytes >= 2 * big
                assert await portal.run(call_back, addr=list(root)) == 'pong'
            finally:
                for peer in peers:
                    await peer.aclose()
            with trio.fail_after(10):  # their budget is given back
                while _ipc._partial_bytes:
                    await trio.sleep(0.02)
            await an.cancel()
