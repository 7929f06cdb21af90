"""Which IP addresses belong to this host (for the locality rank)."""

from __future__ import annotations

import functools
import socket


@functools.cache
def host_addresses() -> frozenset[str]:
    """Every address of every interface (IPv4 and IPv6, secondary ones
    included), plus what the host's name resolves to.

    The interfaces come from the OS's own list (``getifaddrs``, through
    ifaddr); anything unavailable is skipped, which only makes a local
    address look remote (a worse rank, never a wrong dial).
    """
    # imported here: ifaddr loads ctypes.util, a cost every actor would pay
    # at plugin load while only address ranking needs it (once, cached)
    import ifaddr

    found: set[str] = set()
    try:
        adapters = ifaddr.get_adapters()
    except OSError:
        adapters = []
    for adapter in adapters:
        for ip in adapter.ips:
            # an IPv6 address comes as (address, flowinfo, scope_id)
            found.add(ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip)
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return frozenset(found)
