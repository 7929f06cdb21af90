"""Peer authentication and authenticated sessions.

Every connection opens with a challenge-response proof of the tree's shared
secret, before any message is decoded, and derives a session key from it
that authenticates every later frame. The preamble is three raw frames (no
msgpack), so garbage is refused after a few bytes::

    both ways   HELLO    40 bytes  b'TRCT' | version (2) | 3 zero bytes | nonce (32)
    dialer ->   PROOF    2 + n + 32 bytes: n (big-endian) | binding (n bytes) | proof_d
    <- listener VERDICT  33 bytes  0x01 | proof_l   (0x00 and 32 zero bytes: refused)

``binding`` names the address the dialer meant to reach (and, over unix
sockets, the uid it expects there); the listener refuses it unless it is
one of its own (:func:`accepts`). The keys come from HKDF-SHA256 (RFC 5869)
over the secret, salted with both nonces, with the binding in the info::

    prk  = HMAC-SHA256(LABEL | nonce_d | nonce_l, secret)
    okm  = HKDF-Expand(prk, INFO | binding, 5 * 32)
         = proof key dialer | proof key listener | key d->l | key l->d | session id
    proof_d = HMAC-SHA256(proof key dialer, b'dialer'), proof_l likewise

So a proof is worthless on another connection (fresh nonces), reflected
back at its sender (other role, other key) or relayed to another address
(other binding). The secret never crosses the wire, proofs are compared with
:func:`hmac.compare_digest`, and the listener answers only after checking
the dialer, so a stranger learns nothing but "refused".

After the preamble each direction is a :class:`Session` stream: frames are
written in batches (what one flush writes), and the last frame of a batch
has the top bit of its length prefix set and is followed by a 16-byte tag,
HMAC-SHA256(key of that direction, sequence number (8 bytes) | the batch's
bytes) truncated to 128 bits. The sequence number counts batches per
direction from 0. A peer without the key can therefore neither inject,
reorder, replay nor alter frames: the receiver checks each batch before it
decodes any of it and drops the connection at the first bad tag. Sessions
are authenticated, not encrypted: anyone on the path can read the traffic.

The secret: ``open_root_actor(secret=...)``, else ``$TRACTOR_SECRET``, else
the per-user cookie file in the runtime directory (created on first use,
mode 0600, atomically). Subactors get their parent's secret, and a
per-spawn token proving they are the child that parent started, through an
inherited pipe (``--secret-fd``), never through argv or the environment.
"""
from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import stat
import struct
from contextlib import nullcontext
from typing import Callable

import trio

from ._exceptions import AuthenticationError, MsgTypeError, TransportClosed
from ._paths import runtime_dir

ENV_SECRET = 'TRACTOR_SECRET'
COOKIE_NAME = 'cookie'
#: secrets longer than this are refused (they must fit one pipe write)
MAX_SECRET = 4096

MAGIC = b'TRCT'
VERSION = 2
NONCE_SIZE = 32
HELLO_SIZE = len(MAGIC) + 4 + NONCE_SIZE  # 40
PROOF_SIZE = 32
VERDICT_SIZE = 1 + PROOF_SIZE  # 33
#: the longest binding a dialer may send
MAX_BINDING = 1024
#: the per-spawn token a parent hands its child with the secret
SPAWN_TOKEN_SIZE = 32
#: bytes of the tag that closes each batch of frames
TAG_SIZE = 16
#: the top bit of a frame's length prefix: "the last frame of a batch, the
#: tag follows" (frames are far smaller than 2**31 bytes)
BATCH_END = 1 << 31
_LABEL = b'tractor-auth-v2\0'
_INFO = b'tractor session keys v2\0'
_ROLE_DIALER = b'dialer'
_ROLE_LISTENER = b'listener'
_ACCEPT = b'\x01'
_REJECT = b'\x00'


class PreambleError(MsgTypeError):
    """The peer did not open with tractor's authentication preamble (not a
    tractor actor, or one speaking another version)."""


