"""TCP transport for tractor: ``('host', port)`` addresses, ``/ip4|ip6|dns/<host>/tcp/<port>``."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

import trio

from tractor.plugin import LOCAL, REMOTE, Address, Transport, hookimpl

from ._local import host_addresses

__all__ = ['TCPAddress', 'TCPTransport', 'env_registry', 'source_host', 'tractor_transports']

DEFAULT_REGISTRY = ('127.0.0.1', 1616)
#: environment variable overriding DEFAULT_REGISTRY: 'host:port' ('[::1]:1616' for IPv6)
REGISTRY_ENV = 'TRACTOR_TCP_REGISTRY'
#: environment variable choosing the host of random TCP listen addresses
#: (an interface address, or '0.0.0.0' for every interface)
BIND_HOST_ENV = 'TRACTOR_TCP_BIND_HOST'


def env_registry(
    var: str = REGISTRY_ENV, example: str = '127.0.0.1:1616'
) -> tuple[str, int] | None:
    """The registry address from ``$TRACTOR_TCP_REGISTRY`` (or from the
    environment variable ``var``: transports layered on TCP, such as TLS,
    parse theirs the same way), if set; ``ValueError`` naming ``var``."""
    raw = os.environ.get(var, '').strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(':')
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    try:
        if not sep or not host:
            raise ValueError
        portnum = int(port)
        if not 0 < portnum <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"{var} must be 'host:port' (e.g. {example!r}), got {raw!r}") from None
    return (host, portnum)


def source_host(host: str, port: int) -> str:
    """This host's own address to bind next to ``(host, port)``: ``host``
    itself when it is ours (loopback, unspecified, an interface address),
    else the address of the interface that routes to it. A UDP socket's
    ``connect()`` makes the kernel pick that route without sending anything."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == 'localhost':
            return host
        ip = None
    if ip is not None and (ip.is_loopback or ip.is_unspecified or str(ip) in host_addresses()):
        return host
    family = socket.AF_INET6 if ip is not None and ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port or 9))
            source: str = probe.getsockname()[0]
            return source
    except OSError:
        return host  # no route: binding fails and says so, naming the host


class TCPAddress(Address):
    proto_key = 'tcp'
    __slots__ = ('host', 'port')

    def __init__(self, host: str, port: int) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError(f'TCP host must be a non-empty string, got {host!r}')
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f'TCP port must be an int in 0..65535, got {port!r}')
        self.host = host
        self.port = port

    def unwrap(self) -> tuple[str, int]:
        return (self.host, self.port)


class TCPTransport(Transport):
    proto_key = 'tcp'
    maddr_protocols = ('ip4', 'ip6', 'dns', 'dns4', 'dns6')

    def claims(self, addr: tuple[Any, ...]) -> bool:
        return (
            len(addr) == 2
            and isinstance(addr[0], str)
            and isinstance(addr[1], int)
            and not isinstance(addr[1], bool)
        )

    def from_tuple(self, addr: tuple[Any, ...] | list[Any]) -> TCPAddress:
        if len(addr) != 2:
            raise ValueError(f'a TCP address is (host, port), got {addr!r}')
        return TCPAddress(addr[0], addr[1])

    def to_maddr(self, addr: Address) -> str:
        host, port = addr.unwrap()
        try:
            proto = 'ip6' if ipaddress.ip_address(host).version == 6 else 'ip4'
        except ValueError:
            proto = 'dns'
        return f'/{proto}/{host}/tcp/{port}'

    def from_maddr(self, parts: list[str]) -> TCPAddress:
        text = '/' + '/'.join(parts)
        if len(parts) > 4:
            raise ValueError(
                f'unexpected trailing part {"/" + "/".join(parts[4:])!r} in the TCP '
                f'multiaddr {text!r} (expected /{parts[0]}/<host>/tcp/<port>)'
            )
        if len(parts) < 4:
            missing = ('<host>/tcp/<port>', 'tcp/<port>', '<port>')[len(parts) - 1]
            raise ValueError(
                f'incomplete TCP multiaddr {text!r}: missing {missing!r} '
                f'(expected /{parts[0]}/<host>/tcp/<port>)'
            )
        proto, host, tcp, port = parts
        if tcp != 'tcp':
            raise ValueError(f'expected "tcp" after the host, got {tcp!r}')
        if proto in ('ip4', 'ip6'):
            try:
                ver = ipaddress.ip_address(host).version
            except ValueError:
                raise ValueError(f'bad {proto} address {host!r}') from None
            if (proto == 'ip4') != (ver == 4):
                raise ValueError(f'{host!r} is not an {proto} address')
        try:
            portnum = int(port)
        except ValueError:
            raise ValueError(f'bad TCP port {port!r}') from None
        return TCPAddress(host, portnum)

    def default_registry_addr(self) -> TCPAddress:
        return TCPAddress(*(env_registry() or DEFAULT_REGISTRY))

    def random_addr(self, name: str, near: Address | None = None) -> TCPAddress:
        """Port 0 on ``$TRACTOR_TCP_BIND_HOST`` if set; else on the host of
        ``near`` when this host owns it (loopback included); else, for a
        ``near`` on another host, on this host's address of the interface
        that routes there (a joining root binds where the registry can
        reach it, not the registry's own IP)."""
        host = os.environ.get(BIND_HOST_ENV, '').strip()
        if host:
            return TCPAddress(host, 0)
        if near is None:
            return TCPAddress(DEFAULT_REGISTRY[0], 0)
        return TCPAddress(source_host(*near.unwrap()), 0)

    async def listen(self, addr: Address) -> tuple[trio.SocketListener, TCPAddress]:
        host, port = addr.unwrap()
        # an ASCII host as bytes: the socket module would otherwise encode
        # it with the 'idna' codec, whose import is a tenth of a root's boot
        listeners = await trio.open_tcp_listeners(
            port, host=host.encode('ascii') if host.isascii() else host
        )
        # one host string may resolve to several sockets; serve the first
        for extra in listeners[1:]:
            await extra.aclose()
        lst = listeners[0]
        bound = lst.socket.getsockname()
        return lst, TCPAddress(host, bound[1])

    async def connect(self, addr: Address) -> trio.SocketStream:
        host, port = addr.unwrap()
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            # a name: resolve it, racing its addresses (happy eyeballs)
            stream = await trio.open_tcp_stream(host, port)
        else:
            # an address literal (what actors advertise): one plain connect,
            # without open_tcp_stream's resolver and racing machinery
            # (about half the cost of a loopback connect)
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            sock = trio.socket.socket(family, socket.SOCK_STREAM)
            try:
                await sock.connect((host, port))
            except BaseException:
                sock.close()
                raise
            stream = trio.SocketStream(sock)
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return stream

    def locality(self, addr: Address) -> int:
        host = addr.unwrap()[0]
        if host in ('localhost',):
            return LOCAL
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return REMOTE
        if ip.is_loopback or str(ip) in host_addresses():
            return LOCAL
        return REMOTE


_transport = TCPTransport()


@hookimpl
def tractor_transports() -> list[Any]:
    return [_transport]
