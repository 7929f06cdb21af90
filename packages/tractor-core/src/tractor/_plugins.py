"""The hook specifications and the one plugin manager of this process.

Every feature beyond the bare runtime arrives as a plugin of the
``tractor`` entry-point group: transports (``tractor-tcp``, ``tractor-uds``),
discovery (``tractor-discovery``) and any third party's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

    from ._transport import Transport

ENTRY_POINT_GROUP = 'tractor'


def __getattr__(name: str) -> Any:
    # pluggy is imported only once plugins are: `import tractor` stays lean
    if name in ('hookimpl', 'hookspec'):
        from . import _hookspecs

        return getattr(_hookspecs, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


_pm: pluggy.PluginManager | None = None
_transports: dict[str, Transport] = {}
#: the installed transports and registry stores, by protocol key and
#: scheme, filled as plugins are registered (read through tractor._transport)
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
                ep.name,
                ep.value,
                type(err).__name__,
                err,
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

    modname: str | None
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


def unregister_plugin(plugin: object) -> None:
    """Undo :func:`register_plugin`: this process stops using ``plugin``
    (its transports included) and actors spawned from now on no longer
    load it. For a plugin that must not outlive a block, e.g. a test's."""
    pm = get_plugin_manager()
    pm.unregister(plugin)
    path = _import_path(plugin)
    if path in _code_plugins:
        _code_plugins.remove(path)
    for tpt in getattr(plugin, 'tractor_transports', lambda: [])() or ():
        key = tpt.proto_key
        if _transports.get(key) is tpt:
            del _transports[key]


def plugin_paths_for_children() -> list[str]:
    """The import paths of the plugins registered in code, for a child to
    load before it dials its parent; ``TypeError`` naming the plugin when
    one cannot be passed on."""
    paths = []
    for path, why in _code_plugins:
        if path is None:
            raise TypeError(
                f'a plugin registered with register_plugin() cannot reach child actors: {why}'
            )
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
