"""An in-memory transport: actors of one process talk without a socket.

Connections are :func:`trio.testing.memory_stream_pair` streams and
listeners live in a table of this process, keyed by name. A ``Channel``
over such a stream takes its generic trio-stream path (no direct socket
I/O), the path a TLS or any non-socket transport takes, so tests over it
cover that path and the runtime's routing, calls, contexts and cancellation
without spawning a process.

It is a test seam, never an installed plugin (no entry point): a test
registers it for its own duration with :func:`installed`. Addresses are
``('memory', name)`` as a plain tuple (no TCP ``(host, port)``, UDS
``(dir, file)`` or abstract ``(name,)`` address looks like that) and
``/memory/<name>`` as multiaddr text. Only this process can dial them: a
spawned child has a table of its own.
"""

from __future__ import annotations

import errno
import re
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import trio
import trio.testing

import tractor
from tractor.plugin import SAME_HOST, Address, Transport, hookimpl

__all__ = [
    'PROTO_KEY',
    'MemoryAddress',
    'MemoryListener',
    'MemoryTransport',
    'installed',
    'open_loopback',
    'tractor_transports',
]

PROTO_KEY = 'memory'
#: connections a listener holds before it accepts them; a dial beyond that
#: is refused, as a full listen backlog would
BACKLOG = 128
_NAME = re.compile(r'[A-Za-z0-9_.@-]+')


class MemoryAddress(Address):
    """A listener's name in this process's table."""

    proto_key = PROTO_KEY
    __slots__ = ('name',)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f'a memory address name is a non-empty str of letters, digits and "_.@-": {name!r}'
            )
        self.name = name

    def unwrap(self) -> tuple[str, str]:
        return (PROTO_KEY, self.name)


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """Accepts the server ends of the connections dialed to its name."""

    def __init__(self, addr: MemoryAddress) -> None:
        self.addr = addr
        self._offers, self._queue = trio.open_memory_channel[trio.abc.Stream](BACKLOG)

    def offer(self, stream: trio.abc.Stream) -> None:
        """Queue a dialed connection's server end; ``ConnectionRefusedError``
        when the listener is closed or its backlog is full."""
        try:
            self._offers.send_nowait(stream)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f'nothing accepts at {self.addr} (closed or backlog full)'
            ) from None

    async def accept(self) -> trio.abc.Stream:
        try:
            return await self._queue.receive()
        except trio.EndOfChannel:
            raise trio.ClosedResourceError(f'the listener at {self.addr} is closed') from None

    async def aclose(self) -> None:
        _unbind(self)
        self._offers.close()
        # connections dialed but never accepted: their dialers see EOF
        while True:
            try:
                stream = self._queue.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            await trio.aclose_forcefully(stream)
        self._queue.close()
        await trio.lowlevel.checkpoint()


#: the listeners of this process, by name
_listeners: dict[str, MemoryListener] = {}


def _unbind(listener: MemoryListener) -> None:
    if _listeners.get(listener.addr.name) is listener:
        del _listeners[listener.addr.name]


class MemoryTransport(Transport):
    """The transport contract over in-process memory streams."""

    proto_key = PROTO_KEY
    maddr_protocols = (PROTO_KEY,)

    def claims(self, addr: tuple) -> bool:
        return len(addr) == 2 and addr[0] == PROTO_KEY and isinstance(addr[1], str)

    def from_tuple(self, addr: tuple | list) -> MemoryAddress:
        # the wire form carries the same pair, as a list
        if len(addr) == 2 and addr[0] == PROTO_KEY:
            return MemoryAddress(addr[1])
        raise ValueError(f"a memory address is ('memory', name), got {addr!r}")

    def to_maddr(self, addr: Address) -> str:
        assert isinstance(addr, MemoryAddress)
        return f'/{PROTO_KEY}/{addr.name}'

    def from_maddr(self, parts: list[str]) -> MemoryAddress:
        if len(parts) != 2 or parts[0] != PROTO_KEY:
            text = '/' + '/'.join(parts)
            raise ValueError(f'a memory multiaddr is /memory/<name>, got {text!r}')
        return MemoryAddress(parts[1])

    def default_registry_addr(self) -> MemoryAddress:
        return MemoryAddress('registry')

    def random_addr(self, name: str, near: Address | None = None) -> MemoryAddress:
        safe = re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:40] or 'actor'
        return MemoryAddress(f'{safe}@{secrets.token_hex(4)}')

    async def listen(self, addr: Address) -> tuple[MemoryListener, MemoryAddress]:
        assert isinstance(addr, MemoryAddress)
        await trio.lowlevel.checkpoint()
        if addr.name in _listeners:
            raise OSError(errno.EADDRINUSE, f'{addr} is already bound in this process')
        listener = _listeners[addr.name] = MemoryListener(addr)
        return listener, addr

    async def connect(self, addr: Address) -> trio.abc.Stream:
        assert isinstance(addr, MemoryAddress)
        await trio.lowlevel.checkpoint()
        listener = _listeners.get(addr.name)
        if listener is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f'nothing listens at {addr}')
        client, server = trio.testing.memory_stream_pair()
        listener.offer(server)
        return client

    def locality(self, addr: Address) -> int:
        return SAME_HOST

    def close_listener(self, addr: Address) -> None:
        listener = _listeners.get(getattr(addr, 'name', ''))
        if listener is not None:
            _unbind(listener)


_transport = MemoryTransport()


@hookimpl
def tractor_transports() -> list[Any]:
    return [_transport]


@contextmanager
def installed() -> Iterator[MemoryTransport]:
    """Register this module as a plugin for the block's duration (and for
    the children spawned in it), then unregister it, so the transport never
    outlives the test that asked for it."""
    module = sys.modules[__name__]
    tractor.register_plugin(module)
    try:
        yield _transport
    finally:
        tractor.unregister_plugin(module)


@asynccontextmanager
async def open_loopback(**root_kwargs: Any) -> AsyncIterator[tuple[Any, tractor.Portal]]:
    """Boot a root actor that serves only this transport (and is its own
    registrar, at a fresh address) and yield it with a :class:`~tractor.Portal`
    to itself over a connection it dialed to its own listener: every call
    through that portal crosses a real channel (framing, authentication,
    the router) in both directions, inside this one trio run.

    ``root_kwargs`` go to :func:`tractor.open_root_actor` (``enable_modules``,
    ``name``...). The transport is installed for the block only.
    """
    with installed() as tpt:
        reg = tpt.random_addr('registry')
        async with tractor.open_root_actor(
            enable_transports=[PROTO_KEY], registry_addrs=[reg.unwrap()], **root_kwargs
        ) as actor:
            chan = await actor.connect(actor.listen_addrs[0])
            try:
                yield actor, tractor.Portal(chan)
            finally:
                await chan.aclose()
