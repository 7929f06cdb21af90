"""The transport contract: what a plugin supplies so actors can talk over it.

A transport is an object with a protocol key, an address type, ``listen`` and
``connect`` as trio streams, a default registry address and a locality rank.
Core never imports a concrete transport: they arrive through the plugin
manager (see :mod:`tractor._plugins`).
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar

import trio

# locality ranks, best first: discovery dials the lowest rank it can reach
SAME_HOST = 0   # guaranteed same host (e.g. a unix socket)
LOCAL = 1       # a network address owned by this host
REMOTE = 2      # anywhere else


class Address(abc.ABC):
    """One endpoint of one transport; hashable and comparable by value.

    ``unwrap()`` gives the plain tuple users pass around
    (``('127.0.0.1', 1616)`` for TCP, ``(dir, filename)`` for UDS) and
    ``str(addr)`` its multiaddr text.
    """

    proto_key: ClassVar[str]

    @abc.abstractmethod
    def unwrap(self) -> tuple: ...

    @property
    def transport(self) -> Transport:
        from ._plugins import get_transport

        return get_transport(self.proto_key)

    def to_wire(self) -> tuple[str, list]:
        return (self.proto_key, list(self.unwrap()))

    def __str__(self) -> str:
        return self.transport.to_maddr(self)

    def __repr__(self) -> str:
        return f'{type(self).__name__}{self.unwrap()!r}'

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Address)
            and other.proto_key == self.proto_key
            and tuple(other.unwrap()) == tuple(self.unwrap())
        )

    def __hash__(self) -> int:
        return hash((self.proto_key, tuple(self.unwrap())))


class StoreAddress(Address):
    """A registry address naming an external store (``etcd://host:port``)
    instead of a registrar actor: no actor listens there and no transport
    dials it. Plugins of the ``tractor_registry_stores`` hook provide these;
    discovery asks :meth:`open_backend` for the registry table behind it.

    ``unwrap()`` is ``(url,)`` and the wire form ``(scheme, [url])``, so the
    address travels to subactors like any other registry address.
    """

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The address as ``scheme://...`` text (what the user passes)."""

    def unwrap(self) -> tuple:
        return (self.url,)

    @property
    def transport(self) -> Transport:
        raise TypeError(f'{self.url} is a registry store, not a transport endpoint')

    def __str__(self) -> str:
        return self.url

    def near(self, proto_key: str) -> Address | None:
        """An address of transport ``proto_key`` on the way to the store
        (a root that joins it binds next to that, e.g. on the interface
        routing to the store's host); ``None`` when there is none."""
        return None

    @abc.abstractmethod
    def open_backend(self, actor: Any) -> Any:
        """The registry backend (discovery's ``RegistryBackend``) that
        ``actor`` uses for this store."""


class Transport(abc.ABC):
    """What a transport plugin implements. Keep it this small."""

    proto_key: ClassVar[str]
    #: the first component of this transport's multiaddr text, e.g. ``ip4``
    maddr_protocols: ClassVar[tuple[str, ...]] = ()
    #: whether the stream is encrypted and integrity-protected (TLS):
    #: discovery prefers such an address among remote ones
    encrypted: ClassVar[bool] = False

    @abc.abstractmethod
    def claims(self, addr: tuple) -> bool:
        """Whether a plain tuple looks like one of this transport's addresses."""

    @abc.abstractmethod
    def from_tuple(self, addr: tuple | list) -> Address:
        """Build an address from its plain tuple (raise ``ValueError`` if bad)."""

    @abc.abstractmethod
    def to_maddr(self, addr: Address) -> str: ...

    @abc.abstractmethod
    def from_maddr(self, parts: list[str]) -> Address:
        """Parse multiaddr components (the text split on ``/``)."""

    @abc.abstractmethod
    def default_registry_addr(self) -> Address: ...

    @abc.abstractmethod
    def random_addr(self, name: str, near: Address | None = None) -> Address:
        """An address to bind when the caller did not choose one
        (port 0, a fresh socket file...); ``near`` is a registry address of
        the same transport to stay close to (same host, same directory)."""

    @abc.abstractmethod
    async def listen(self, addr: Address) -> tuple[trio.abc.Listener[Any], Address]:
        """Bind ``addr`` and return a listener plus the address really bound."""

    @abc.abstractmethod
    async def connect(self, addr: Address) -> trio.abc.Stream:
        """Dial ``addr``; raise ``OSError`` when nothing accepts there."""

    @abc.abstractmethod
    def locality(self, addr: Address) -> int:
        """``SAME_HOST``, ``LOCAL`` or ``REMOTE`` for the calling host."""

    def close_listener(self, addr: Address) -> None:
        """Clean up after a listener on ``addr`` closed (e.g. unlink a file)."""
