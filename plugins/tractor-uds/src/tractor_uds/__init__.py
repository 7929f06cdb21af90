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
from pathlib import Path
from typing import Any

import trio

from tractor.log import get_logger
from tractor.plugin import (
    SAME_HOST,
    Address,
    Transport,
    hookimpl,
    parse_seconds,
    register_setting,
    runtime_dir,  # core owns the per-user dir (the auth cookie lives there too)
    runtime_dir_path,
    setting_value,
)

__all__ = ['UDSAddress', 'UDSTransport', 'runtime_dir', 'tractor_transports']

log = get_logger('uds')

REGISTRY_FILENAME = 'registry@1616.sock'
_MAX_PATH = 107  # sun_path is 108 bytes including the NUL


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
        """The socket file's path, as text."""
        return os.path.join(self.dirpath, self.filename)

    @property
    def sockpath(self) -> Path:
        """The socket file's path (``filedir / filename``)."""
        return Path(self.dirpath, self.filename)

    @property
    def filedir(self) -> Path:
        """The directory holding the socket file (``dirpath`` as a ``Path``)."""
        return Path(self.dirpath)

    #: the directory actors of this address bind in ("the host" of a UDS address)
    bindspace = filedir

    def unwrap(self) -> tuple[str, str]:
        return (self.dirpath, self.filename)


def _sanitize(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:40] or 'actor'


class UDSTransport(Transport):
    proto_key = 'uds'
    maddr_protocols = ('unix',)

    def claims(self, addr: tuple[Any, ...]) -> bool:
        return (
            len(addr) == 2
            and isinstance(addr[0], str)
            and isinstance(addr[1], str)
            and (addr[0].startswith('/') or addr[1].endswith('.sock'))
        )

    def from_tuple(self, addr: tuple[Any, ...] | list[Any]) -> UDSAddress:
        if len(addr) != 2:
            raise ValueError(f'a UDS address is (dirpath, filename), got {addr!r}')
        return UDSAddress(addr[0], addr[1])

    def to_maddr(self, addr: Address) -> str:
        return f'/unix{os.path.join(*addr.unwrap())}'

    def from_maddr(self, parts: list[str]) -> UDSAddress:
        path = '/' + '/'.join(parts[1:])
        if len(parts) < 2 or path == '/' or path.endswith('/'):
            raise ValueError(
                f'a UDS multiaddr is /unix/<absolute path>, got {"/" + "/".join(parts)!r}'
            )
        dirpath, filename = os.path.split(path)
        return UDSAddress(dirpath, filename)

    def default_registry_addr(self) -> UDSAddress:
        return UDSAddress(runtime_dir(), REGISTRY_FILENAME)

    def random_addr(self, name: str, near: Address | None = None) -> UDSAddress:
        dirpath = near.unwrap()[0] if near is not None else runtime_dir()
        fname = f'{_sanitize(name)}@{os.getpid()}-{secrets.token_hex(4)}.sock'
        return UDSAddress(dirpath, fname)

    async def listen(self, addr: Address) -> tuple[UDSListener, UDSAddress]:
        assert isinstance(addr, UDSAddress)
        path = addr.path
        if len(path.encode()) > _MAX_PATH:
            raise OSError(errno.ENAMETOOLONG, f'unix socket path too long: {path!r}')
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISSOCK(st.st_mode):
                # a regular file, a symlink, a directory: not a socket a
                # dead actor left, so not ours to delete
                raise OSError(
                    errno.EEXIST, f'{path} exists and is not a unix socket: refusing to replace it'
                )
            # a socket left by a dead process can be reused; a live one cannot
            if await _answers(path):
                raise OSError(errno.EADDRINUSE, f'address already in use: {path}')
            os.unlink(path)
        return UDSListener(addr, await _bind(path)), addr

    async def connect(self, addr: Address) -> trio.SocketStream:
        assert isinstance(addr, UDSAddress)
        return await trio.open_unix_socket(addr.path)

    def locality(self, addr: Address) -> int:
        return SAME_HOST

    def close_listener(self, addr: Address) -> None:
        assert isinstance(addr, UDSAddress)
        path = addr.path
        owned = _owned.pop(path, None)
        if owned is not None and _inode(path) != owned:
            return  # the file there now is another socket's: not ours to delete
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


#: how often a listener checks that its socket file still exists
register_setting(
    'TRACTOR_UDS_REBIND_INTERVAL',
    parse_seconds,
    1.0,
    'a number of seconds > 0',
    'how often an idle UDS listener checks that its socket file still exists',
)
REBIND_INTERVAL = setting_value('TRACTOR_UDS_REBIND_INTERVAL')
#: socket path -> inode of the socket file this process bound there
_owned: dict[str, int] = {}


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


async def _bind(path: str) -> trio.socket.SocketType:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(256)
    except BaseException:
        sock.close()
        raise
    return sock


class UDSListener(trio.abc.Listener[trio.SocketStream]):
    """A unix-socket listener that keeps its address reachable.

    A socket file can be deleted under a live listener (a ``/tmp`` or
    runtime-dir cleaner, a stray ``rm``): connections already accepted are
    unaffected, but nobody can reach the listener by its path any more. So
    every :data:`REBIND_INTERVAL` seconds without a connection the listener
    checks its file; once it is gone it binds a fresh socket at the same
    path (re-creating the runtime dir if that went too), so the address
    the actor registered works again. A file there that is not ours (another
    process bound the path meanwhile) is left alone, and so is the check.
    """

    def __init__(self, addr: UDSAddress, sock: trio.socket.SocketType) -> None:
        self.addr = addr
        self._inner = trio.SocketListener(sock)
        self._pending: list[trio.SocketStream] = []
        self._ino = _inode(addr.path)
        if self._ino is not None:
            _owned[addr.path] = self._ino
        self._watching = True

    @property
    def socket(self) -> trio.socket.SocketType:
        return self._inner.socket

    async def accept(self) -> trio.SocketStream:
        while True:
            if self._pending:
                return self._pending.pop(0)
            if not self._watching:
                return await self._inner.accept()
            with trio.move_on_after(REBIND_INTERVAL):
                return await self._inner.accept()
            await self._check()

    async def _check(self) -> None:
        path = self.addr.path
        ino = _inode(path)
        if ino == self._ino:
            return
        if ino is not None:
            log.warning(
                '%s now belongs to another socket: this actor no longer answers there', path
            )
            self._watching = False
            return
        try:
            if self.addr.dirpath == runtime_dir_path():
                runtime_dir()  # deleted with everything in it: re-create it, mode 0700
            sock = await _bind(path)
        except OSError as err:
            log.warning('socket file %s was deleted and cannot be re-created yet: %s', path, err)
            return
        old, self._inner = self._inner, trio.SocketListener(sock)
        self._ino = _inode(path)
        if self._ino is not None:
            _owned[path] = self._ino
        # connections that reached the old socket before its file went away
        raw = socket.socket(fileno=old.socket.detach())
        raw.setblocking(False)
        try:
            while True:
                try:
                    conn, _ = raw.accept()
                except (BlockingIOError, OSError):
                    break
                self._pending.append(trio.SocketStream(trio.socket.from_stdlib_socket(conn)))
        finally:
            raw.close()
        log.warning('socket file %s was deleted: listening again at the same path', path)

    async def aclose(self) -> None:
        for stream in self._pending:
            await stream.aclose()
        self._pending.clear()
        await self._inner.aclose()


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
