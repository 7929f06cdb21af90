"""The fork-server wing's plugin (entry point ``spawn-forkserver``): the
hooks core calls, and nothing heavier than they need.

Every process that loads plugins imports this module at its first boot, most
of them never spawning with ``'forkserver'``: the request protocol, the
server's owner and the process handle (:mod:`.backend`, :mod:`.owner`,
:mod:`.process`, :mod:`.protocol`) are imported on the first spawn, or when
a ``SpawnSpec`` names the tree's server.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from .._plugins import hookimpl
from .._spawn import SpawnBackend
from . import EXTENSION

if TYPE_CHECKING:
    import trio

    from .._runtime import Actor
    from .process import ForkedProcess

METHOD = 'forkserver'
#: preferred over core's ``'trio'`` (0) wherever it can run
PRIORITY = 10

_supported: bool | None = None


def supported() -> bool:
    """Linux with pidfds (kernel 5.3+) and fd passing."""
    global _supported
    if _supported is None:
        ok = (
            sys.platform.startswith('linux')
            and hasattr(os, 'pidfd_open')
            and hasattr(signal, 'pidfd_send_signal')
            and hasattr(socket, 'send_fds')
        )
        if ok:
            try:
                os.close(os.pidfd_open(os.getpid()))
            except OSError:
                ok = False
        _supported = ok
    return _supported


async def _spawn(
    *, name: str, uuid: str, parent_addr: str, infect_asyncio: bool = False
) -> ForkedProcess | trio.Process:
    from .backend import spawn_forkserver

    return await spawn_forkserver(
        name=name, uuid=uuid, parent_addr=parent_addr, infect_asyncio=infect_asyncio
    )


#: this wing's backend: preferred wherever it can run (``supported`` caches its probe)
BACKEND = SpawnBackend(
    _spawn, available=supported, priority=PRIORITY, needs='Linux 5.3+ with pidfds'
)


@hookimpl
def tractor_spawn_methods() -> dict[str, SpawnBackend]:
    return {METHOD: BACKEND}


@hookimpl
def tractor_spawn_spec_ext(actor: Actor) -> dict[str, Any] | None:
    """Every child learns the tree's server (whatever backend started it),
    so descendants that spawn with ``'forkserver'`` reuse it."""
    state = actor.extensions.get(EXTENSION)
    path = state.path_for_children() if state is not None else None
    return {EXTENSION: path} if path else None


@hookimpl
def tractor_spawn_spec_ext_received(actor: Actor, ext: dict[str, Any]) -> None:
    path = ext.get(EXTENSION)
    if path:
        from .owner import inherit

        inherit(actor, path)


@hookimpl
def tractor_actor_serving(actor: Actor) -> AbstractAsyncContextManager[None]:
    """The owner shuts its fork server down at its runtime teardown (every
    child it spawned is reaped by then)."""
    return _stopped_with(actor)


@asynccontextmanager
async def _stopped_with(actor: Actor) -> AsyncIterator[None]:
    try:
        yield
    finally:
        # set only by owner.tree_server(), once this actor spawned or inherited
        state = actor.extensions.get(EXTENSION)
        if state is not None and state.own is not None:
            own, state.own = state.own, None
            await own.shutdown()
