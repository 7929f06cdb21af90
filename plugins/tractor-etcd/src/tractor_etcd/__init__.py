"""tractor-etcd: a tractor registry kept in etcd, for discovery across hosts.

Install it next to ``tractor`` and point a tree at etcd::

    async with tractor.open_nursery(registry_addrs=['etcd://10.0.0.1:2379']):
        ...

or set ``TRACTOR_REGISTRY=etcd://10.0.0.1:2379``. No actor is the
registrar: each registers itself in etcd on a lease. See the README.
"""

from __future__ import annotations

from typing import Any

from tractor.plugin import hookimpl

from ._address import DEFAULT_PREFIX as DEFAULT_PREFIX
from ._address import DEFAULT_TTL as DEFAULT_TTL
from ._address import EtcdAddress as EtcdAddress
from ._address import EtcdStore

__all__ = [
    'DEFAULT_PREFIX',
    'DEFAULT_TTL',
    'EtcdAddress',
    'EtcdError',
    'EtcdRegistry',
    'EtcdUnreachable',
    'Gateway',
    'host_id',
    'tractor_registry_stores',
]

# loaded with the plugins by every actor, used or not: the HTTP client
# (httpx, a few hundred ms to import) waits until a tree uses etcd
_LAZY = {
    'EtcdRegistry': '._backend',
    'EtcdError': '._gateway',
    'EtcdUnreachable': '._gateway',
    'Gateway': '._gateway',
    'host_id': '._host',
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


@hookimpl
def tractor_registry_stores() -> list[Any]:
    return [EtcdStore()]
