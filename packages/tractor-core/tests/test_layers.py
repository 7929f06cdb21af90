"""Core's import graph: no cycles, and no module reaching up a layer.

The graph is read from the source (``ast``), with the imports made inside
functions counted as edges too: a function-level import that closes a
cycle only hides it until that function runs. Imports under
``if TYPE_CHECKING:`` are annotations, not edges. The layers are the
picture in ``docs/architecture.md``; a module may import its own layer and
the ones below it.
"""

from __future__ import annotations

import ast
import pathlib

import tractor

SRC = pathlib.Path(tractor.__file__).parent

#: bottom to top; every core module belongs to exactly one
LAYERS: dict[str, tuple[str, ...]] = {
    'base': (
        '_exceptions',
        '_settings',
        '_state',
        '_paths',
        '_proctitle',
        '_limits',
        '_extras',
        'log',
        'trionics',
    ),
    'ipc': (
        '_msg',
        '_hookspecs',
        '_plugins',
        '_transport',
        '_sockio',
        '_secret',
        '_session',
        '_auth',
        '_ipc',
        '_boxing',
    ),
    'runtime': (
        'to_asyncio',
        '_aio_task',
        '_aio_channel',
        '_stack',
        '_inbox',
        '_inline',
        '_call',
        '_debugger',
        '_context',
        '_stream',
        '_caller',
        '_invoke',
        '_modules',
        '_portal',
        '_gen_stream',
        '_dial',
        '_accept',
        '_runtime',
        '_lifetime',
        'msg',
    ),
    'spawning': (
        '_spawn',
        '_spawn_trio',
        '_child',
        '_root',
        '_cancel_ladder',
        '_supervise',
        '_nursery',
        '_supervisor',
        '_watcher',
        '_supervised',
        '_restarts',
        '_lifeline',
        '_reaper',
    ),
    # wings: each a plugin of the hooks, or a public library over the runtime
    'wings': ('debug', 'devx', '_forkserver', 'plugin'),
    'api': ('__init__', '__main__'),
}


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in SRC.rglob('*.py'):
        rel = path.relative_to(SRC).with_suffix('')
        parts = list(rel.parts)
        if parts[-1] == '__init__' and len(parts) > 1:
            parts.pop()
        mods['.'.join(parts)] = path
    return mods


def _layer_of(mod: str) -> int:
    top = mod.split('.')[0]
    for rank, names in enumerate(LAYERS.values()):
        if top in names:
            return rank
    raise AssertionError(f'tractor.{mod} is in no layer of {__name__}.LAYERS: add it')


def _imports(mod: str, path: pathlib.Path, mods: dict) -> set[tuple[str, int]]:
    """The core modules ``mod`` imports, with the line of each import."""
    here = mod.split('.') if mod != '__init__' else []
    pkg = here if path.name == '__init__.py' else here[:-1]
    edges: set[tuple[str, int]] = set()
    todo: list[tuple[ast.AST, bool]] = [(ast.parse(path.read_text()), False)]
    while todo:
        node, typing_only = todo.pop()
        for child in ast.iter_child_nodes(node):
            tc = typing_only or (
                isinstance(child, ast.If) and 'TYPE_CHECKING' in ast.unparse(child.test)
            )
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = pkg[: len(pkg) - (child.level - 1)]
                    name = '.'.join(['tractor', *base, *([child.module] if child.module else [])])
                else:
                    name = child.module or ''
                # `from pkg import x`: the submodule pkg.x if there is one,
                # else the name x of pkg itself
                targets = [
                    f'{name}.{a.name}' if f'{name}.{a.name}'[len('tractor.') :] in mods else name
                    for a in child.names
                ]
            if not tc:
                for target in targets:
                    if target == 'tractor':
                        target = 'tractor.__init__'
                    if not target.startswith('tractor.'):
                        continue
                    target = target[len('tractor.') :]
                    while target and target not in mods:
                        target = target.rpartition('.')[0]
                    if target and target != mod:
                        edges.add((target, child.lineno))
            todo.append((child, tc))
    return edges


def _edges() -> dict[str, set[tuple[str, int]]]:
    """``{module: {(imported core module, line)}}``, function-level included."""
    mods = _modules()
    return {mod: _imports(mod, path, mods) for mod, path in mods.items()}


def test_core_import_graph_has_no_cycles():
    graph = {m: {t for t, _ in e} for m, e in _edges().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan's
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    assert not cycles, f'import cycles in tractor core: {cycles}'


def test_no_module_imports_a_higher_layer():
    """Also: core's runtime and spawning layers reach the fork server and the
    debugger (wings) only through the plugin hooks."""
    upward = []
    for mod, edges in sorted(_edges().items()):
        for target, line in sorted(edges):
            if _layer_of(target) > _layer_of(mod):
                upward.append(f'tractor/{mod}:{line} imports tractor.{target}')
    assert not upward, 'imports against the layering:\n' + '\n'.join(upward)
