"""A third-party transport for tests: Linux abstract-namespace unix sockets.

Addresses are 1-tuples ``(name,)`` (no TCP ``(host, port)`` or UDS
``(dir, file)`` pair looks like that); multiaddr text is ``/abstract/<name>``.
An abstract socket has no file: the name vanishes with its last socket.

This distribution exists to prove that a transport can live outside core
and the built-in plugins, and is the model for writing one: it uses only
the public plugin SDK (:mod:`tractor.plugin`), and its ``pyproject.toml``
names this module in the ``tractor`` entry-point group, which is how the
runtime finds it. ``docs/architecture.md`` ("Writing a plugin") walks
through it. It is installed in the workspace, never published.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from typing import Any

import trio

from tractor.plugin import SAME_HOST, Address, Transport, hookimpl

__all__ = ['AbstractAddress', 'AbstractTransport', 'tractor_transports']

_MAX_NAME = 107  # sun_path is 108 bytes; the first is the NUL


class AbstractAddress(Address):
    """One abstract socket name; equality, hashing, ``to_wire()`` and
    ``str()`` (multiaddr text) come from :class:`~tractor.plugin.Address`."""

    proto_key = 'abstract'
    __slots__ = ('name',)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or '/' in name:
            raise ValueError(f'an abstract socket name is a non-empty str without "/": {name!r}')
        if len(name.encode()) > _MAX_NAME:
            raise ValueError(f'abstract socket name too long: {name!r}')
        self.name = name

    def unwrap(self) -> tuple[str]:
        return (self.name,)

    @property
    def sockaddr(self) -> bytes:
        return b'\0' + self.name.encode()


class AbstractTransport(Transport):
    """Abstract unix sockets; one instance serves the whole process."""

    proto_key = 'abstract'
    maddr_protocols = ('abstract',)

    def claims(self, addr: tuple) -> bool:
        return len(addr) == 1 and isinstance(addr[0], str)

    def from_tuple(self, addr: tuple | list) -> AbstractAddress:
        if len(addr) != 1:
            raise ValueError(f'an abstract address is a 1-tuple (name,), got {addr!r}')
        return AbstractAddress(addr[0])

    def to_maddr(self, addr: Address) -> str:
        return f'/abstract/{addr.unwrap()[0]}'

    def from_maddr(self, parts: list[str]) -> AbstractAddress:
        if len(parts) != 2 or parts[0] != 'abstract':
            text = '/' + '/'.join(parts)
            raise ValueError(f'an abstract multiaddr is /abstract/<name>, got {text!r}')
        return AbstractAddress(parts[1])

    def default_registry_addr(self) -> AbstractAddress:
        # the abstract namespace is shared by all users: keep ours apart
        return AbstractAddress(f'tractor-{os.getuid()}-registry@1616')

    def random_addr(self, name: str, near: Address | None = None) -> AbstractAddress:
        safe = re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:40] or 'actor'
        return AbstractAddress(f'tractor-{safe}@{os.getpid()}-{secrets.token_hex(4)}')

    async def listen(self, addr: Address) -> tuple[trio.SocketListener, AbstractAddress]:
        assert isinstance(addr, AbstractAddress)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(addr.sockaddr)
            sock.listen(256)
        except BaseException:
            sock.close()
            raise
        return trio.SocketListener(sock), addr

    async def connect(self, addr: Address) -> trio.SocketStream:
        assert isinstance(addr, AbstractAddress)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.connect(addr.sockaddr)
        except BaseException:
            sock.close()
            raise
        return trio.SocketStream(sock)

    def locality(self, addr: Address) -> int:
        # a unix socket reaches only this host (and this network namespace)
        return SAME_HOST


_transport = AbstractTransport()


@hookimpl
def tractor_transports() -> list[Any]:
    """The hook the runtime calls once per process to collect transports."""
    return [_transport]
