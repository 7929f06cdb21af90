"""The accepting side of an actor's connections: listeners and handshakes.

Each listener runs in the actor's I/O nursery; each accepted stream gets a
task that authenticates it (bounded, and capped in number by the actor's
:class:`~tractor._limits.HandshakeGate`), hands a child being spawned its
``SpawnSpec``, then serves the channel like any other peer's
(``Actor._serve_channel``). Whatever goes wrong on one connection ends that
connection, never the actor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._auth import describe_peer
from ._dial import HANDSHAKE_TIMEOUT, handshake, receive_hello, send_hello, spawn_socket_channel
from ._exceptions import ActorFailure, AuthenticationError, MsgTypeError, TransportClosed
from ._ipc import Channel
from .log import get_logger

if TYPE_CHECKING:
    from ._runtime import Actor
    from ._spawn import SpawnWaiter
    from ._transport import Address

log = get_logger('runtime')


async def serve_listener(actor: Actor, listener: trio.abc.Listener, addr: Address) -> None:
    async with listener:
        async with trio.open_nursery() as tn:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as err:
                    # e.g. EMFILE: back off instead of dying
                    log.warning('accept() on %s failed: %s', addr, err)
                    await trio.sleep(0.05)
                    continue
                tn.start_soon(handle_connection, actor, stream, addr)


async def handle_connection(actor: Actor, stream: trio.abc.Stream, laddr: Address) -> None:
    chan = Channel(stream, laddr=laddr, raddr=None, initiator=False)
    try:
        try:
            with actor._handshakes.admit() as gate:
                aid = await handshake(chan, actor.aid, HANDSHAKE_TIMEOUT, actor.listen_addrs)
            if gate.cancelled_caught:
                return  # dropped for a newer one (logged by the gate)
        except TransportClosed as err:
            # closed before saying anything: liveness probes, port scans
            log.debug('connection on %s closed during the handshake: %s', laddr, err)
            return
        except (AuthenticationError, MsgTypeError, trio.TooSlowError) as err:
            # one line, naming the peer; nothing it sent was decoded
            # unless it passed authentication (see tractor._auth)
            log.warning(
                'refused connection from %s on %s: %s',
                describe_peer(stream),
                laddr,
                err
                if not isinstance(err, trio.TooSlowError)
                else f'{err} (TRACTOR_HELLO_TIMEOUT)'
                if err.args
                else f'handshake not done within {HANDSHAKE_TIMEOUT}s',
            )
            return
        log.transport('%s: accepted %r (pid %d)', laddr, aid.name, aid.pid)
        waiter = actor._spawning.get(aid.uid)
        if waiter is not None:
            if not waiter.proves(chan):
                # the uuid is public (a child's argv): only the process
                # we started holds the token from its secret pipe
                log.warning(
                    'refused connection from %s on %s: it claims to be the child %r '
                    'being spawned but cannot prove its spawn token',
                    describe_peer(stream),
                    laddr,
                    aid.name,
                )
                return
            del actor._spawning[aid.uid]
            ok = await waiter.handoff(actor, chan)
            if not ok:
                return
            actor._child_chans.add(chan)
        await actor._serve_channel(chan)
    except Exception:
        log.exception('connection handler on %s failed', laddr)
    finally:
        actor._child_chans.discard(chan)
        await chan.aclose()


async def serve_spawn_socket(
    actor: Actor, uid: tuple[str, str], waiter: SpawnWaiter, laddr: Address
) -> None:
    """The parent's end of the inherited socket of the child ``uid`` being
    spawned (``waiter.sock``): our ``Hello`` and the child's ``SpawnSpec``
    go out in one write, before the child even runs, so it reads both at
    once; then the child's ``Hello`` and ``Ready`` (``SpawnWaiter.handoff``),
    and the channel is served like an accepted one. ``laddr`` is the
    address the child would have dialed instead.

    A child that closes the socket before its ``Hello`` (a backend that did
    not pass it on, a child that died) leaves the spawn as it is: the child
    may still dial ``laddr``, and the actor nursery sees a death itself.

    No handshake bound here: the child's ``Hello`` comes only after its
    interpreter started and loaded its plugins, which a dialing child does
    before its connection's handshake clock starts. The spawn's own bound
    (``TRACTOR_SPAWN_TIMEOUT``, in ``ActorNursery._start_child``) times
    this exchange; when it runs out the child is killed and this socket
    sees the end of the stream."""
    sock, waiter.sock = waiter.sock, None
    assert sock is not None
    chan = spawn_socket_channel(sock, waiter.token, child=False, laddr=laddr)
    try:
        try:
            await send_hello(chan, actor.aid, actor.listen_addrs, cork=True)
            await chan.send(waiter.spec)
            aid = await receive_hello(chan)
        except TransportClosed as err:
            log.debug('the spawn socket of %r closed before its Hello: %s', uid, err)
            return
        except MsgTypeError as err:
            waiter.fail(ActorFailure(f'child failed during boot: {err!r}'))
            return
        if aid.uid != uid:
            waiter.fail(ActorFailure(f'the child {uid!r} said Hello as {aid.uid!r}'))
            return
        log.transport('spawn socket: %r (pid %d) said Hello', aid.name, aid.pid)
        if actor._spawning.pop(uid, None) is not waiter or waiter.done.is_set():
            # the spawn was given up meanwhile (cancelled, timed out): its
            # child is being killed, and no plugin may see it as ready
            return
        if not await waiter.handoff(actor, chan, spec_sent=True):
            return
        actor._child_chans.add(chan)
        await actor._serve_channel(chan)
    except Exception:
        log.exception('the spawn socket of %r failed', uid)
    finally:
        actor._child_chans.discard(chan)
        await chan.aclose()
