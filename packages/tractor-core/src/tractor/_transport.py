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

from . import _plugins
from ._exceptions import NoTransportInstalled

# locality ranks, best first: discovery dials the lowest rank it can reach
SAME_HOST = 0  # guaranteed same host (e.g. a unix socket)
LOCAL = 1  # a network address owned by this host
REMOTE = 2  # anywhere else


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


class BufferedSendStream(trio.abc.Stream):
    """A stream a channel can write to without a schedule point.

    A transport whose stream is not a ``trio.SocketStream`` (which the
    runtime already writes to directly) may return one of these from
    :meth:`Transport.connect` and its listener, so that a send the kernel
    takes at once costs no trip through the scheduler, as over TCP.
    ``send_all`` and ``receive_some`` keep trio's contract (checkpoints).

    One writer at a time: the channel serialises its calls to
    :meth:`send_nowait` and :meth:`drain`.
    """

    @abc.abstractmethod
    def send_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        """Take *all* of ``data`` without waiting (copying what it keeps:
        the caller reuses the buffer). ``True`` when all of it is written
        out; ``False`` when part waits in the stream, and the caller must
        ``await drain()`` before it counts on it being sent (further calls
        stay in order behind it). Raises ``trio.BrokenResourceError`` or
        ``OSError`` for a broken connection."""

    @abc.abstractmethod
    async def drain(self) -> None:
        """Write out what :meth:`send_nowait` left waiting (a checkpoint;
        a cancelled drain keeps what is not written yet, in order)."""


class Transport(abc.ABC):
    """What a transport plugin implements. Keep it this small."""

    proto_key: ClassVar[str]
    #: the first component of this transport's multiaddr text, e.g. ``ip4``
    maddr_protocols: ClassVar[tuple[str, ...]] = ()
    #: whether the stream is encrypted and integrity-protected (TLS):
    #: discovery prefers such an address among remote ones
    encrypted: ClassVar[bool] = False

    @abc.abstractmethod
    def claims(self, addr: tuple[Any, ...]) -> bool:
        """Whether a plain tuple looks like one of this transport's addresses."""

    @abc.abstractmethod
    def from_tuple(self, addr: tuple[Any, ...] | list[Any]) -> Address:
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
        """Dial ``addr``; raise ``OSError`` when nothing accepts there.
        A :class:`BufferedSendStream` (or a ``trio.SocketStream``) gets the
        channel's direct-write path; any other stream works through
        ``send_all``."""

    @abc.abstractmethod
    def locality(self, addr: Address) -> int:
        """``SAME_HOST``, ``LOCAL`` or ``REMOTE`` for the calling host."""

    def close_listener(self, addr: Address) -> None:
        """Clean up after a listener on ``addr`` closed (e.g. unlink a file)."""


#: what to install for each protocol we know of, for error messages
KNOWN_DISTRIBUTIONS = {'tcp': 'tractor-tcp', 'uds': 'tractor-uds', 'tls': 'tractor-tls'}
#: ... and for each registry store scheme (``etcd://...``)
KNOWN_STORES = {'etcd': 'tractor-etcd'}


def installed_transports() -> dict[str, Transport]:
    """Every installed transport by protocol key (``{'tcp': ..., 'uds': ...}``),
    plugins loaded first; a copy, so changing it changes nothing."""
    _plugins.get_plugin_manager()
    return dict(_plugins._transports)


def get_transport(proto_key: str) -> Transport:
    """The installed transport for ``proto_key``; ``NoTransportInstalled``
    naming what to install when there is none."""
    _plugins.get_plugin_manager()
    try:
        return _plugins._transports[proto_key]
    except KeyError:
        dist = KNOWN_DISTRIBUTIONS.get(proto_key)
        have = ', '.join(sorted(_plugins._transports)) or 'none'
        hint = (
            f'install {dist!r}, e.g. `pip install {dist}`'
            if dist
            else f'install a plugin distribution that provides {proto_key!r}'
        )
        raise NoTransportInstalled(
            f'no transport for protocol {proto_key!r} is installed (installed: {have}); {hint}'
        ) from None


def require_transports() -> dict[str, Transport]:
    tpts = installed_transports()
    if not tpts:
        raise NoTransportInstalled(
            'no tractor transport is installed: install one, e.g. '
            '`pip install tractor-tcp` (or `tractor-uds`), or the full '
            '`pip install tractor`'
        )
    return tpts


