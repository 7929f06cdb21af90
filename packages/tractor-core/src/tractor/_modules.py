"""An actor's RPC allowlist: which modules it serves and what a peer may call.

Functions are never pickled: a peer names ``module:function``, and the
target runs it only if the module is enabled there and the function passes
:func:`resolve`'s rules. Modules the parent imported by path (a ``__main__``
script, a test file) are loaded from that path under a non-main name, so
``if __name__ == '__main__':`` blocks do not run in children.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType

from ._exceptions import ModuleNotExposed

#: a module may list what peers can call in it (names, e.g. a tuple of
#: str): then exactly those, imported or ``_private`` ones included;
#: without it, the public functions it defines itself
EXPORTS = '__tractor_exports__'
_MAIN_NAMES = ('__main__', '__mp_main__')


def normalize_ns(ns: str) -> str:
    """The name a module is enabled and called under (a script's
    ``__mp_main__`` is its ``__main__``)."""
    return '__main__' if ns in _MAIN_NAMES else ns


def load(
    names: list[str], mods: dict[str, ModuleType], module_paths: dict[str, str], is_root: bool
) -> None:
    """Import each of ``names`` not in ``mods`` yet into ``mods`` (so a bad
    name fails the spawn, not the first call)."""
    for name in names:
        if name not in mods:
            mods[name] = import_enabled(name, module_paths, is_root)
    main = mods.get('__main__')
    if main is not None:
        # the script is also served under its importable name, so a
        # program that imported it (`import tree_script`) can call
        # `portal.run(tree_script.fn)`
        alias = importable_name(main)
        if alias and alias not in mods:
            mods[alias] = main


def import_enabled(name: str, module_paths: dict[str, str], is_root: bool) -> ModuleType:
    """Import the enabled module ``name``: by name, else from the file the
    parent had it from (``module_paths``); ``__main__`` is the root's main
    script in every actor of the tree."""
    if name == '__main__':
        if is_root:
            return sys.modules['__main__']
        if '__mp_main__' in sys.modules:
            return sys.modules['__mp_main__']
        modname = module_paths.get('__main__:module')
        if modname:  # the parent ran `python -m modname`
            return importlib.import_module(modname)
        path = module_paths.get('__main__')
        if not path:
            raise ModuleNotFoundError(
                'the parent enabled `__main__` but has no main script file to load'
            )
        return load_from_path('__mp_main__', path)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        path = module_paths.get(name)
        if not path:
            raise
        return load_from_path(name, path)


def resolve(
    actor_name: str, mods: dict[str, ModuleType], methods: dict[str, Callable], ns: str, func: str
) -> Callable:
    """The function a peer asked for as ``ns:func``, or
    :class:`ModuleNotExposed` saying why it may not call it (``ns='self'``:
    the runtime methods in ``methods``)."""
    if ns == 'self':
        try:
            return methods[func]
        except KeyError:
            raise ModuleNotExposed(f'actor {actor_name!r} has no runtime method {func!r}') from None
    ns = normalize_ns(ns)
    mod = mods.get(ns)
    if mod is None:
        raise ModuleNotExposed(
            f'module {ns!r} is not enabled in actor {actor_name!r}; '
            f'enabled: {sorted(mods)} (pass it in `enable_modules=[...]`)'
        )
    if not func.isidentifier() or func.startswith('__'):
        raise ModuleNotExposed(f'{func!r} is not a function name that can be called')
    exports = getattr(mod, EXPORTS, None)
    if exports is not None:
        # the module's own list decides, either way (widen or narrow)
        if isinstance(exports, str) or func not in exports:
            raise ModuleNotExposed(
                f'{ns}.{func} is not in {ns}.{EXPORTS}, the list of what {ns!r} lets peers call'
            )
    elif func.startswith('_'):
        raise ModuleNotExposed(
            f'{ns}.{func} is private (its name starts with "_"); list it in '
            f'{ns}.{EXPORTS} to let peers call it'
        )
    fn = getattr(mod, func, None)
    if fn is None or not callable(fn) or isinstance(fn, type):
        raise AttributeError(f'module {ns!r} has no function {func!r}')
    if exports is None and getattr(fn, '__module__', None) != mod.__name__:
        # e.g. `from os import system` in an enabled module: a name it
        # imported is not a function it defines
        raise ModuleNotExposed(
            f'{ns}.{func} is defined in {getattr(fn, "__module__", None)!r}, not in '
            f'{ns!r}: only functions an enabled module defines are callable '
            f'(list it in {ns}.{EXPORTS} to let peers call it)'
        )
    return fn


def importable_name(mod: ModuleType) -> str | None:
    """The name a main script is importable under from ``sys.path`` (run
    as ``python pkg/tree.py`` from the directory above: ``pkg.tree``), or
    ``None`` when there is none."""
    spec = getattr(mod, '__spec__', None)
    if spec is not None and spec.name not in _MAIN_NAMES:
        return spec.name  # run with `python -m ...`, or loaded by name
    path = getattr(mod, '__file__', None)
    if not path or not path.endswith('.py'):
        return None
    path = os.path.abspath(path)
    for entry in sys.path:
        base = os.path.join(os.path.abspath(entry or '.'), '')
        if path.startswith(base):
            parts = path[len(base) : -3].split(os.sep)
            if parts[-1] == '__init__':
                parts.pop()
            if parts and all(p.isidentifier() for p in parts):
                return '.'.join(parts)
    return None


def load_from_path(name: str, path: str) -> ModuleType:
    """Load a module from its file under ``name`` (for ``__main__`` scripts
    and modules the parent imported by path), without running its
    ``if __name__ == '__main__':`` block."""
    import importlib.util  # (only this path needs it; not at `import tractor`)

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f'cannot load module {name!r} from {path!r}')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod
