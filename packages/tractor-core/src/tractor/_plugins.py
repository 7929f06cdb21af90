"""The hook specifications and the one plugin manager of this process.

Every feature beyond the bare runtime arrives as a plugin of the
``tractor`` entry-point group: transports (``tractor-tcp``, ``tractor-uds``),
discovery (``tractor-discovery``) and any third party's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import NoTransportInstalled

if TYPE_CHECKING:
    import pluggy

    from ._transport import Address, Transport

ENTRY_POINT_GROUP = 'tractor'

#: what to install for each protocol we know of, for error messages
KNOWN_DISTRIBUTIONS = {'tcp': 'tractor-tcp', 'uds': 'tractor-uds', 'tls': 'tractor-tls'}
#: ... and for each registry store scheme (``etcd://...``)
KNOWN_STORES = {'etcd': 'tractor-etcd'}


def __getattr__(name: str) -> Any:
    # pluggy is imported only once plugins are: `import tractor` stays lean
    if name in ('hookimpl', 'hookspec'):
        from . import _hookspecs

        return getattr(_hookspecs, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


_pm: pluggy.PluginManager | None = None
_transports: dict[str, Transport] = {}
_stores: dict[str, Any] = {}


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with installed plugins loaded."""
    global _pm
    if _pm is None:
        import pluggy

        from ._hookspecs import TractorSpec

        pm = pluggy.PluginManager('tractor')
        pm.add_hookspecs(TractorSpec)
        _load_entry_points(pm)
        _pm = pm
        _transports.clear()
        for provided in pm.hook.tractor_transports():
            for tpt in provided or ():
                _transports.setdefault(tpt.proto_key, tpt)
        _stores.clear()
        for provided in pm.hook.tractor_registry_stores():
            for store in provided or ():
                _stores.setdefault(store.scheme, store)
    return _pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every installed plugin of the entry-point group. One whose
    import fails is skipped with one warning naming it and why: a broken
    plugin must not break every tractor program of the environment."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as err:
            import logging

            logging.getLogger('tractor.plugins').warning(
                'skipping the tractor plugin %r (%s): it failed to import: %s: %s',
                ep.name, ep.value, type(err).__name__, err,
            )
            continue
        pm.register(plugin, name=ep.name)


#: plugins registered in code, for children: (import path or None, why not)
_code_plugins: list[tuple[str | None, str]] = []


