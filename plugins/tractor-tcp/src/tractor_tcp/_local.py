"""Which IP addresses belong to this host (for the locality rank)."""

from __future__ import annotations

import fcntl
import functools
import socket
import struct

_SIOCGIFADDR = 0x8915


@functools.cache
def host_addresses() -> frozenset[str]:
    """IPv4 addresses of every interface plus the host's IPv6 addresses.

    Linux-only ioctls and /proc; anything unavailable is skipped, which only
    makes a local address look remote (a worse rank, never a wrong dial).
    """
    found: set[str] = set()
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        names = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            try:
                req = struct.pack('256s', name.encode()[:15])
                res = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, req)
                found.add(socket.inet_ntoa(res[20:24]))
            except OSError:
                continue
    try:
        with open('/proc/net/if_inet6') as f:
            for line in f:
                hexaddr = line.split()[0]
                packed = bytes.fromhex(hexaddr)
                found.add(socket.inet_ntop(socket.AF_INET6, packed))
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            host = info[4][0]
            if isinstance(host, str):  # always, for the IP families getaddrinfo answers
                found.add(host)
    except OSError:
        pass
    return frozenset(found)
