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
        from ._hookspecs import TractorSpec

        pm = _manager_class()('tractor')
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


def _manager_class() -> type[pluggy.PluginManager]:
    import inspect
    from types import ModuleType

    import pluggy

    class Manager(pluggy.PluginManager):
        def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
            # most names of a plugin module are its imports and constants:
            # skip what is not a function before pluggy's own (static,
            # descriptor-safe, and much slower) look, which registering
            # every plugin at boot paid for each name
            if isinstance(plugin, ModuleType) and not inspect.isroutine(vars(plugin).get(name)):
                return None
            return super().parse_hookimpl_opts(plugin, name)

    return Manager


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every installed plugin of the entry-point group. One whose
    import fails is skipped with one warning naming it and why: a broken
    plugin must not break every tractor program of the environment."""
    from importlib import import_module

    for name, value in installed_entry_points(ENTRY_POINT_GROUP):
        if pm.get_plugin(name) is not None or pm.is_blocked(name):
            continue
        try:
            modname, _, attrs = value.partition(':')
            plugin: Any = import_module(modname.strip())
            for attr in filter(None, attrs.strip().split('.')):
                plugin = getattr(plugin, attr)
        except Exception as err:
            import logging

            logging.getLogger('tractor.plugins').warning(
                'skipping the tractor plugin %r (%s): it failed to import: %s: %s',
                name,
                value,
                type(err).__name__,
                err,
            )
            continue
        pm.register(plugin, name=name)


def installed_entry_points(group: str) -> list[tuple[str, str]]:
    """``(name, value)`` of every installed entry point of ``group``, as
    ``importlib.metadata.entry_points(group=...)`` lists them: the first
    distribution of a name on ``sys.path`` wins.

    It reads the ``entry_points.txt`` of each ``*.dist-info`` (and
    ``*.egg-info``) directory itself: importing ``importlib.metadata``
    (``email``, ``zipfile``, ``csv``...) and building its distribution
    objects was half of a root actor's boot. A ``sys.path`` entry that is
    not a plain directory (a zip) makes it ask ``importlib.metadata``."""
    import os
    import sys

    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for entry in sys.path:
        where = entry or '.'
        if not os.path.isdir(where):
            if os.path.exists(where):
                from importlib.metadata import entry_points

                return [(ep.name, ep.value) for ep in entry_points(group=group)]
            continue
        try:
            names = os.listdir(where)
        except OSError:
            continue
        for child in names:
            if not child.endswith(('.dist-info', '.egg-info')):
                continue
            dist = child.rpartition('.')[0].partition('-')[0].lower().replace('-', '_')
            dist = dist.replace('.', '_')
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(where, child, 'entry_points.txt'), encoding='utf-8') as f:
                    text = f.read()
            except OSError:
                continue
            found += _parse_entry_points(text, group)
    return found


def _parse_entry_points(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of section ``[group]`` of an
    ``entry_points.txt`` (an INI file)."""
    out: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1].strip()
        elif section == group and '=' in line:
            name, _, value = line.partition('=')
            out.append((name.strip(), value.strip()))
    return out


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
