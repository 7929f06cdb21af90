"""tractor: structured-concurrency, multi-process actors on trio.

The public API is what this module exports. Names provided by other
distributions (discovery, the cluster API) resolve lazily and fail with an
error naming the distribution to install when it is missing.
"""

from typing import TYPE_CHECKING, Any

from . import log as log
from . import msg as msg
from . import trionics as trionics
from ._context import Context as Context
from ._context import context as context
from ._context import current_ipc_ctx as current_ipc_ctx
from ._exceptions import ActorFailure as ActorFailure
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import ContextCancelled as ContextCancelled
from ._exceptions import ModuleNotExposed as ModuleNotExposed
from ._exceptions import MsgTypeError as MsgTypeError
from ._exceptions import NoRuntime as NoRuntime
from ._exceptions import NoTransportInstalled as NoTransportInstalled
from ._exceptions import RemoteActorError as RemoteActorError
from ._exceptions import StreamOverrun as StreamOverrun
from ._exceptions import TractorError as TractorError
from ._exceptions import TransportClosed as TransportClosed
from ._ipc import Channel as Channel
from ._nursery import open_nursery as open_nursery
from ._plugins import register_plugin as register_plugin
from ._plugins import unregister_plugin as unregister_plugin
from ._portal import Portal as Portal
from ._root import open_root_actor as open_root_actor
from ._root import run_daemon as run_daemon
from ._runtime import Actor as Actor
from ._state import current_actor as current_actor
from ._state import debug_mode as debug_mode
from ._state import get_runtime_vars as get_runtime_vars
from ._state import is_root_process as is_root_process
from ._stream import MsgStream as MsgStream
from ._supervise import ActorNursery as ActorNursery


def _extend_path(path: list[str]) -> list[str]:
    """``path`` plus the ``tractor`` directory of every other ``sys.path``
    entry: the discovery and cluster distributions install sub-packages of
    `tractor` from their own directories when installed editable (the uv
    workspace). What ``pkgutil.extend_path`` does for plain directories,
    without importing pkgutil (and importlib.util, which it imports): a
    cost every ``import tractor`` paid. A ``sys.path`` entry that is not a
    directory (a zip) makes it ask pkgutil."""
    import os
    import sys

    path = list(path)
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        if not os.path.isdir(entry or '.'):
            if os.path.exists(entry):
                from pkgutil import extend_path

                return extend_path(path, __name__)
            continue
        portion = os.path.join(entry, __name__)
        if portion not in path and os.path.isdir(portion):
            path.append(portion)
    return path


# (before anything imports those sub-packages: none of core's modules does
# at import, and the names above are all core's)
__path__ = _extend_path(__path__)

__version__ = '0.1.0'

if TYPE_CHECKING:
    # what the lazily resolved names below are, for type checkers (at run
    # time they are imported on first use, and may be missing on a lean
    # install: see __getattr__)
    from . import cluster as cluster
    from . import debug as debug
    from . import devx as devx
    from . import discovery as discovery
    from . import plugin as plugin
    from . import to_asyncio as to_asyncio
    from ._supervised import ChildInfo as ChildInfo
    from ._supervised import SupervisedPortal as SupervisedPortal
    from ._supervisor import Supervisor as Supervisor
    from ._supervisor import TooManyRestarts as TooManyRestarts
    from ._supervisor import open_supervisor as open_supervisor
    from .cluster import open_actor_cluster as open_actor_cluster
    from .debug import pause as pause
    from .debug import pause_from_sync as pause_from_sync
    from .debug import post_mortem as post_mortem
    from .discovery import Arbiter as Arbiter
    from .discovery import LocalPortal as LocalPortal
    from .discovery import Registrar as Registrar
    from .discovery import find_actor as find_actor
    from .discovery import get_registry as get_registry
    from .discovery import query_actor as query_actor
    from .discovery import wait_for_actor as wait_for_actor

