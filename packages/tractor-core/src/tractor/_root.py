"""``open_root_actor()``: boot the runtime in this process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from . import _secret, _settings, _state
from ._exceptions import NoTransportInstalled, check_actor_name
from ._extras import require_debug
from ._lifetime import open_runtime
from ._plugins import get_plugin_manager
from ._runtime import Actor
from ._spawn import resolve_start_method
from ._transport import (
    Address,
    StoreAddress,
    get_transport,
    is_one_address,
    require_transports,
    wrap_address,
)
from .log import get_console_log, get_logger

log = get_logger('root')


#: what an actor serves when ``enable_transports`` is not given
DEFAULT_TRANSPORT = 'tcp'


def default_transports() -> list[str]:
    """``['tcp']``; when TCP is not installed, an error that says so rather
    than a silent switch to whatever is (ask for another one by name)."""
    installed = require_transports()
    if DEFAULT_TRANSPORT not in installed:
        raise NoTransportInstalled(
            f'the default transport {DEFAULT_TRANSPORT!r} is not installed '
            f'(`pip install tractor-tcp`); to use another, ask for it: '
            f'enable_transports={sorted(installed)[:1]!r} (installed: {sorted(installed)})'
        )
    return [DEFAULT_TRANSPORT]


#: the default registry when ``registry_addrs`` is not given: one address or
#: several separated by whitespace, as multiaddr text or a store's URL
#: (``etcd://10.0.0.1:2379``)
REGISTRY_ENV = 'TRACTOR_REGISTRY'


def env_registry() -> list[Any] | None:
    """The registry addresses from ``$TRACTOR_REGISTRY`` (``None`` when unset)."""
    raw = os.environ.get(REGISTRY_ENV, '').split()
    if not raw:
        return None
    try:
        return [wrap_address(text) for text in raw]
    except (ValueError, TypeError) as err:
        raise ValueError(f'{REGISTRY_ENV}={os.environ[REGISTRY_ENV]!r}: {err}') from None


@asynccontextmanager
async def open_root_actor(
    *,
    registry_addrs: list[Any] | None = None,
    name: str = 'root',
    ensure_registry: bool = False,
    enable_transports: list[str] | None = None,
    loglevel: str | None = None,
    debug_mode: bool = False,
    start_method: str | None = None,
    enable_modules: list[str] | None = None,
    secret: bytes | str | None = None,
    tpt_bind_addrs: list[Any] | None = None,
    enable_stack_on_sig: bool = False,
) -> AsyncIterator[Actor]:
    """Run this process as the root actor of a new tree (or a tree-joiner).

    ``registry_addrs`` are where the registrar is looked for (per-transport
    defaults otherwise); ``enable_transports`` which transports this actor
    serves (default ``['tcp']``). ``secret`` is the tree's shared secret
    that every connection must prove (see :mod:`tractor._secret`, :mod:`tractor._auth`): this
    argument, else ``$TRACTOR_SECRET``, else the per-user cookie file; the
    whole tree inherits it. ``tpt_bind_addrs`` are the addresses this root
    listens on (default: fresh random ones, or the registry addresses when
    it becomes the registrar; a root that becomes the registrar with
    ``tpt_bind_addrs`` listens on both). ``enable_stack_on_sig=True`` makes
    every actor of the tree write its trio task tree to stderr on
    ``SIGUSR1`` (see :mod:`tractor.devx`). Everything is torn down on block
    exit.
    """
    if _state.current_actor(err_on_no_runtime=False) is not None:
        raise RuntimeError('an actor is already running in this process')
    check_actor_name(name)
    if enable_transports is not None and (
        isinstance(enable_transports, str) or not enable_transports
    ):
        raise TypeError(
            f'enable_transports takes a non-empty list of protocol keys, got {enable_transports!r}'
        )
    if registry_addrs is not None and (
        not isinstance(registry_addrs, (list, tuple))
        or not registry_addrs
        or (
            len(registry_addrs) == 2
            and not isinstance(registry_addrs[0], (tuple, list, str, Address))
        )
        or is_one_address(registry_addrs)
    ):
        raise TypeError(
            f'registry_addrs takes a non-empty list of addresses, e.g. '
            f"[('127.0.0.1', 1616)], got {registry_addrs!r}"
        )
    if tpt_bind_addrs is not None and (
        not isinstance(tpt_bind_addrs, (list, tuple))
        or not tpt_bind_addrs
        or is_one_address(tpt_bind_addrs)
    ):
        raise TypeError(
            f'tpt_bind_addrs takes a non-empty list of addresses, e.g. '
            f"[('127.0.0.1', 0)], got {tpt_bind_addrs!r}"
        )
    if isinstance(enable_modules, str):
        raise TypeError(f'enable_modules takes a list of module names, got {enable_modules!r}')
    _settings.check()  # a bad TRACTOR_* value fails the boot, naming it
    if debug_mode:
        require_debug()
    tree_secret = _secret.resolve_secret(secret)
    if loglevel or os.environ.get('TRACTOR_LOGLEVEL'):
        get_console_log(loglevel)
    get_plugin_manager()
    transports = list(enable_transports) if enable_transports else default_transports()
    tpts = {key: get_transport(key) for key in transports}
    if not registry_addrs:
        registry_addrs = env_registry()
    if registry_addrs:
        reg = [wrap_address(a) for a in registry_addrs]
        for addr in reg:
            if addr.proto_key not in tpts and not isinstance(addr, StoreAddress):
                raise ValueError(
                    f'registry address {addr.unwrap()!r} uses {addr.proto_key!r}, '
                    f'which is not among enable_transports={transports}'
                )
    else:
        reg = [tpt.default_registry_addr() for tpt in tpts.values()]
    own_binds = [wrap_address(a) for a in tpt_bind_addrs or ()]
    for addr in own_binds:
        if addr.proto_key not in tpts:
            raise ValueError(
                f'tpt_bind_addrs entry {addr.unwrap()!r} uses {addr.proto_key!r}, '
                f'which is not among enable_transports={transports}'
            )
    method = resolve_start_method(start_method)
    actor = Actor(
        name,
        enable_modules=enable_modules,
        reg_addrs=reg,
        enable_transports=transports,
        is_root=True,
        loglevel=loglevel,
        debug_mode=debug_mode,
        start_method=method,
    )
    actor.stack_on_sig = bool(enable_stack_on_sig)
    _state._set_actor(actor)
    _secret.set_secret(tree_secret)
    try:
        actor.load_modules()
        bind = get_plugin_manager().hook.tractor_root_bind_addrs(
            actor=actor, registry_addrs=reg, ensure_registry=ensure_registry
        )
        if bind is not None:
            bind_addrs = await bind
        else:
            if ensure_registry:
                raise RuntimeError(
                    'ensure_registry=True needs the discovery plugin: '
                    '`pip install tractor-discovery`'
                )
            near = {a.proto_key: a for a in reg}
            bind_addrs = [tpt.random_addr(name, near=near.get(k)) for k, tpt in tpts.items()]
        if own_binds:
            # the chosen addresses replace the random ones; a registrar
            # must still answer at the registry addresses too
            bind_addrs = list(dict.fromkeys([*own_binds, *(reg if actor.is_registrar else ())]))
        async with open_runtime(actor, bind_addrs):
            if actor.debugger is not None:
                async with actor.debugger.main_block(actor):
                    yield actor
            else:
                yield actor
    finally:
        await actor._close_adopted()  # the boot failed before serving them
        _state._set_actor(None)
        _secret.set_secret(None)


def run_daemon(enable_modules: list[str], **root_kwargs: Any) -> None:
    """Run this process as a root actor serving ``enable_modules`` until it
    is cancelled: a blocking, synchronous entry point for a service program.

    ``root_kwargs`` go to :func:`open_root_actor` (``name``,
    ``registry_addrs``, ``tpt_bind_addrs``, ``loglevel``...); with no
    registrar at the registry addresses the daemon becomes it, so other
    programs find it and each other there. It returns only by an error:
    Ctrl-C (``SIGINT``) tears the runtime down and raises
    ``KeyboardInterrupt`` like any trio program.
    """
    if isinstance(enable_modules, str) or not isinstance(enable_modules, (list, tuple)):
        raise TypeError(f'enable_modules takes a list of module names, got {enable_modules!r}')
    import trio

    async def serve() -> None:
        async with open_root_actor(enable_modules=list(enable_modules), **root_kwargs):
            await trio.sleep_forever()

    trio.run(serve)
