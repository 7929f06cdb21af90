"""Discovery: the registrar actor and lookups by name.

``find_actor``, ``wait_for_actor``, ``query_actor`` and ``get_registry`` are
async context managers; the root actor is the registrar by default and every
actor registers its addresses on boot. ``watch`` streams the registry's
changes. The ``tractor`` command (``_cli``) lists, watches and pings; see
the package README.
"""

from ._api import find_actor as find_actor
from ._api import get_registry as get_registry
from ._api import query_actor as query_actor
from ._api import wait_for_actor as wait_for_actor
from ._client import RegistrarUnreachable as RegistrarUnreachable
from ._events import Registered as Registered
from ._events import Unregistered as Unregistered
from ._events import WatchOverflow as WatchOverflow
from ._local import LocalPortal as LocalPortal
from ._local import StorePortal as StorePortal
from ._maddr import mk_maddr as mk_maddr
from ._maddr import parse_maddr as parse_maddr
from ._plugin import observer as observer
from ._registrar import Arbiter as Arbiter
from ._registrar import Registrar as Registrar
from ._registry import MemoryRegistry as MemoryRegistry
from ._registry import RegistryBackend as RegistryBackend
from ._watch import Watch as Watch
from ._watch import watch as watch

__all__ = [
    'Arbiter',
    'LocalPortal',
    'MemoryRegistry',
    'Registered',
    'Registrar',
    'RegistrarUnreachable',
    'RegistryBackend',
    'StorePortal',
    'Unregistered',
    'Watch',
    'WatchOverflow',
    'find_actor',
    'get_registry',
    'mk_maddr',
    'observer',
    'parse_maddr',
    'query_actor',
    'wait_for_actor',
    'watch',
]