def is_one_address(addrs: Any) -> bool:
    """Whether ``addrs`` is a single address where a list of them may stand:
    an :class:`Address`, multiaddr text, or a plain pair such as
    ``('127.0.0.1', 1616)`` or a UDS ``('/run/dir', 'file.sock')``, as a
    tuple or as the list msgpack turns a tuple into."""
    if isinstance(addrs, (Address, str)):
        return True
    if not isinstance(addrs, (tuple, list)) or len(addrs) != 2 or not isinstance(addrs[0], str):
        return False
    second = addrs[1]
    return (
        isinstance(second, int)
        or (isinstance(second, str) and addrs[0].startswith('/') and not second.startswith('/'))
        or (isinstance(second, (tuple, list)) and not addrs[0].startswith('/'))
    )


def _store_address(scheme: str, text: str) -> Address:
    _plugins.get_plugin_manager()
    store = _plugins._stores.get(scheme)
    if store is None:
        dist = KNOWN_STORES.get(scheme)
        hint = (
            f'install {dist!r}, e.g. `pip install {dist}`'
            if dist
            else (f'no installed plugin provides {scheme!r} registries')
        )
        raise NoTransportInstalled(f'cannot use the registry {text!r}: {hint}')
    return store.parse(text)


def _shape_of(addr: tuple) -> str | None:
    """Which built-in transport an address tuple looks like, for the hint
    when that transport is missing: ``(host, port)`` is TCP, ``(dir,
    file)`` UDS."""
    if len(addr) == 2 and isinstance(addr[0], str):
        if isinstance(addr[1], int) and not isinstance(addr[1], bool):
            return 'tcp'
        if isinstance(addr[1], str) and addr[0].startswith('/'):
            return 'uds'
    return None


def wrap_address(addr: Any) -> Address:
    """Turn a user-given address into an :class:`Address`.

    Accepts an ``Address``, a plain tuple such as ``('127.0.0.1', 1616)``,
    the wire form ``('tcp', [...])``, multiaddr text ``/ip4/.../tcp/...``
    or a registry store's ``scheme://...`` text (``etcd://host:2379``).
    """
    if isinstance(addr, Address):
        return addr
    if isinstance(addr, str) and '://' in addr:
        return _store_address(addr.split('://', 1)[0], addr)
    if (
        isinstance(addr, (tuple, list))
        and len(addr) == 2
        and isinstance(addr[0], str)
        and isinstance(addr[1], (tuple, list))
        and len(addr[1]) == 1
        and isinstance(addr[1][0], str)
        and addr[1][0].startswith(addr[0] + '://')
    ):
        return _store_address(addr[0], addr[1][0])  # a store's wire form
    if isinstance(addr, tuple) and len(addr) == 1 and isinstance(addr[0], str) and '://' in addr[0]:
        return _store_address(addr[0].split('://', 1)[0], addr[0])  # its unwrap()
    tpts = require_transports()
    if isinstance(addr, str):
        parts = [p for p in addr.split('/')]
        if len(parts) < 2 or parts[0] != '' or not parts[1]:
            raise ValueError(f'not a multiaddr (must start with "/"): {addr!r}')
        # several transports may share a first component (TCP and TLS over
        # TCP both start /ip4/...): the one that parses the text is meant
        matching = [tpt for tpt in tpts.values() if parts[1] in tpt.maddr_protocols]
        if len(matching) == 1:
            return matching[0].from_maddr(parts[1:])
        errors = []
        for tpt in matching:
            try:
                return tpt.from_maddr(parts[1:])
            except ValueError as err:
                errors.append(f'as {tpt.proto_key}: {err}')
        if errors:
            raise ValueError(f'bad multiaddr {addr!r}: ' + '; '.join(errors))
        raise ValueError(
            f'unknown multiaddr protocol {parts[1]!r} in {addr!r}; '
            f'installed transports: {sorted(tpts)}'
        )
    if isinstance(addr, (tuple, list)):
        if len(addr) == 2 and isinstance(addr[0], str) and isinstance(addr[1], (tuple, list)):
            return get_transport(addr[0]).from_tuple(addr[1])
        for tpt in tpts.values():
            if tpt.claims(tuple(addr)):
                return tpt.from_tuple(addr)
        missing = _shape_of(tuple(addr))
        if missing is not None and missing not in tpts:
            dist = KNOWN_DISTRIBUTIONS[missing]
            raise NoTransportInstalled(
                f'{addr!r} is a {missing.upper()} address, and no {missing!r} transport '
                f'is installed (installed: {sorted(tpts)}): `pip install {dist}`'
            )
        raise ValueError(
            f'no installed transport recognises the address {addr!r} (installed: {sorted(tpts)})'
        )
    raise TypeError(f'expected an address tuple or multiaddr string, got {addr!r}')
