"""Peer authentication: the preamble every connection opens with.

Every connection opens with a challenge-response proof of the tree's shared
secret (:mod:`tractor._secret`), before any message is decoded, and derives
a session key from it (:mod:`tractor._session`) that authenticates every
later frame. The preamble is three raw frames (no msgpack), so garbage is
refused after a few bytes::

    both ways   HELLO    40 bytes  b'TRCT' | version (2) | 3 zero bytes | nonce (32)
    dialer ->   PROOF    2 + n + 32 bytes: n (big-endian) | binding (n bytes) | proof_d
    <- listener VERDICT  33 bytes  0x01 | proof_l   (0x00 and 32 zero bytes: refused)

(An accepting VERDICT shares its write with the listener's ``Hello``, the
first frame of the session: see ``verdict_out``.)

``binding`` names the address the dialer meant to reach (and, over unix
sockets, the uid it expects there); the listener refuses it unless it is
one of its own (:func:`accepting`). Both proofs come from keys derived from
the secret, both nonces and the binding (:meth:`Session.derive`).

So a proof is worthless on another connection (fresh nonces), reflected
back at its sender (other role, other key) or relayed to another address
(other binding). The secret never crosses the wire, proofs are compared with
:func:`hmac.compare_digest`, and the listener answers only after checking
the dialer, so a stranger learns nothing but "refused".
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import secrets
import socket
import struct
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import trio

from . import _sockio
from ._exceptions import (
    STREAM_ERRORS,
    AuthenticationError,
    MsgTypeError,
    TransportClosed,
    transport_closed,
)
from ._session import Session

MAGIC = b'TRCT'
VERSION = 2
NONCE_SIZE = 32
HELLO_SIZE = len(MAGIC) + 4 + NONCE_SIZE  # 40
PROOF_SIZE = 32
VERDICT_SIZE = 1 + PROOF_SIZE  # 33
#: the longest binding a dialer may send
MAX_BINDING = 1024
_ACCEPT = b'\x01'
_REJECT = b'\x00'


class PreambleError(MsgTypeError):
    """The peer did not open with tractor's authentication preamble (not a
    tractor actor, or one speaking another version)."""


def _hello(nonce: bytes) -> bytes:
    return MAGIC + bytes([VERSION, 0, 0, 0]) + nonce


def hello_frame(nonce: bytes) -> bytes:
    """The first preamble frame, both ways."""
    return _hello(nonce)


def dialer_step(
    secret: bytes, nonce: bytes, their_hello: bytes, binding: bytes = b''
) -> tuple[bytes, Session, bytes]:
    """The dialer's side once both hellos are out (sans I/O): the PROOF
    frame to send, its :class:`Session`, and the verdict a listener holding
    ``secret`` answers."""
    if len(binding) > MAX_BINDING:
        raise ValueError(f'a binding is at most {MAX_BINDING} bytes')
    session, proof_d, proof_l = Session.derive(
        secret, nonce, their_hello[-NONCE_SIZE:], binding, True
    )
    return len(binding).to_bytes(2, 'big') + binding + proof_d, session, _ACCEPT + proof_l


async def _read_exact(stream: trio.abc.Stream, n: int, what: str, who, check=None) -> bytes:
    """Exactly ``n`` bytes (never more: what follows is the peer's first
    message, left in the socket for the channel); ``check(prefix)`` runs on
    every partial read so garbage is refused as soon as it shows."""
    sock = _sockio.direct_socket(stream)
    buf = b''
    chunk: bytes | bytearray
    while len(buf) < n:
        try:
            if sock is not None:
                chunk = await _sockio.receive_eager(sock, n - len(buf))
            else:
                chunk = await stream.receive_some(n - len(buf))
        except STREAM_ERRORS as err:
            raise transport_closed(
                f'{who()}: connection lost during authentication ({what})', err
            ) from err
        if not chunk:
            raise TransportClosed(f'{who()} closed the connection during authentication ({what})')
        buf += chunk
        if check is not None:
            check(buf)
    return buf


def check_hello(buf: bytes, who) -> None:
    """``PreambleError`` as soon as a (partial) hello is not tractor's."""
    head = buf[: len(MAGIC)]
    if head != MAGIC[: len(head)]:
        raise PreambleError(
            f'{who()} did not open with the tractor preamble (got {bytes(buf[:8])!r}): '
            'not a tractor peer, or one without authentication'
        )
    if len(buf) > len(MAGIC) and buf[len(MAGIC)] != VERSION:
        raise PreambleError(
            f'{who()} speaks tractor preamble version {buf[len(MAGIC)]}, this is version {VERSION}'
        )
    if len(buf) >= len(MAGIC) + 4 and buf[len(MAGIC) + 1 : len(MAGIC) + 4] != b'\0\0\0':
        raise PreambleError(f'{who()} sent a malformed preamble')


