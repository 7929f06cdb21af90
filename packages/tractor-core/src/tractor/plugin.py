"""The plugin SDK: the public, stable surface for writing tractor plugins.

A plugin is a module (or object) with hook implementations, marked with
:data:`hookimpl` and named in the ``tractor`` entry-point group of its
distribution (:data:`ENTRY_POINT_GROUP`)::

    [project.entry-points.tractor]
    mytransport = "my_package"

The hooks (see ``tractor._hookspecs``, :data:`hookspec` marks them there):
``tractor_transports()``, ``tractor_registry_stores()``,
``tractor_root_bind_addrs(actor, registry_addrs, ensure_registry)``,
``tractor_actor_serving(actor)``, ``tractor_rpc_modules(actor)``,
``tractor_spawn_methods()``, ``tractor_spawn_spec_ext(actor, child_uid,
start_method, spec)``, ``tractor_spawn_spec_ext_received(actor, ext)`` and
``tractor_child_ready(actor, chan, accept_addrs)``. ``docs/architecture.md``
("Writing a plugin") has their signatures and a complete transport.

What this module offers, by the kind of plugin that needs it:

- a **transport** subclasses :class:`Transport` and :class:`Address` and
  returns an instance from ``tractor_transports()`` (a stream that is not
  a plain socket subclasses :class:`BufferedSendStream` to get the
  channel's direct-write path, and may write and read its socket with
  :func:`sock_send_nowait` and :func:`sock_receive_some`, the runtime's own
  lean socket I/O); its ``locality()``
  answers one of the ranks :data:`SAME_HOST` < :data:`LOCAL` <
  :data:`REMOTE` (discovery dials the lowest it can reach). A transport
  over a per-user socket directory uses :func:`runtime_dir` (created mode
  0700 and checked) or :func:`runtime_dir_path` (only where it is).
- a **registry store** returns parsers from ``tractor_registry_stores()``
  whose ``parse(text)`` gives a :class:`StoreAddress`; its
  ``open_backend()`` returns a ``tractor.discovery.RegistryBackend``.
- anything handling user-given addresses turns them into :class:`Address`
  objects with :func:`wrap_address` (tuples, wire form, multiaddr text,
  ``scheme://`` store text) and tells one address from a list of them with
  :func:`is_one_address`; :func:`installed_transports` and
  :func:`get_transport` look transports up by protocol key.
- a **runtime plugin** (discovery-like) gets the :class:`~tractor.Actor` in
  its hooks and uses its public service methods (``start_service_task``,
  ``start_service``, ``parent_channel``, ``get_peer_channels(uid=...)``,
  ``resolve_rpc_target``, ``call_local``, ``expose``, ``adopt``, ``cancel_called``,
  ``extensions`` for per-actor state); :data:`current_channel` is the channel the RPC
  being served came over. :func:`dial` opens a handshaken
  :class:`Channel` to another actor outside the runtime's message loop,
  and :func:`request` makes one call on it (``Actor.connect`` dials and
  serves; ``tractor.Portal`` then calls over the served channel).
  :func:`fn_address` is the ``(module, name)`` a function is called by;
  :func:`check_actor_name` is the check every API taking an actor name makes.
- a plugin with settings declares its environment variables with
  :func:`register_setting` (parsers :func:`parse_seconds`,
  :func:`parse_positive_int`) and reads them with :func:`setting_value`;
  a bad value fails the actor's boot with :class:`SettingError`.
- :data:`NURSERY_OPTIONS`: the ``open_nursery()`` options that still apply
  inside a running actor (for wrappers of it, such as ``tractor.cluster``).
- a **spawn backend** returns ``{name: SpawnBackend(spawn, available=...,
  priority=...)}`` from ``tractor_spawn_methods()`` (a plain ``{name:
  spawn}`` still works); ``spawn`` is a :data:`SpawnFn` returning a
  :class:`Process`. The most preferred available backend is the default.

This module imports pluggy (through the markers): ``import tractor`` does
not import it; plugins do, with ``from tractor.plugin import ...``.
"""

from __future__ import annotations

from ._dial import dial as dial
from ._dial import request as request
from ._exceptions import check_actor_name as check_actor_name
from ._hookspecs import hookimpl as hookimpl
from ._hookspecs import hookspec as hookspec
from ._invoke import current_channel as current_channel
from ._ipc import Channel as Channel
from ._nursery import NURSERY_OPTIONS as NURSERY_OPTIONS
from ._paths import runtime_dir as runtime_dir
from ._paths import runtime_dir_path as runtime_dir_path
from ._plugins import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from ._portal import _fn_address as fn_address
from ._settings import SettingError as SettingError
from ._settings import _positive_int as parse_positive_int
from ._settings import _seconds as parse_seconds
from ._settings import register as register_setting
from ._settings import value as setting_value
from ._sockio import receive_some as sock_receive_some
from ._sockio import try_send as sock_send_nowait

# -- spawn backends (hook ``tractor_spawn_methods``; a child's start state
# travels in ``SpawnSpec.ext``, hooks ``tractor_spawn_spec_ext`` in the parent
# and ``tractor_spawn_spec_ext_received`` in the child) -------------------------
from ._spawn import Process as Process
from ._spawn import SpawnBackend as SpawnBackend
from ._spawn import SpawnFn as SpawnFn
from ._transport import LOCAL as LOCAL
from ._transport import REMOTE as REMOTE
from ._transport import SAME_HOST as SAME_HOST
from ._transport import Address as Address
from ._transport import BufferedSendStream as BufferedSendStream
from ._transport import StoreAddress as StoreAddress
from ._transport import Transport as Transport
from ._transport import get_transport as get_transport
from ._transport import installed_transports as installed_transports
from ._transport import is_one_address as is_one_address
from ._transport import wrap_address as wrap_address

__all__ = [
    # hooks
    'ENTRY_POINT_GROUP',
    'hookimpl',
    'hookspec',
    # transports and addresses
    'LOCAL',
    'REMOTE',
    'SAME_HOST',
    'Address',
    'BufferedSendStream',
    'StoreAddress',
    'Transport',
    'get_transport',
    'installed_transports',
    'is_one_address',
    'wrap_address',
    'runtime_dir',
    'runtime_dir_path',
    'sock_receive_some',
    'sock_send_nowait',
    # talking to actors
    'Channel',
    'check_actor_name',
    'current_channel',
    'dial',
    'fn_address',
    'request',
    # settings
    'SettingError',
    'parse_positive_int',
    'parse_seconds',
    'register_setting',
    'setting_value',
    # runtime options
    'NURSERY_OPTIONS',
    # spawn backends
    'Process',
    'SpawnBackend',
    'SpawnFn',
]
