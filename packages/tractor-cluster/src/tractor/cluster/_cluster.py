from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from multiprocessing import cpu_count
from typing import Any

import trio

import tractor
from tractor import Portal

# the options still accepted inside a running actor (defaults for the workers)
from tractor.plugin import NURSERY_OPTIONS as _NURSERY_OPTIONS


@asynccontextmanager
async def open_actor_cluster(
    modules: list[str],
    count: int = cpu_count(),
    names: list[str] | None = None,
    hard_kill: bool = False,
    *,
    strategy: str | None = None,
    max_restarts: int | None = None,
    within: float | None = None,
    **runtime_kwargs: Any,
) -> AsyncIterator[dict[str, Portal]]:
    """Spawn ``count`` workers at once, each serving ``modules``, and yield
    ``{'<spawner>.<worker name>': portal}``; the fleet is cancelled on exit
    (killed outright with ``hard_kill=True``).

    The key is the worker's actor name too (``current_actor().name``, its
    uid and its registry entry: ``find_actor('root.worker_0')`` reaches it).

    With any of ``strategy``, ``max_restarts`` or ``within`` the fleet runs
    under a supervisor (``tractor.open_supervisor``, defaults
    ``'one_for_one'``, 3, 5.0): a worker that ends is restarted under its
    name, the portals follow it, and too many restarts raise
    ``tractor.TooManyRestarts`` from the block. Without them, a plain actor
    nursery as before.

    With no runtime running, ``runtime_kwargs`` go to ``open_root_actor()``
    verbatim; inside an actor only ``start_method``, ``loglevel`` and
    ``debug_mode`` are accepted. ``infect_asyncio=True`` (taken by the
    cluster itself, wherever it runs; the seed's signature keeps it among
    ``runtime_kwargs``) starts every worker as a trio guest of an asyncio
    loop (see ``tractor.to_asyncio``).
    """
    infect_asyncio = runtime_kwargs.pop('infect_asyncio', False)
    if not isinstance(infect_asyncio, bool):
        raise TypeError(f'infect_asyncio must be a bool, got {infect_asyncio!r}')
    if isinstance(modules, str) or not isinstance(modules, (list, tuple)):
        raise TypeError(f'modules must be a list of module names, got {modules!r}')
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f'count must be an int >= 1, got {count!r}')
    if names is None:
        names = [f'worker_{i}' for i in range(count)]
    else:
        names = list(names)
        if len(names) != count:
            raise ValueError(
                f'got {len(names)} names for count={count}: pass exactly one name per worker'
            )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f'worker names must be unique, repeated: {dupes}')
        for n in names:
            if not isinstance(n, str) or not n:
                raise ValueError(f'worker names must be non-empty strings, got {n!r}')

    actor = tractor.current_actor(err_on_no_runtime=False)
    if actor is not None:
        bad = sorted(set(runtime_kwargs) - set(_NURSERY_OPTIONS))
        if bad:
            raise TypeError(
                f'open_actor_cluster() got {bad} inside the running actor '
                f'{actor.name!r}: those are open_root_actor() options, fixed when '
                f'the runtime booted; here only {list(_NURSERY_OPTIONS)} apply '
                f'(as defaults for the workers)'
            )

    supervised: dict[str, Any] = {
        k: v
        for k, v in (('strategy', strategy), ('max_restarts', max_restarts), ('within', within))
        if v is not None
    }
    opener = partial(tractor.open_supervisor, **supervised) if supervised else tractor.open_nursery
    async with opener(**runtime_kwargs) as an:
        prefix = tractor.current_actor().name
        portals: dict[str, Portal] = {}

        async def spawn(name: str) -> None:
            portals[name] = await an.start_actor(
                f'{prefix}.{name}', enable_modules=list(modules), infect_asyncio=infect_asyncio
            )

        try:
            # a worker failing to boot cancels the other spawns; a lone
            # failure is raised as itself (several arrive together in a group)
            async with tractor.trionics.collapse_eg(), trio.open_nursery() as tn:
                for name in names:
                    tn.start_soon(spawn, name)
            yield {f'{prefix}.{name}': portals[name] for name in names}
        finally:
            # every exit (spawn failure included) tears the fleet down the
            # way the caller asked: graceful ladder, or a kill with hard_kill
            await an.cancel(hard_kill=hard_kill)