# -- the secret ------------------------------------------------------------

def normalize_secret(value: bytes | bytearray | str) -> bytes:
    """The secret as bytes (``str`` is UTF-8 encoded); must be non-empty."""
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f'a secret is bytes or str, got {type(value).__name__}')
    if not value:
        raise ValueError('an empty secret authenticates nothing')
    if len(value) > MAX_SECRET:
        raise ValueError(f'a secret is at most {MAX_SECRET} bytes, got {len(value)}')
    return bytes(value)


def cookie_path() -> str:
    return os.path.join(runtime_dir(), COOKIE_NAME)


def load_cookie(create: bool = True) -> bytes:
    """The per-user cookie: read it, or create it on first use.

    Creation is atomic: the content goes to a private temporary file
    (``O_EXCL``, mode 0600) that is then hard-linked into place, so a
    concurrent reader sees either no cookie or a whole one, and of two
    programs racing to create it one wins and both use its value. A cookie
    that is not a regular file owned by us with mode 0600 is refused.
    """
    path = cookie_path()
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if not create:
                raise
            _create_cookie(path)
            continue
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise PermissionError(
                    errno.EPERM, f'the tractor cookie {path!r} is a symlink: refusing it'
                ) from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                raise PermissionError(
                    errno.EPERM,
                    f'the tractor cookie {path!r} is not a regular file of ours: refusing it',
                )
            if stat.S_IMODE(st.st_mode) & 0o077:
                raise PermissionError(
                    errno.EPERM,
                    f'the tractor cookie {path!r} is readable by others (mode '
                    f'{stat.S_IMODE(st.st_mode):o}): refusing it; `chmod 600` it '
                    'if you trust its content, or delete it to get a new one',
                )
            data = os.read(fd, MAX_SECRET + 1)
        finally:
            os.close(fd)
        value = data.strip()
        if not value:
            raise PermissionError(errno.EPERM, f'the tractor cookie {path!r} is empty')
        return normalize_secret(value)


def _create_cookie(path: str) -> None:
    tmp = f'{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, secrets.token_hex(32).encode() + b'\n')
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another program made one first
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def resolve_secret(explicit: bytes | str | None = None) -> bytes:
    """The secret to use: ``explicit``, else ``$TRACTOR_SECRET``, else the
    per-user cookie (created on first use)."""
    if explicit is not None:
        return normalize_secret(explicit)
    env = os.environ.get(ENV_SECRET)
    if env:
        return normalize_secret(env)
    return load_cookie()


#: this process's (the tree's) secret; ``None``: resolve the default lazily
_secret: bytes | None = None


def set_secret(value: bytes | None) -> None:
    global _secret
    _secret = value


def current_secret() -> bytes:
    global _secret
    if _secret is None:
        _secret = resolve_secret()
    return _secret


def read_secret_fd(fd: int) -> tuple[bytes, bytes]:
    """Read what a parent handed over on an inherited pipe, then close it:
    ``(secret, spawn_token)`` (see :func:`secret_pipe`)."""
    chunks = []
    try:
        while chunk := os.read(fd, MAX_SECRET + SPAWN_TOKEN_SIZE + 1):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b''.join(chunks)
    if len(data) <= SPAWN_TOKEN_SIZE:
        raise ValueError('the secret pipe holds no secret')
    return normalize_secret(data[SPAWN_TOKEN_SIZE:]), data[:SPAWN_TOKEN_SIZE]


def secret_pipe(secret: bytes, spawn_token: bytes) -> int:
    """A pipe holding the per-spawn token then ``secret`` (write end
    already closed): the read end, to be inherited by exactly one child and
    closed here after spawning. The token lets that child, and only it,
    prove to the parent that it is the process the parent started (see
    :func:`spawn_proof`): its uid and uuid are public, the token is not."""
    if len(spawn_token) != SPAWN_TOKEN_SIZE:
        raise ValueError(f'a spawn token is {SPAWN_TOKEN_SIZE} bytes')
    r, w = os.pipe()
    try:
        # <= MAX_SECRET + 32: fits the pipe buffer, never blocks
        os.write(w, spawn_token + secret)
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return r


