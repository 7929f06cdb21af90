"""The tree's shared secret: where it comes from, and how a child gets it.

The secret: ``open_root_actor(secret=...)``, else ``$TRACTOR_SECRET``, else
the per-user cookie file in the runtime directory (created on first use,
mode 0600, atomically). Subactors get their parent's secret, and a
per-spawn token proving they are the child that parent started, through an
inherited pipe (``--secret-fd``), never through argv or the environment.

What the secret proves, and how, is :mod:`tractor._auth` (the preamble) and
:mod:`tractor._session` (the keys derived from it).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

from ._paths import runtime_dir

ENV_SECRET = 'TRACTOR_SECRET'
COOKIE_NAME = 'cookie'
#: secrets longer than this are refused (they must fit one pipe write)
MAX_SECRET = 4096
#: the per-spawn token a parent hands its child with the secret
SPAWN_TOKEN_SIZE = 32


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
