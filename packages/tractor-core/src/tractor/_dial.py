"""Dialing a peer: the one way a connection to another actor is opened.

:func:`dial` connects with the address's transport, wraps the stream in a
:class:`~tractor.Channel` and runs the handshake (authentication, then the
``Hello`` exchange). ``Actor.connect`` (a served peer channel), a spawned
child (its parent channel) and discovery's registrar probe all start here.

:func:`request` makes one plain call on a channel that no actor serves yet
(a probe, a boot-time exchange), without the runtime's message loop.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import trio

from . import _msg, _settings
from ._call import Reply
from ._ipc import Channel, handshake
from ._transport import get_transport, wrap_address

if TYPE_CHECKING:
    from ._transport import Address

#: bound on the authentication and identity exchange of a new connection
HANDSHAKE_TIMEOUT = _settings.value('TRACTOR_HANDSHAKE_TIMEOUT')


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
            chan, aid, HANDSHAKE_TIMEOUT if timeout is None else timeout, list(addrs),
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