async def _send(stream: trio.abc.Stream, data: bytes, who) -> None:
    """Send a preamble frame: straight into the socket when it takes it
    all (no yield: the preamble waits for its peer anyway), else through
    ``send_all``."""
    sock = _sockio.direct_socket(stream)
    try:
        if sock is not None:
            sent = _sockio.try_send(sock, data)
            if sent == len(data):
                return
            data = data[sent:]
        await stream.send_all(data)
    except STREAM_ERRORS as err:
        raise transport_closed(f'{who()}: connection lost during authentication', err) from err


async def authenticate(
    stream: trio.abc.Stream,
    secret: bytes,
    *,
    initiator: bool,
    peer: str | None = None,
    binding: bytes = b'',
    accepts: Callable[[bytes], bool] | None = None,
    hello_timeout: float | None = None,
    verdict_out: bytearray | None = None,
) -> Session:
    """Run the preamble on a fresh ``stream``; returns the :class:`Session`
    once both sides proved they hold ``secret``.

    The dialer (``initiator``) passes ``binding``, the address it meant to
    reach (:func:`dial_binding`); the listener passes ``accepts``, which
    says whether a binding names this listener (:func:`accepting`); a
    listener without ``accepts`` takes any. ``hello_timeout`` bounds the
    peer's 40-byte hello alone (the caller bounds the whole exchange);
    running out of it raises ``trio.TooSlowError`` saying so.

    A listener that passes ``verdict_out`` gets its accepting VERDICT
    appended there instead of sent, to send it ahead of its first frame in
    one write (the dialer then finds the listener's ``Hello`` with the
    verdict, not one wake-up later). A refusal is sent at once either way.

    Raises :class:`~tractor.AuthenticationError` when the proofs do not
    match or the binding is refused, :class:`PreambleError` for a peer that
    does not speak the preamble, ``TransportClosed`` when the connection
    drops. ``peer`` names the other end in errors (default: what the socket
    says, see :func:`describe_peer`).
    """

    def who() -> str:
        return peer if peer is not None else describe_peer(stream)

    nonce = secrets.token_bytes(NONCE_SIZE)
    await _send(stream, _hello(nonce), who)
    try:
        with trio.fail_after(hello_timeout) if hello_timeout else nullcontext():
            theirs = await _read_exact(
                stream, HELLO_SIZE, 'hello', who, lambda b: check_hello(b, who)
            )
    except trio.TooSlowError:
        # say which bound ran out: the caller's message names the whole
        # handshake's, which is longer
        raise trio.TooSlowError(f'no preamble hello within {hello_timeout}s') from None
    their_nonce = theirs[-NONCE_SIZE:]
    if hmac.compare_digest(their_nonce, nonce):
        raise PreambleError(f'{who()} echoed our own challenge back: not a tractor peer')
    if initiator:
        proof, session, expected = dialer_step(secret, nonce, theirs, binding)
        await _send(stream, proof, who)
        verdict = await _read_exact(stream, VERDICT_SIZE, 'verdict', who)
        if verdict[:1] != _ACCEPT:
            raise AuthenticationError(
                f'authentication failed: {who()} refused our proof of the shared '
                'secret (the two sides use different secrets: give both the same '
                '`secret=` or TRACTOR_SECRET, or the same cookie file; or the '
                'connection was relayed from another address than the one we dialed)'
            )
        if not hmac.compare_digest(verdict, expected):
            raise AuthenticationError(
                f'authentication failed: {who()} could not prove it knows the shared secret'
            )
        return session
    nonce_d, nonce_l = their_nonce, nonce
    head = await _read_exact(stream, 2, 'proof', who)
    size = int.from_bytes(head, 'big')
    if size > MAX_BINDING:
        raise PreambleError(f'{who()} sent a binding of {size} bytes (at most {MAX_BINDING})')
    rest = await _read_exact(stream, size + PROOF_SIZE, 'proof', who)
    binding, proof = rest[:size], rest[size:]
    session, proof_d, proof_l = Session.derive(secret, nonce_d, nonce_l, binding, False)
    good = hmac.compare_digest(proof, proof_d)
    if not good or (accepts is not None and not accepts(binding)):
        try:
            await stream.send_all(_REJECT + bytes(PROOF_SIZE))
        except STREAM_ERRORS:
            pass
        if not good:
            raise AuthenticationError(
                f'authentication failed: {who()} does not know the shared secret'
            )
        raise AuthenticationError(
            f'authentication failed: {who()} meant to reach '
            f'{binding.decode(errors="replace")!r}, which is not this listener: '
            'a connection relayed from another address'
        )
    if verdict_out is not None:
        verdict_out += _ACCEPT + proof_l
    else:
        await _send(stream, _ACCEPT + proof_l, who)
    return session


# -- bindings: the address a dialer meant to reach ----------------------------


