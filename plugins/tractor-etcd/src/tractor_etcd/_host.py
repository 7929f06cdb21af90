"""Which host an entry was registered from, and which addresses only work there."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
from typing import Any

from tractor.plugin import SAME_HOST, wrap_address


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ''


@functools.cache
def host_id() -> str:
    """This host's identity: its machine id, its boot id and its network
    namespace. Loopback differs between network namespaces of one machine,
    so each namespace counts as a host of its own (unix sockets would still
    work across them; treating them as remote only costs that shortcut)."""
    try:
        netns = str(os.stat('/proc/self/ns/net').st_ino)
    except OSError:
        netns = ''
    parts = [
        _read('/etc/machine-id') or _read('/var/lib/dbus/machine-id'),
        _read('/proc/sys/kernel/random/boot_id'),
        netns,
    ]
    if not any(parts):  # not Linux: the host name is the best we have
        import socket

        parts = [socket.gethostname()]
    return hashlib.sha256('/'.join(parts).encode()).hexdigest()[:32]


def host_only(wire: Any) -> bool:
    """Whether a wire address can only be dialed from the host that bound it:
    a same-host transport (a unix socket), or a loopback or unspecified IP."""
    try:
        addr = wrap_address(wire)
        if addr.transport.locality(addr) == SAME_HOST:
            return True
    except Exception:  # a transport this actor lacks: judge by the fields
        pass
    fields = wire[1] if len(wire) == 2 else ()
    host = fields[0] if fields and isinstance(fields[0], str) else None
    if host is None:
        return False
    if host == 'localhost':
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified
