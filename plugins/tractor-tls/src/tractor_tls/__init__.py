"""TLS transport for tractor: TCP wrapped in TLS 1.3 with mutual
certificate verification, proto key ``'tls'``.

Addresses unwrap to ``('host', port)`` like TCP's, so a *plain* tuple
stays TCP's (``('127.0.0.1', 1617)`` dials plain TCP): write a TLS address
as multiaddr text ``/ip4/127.0.0.1/tcp/1617/tls`` (``/ip6/...``,
``/dns/...``), in wire form ``('tls', ['127.0.0.1', 1617])``, or as a
:class:`TLSAddress`. Locality ranks as TCP's; among remote addresses
discovery dials encrypted ones first (``encrypted = True``).

Certificates: ``TRACTOR_TLS_CA``, ``TRACTOR_TLS_CERT``, ``TRACTOR_TLS_KEY``
or :func:`configure` (see :mod:`tractor_tls._certs`). The tree's
shared-secret proof still runs, inside the TLS session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from tractor.plugin import Address, Transport, hookimpl
from tractor_tcp import TCPAddress, TCPTransport, env_registry

if TYPE_CHECKING:
    from ._certs import (
        ENV_CA,
        ENV_CERT,
        ENV_KEY,
        ENV_VERIFY_HOST,
        TLSConfigError,
        TLSError,
        TLSHandshakeError,
        configure,
        contexts,
    )
    from ._stream import TLSListener, TLSStream

#: public names of the submodules, imported on first use: every process
#: that loads plugins imports this package at boot, most never dialing TLS
_LAZY = {
    **dict.fromkeys(
        (
            'ENV_CA',
            'ENV_CERT',
            'ENV_KEY',
            'ENV_VERIFY_HOST',
            'TLSConfigError',
            'TLSError',
            'TLSHandshakeError',
            'configure',
            'contexts',
        ),
        '_certs',
    ),
    **dict.fromkeys(('TLSListener', 'TLSStream'), '_stream'),
}


def __getattr__(name: str) -> Any:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    from importlib import import_module

    value = getattr(import_module(f'{__name__}.{sub}'), name)
    globals()[name] = value
    return value


__all__ = [
    'DEFAULT_REGISTRY',
    'ENV_CA',
    'ENV_CERT',
    'ENV_KEY',
    'ENV_VERIFY_HOST',
    'HANDSHAKE_TIMEOUT',
    'REGISTRY_ENV',
    'TLSAddress',
    'TLSConfigError',
    'TLSError',
    'TLSHandshakeError',
    'TLSListener',
    'TLSStream',
    'TLSTransport',
    'configure',
    'contexts',
    'tractor_transports',
]

#: the default TLS registry address: TCP's host, the port after TCP's 1616
DEFAULT_REGISTRY = ('127.0.0.1', 1617)
#: environment variable overriding DEFAULT_REGISTRY: 'host:port'
REGISTRY_ENV = 'TRACTOR_TLS_REGISTRY'
#: bound on a dialer's TLS handshake (the tractor handshake after it has its own)
HANDSHAKE_TIMEOUT = 10.0


class TLSAddress(Address):
    """``(host, port)`` of a TLS listener."""

    proto_key = 'tls'
    __slots__ = ('host', 'port')

    def __init__(self, host: str, port: int) -> None:
        tcp = TCPAddress(host, port)  # the same checks, the same messages
        self.host = tcp.host
        self.port = tcp.port

    def unwrap(self) -> tuple[str, int]:
        return (self.host, self.port)

    def tcp(self) -> TCPAddress:
        """The TCP endpoint under it."""
        return TCPAddress(self.host, self.port)


def _tls(addr: TCPAddress) -> TLSAddress:
    return TLSAddress(*addr.unwrap())


class TLSTransport(Transport):
    proto_key = 'tls'
    maddr_protocols = TCPTransport.maddr_protocols
    #: discovery dials an encrypted address before an unencrypted one of
    #: the same (remote) locality
    encrypted = True

    def __init__(self) -> None:
        self._tcp = TCPTransport()

    def claims(self, addr: tuple[Any, ...]) -> bool:
        # a plain (host, port) is TCP's: TLS is never guessed, it is asked for
        return False

    def from_tuple(self, addr: tuple[Any, ...] | list[Any]) -> TLSAddress:
        if len(addr) != 2:
            raise ValueError(f'a TLS address is (host, port), got {addr!r}')
        return TLSAddress(addr[0], addr[1])

    def to_maddr(self, addr: Address) -> str:
        return f'{self._tcp.to_maddr(TCPAddress(*addr.unwrap()))}/tls'

    def from_maddr(self, parts: list[str]) -> TLSAddress:
        if not parts or parts[-1] != 'tls':
            raise ValueError(
                f'not a TLS multiaddr: {"/" + "/".join(parts)!r} does not end in /tls '
                f'(expected /{parts[0] if parts else "ip4"}/<host>/tcp/<port>/tls)'
            )
        return _tls(self._tcp.from_maddr(parts[:-1]))

    def default_registry_addr(self) -> TLSAddress:
        return TLSAddress(*(env_registry(REGISTRY_ENV, '127.0.0.1:1617') or DEFAULT_REGISTRY))

    def random_addr(self, name: str, near: Address | None = None) -> TLSAddress:
        """As TCP's (``TRACTOR_TCP_BIND_HOST`` included): port 0 next to
        ``near``, or on the interface that routes to it."""
        tcp_near = TCPAddress(*near.unwrap()) if near is not None else None
        return _tls(self._tcp.random_addr(name, near=tcp_near))

    async def listen(self, addr: Address) -> tuple[TLSListener, TLSAddress]:
        """Bind ``addr``; :class:`TLSConfigError` first if the certificates
        are not usable (an actor that cannot serve TLS fails at boot)."""
        from ._certs import contexts
        from ._stream import TLSListener

        contexts()
        tcp_listener, bound = await self._tcp.listen(TCPAddress(*addr.unwrap()))
        bound_tls = _tls(bound)
        return TLSListener(tcp_listener, self.to_maddr(bound_tls)), bound_tls

    async def connect(self, addr: Address) -> TLSStream:
        """Dial ``addr`` and run the TLS handshake: ``OSError`` when nothing
        accepts there, :class:`TLSHandshakeError` (which certificate, and
        why) when TLS fails, :class:`TLSConfigError` for our own files."""
        from ._certs import TLSHandshakeError
        from ._stream import client_stream

        host, port = addr.unwrap()
        where = self.to_maddr(addr)
        tcp = await self._tcp.connect(TCPAddress(host, port))
        try:
            stream = client_stream(tcp, host, where)
            with trio.move_on_after(HANDSHAKE_TIMEOUT) as cs:
                await stream.do_handshake()
            if cs.cancelled_caught:
                raise TLSHandshakeError(
                    f'TLS dial to {where} failed: no TLS handshake within {HANDSHAKE_TIMEOUT}s',
                    peer=where,
                    which=None,
                    reason=f'no handshake within {HANDSHAKE_TIMEOUT}s',
                )
        except BaseException:
            await tcp.aclose()
            raise
        return stream

    def locality(self, addr: Address) -> int:
        return self._tcp.locality(TCPAddress(*addr.unwrap()))


_transport = TLSTransport()


@hookimpl
def tractor_transports() -> list[Any]:
    return [_transport]
