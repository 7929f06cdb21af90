"""Actor trees over TLS: calls, streams, discovery, a multihomed actor, and
the bytes on the wire (nothing of tractor's in the clear)."""

from __future__ import annotations

import pytest
import trio

import tractor
from tractor_tls import TLSAddress, TLSStream

pytestmark = pytest.mark.slow

TIMEOUT = 60
MARKER = 'a-payload-that-must-never-cross-in-the-clear'


async def echo(value=None):
    return value


async def channel_facts() -> dict:
    """What the channel this call came over runs on."""
    from tractor.plugin import current_channel

    actor = tractor.current_actor()
    chan = current_channel.get()
    stream = chan.stream
    facts = {
        'proto': chan.raddr.proto_key if chan.raddr else None,
        'stream': type(stream).__name__,
        # the raw-socket path must not be taken under TLS (it would write
        # plaintext past the TLS layer); the TLS stream's own direct path is
        'raw_socket': chan._sock is not None,
        'direct_tls': chan._send_nowait is not None,
        'accept': [a.to_wire() for a in actor.listen_addrs],
    }
    if isinstance(stream, TLSStream):
        facts['version'] = stream.ssl_object.version()
        facts['peer_cert'] = bool(stream.ssl_object.getpeercert())
    return facts


@tractor.context
async def counter(ctx: tractor.Context, upto: int) -> str:
    await ctx.started(upto)
    async with ctx.open_stream() as stream:
        for i in range(upto):
            await stream.send(i)
        async for msg in stream:
            if msg == 'done':
                break
    return 'finished'


async def find_and_call(name: str) -> str:
    async with tractor.wait_for_actor(name) as portal:
        proto = portal.channel.raddr.proto_key
        got = await portal.run(echo, value=name)
    return f'{proto}:{got}'


async def test_tree_over_tls(pki, tls_reg):
    """TLS only: the child serves TLS alone, a connection to it is TLS
    (version 1.3, the TLS stream's direct path), it answers calls and
    streams, and a sibling finds it through the registrar over TLS. Its
    channel to its parent is the socket pair it inherited (both on one
    host: no network in between), named by its TLS address."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(enable_transports=['tls'], registry_addrs=[tls_reg]) as an:
            assert all(a.proto_key == 'tls' for a in tractor.current_actor().listen_addrs)
            spawned = await an.start_actor('one', enable_modules=[__name__])
            two = await an.start_actor('two', enable_modules=[__name__])
            assert spawned.channel.raddr.proto_key == 'tls'
            inherited = await spawned.run(channel_facts)
            assert inherited['stream'] == 'SocketStream' and inherited['proto'] == 'tls'
            one = tractor.Portal(await tractor.current_actor().connect(spawned.channel.raddr))
            facts = await one.run(channel_facts)
            assert facts['proto'] == 'tls'
            assert facts['stream'] == 'TLSStream' and not facts['raw_socket']
            assert facts['direct_tls']
            assert facts['version'] == 'TLSv1.3' and facts['peer_cert']
            assert all(w[0] == 'tls' for w in facts['accept'])
            assert await one.run(echo, value={'x': [1, 2]}) == {'x': [1, 2]}

            async with one.open_context(counter, upto=50) as (ctx, first):
                assert first == 50
                async with ctx.open_stream() as stream:
                    got = [await stream.receive() for _ in range(50)]
                    await stream.send('done')
                assert await ctx.wait_for_result() == 'finished'
            assert got == list(range(50))

            assert await two.run(find_and_call, name='one') == 'tls:one'
            async with tractor.find_actor('two') as portal:
                assert portal is not None and portal.channel.raddr.proto_key == 'tls'
            await an.cancel()


async def test_multihomed_actor(pki, tls_reg, tmp_path):
    """One actor serving TLS, TCP and UDS at once: reachable over each,
    each channel of its own transport."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(
            enable_transports=['tls', 'tcp', 'uds'], registry_addrs=[tls_reg]
        ) as an:
            portal = await an.start_actor('multi', enable_modules=[__name__])
            facts = await portal.run(channel_facts)
            protos = sorted(w[0] for w in facts['accept'])
            assert protos == ['tcp', 'tls', 'uds'], facts['accept']
            actor = tractor.current_actor()
            for wire in facts['accept']:
                chan = await actor.connect(wire)
                try:
                    assert chan.raddr.proto_key == wire[0]
                    assert isinstance(chan.stream, TLSStream) == (wire[0] == 'tls')
                    got = await tractor.Portal(chan).run(echo, value=wire[0])
                    assert got == wire[0]
                finally:
                    await chan.aclose()
            await an.cancel()


async def _relay(listener: trio.SocketListener, target: tuple, seen: list[bytes]) -> None:
    """Forward one connection to ``target``, keeping every byte both ways."""
    down = await listener.accept()
    up = await trio.open_tcp_stream(*target)

    async def pump(src, dst):
        try:
            while chunk := await src.receive_some(65536):
                seen.append(chunk)
                await dst.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await dst.aclose()

    async with down, up, trio.open_nursery() as tn:
        tn.start_soon(pump, down, up)
        tn.start_soon(pump, up, down)


async def test_nothing_in_the_clear(pki, tls_reg, monkeypatch):
    """Through a tap on the path that records every byte (the dialer means
    the target, its TCP connection goes through the tap): a TLS handshake
    record first, and neither tractor's preamble, nor message names, nor a
    call's payload readable anywhere in the stream."""
    import tractor_tls

    seen: list[bytes] = []
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(enable_transports=['tls'], registry_addrs=[tls_reg]) as an:
            portal = await an.start_actor('target', enable_modules=[__name__])
            facts = await portal.run(channel_facts)
            target = TLSAddress(*facts['accept'][0][1])
            listeners = await trio.open_tcp_listeners(0, host='127.0.0.1')
            relay_port = listeners[0].socket.getsockname()[1]
            async with listeners[0], trio.open_nursery() as tn:
                tn.start_soon(_relay, listeners[0], target.unwrap(), seen)
                # the TCP connection under TLS goes to the tap; everything
                # above it (certificate check, secret proof) means the target
                tcp_connect = tractor_tls.TCPTransport.connect

                async def via_tap(self, addr):
                    return await tcp_connect(self, type(addr)('127.0.0.1', relay_port))

                monkeypatch.setattr(tractor_tls.TCPTransport, 'connect', via_tap)
                chan = await tractor.current_actor().connect(target)
                monkeypatch.undo()
                try:
                    assert await tractor.Portal(chan).run(echo, value=MARKER) == MARKER
                finally:
                    await chan.aclose()
            await an.cancel()
    wire = b''.join(seen)
    assert wire[:1] == b'\x16', 'the first record is not a TLS handshake'
    for clear in (MARKER.encode(), b'TRCT', b'Hello', b'echo', __name__.encode()):
        assert clear not in wire, f'{clear!r} crossed in the clear'


@pytest.mark.parametrize('wire', [('tls', ['127.0.0.1', 1617]), '/ip4/127.0.0.1/tcp/1617/tls'])
async def test_registry_address_forms(pki, wire):
    """The forms a user writes for the default TLS registry (a plain tuple
    would be TCP's): the same address."""
    from tractor.plugin import wrap_address

    assert wrap_address(wire) == TLSAddress('127.0.0.1', 1617)