def child_env() -> dict[str, str] | None:
    """The environment for a subactor: ours minus ``TRACTOR_SECRET`` (the
    child gets the secret on its pipe); ``None`` when there is nothing to
    drop (inherit as is)."""
    if ENV_SECRET not in os.environ:
        return None
    return {k: v for k, v in os.environ.items() if k != ENV_SECRET}


# -- keys and sessions -------------------------------------------------------

def _hkdf(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract, then expand to ``length`` bytes."""
    prk = hmac.digest(salt, secret, 'sha256')
    out, block, counter = b'', b'', 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), 'sha256')
        out += block
        counter += 1
    return out[:length]


#: batches shorter than this are tagged with keyed BLAKE2b, longer ones
#: with HMAC-SHA256 (see Session._tag)
_SHORT_BATCH = 1024


def _macs(key: bytes) -> tuple:
    """The two keyed MACs of one direction, ready to be copied per batch:
    keyed BLAKE2b (RFC 7693) and HMAC-SHA256, each under a subkey of
    ``key``."""
    blake = hashlib.blake2b(
        key=hmac.digest(key, b'blake2b', 'sha256'), digest_size=TAG_SIZE, person=b'tractor-batch',
    )
    sha = _hmac_new(hmac.digest(key, b'hmac-sha256', 'sha256'))
    return blake, sha


def _hmac_new(key: bytes):
    """An HMAC-SHA256 object whose ``copy()`` is cheap: OpenSSL's own when
    available (``hmac.HMAC`` wraps it in Python)."""
    try:
        import _hashlib

        return _hashlib.hmac_new(key, digestmod='sha256')
    except (ImportError, AttributeError, ValueError):
        return hmac.new(key, digestmod=hashlib.sha256)


class IntegrityError(MsgTypeError):
    """A batch of frames failed its tag: data injected, altered, reordered
    or replayed by someone without the session key. The connection is
    dropped."""


class Session:
    """The keys of one authenticated connection, for one side.

    :meth:`seal` closes a batch of outgoing frames (sets the last frame's
    batch-end bit, appends the tag); :meth:`verify` checks an incoming
    batch. Each counts its direction's batches, so a batch is valid once,
    at its place in the stream.
    """

    __slots__ = ('_send', '_recv', 'send_seq', 'recv_seq', 'id')

    def __init__(self, send_key: bytes, recv_key: bytes, session_id: bytes) -> None:
        self._send = _macs(send_key)
        self._recv = _macs(recv_key)
        self.send_seq = 0
        self.recv_seq = 0
        #: a value both sides share and nobody else knows (spawn proofs)
        self.id = session_id

    @classmethod
    def derive(
        cls, secret: bytes, nonce_d: bytes, nonce_l: bytes, binding: bytes, initiator: bool,
    ) -> tuple[Session, bytes, bytes]:
        """The session of one side, and the two proofs ``(dialer's,
        listener's)`` for this handshake."""
        okm = _hkdf(
            secret, _LABEL + nonce_d + nonce_l,
            _INFO + len(binding).to_bytes(2, 'big') + binding, 5 * 32,
        )
        kpd, kpl, kdl, kld, sid = (okm[i:i + 32] for i in range(0, 160, 32))
        proof_d = hmac.digest(kpd, _ROLE_DIALER, 'sha256')
        proof_l = hmac.digest(kpl, _ROLE_LISTENER, 'sha256')
        session = cls(kdl, kld, sid) if initiator else cls(kld, kdl, sid)
        return session, proof_d, proof_l

    @staticmethod
    def _tag(macs: tuple, seq: int, data) -> bytes:
        # keyed BLAKE2b for short batches (about twice as fast as HMAC in
        # CPython), HMAC-SHA256 from 1 KiB on (hardware SHA wins there);
        # each with its own subkey, chosen by the batch's length, which
        # both sides know
        h = (macs[0] if len(data) < _SHORT_BATCH else macs[1]).copy()
        h.update(seq.to_bytes(8, 'big'))
        h.update(data)
        return h.digest()[:TAG_SIZE]

    def seal(self, buf: bytearray, start: int, last: int) -> None:
        """Close the batch ``buf[start:]`` whose last frame's length prefix
        is at ``buf[last]``: mark that frame, append the tag."""
        buf[last] |= 0x80
        if start == 0:
            tag = self._tag(self._send, self.send_seq, buf)
        else:
            with memoryview(buf) as view, view[start:] as batch:
                tag = self._tag(self._send, self.send_seq, batch)
        self.send_seq += 1
        buf += tag

    def seal_frames(self, frames: list[bytes]) -> bytes:
        """``frames`` (each with its length prefix) as one sealed batch:
        what a raw peer (a tool, a test) writes."""
        buf = bytearray(b''.join(frames))
        self.seal(buf, 0, len(buf) - len(frames[-1]))
        return bytes(buf)

    def open_batches(self, data: bytes) -> tuple[list[bytes], bytes]:
        """The frame bodies of the whole, checked batches at the start of
        ``data``, and the bytes after them: what a raw peer reads.
        ``IntegrityError`` at a bad tag."""
        bodies: list[bytes] = []
        pos = 0
        while True:
            end, batch, closed = pos, [], False
            while len(data) >= end + 4:
                header = int.from_bytes(data[end:end + 4], 'big')
                size = header & (BATCH_END - 1)
                if len(data) < end + 4 + size:
                    break
                batch.append(data[end + 4:end + 4 + size])
                end += 4 + size
                if header & BATCH_END:
                    closed = True
                    break
            if not closed or len(data) < end + TAG_SIZE:
                return bodies, data[pos:]
            self.verify(data[pos:end], data[end:end + TAG_SIZE])
            bodies.extend(batch)
            pos = end + TAG_SIZE

    def verify(self, batch, tag) -> None:
        """Check an incoming batch (its frames, length prefixes included)
        against its ``tag``; ``IntegrityError`` if it does not match."""
        if not hmac.compare_digest(self._tag(self._recv, self.recv_seq, batch), tag):
            raise IntegrityError(
                f'batch {self.recv_seq} of frames failed its integrity check: data '
                'injected, altered, reordered or replayed by someone without the '
                'session key (sessions are authenticated end to end)'
            )
        self.recv_seq += 1


def spawn_proof(spawn_token: bytes, session: Session) -> bytes:
    """What a child sends in its ``Hello`` to prove it holds the spawn token
    its parent gave it, bound to this session (the token never crosses)."""
    return hmac.digest(spawn_token, b'tractor spawn\0' + session.id, 'sha256')


def check_spawn_proof(spawn_token: bytes, session: Session, proof: bytes) -> bool:
    return hmac.compare_digest(spawn_proof(spawn_token, session), proof)


# -- the preamble ------------------------------------------------------------

def _hello(nonce: bytes) -> bytes:
    return MAGIC + bytes([VERSION, 0, 0, 0]) + nonce


def hello_frame(nonce: bytes) -> bytes:
    """The first preamble frame, both ways."""
    return _hello(nonce)


def dialer_step(
    secret: bytes, nonce: bytes, their_hello: bytes, binding: bytes = b'',
) -> tuple[bytes, Session, bytes]:
    """The dialer's side once both hellos are out (sans I/O): the PROOF
    frame to send, its :class:`Session`, and the verdict a listener holding
    ``secret`` answers."""
    if len(binding) > MAX_BINDING:
        raise ValueError(f'a binding is at most {MAX_BINDING} bytes')
    session, proof_d, proof_l = Session.derive(secret, nonce, their_hello[-NONCE_SIZE:], binding, True)
    return len(binding).to_bytes(2, 'big') + binding + proof_d, session, _ACCEPT + proof_l


async def _read_exact(stream: trio.abc.Stream, n: int, what: str, who, check=None) -> bytes:
    """Exactly ``n`` bytes (never more: what follows is the peer's first
    message, left in the socket for the channel); ``check(prefix)`` runs on
    every partial read so garbage is refused as soon as it shows."""
    buf = b''
    while len(buf) < n:
        try:
            chunk = await stream.receive_some(n - len(buf))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
            raise TransportClosed(f'{who()}: connection lost during authentication ({what}): {err}') from err
        if not chunk:
            raise TransportClosed(f'{who()} closed the connection during authentication ({what})')
        buf += chunk
        if check is not None:
            check(buf)
    return buf


def check_hello(buf: bytes, who) -> None:
    """``PreambleError`` as soon as a (partial) hello is not tractor's."""
    head = buf[:len(MAGIC)]
    if head != MAGIC[:len(head)]:
        raise PreambleError(
            f'{who()} did not open with the tractor preamble (got {bytes(buf[:8])!r}): '
            'not a tractor peer, or one without authentication'
        )
    if len(buf) > len(MAGIC) and buf[len(MAGIC)] != VERSION:
        raise PreambleError(
            f'{who()} speaks tractor preamble version {buf[len(MAGIC)]}, this is version {VERSION}'
        )
    if len(buf) >= len(MAGIC) + 4 and buf[len(MAGIC) + 1:len(MAGIC) + 4] != b'\0\0\0':
        raise PreambleError(f'{who()} sent a malformed preamble')


async def _send(stream: trio.abc.Stream, data: bytes, who) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
        raise TransportClosed(f'{who()}: connection lost during authentication: {err}') from err


async def authenticate(
    stream: trio.abc.Stream,
    secret: bytes,
    *,
    initiator: bool,
    peer: str | None = None,
    binding: bytes = b'',
    accepts: Callable[[bytes], bool] | None = None,
    hello_timeout: float | None = None,
) -> Session:
    """Run the preamble on a fresh ``stream``; returns the :class:`Session`
    once both sides proved they hold ``secret``.

    The dialer (``initiator``) passes ``binding``, the address it meant to
    reach (:func:`dial_binding`); the listener passes ``accepts``, which
    says whether a binding names this listener (:func:`accepting`); a
    listener without ``accepts`` takes any. ``hello_timeout`` bounds the
    peer's 40-byte hello alone (the caller bounds the whole exchange).

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
    with trio.fail_after(hello_timeout) if hello_timeout else nullcontext():
        theirs = await _read_exact(stream, HELLO_SIZE, 'hello', who, lambda b: check_hello(b, who))
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
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
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
    ok: set[bytes] = set()
    wild_ports: set[int] = set()
    if family == socket.AF_UNIX:
        uid = os.getuid()
        ok.update(f'unix:{_wire_text(w)}:uid={uid}'.encode() for w in wires)
    elif family in (socket.AF_INET, socket.AF_INET6):
        for proto, parts in wires:
            if len(parts) == 2 and isinstance(parts[0], str) and isinstance(parts[1], int):
                host = _norm_ip(parts[0])
                if host in ('0.0.0.0', '::'):
                    wild_ports.add(parts[1])
                elif host is not None:
                    ok.add(_inet_binding(host, parts[1]))
        try:
            local = sock.getsockname()
            ok.add(_inet_binding(_norm_ip(local[0]) or local[0], local[1]))
        except OSError:
            pass
    else:
        ok.update(f'addr:{_wire_text(w)}'.encode() for w in wires)

    def accepts(binding: bytes) -> bool:
        if binding in ok:
            return True
        if wild_ports and binding.startswith(b'inet:'):
            port = binding.rpartition(b':')[2]
            return port.isdigit() and int(port) in wild_ports
        return False
    return accepts


def _wire_text(wire: tuple[str, list] | None) -> str:
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
