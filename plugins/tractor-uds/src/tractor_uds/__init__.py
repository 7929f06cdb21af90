"""Unix-domain-socket transport for tractor.

Addresses are ``(dirpath, filename)`` pairs; multiaddr text is
``/unix/<absolute path>``. Socket files live in a per-user runtime directory
that only its owner can enter (``$TRACTOR_RUNTIME_DIR``, else
``$XDG_RUNTIME_DIR/tractor``, else ``/tmp/tractor-<uid>``).
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import socket
import stat
from typing import Any

import trio

from tractor._plugins import hookimpl
from tractor._transport import SAME_HOST, Address, Transport

__all__ = ['UDSAddress', 'UDSTransport', 'runtime_dir', 'tractor_transports']

REGISTRY_FILENAME = 'registry@1616.sock'
_MAX_PATH = 107  # sun_path is 108 bytes including the NUL


def runtime_dir() -> str:
    """The per-user socket directory, created mode 0700 and checked."""
    path = os.environ.get('TRACTOR_RUNTIME_DIR')
    if not path:
        xdg = os.environ.get('XDG_RUNTIME_DIR')
        path = (
            os.path.join(xdg, 'tractor') if xdg
            else os.path.join('/tmp', f'tractor-{os.getuid()}')
        )
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if st.st_uid != os.getuid():
        raise PermissionError(
            f'tractor runtime dir {path!r} belongs to uid {st.st_uid}, not us'
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


class UDSAddress(Address):
    proto_key = 'uds'
    __slots__ = ('dirpath', 'filename')

    def __init__(self, dirpath: str, filename: str) -> None:
        if not isinstance(dirpath, str) or not isinstance(filename, str) or not filename:
            raise ValueError(
                f'a UDS address is (dirpath, filename) strings, got {(dirpath, filename)!r}'
            )
        if '/' in filename:
            raise ValueError(f'UDS filename must not contain "/": {filename!r}')
        self.dirpath = dirpath
        self.filename = filename

    @property
    def path(self) -> str:
        return os.path.join(self.dirpath, self.filename)

    def unwrap(self) -> tuple[str, str]:
        return (self.dirpath, self.filename)


def _sanitize(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:40] or 'actor'


class UDSTransport(Transport):
    proto_key = 'uds'
    maddr_protocols = ('unix',)

    def claims(self, addr: tuple) -> bool:
        return (
            len(addr) == 2
            and isinstance(addr[0], str)
            and isinstance(addr[1], str)
            and (addr[0].startswith('/') or addr[1].endswith('.sock'))
        )

    def from_tuple(self, addr: tuple | list) -> UDSAddress:
        if len(addr) != 2:
            raise ValueError(f'a UDS address is (dirpath, filename), got {addr!r}')
        return UDSAddress(addr[0], addr[1])

    def to_maddr(self, addr: Address) -> str:
        return f'/unix{os.path.join(*addr.unwrap())}'

    def from_maddr(self, parts: list[str]) -> UDSAddress:
        path = '/' + '/'.join(parts[1:])
        if len(parts) < 2 or path == '/' or path.endswith('/'):
            raise ValueError(f'a UDS multiaddr is /unix/<absolute path>, got {"/" + "/".join(parts)!r}')
        dirpath, filename = os.path.split(path)
        return UDSAddress(dirpath, filename)

    def default_registry_addr(self) -> UDSAddress:
        return UDSAddress(runtime_dir(), REGISTRY_FILENAME)

    def random_addr(self, name: str, near: Address | None = None) -> UDSAddress:
        dirpath = near.unwrap()[0] if near is not None else runtime_dir()
        fname = f'{_sanitize(name)}@{os.getpid()}-{secrets.token_hex(4)}.sock'
        return UDSAddress(dirpath, fname)

    async def listen(self, addr: Address) -> tuple[trio.SocketListener, UDSAddress]:
        assert isinstance(addr, UDSAddress)
        path = addr.path
        if len(path.encode()) > _MAX_PATH:
            raise OSError(errno.ENAMETOOLONG, f'unix socket path too long: {path!r}')
        if os.path.exists(path):
            # a file left by a dead process can be reused; a live one cannot
            if await _answers(path):
                raise OSError(errno.EADDRINUSE, f'address already in use: {path}')
            os.unlink(path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(path)
            sock.listen(256)
        except BaseException:
            sock.close()
            raise
        return trio.SocketListener(sock), addr

    async def connect(self, addr: Address) -> trio.SocketStream:
        assert isinstance(addr, UDSAddress)
        return await trio.open_unix_socket(addr.path)

    def locality(self, addr: Address) -> int:
        return SAME_HOST

    def close_listener(self, addr: Address) -> None:
        try:
            os.unlink(addr.path)  # type: ignore[attr-defined]
        except FileNotFoundError:
            pass


async def _answers(path: str) -> bool:
    try:
        stream = await trio.open_unix_socket(path)
    except OSError:
        return False
    await stream.aclose()
    return True


_transport = UDSTransport()


@hookimpl
def tractor_transports() -> list[Any]:
    return [_transport]
