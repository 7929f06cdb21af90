"""Peer authentication: a challenge-response proof of a shared secret that
opens every connection, before any message is decoded.

The preamble is three fixed-size raw frames (no msgpack), so garbage is
refused after a few bytes and nothing a stranger sends reaches the decoder::

    both ways   HELLO    40 bytes  b'TRCT' | version (1) | 3 zero bytes | nonce (32)
    dialer ->   PROOF    32 bytes  HMAC-SHA256(key, LABEL | b'dialer'   | nonce_d | nonce_l)
    <- listener VERDICT  33 bytes  0x01 | HMAC-SHA256(key, LABEL | b'listener' | nonce_d | nonce_l)
                                   (0x00 and 32 zero bytes when the dialer's proof is wrong)

Each side proves it knows the secret over *both* fresh nonces and its own
role, so a recorded proof is useless on another connection and a proof
reflected back at its sender fails. Proofs are compared with
:func:`hmac.compare_digest`; the secret itself never crosses the wire. The
listener answers only after checking the dialer, so a stranger learns
nothing but "refused". The caller bounds the whole exchange in time.

The secret: ``open_root_actor(secret=...)``, else ``$TRACTOR_SECRET``, else
the per-user cookie file in the runtime directory (created on first use,
mode 0600, atomically). Subactors get their parent's secret through an
inherited pipe (``--secret-fd``), never through argv or the environment.
"""
from __future__ import annotations

import errno
import hashlib
import hmac
import os
import secrets
import socket
import stat
import struct

import trio

from ._exceptions import AuthenticationError, MsgTypeError, TransportClosed
from ._paths import runtime_dir

ENV_SECRET = 'TRACTOR_SECRET'
COOKIE_NAME = 'cookie'
#: secrets longer than this are refused (they must fit one pipe write)
MAX_SECRET = 4096

MAGIC = b'TRCT'
VERSION = 1
NONCE_SIZE = 32
HELLO_SIZE = len(MAGIC) + 4 + NONCE_SIZE  # 40
PROOF_SIZE = 32
VERDICT_SIZE = 1 + PROOF_SIZE  # 33
_LABEL = b'tractor-auth-v1\0'
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


def read_secret_fd(fd: int) -> bytes:
    """Read a secret handed over on an inherited pipe, then close it."""
    chunks = []
    try:
        while chunk := os.read(fd, MAX_SECRET + 1):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return normalize_secret(b''.join(chunks))


def secret_pipe(secret: bytes) -> int:
    """A pipe holding ``secret`` (write end already closed): the read end,
    to be inherited by exactly one child and closed here after spawning."""
    r, w = os.pipe()
    try:
        os.write(w, secret)  # <= MAX_SECRET: fits the pipe buffer, never blocks
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


# -- the preamble ------------------------------------------------------------

def _proof(key: bytes, role: bytes, nonce_d: bytes, nonce_l: bytes) -> bytes:
    return hmac.new(key, _LABEL + role + nonce_d + nonce_l, hashlib.sha256).digest()


def _hello(nonce: bytes) -> bytes:
    return MAGIC + bytes([VERSION, 0, 0, 0]) + nonce


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


def _check_hello(who):
    def check(buf: bytes) -> None:
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
    return check


async def authenticate(
    stream: trio.abc.Stream,
    secret: bytes,
    *,
    initiator: bool,
    peer: str | None = None,
) -> None:
    """Run the preamble on a fresh ``stream``; returns once both sides
    proved they hold ``secret``.

    Raises :class:`~tractor.AuthenticationError` when the proofs do not
    match, :class:`PreambleError` for a peer that does not speak the
    preamble, ``TransportClosed`` when the connection drops. The caller
    bounds it in time. ``peer`` names the other end in errors (default:
    what the socket says, see :func:`describe_peer`).
    """
    def who() -> str:
        return peer if peer is not None else describe_peer(stream)

    nonce = secrets.token_bytes(NONCE_SIZE)
    try:
        await stream.send_all(_hello(nonce))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
        raise TransportClosed(f'{who()}: connection lost during authentication: {err}') from err
    theirs = await _read_exact(stream, HELLO_SIZE, 'hello', who, _check_hello(who))
    their_nonce = theirs[-NONCE_SIZE:]
    if hmac.compare_digest(their_nonce, nonce):
        raise PreambleError(f'{who()} echoed our own challenge back: not a tractor peer')
    if initiator:
        nonce_d, nonce_l = nonce, their_nonce
        try:
            await stream.send_all(_proof(secret, _ROLE_DIALER, nonce_d, nonce_l))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
            raise TransportClosed(f'{who()}: connection lost during authentication: {err}') from err
        verdict = await _read_exact(stream, VERDICT_SIZE, 'verdict', who)
        if verdict[:1] != _ACCEPT:
            raise AuthenticationError(
                f'authentication failed: {who()} refused our proof of the shared '
                'secret (the two sides use different secrets: give both the same '
                '`secret=` or TRACTOR_SECRET, or the same cookie file)'
            )
        if not hmac.compare_digest(verdict[1:], _proof(secret, _ROLE_LISTENER, nonce_d, nonce_l)):
            raise AuthenticationError(
                f'authentication failed: {who()} could not prove it knows the shared secret'
            )
        return
    nonce_d, nonce_l = their_nonce, nonce
    proof = await _read_exact(stream, PROOF_SIZE, 'proof', who)
    if not hmac.compare_digest(proof, _proof(secret, _ROLE_DIALER, nonce_d, nonce_l)):
        try:
            await stream.send_all(_REJECT + bytes(PROOF_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        raise AuthenticationError(
            f'authentication failed: {who()} does not know the shared secret'
        )
    try:
        await stream.send_all(_ACCEPT + _proof(secret, _ROLE_LISTENER, nonce_d, nonce_l))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
        raise TransportClosed(f'{who()}: connection lost during authentication: {err}') from err


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
