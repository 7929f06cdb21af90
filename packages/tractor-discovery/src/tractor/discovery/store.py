"""What a registry store author needs (the ``tractor-etcd`` kind of plugin).

A store's :class:`~tractor.plugin.StoreAddress` opens a
:class:`RegistryBackend`; :class:`MemoryRegistry` is the embedded one, to
read or test against. Entries are ``(uid, addrs)`` pairs (:data:`Entry`) of
a :data:`Uid` ``(name, uuid)`` and wire addresses (:data:`WireAddr`,
``(proto_key, [parts])``), checked with :func:`check_uid` and
:func:`check_wire` before they are stored.

A backend that can tell changes emits :class:`Registered` and
:class:`Unregistered` into a :class:`Hub` and hands each watcher a
:class:`Subscription` (bounded by ``buffer``, default
:data:`DEFAULT_BUFFER`) from ``RegistryBackend.subscribe``;
:func:`check_filter` validates a watch's ``(name, prefix)`` filter and
:func:`meta_fields` the ``meta`` a registration carries.
"""

from ._events import DEFAULT_BUFFER as DEFAULT_BUFFER
from ._events import Hub as Hub
from ._events import Registered as Registered
from ._events import Subscription as Subscription
from ._events import Unregistered as Unregistered
from ._events import check_filter as check_filter
from ._events import meta_fields as meta_fields
from ._registry import Entry as Entry
from ._registry import MemoryRegistry as MemoryRegistry
from ._registry import RegistryBackend as RegistryBackend
from ._registry import Uid as Uid
from ._registry import WireAddr as WireAddr
from ._registry import check_uid as check_uid
from ._registry import check_wire as check_wire

__all__ = [
    'DEFAULT_BUFFER',
    'Entry',
    'Hub',
    'MemoryRegistry',
    'Registered',
    'RegistryBackend',
    'Subscription',
    'Uid',
    'Unregistered',
    'WireAddr',
    'check_filter',
    'check_uid',
    'check_wire',
    'meta_fields',
]
