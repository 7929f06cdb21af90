"""tractor-etcd: a tractor registry kept in etcd, for discovery across hosts.

Install it next to ``tractor`` and point a tree at etcd::

    async with tractor.open_nursery(registry_addrs=['etcd://10.0.0.1:2379']):
        ...

or set ``TRACTOR_REGISTRY=etcd://10.0.0.1:2379``. No actor is the
registrar: each registers itself in etcd on a lease. See the README.
"""
from __future__ import annotations

from typing import Any

from tractor._plugins import hookimpl

from ._address import DEFAULT_PREFIX as DEFAULT_PREFIX
from ._address import DEFAULT_TTL as DEFAULT_TTL
from ._address import EtcdAddress as EtcdAddress
from ._address import EtcdStore
from ._backend import EtcdRegistry as EtcdRegistry
from ._gateway import EtcdError as EtcdError
from ._gateway import EtcdUnreachable as EtcdUnreachable
from ._gateway import Gateway as Gateway
from ._host import host_id as host_id

__all__ = [
    'DEFAULT_PREFIX', 'DEFAULT_TTL', 'EtcdAddress', 'EtcdError', 'EtcdRegistry',
    'EtcdUnreachable', 'Gateway', 'host_id', 'tractor_registry_stores',
]


@hookimpl
def tractor_registry_stores() -> list[Any]:
    return [EtcdStore()]