def _norm_ip(host: str) -> str | None:
    """``host`` as a canonical IP literal, or ``None`` if it is a name."""
    try:
        ip = ipaddress.ip_address(host.split('%', 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _inet_binding(host: str, port: int) -> bytes:
    return f'inet:{host}:{port}'.encode()


def _sock(stream: trio.abc.Stream):
    return getattr(stream, 'socket', None)


def dial_binding(stream: trio.abc.Stream, wire: tuple[str, list] | None) -> bytes:
    """The binding a dialer sends: the address it meant to reach.

    ``wire`` is that address (``Address.to_wire()``). An IP address is put
    in canonical form; a host name is replaced by the address the name led
    to (the socket's peer). Over a unix socket the binding also names the
    uid we expect to serve it (ours), after checking with ``SO_PEERCRED``
    that it does: ``AuthenticationError`` otherwise.
    """
    sock = _sock(stream)
    family = getattr(sock, 'family', None)
    if family == socket.AF_UNIX:
        uid = os.getuid()
        peer_uid = _peer_uid(sock)
        if peer_uid is not None and peer_uid != uid:
            raise AuthenticationError(
                f'authentication failed: the unix socket {wire!r} is served by uid '
                f'{peer_uid}, not by our uid {uid}: refusing to authenticate to it'
            )
        return f'unix:{_wire_text(wire)}:uid={uid}'.encode()
    if family in (socket.AF_INET, socket.AF_INET6) and wire is not None:
        parts = wire[1]
        host = _norm_ip(parts[0]) if parts and isinstance(parts[0], str) else None
        if host is not None and len(parts) == 2:
            return _inet_binding(host, parts[1])
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        if peer:
            return _inet_binding(_norm_ip(peer[0]) or peer[0], peer[1])
    return f'addr:{_wire_text(wire)}'.encode()


def accepting(stream: trio.abc.Stream, wires: list[tuple[str, list]]) -> Callable[[bytes], bool]:
    """What a listener accepts as binding: one of its listen addresses
    ``wires``, or the local address of this connection (for IP listeners,
    also any of their port when they listen on a wildcard address)."""
    sock = _sock(stream)
    family = getattr(sock, 'family', None)
    key = tuple((proto, tuple(parts)) for proto, parts in wires)
    try:
        ok, wild_ports = _listen_bindings(family, key)
    except TypeError:  # parts that do not hash (a plugin's address shape)
        ok, wild_ports = _listen_bindings.__wrapped__(family, key)
    local = b''
    if family in (socket.AF_INET, socket.AF_INET6):
        try:
            name = sock.getsockname()
            local = _inet_binding(_norm_ip(name[0]) or name[0], name[1])
        except OSError:
            pass

    def accepts(binding: bytes) -> bool:
        if binding in ok or (local and binding == local):
            return True
        if wild_ports and binding.startswith(b'inet:'):
            port = binding.rpartition(b':')[2]
            return port.isdigit() and int(port) in wild_ports
        return False

    return accepts


@functools.lru_cache(maxsize=64)
def _listen_bindings(
    family: int | None, wires: tuple[tuple[str, tuple], ...]
) -> tuple[frozenset[bytes], frozenset[int]]:
    """The bindings naming the listen addresses ``wires`` on a socket of
    ``family``, and the ports of wildcard IP listeners. (Cached: an actor's
    listen addresses rarely change, and parsing them was a tenth of an
    accepted handshake's CPU time.)"""
    ok: set[bytes] = set()
    wild_ports: set[int] = set()
    if family == socket.AF_UNIX:
        uid = os.getuid()
        ok.update(f'unix:{_wire_text(w)}:uid={uid}'.encode() for w in wires)
    elif family in (socket.AF_INET, socket.AF_INET6):
        for _proto, parts in wires:
            if len(parts) == 2 and isinstance(parts[0], str) and isinstance(parts[1], int):
                host = _norm_ip(parts[0])
                if host in ('0.0.0.0', '::'):
                    wild_ports.add(parts[1])
                elif host is not None:
                    ok.add(_inet_binding(host, parts[1]))
    else:
        ok.update(f'addr:{_wire_text(w)}'.encode() for w in wires)
    return frozenset(ok), frozenset(wild_ports)


def _wire_text(wire: tuple[str, Sequence] | None) -> str:
    if wire is None:
        return '?'
    proto, parts = wire
    return proto + '|' + '|'.join(map(str, parts))


def _peer_uid(sock) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i'))
    except (OSError, AttributeError):
        return None
    return struct.unpack('3i', creds)[1]


def describe_peer(stream: trio.abc.Stream) -> str:
    """Who is on the other end of an accepted ``stream``, for log lines:
    ``host:port`` for IP, the peer's pid and uid for unix sockets."""
    sock = getattr(stream, 'socket', None)
    if sock is None:
        return f'a {type(stream).__name__} peer'
    try:
        if sock.family == socket.AF_UNIX:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i'))
            pid, uid, _gid = struct.unpack('3i', creds)
            return f'unix peer pid={pid} uid={uid}'
        name = sock.getpeername()
        return f'{name[0]}:{name[1]}' if isinstance(name, tuple) else repr(name)
    except (OSError, AttributeError, ValueError):
        return 'an unknown peer'