def _import_path(plugin: object) -> tuple[str | None, str]:
    """``'pkg.mod'`` or ``'pkg.mod:attr'`` under which a child can import
    ``plugin`` (``None`` and the reason when it cannot)."""
    import sys
    from types import ModuleType

    if isinstance(plugin, ModuleType):
        modname = plugin.__name__
        if modname in ('__main__', '__mp_main__'):
            return None, f'{plugin!r} is the main script, which a child does not import'
        return modname, ''
    modname = getattr(plugin, '__module__', None) or getattr(type(plugin), '__module__', None)
    mod = sys.modules.get(modname or '')
    if mod is None or modname in ('__main__', '__mp_main__'):
        return None, (
            f'{plugin!r} is defined in {modname or "no module"!r}, which a child '
            'cannot import: define it at module level of an importable module'
        )
    for attr, value in vars(mod).items():
        if value is plugin:
            return f'{modname}:{attr}', ''
    return None, (
        f'{plugin!r} is not a module-level name of {modname!r}: '
        'a child finds a plugin by its import path'
    )


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object (a module or an object with hook
    implementations) in this process and in every actor it spawns from now
    on: children import it by its path (``pkg.mod`` or ``pkg.mod:name``). A
    plugin children cannot import (defined in the main script, or not at
    module level) makes the next spawn fail with an error saying so."""
    pm = get_plugin_manager()
    pm.register(plugin, name=name)
    _code_plugins.append(_import_path(plugin))
    for tpt in getattr(plugin, 'tractor_transports', lambda: [])() or ():
        _transports.setdefault(tpt.proto_key, tpt)


def plugin_paths_for_children() -> list[str]:
    """The import paths of the plugins registered in code, for a child to
    load before it dials its parent; ``TypeError`` naming the plugin when
    one cannot be passed on."""
    paths = []
    for path, why in _code_plugins:
        if path is None:
            raise TypeError(f'a plugin registered with register_plugin() cannot reach child actors: {why}')
        paths.append(path)
    return paths


def load_plugin_path(path: str) -> None:
    """(in a child) Import and register a plugin its parent registered in code."""
    import importlib

    modname, _, attr = path.partition(':')
    obj: object = importlib.import_module(modname)
    if attr:
        obj = getattr(obj, attr)
    register_plugin(obj)


def installed_transports() -> dict[str, Transport]:
    """Every installed transport by protocol key (``{'tcp': ..., 'uds': ...}``),
    plugins loaded first; a copy, so changing it changes nothing."""
    get_plugin_manager()
    return dict(_transports)


def get_transport(proto_key: str) -> Transport:
    """The installed transport for ``proto_key``; ``NoTransportInstalled``
    naming what to install when there is none."""
    get_plugin_manager()
    try:
        return _transports[proto_key]
    except KeyError:
        dist = KNOWN_DISTRIBUTIONS.get(proto_key)
        have = ', '.join(sorted(_transports)) or 'none'
        hint = (
            f'install {dist!r}, e.g. `pip install {dist}`' if dist
            else f'install a plugin distribution that provides {proto_key!r}'
        )
        raise NoTransportInstalled(
            f'no transport for protocol {proto_key!r} is installed '
            f'(installed: {have}); {hint}'
        ) from None


def require_transports() -> dict[str, Transport]:
    tpts = installed_transports()
    if not tpts:
        raise NoTransportInstalled(
            'no tractor transport is installed: install one, e.g. '
            '`pip install tractor-tcp` (or `tractor-uds`), or the full '
            '`pip install tractor`'
        )
    return tpts


def is_one_address(addrs: Any) -> bool:
    """Whether ``addrs`` is a single address where a list of them may stand:
    an :class:`Address`, multiaddr text, or a plain pair such as
    ``('127.0.0.1', 1616)`` or a UDS ``('/run/dir', 'file.sock')``, as a
    tuple or as the list msgpack turns a tuple into."""
    from ._transport import Address

    if isinstance(addrs, (Address, str)):
        return True
    if not isinstance(addrs, (tuple, list)) or len(addrs) != 2 or not isinstance(addrs[0], str):
        return False
    second = addrs[1]
    return isinstance(second, int) or (
        isinstance(second, str) and addrs[0].startswith('/') and not second.startswith('/')
    ) or (isinstance(second, (tuple, list)) and not addrs[0].startswith('/'))


def _store_address(scheme: str, text: str) -> Address:
    get_plugin_manager()
    store = _stores.get(scheme)
    if store is None:
        dist = KNOWN_STORES.get(scheme)
        hint = f'install {dist!r}, e.g. `pip install {dist}`' if dist else (
            f'no installed plugin provides {scheme!r} registries'
        )
        raise NoTransportInstalled(f'cannot use the registry {text!r}: {hint}')
    return store.parse(text)


def _shape_of(addr: tuple) -> str | None:
    """Which built-in transport an address tuple looks like, for the hint
    when that transport is missing: ``(host, port)`` is TCP, ``(dir,
    file)`` UDS."""
    if len(addr) == 2 and isinstance(addr[0], str):
        if isinstance(addr[1], int) and not isinstance(addr[1], bool):
            return 'tcp'
        if isinstance(addr[1], str) and addr[0].startswith('/'):
            return 'uds'
    return None


def wrap_address(addr: Any) -> Address:
    """Turn a user-given address into an :class:`Address`.

    Accepts an ``Address``, a plain tuple such as ``('127.0.0.1', 1616)``,
    the wire form ``('tcp', [...])``, multiaddr text ``/ip4/.../tcp/...``
    or a registry store's ``scheme://...`` text (``etcd://host:2379``).
    """
    from ._transport import Address

    if isinstance(addr, Address):
        return addr
    if isinstance(addr, str) and '://' in addr:
        return _store_address(addr.split('://', 1)[0], addr)
    if (
        isinstance(addr, (tuple, list)) and len(addr) == 2 and isinstance(addr[0], str)
        and isinstance(addr[1], (tuple, list)) and len(addr[1]) == 1
        and isinstance(addr[1][0], str) and addr[1][0].startswith(addr[0] + '://')
    ):
        return _store_address(addr[0], addr[1][0])  # a store's wire form
    if isinstance(addr, tuple) and len(addr) == 1 and isinstance(addr[0], str) and '://' in addr[0]:
        return _store_address(addr[0].split('://', 1)[0], addr[0])  # its unwrap()
    tpts = require_transports()
    if isinstance(addr, str):
        parts = [p for p in addr.split('/')]
        if len(parts) < 2 or parts[0] != '' or not parts[1]:
            raise ValueError(f'not a multiaddr (must start with "/"): {addr!r}')
        # several transports may share a first component (TCP and TLS over
        # TCP both start /ip4/...): the one that parses the text is meant
        matching = [tpt for tpt in tpts.values() if parts[1] in tpt.maddr_protocols]
        if len(matching) == 1:
            return matching[0].from_maddr(parts[1:])
        errors = []
        for tpt in matching:
            try:
                return tpt.from_maddr(parts[1:])
            except ValueError as err:
                errors.append(f'as {tpt.proto_key}: {err}')
        if errors:
            raise ValueError(f'bad multiaddr {addr!r}: ' + '; '.join(errors))
        raise ValueError(
            f'unknown multiaddr protocol {parts[1]!r} in {addr!r}; '
            f'installed transports: {sorted(tpts)}'
        )
    if isinstance(addr, (tuple, list)):
        if (
            len(addr) == 2
            and isinstance(addr[0], str)
            and isinstance(addr[1], (tuple, list))
        ):
            return get_transport(addr[0]).from_tuple(addr[1])
        for tpt in tpts.values():
            if tpt.claims(tuple(addr)):
                return tpt.from_tuple(addr)
        missing = _shape_of(tuple(addr))
        if missing is not None and missing not in tpts:
            dist = KNOWN_DISTRIBUTIONS[missing]
            raise NoTransportInstalled(
                f'{addr!r} is a {missing.upper()} address, and no {missing!r} transport '
                f'is installed (installed: {sorted(tpts)}): `pip install {dist}`'
            )
        raise ValueError(
            f'no installed transport recognises the address {addr!r} '
            f'(installed: {sorted(tpts)})'
        )
    raise TypeError(f'expected an address tuple or multiaddr string, got {addr!r}')
