"""Opening a connection to a peer: the handshake, and the one way to dial.

:func:`handshake` runs on every new connection, dialed or accepted: the
authentication preamble (:mod:`tractor._auth`), then the ``Hello``
exchange. :func:`dial` connects with the address's transport, wraps the stream in a
:class:`~tractor.Channel` and runs the handshake (authentication, then the
``Hello`` exchange). ``Actor.connect`` (a served peer channel), a spawned
child without an inherited parent socket, and discovery's registrar probe
all start here; :func:`spawn_socket_channel` is the channel a spawned child
and its parent get on the socket pair the child inherits instead.

:func:`request` makes one plain call on a channel that no actor serves yet
(a probe, a boot-time exchange), without the runtime's message loop.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from . import _auth, _msg, _secret, _session, _settings
from ._call import Reply
from ._exceptions import MsgTypeError
from ._ipc import HELLO_TIMEOUT, Channel
from ._transport import get_transport, wrap_address

if TYPE_CHECKING:
    from ._transport import Address

#: bound on the authentication and identity exchange of a new connection
HANDSHAKE_TIMEOUT = _settings.value('TRACTOR_HANDSHAKE_TIMEOUT')


async def handshake(
    chan: Channel,
    aid: _msg.Aid,
    timeout: float,
    addrs: Sequence[Address] = (),
    secret: bytes | None = None,
    spawn_token: bytes | None = None,
) -> _msg.Aid:
    """Authenticate the peer (:mod:`tractor._auth`: a proof of the shared
    ``secret``, default this tree's, before any message is decoded, bound
    to the address the dialer meant to reach), start the session that tags
    every later frame, then exchange :class:`Hello` messages; returns (and
    records) the peer's identity. An accepted channel learns its ``raddr``
    from the peer's listen addresses (same transport preferred) and accepts
    only dialers that meant to reach one of ``addrs`` (its own). A spawned
    child passes the ``spawn_token`` its parent gave it, to prove it is
    that child. The whole exchange is bounded by ``timeout``, the peer's
    first 40 bytes by :data:`HELLO_TIMEOUT`."""
    with trio.fail_after(timeout):
        if chan.initiator:
            wire = chan.raddr.to_wire() if chan.raddr is not None else None
            opts: dict = {'binding': _auth.dial_binding(chan.stream, wire)}
        else:
            wires = [a.to_wire() for a in addrs]
            if chan.laddr is not None:
                wires.append(chan.laddr.to_wire())
            opts = {'accepts': _auth.accepting(chan.stream, wires), 'hello_timeout': HELLO_TIMEOUT}
        # a listener's verdict goes out with its Hello, in one write
        verdict = None if chan.initiator else bytearray()
        session = await _auth.authenticate(
            chan.stream,
            _secret.current_secret() if secret is None else secret,
            initiator=chan.initiator,
            peer=str(chan.raddr) if chan.raddr is not None else None,
            verdict_out=verdict,
            **opts,
        )
        chan.start_session(session, bytes(verdict or b''))
        proof = _session.spawn_proof(spawn_token, session) if spawn_token else b''
        await send_hello(chan, aid, addrs, proof)
        return await receive_hello(chan)


async def send_hello(
    chan: Channel, aid: _msg.Aid, addrs: Sequence[Address], proof: bytes = b'', cork: bool = False
) -> None:
    """Say who we are (``aid``) and where we listen (``addrs``) on a channel
    whose session started."""
    await chan.send(
        _msg.Hello(aid=aid, addrs=[a.to_wire() for a in addrs], spawn_proof=proof), cork=cork
    )


async def receive_hello(chan: Channel) -> _msg.Aid:
    """The peer's ``Hello``, recorded on ``chan``; ``MsgTypeError`` if the
    first message is anything else."""
    msg = await chan.recv()
    if not isinstance(msg, _msg.Hello):
        raise MsgTypeError(f'expected Hello as the first message, got {type(msg).__name__}')
    chan.aid = msg.aid
    chan.peer_spawn_proof = msg.spawn_proof
    if chan.raddr is None and msg.addrs:
        chan.set_raddr_from(msg.addrs)
    return msg.aid


def spawn_socket_channel(
    sock: socket.socket,
    spawn_token: bytes,
    *,
    child: bool,
    laddr: Address | None = None,
    raddr: Address | None = None,
) -> Channel:
    """A channel on one end of a spawn's inherited socket pair (see
    ``tractor._spawn_trio.child_command``), its session started: what a
    dial and handshake give a child that dials its parent, without the
    connect and the preamble's two round trips. Only the parent and the
    child it started hold the pair, and the session's keys come from the
    tree's secret and the spawn's token (``Session.for_spawn``)."""
    sock.setblocking(False)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    chan = Channel(stream, laddr=laddr, raddr=raddr, initiator=child)
    chan.start_session(
        _session.Session.for_spawn(_secret.current_secret(), spawn_token, child=child)
    )
    return chan


async def dial(
    addr: Address | Any,
    aid: _msg.Aid,
    *,
    addrs: Iterable[Address] = (),
    timeout: float | None = None,
    connect_timeout: float | None = None,
    spawn_token: bytes | None = None,
) -> Channel:
    """Connect to the actor at ``addr`` and return a handshaken channel.

    ``addr`` is anything :func:`~tractor.plugin.wrap_address` accepts.
    ``aid`` is who we are (``actor.aid``) and ``addrs`` where we listen,
    both told to the peer in our ``Hello``. The handshake is bounded by
    ``timeout`` (default ``TRACTOR_HANDSHAKE_TIMEOUT``); ``connect_timeout``,
    when given, bounds the transport's connect, and running out of it raises
    ``TimeoutError`` (an ``OSError``, like "nothing listens there").
    ``spawn_token`` is for a spawned child proving itself to its parent.

    Raises ``OSError`` when nothing accepts at ``addr``; once connected,
    ``AuthenticationError``, ``MsgTypeError``, ``TransportClosed`` or
    ``trio.TooSlowError`` when the handshake fails (the channel is closed
    then). The channel is not served: hand it to the actor
    (``Actor.connect`` does both) or use it with :func:`request`.
    """
    addr = wrap_address(addr)
    tpt = get_transport(addr.proto_key)
    if connect_timeout is None:
        stream = await tpt.connect(addr)
    else:
        with trio.move_on_after(connect_timeout) as cs:
            stream = await tpt.connect(addr)
        if cs.cancelled_caught:
            raise TimeoutError(f'connecting to {addr} took longer than {connect_timeout}s')
    chan = Channel(stream, raddr=addr, initiator=True)
    try:
        await handshake(
            chan,
            aid,
            HANDSHAKE_TIMEOUT if timeout is None else timeout,
            list(addrs),
            spawn_token=spawn_token,
        )
    except BaseException:
        await chan.aclose()
        raise
    return chan


async def request(chan: Channel, ns: str, func: str, kwargs: dict[str, Any] | None = None) -> Any:
    """Run ``ns.func(**kwargs)`` in the peer of an *unserved* channel (one
    from :func:`dial` that no actor reads) and return its result.

    Raises :class:`~tractor.RemoteActorError` boxing the peer's error, and
    ``TransportClosed`` when the channel closes first. Messages for other
    calls on the channel are dropped. Bound it with ``trio.fail_after``. On
    a channel the actor serves, use ``Portal(chan).run_from_ns`` instead.
    """
    cid = chan.next_cid()
    reply = Reply(chan, cid)
    await chan.send(_msg.Start(cid=cid, ns=ns, func=func, kwargs=kwargs or {}))
    while not reply.done:
        msg = await chan.recv()
        if getattr(msg, 'cid', None) == cid:
            reply._deliver(msg)
    return await reply.receive()