#: public name -> (module providing it, distribution to install)
_LAZY = {
    'discovery': ('tractor.discovery', 'tractor-discovery'),
    'find_actor': ('tractor.discovery', 'tractor-discovery'),
    'wait_for_actor': ('tractor.discovery', 'tractor-discovery'),
    'query_actor': ('tractor.discovery', 'tractor-discovery'),
    'get_registry': ('tractor.discovery', 'tractor-discovery'),
    'Registrar': ('tractor.discovery', 'tractor-discovery'),
    'Arbiter': ('tractor.discovery', 'tractor-discovery'),
    'LocalPortal': ('tractor.discovery', 'tractor-discovery'),
    'cluster': ('tractor.cluster', 'tractor-cluster'),
    'open_actor_cluster': ('tractor.cluster', 'tractor-cluster'),
    # core's own, imported on first use (they pull in the debugger's machinery)
    'debug': ('tractor.debug', 'tractor-core'),
    'devx': ('tractor.devx', 'tractor-core'),
    'pause': ('tractor.debug', 'tractor-core'),
    'pause_from_sync': ('tractor.debug', 'tractor-core'),
    'post_mortem': ('tractor.debug', 'tractor-core'),
    # supervision, loaded by the programs that use it
    'open_supervisor': ('tractor._supervisor', 'tractor-core'),
    'Supervisor': ('tractor._supervisor', 'tractor-core'),
    'SupervisedPortal': ('tractor._supervised', 'tractor-core'),
    'ChildInfo': ('tractor._supervised', 'tractor-core'),
    'TooManyRestarts': ('tractor._supervisor', 'tractor-core'),
    # asyncio interop (imports asyncio, which a trio-only program never needs)
    'to_asyncio': ('tractor.to_asyncio', 'tractor-core'),
    # the plugin SDK (imports pluggy, which a plain program never needs)
    'plugin': ('tractor.plugin', 'tractor-core'),
}


class MissingDistribution(AttributeError):
    """A public name whose distribution is not installed (an
    ``AttributeError``, so ``hasattr()`` is simply ``False``); the message
    and ``.distribution`` say what to install."""

    def __init__(self, msg: str, name: str, distribution: str) -> None:
        super().__init__(msg, name=name, obj=None)
        self.distribution = distribution


def _missing_hint(qualname: str, dist: str) -> str:
    return (
        f'{qualname} is provided by the {dist!r} distribution, which is not '
        f'installed: `pip install {dist}` (or the full `pip install tractor`)'
    )


def __getattr__(name: str) -> Any:
    try:
        modname, dist = _LAZY[name]
    except KeyError:
        raise AttributeError(f'module tractor has no attribute {name!r}') from None
    import importlib

    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as err:
        if err.name != modname:
            raise
        raise MissingDistribution(_missing_hint(f'tractor.{name}', dist), name, dist) from None
    value = mod if modname == f'tractor.{name}' else getattr(mod, name)
    globals()[name] = value
    return value


class _HintFinder:
    """Last on ``sys.meta_path``: ``import tractor.discovery`` (or another
    sub-package a separate distribution ships) on an install without it
    fails naming that distribution, not with a bare ModuleNotFoundError."""

    _SUBPACKAGES = {modname: dist for modname, dist in _LAZY.values() if modname.count('.') == 1}

    @classmethod
    def find_spec(cls, fullname: str, path: object = None, target: object = None) -> None:
        dist = cls._SUBPACKAGES.get(fullname)
        if dist is not None and dist != 'tractor-core':
            raise ModuleNotFoundError(_missing_hint(fullname, dist), name=fullname)
        return None


import sys as _sys  # noqa: E402

if not any(f is _HintFinder for f in _sys.meta_path):
    _sys.meta_path.append(_HintFinder)


def _findable(modname: str) -> bool:
    # a sub-package is looked for where the import system would look for
    # it, on `tractor.__path__` (importlib.util's find_spec would do the
    # same, but importing importlib.util costs more than the search)
    from importlib.machinery import PathFinder

    return PathFinder.find_spec(modname, __path__) is not None


#: the lazily provided modules of other distributions that are installed
#: (core's own always are); each looked for once, as finding one costs
_INSTALLED = {m for m, dist in set(_LAZY.values()) if dist == 'tractor-core' or _findable(m)}

# lazy names are listed only when their distribution is installed, so that
# `from tractor import *` works on a lean install too
__all__ = [
    'ActorFailure',
    'Actor',
    'ActorNursery',
    'AuthenticationError',
    'Channel',
    'Context',
    'MissingDistribution',
    'ContextCancelled',
    'ModuleNotExposed',
    'MsgStream',
    'MsgTypeError',
    'NoRuntime',
    'NoTransportInstalled',
    'Portal',
    'RemoteActorError',
    'StreamOverrun',
    'TractorError',
    'TransportClosed',
    'context',
    'current_actor',
    'current_ipc_ctx',
    'debug_mode',
    'get_runtime_vars',
    'is_root_process',
    'log',
    'msg',
    'open_nursery',
    'open_root_actor',
    'register_plugin',
    'run_daemon',
    'trionics',
    'unregister_plugin',
] + [
    name
    for name, (modname, _dist) in _LAZY.items()
    if name not in ('discovery', 'cluster', 'debug', 'devx', 'plugin', 'to_asyncio')
    and modname in _INSTALLED
]
