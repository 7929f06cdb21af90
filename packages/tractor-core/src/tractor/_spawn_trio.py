"""The ``'trio'`` spawn backend: a fresh interpreter running ``tractor._child``.

:func:`child_command` is the one description of how a subactor is started
(its ``tractor._child`` arguments, the fds it inherits, its environment);
the fork-server backend (``tractor._forkserver.backend``) starts its children
from the same description, so both stay in step.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

import trio

from . import _secret, _state
from ._plugins import hookimpl, plugin_paths_for_children
from ._proctitle import actor_room, room_arg
from ._reaper import reaper
from ._spawn import FALLBACK_START_METHOD, SpawnBackend

#: what a subactor runs: ``python -m tractor._child <args>``
CHILD_MODULE = 'tractor._child'


class ChildCommand(NamedTuple):
    #: the arguments after ``python -m tractor._child``
    args: list[str]
    #: fds the child inherits under the same numbers (``subprocess``'s
    #: ``pass_fds``); the spawner closes its copies once the child started
    pass_fds: tuple[int, ...] = ()
    #: the child's environment; ``None``: this process's own
    env: dict[str, str] | None = None

    def close_fds(self) -> None:
        for fd in self.pass_fds:
            try:
                os.close(fd)
            except OSError:
                pass


def child_env() -> dict[str, str] | None:
    """The environment a subactor (or a fork server) starts with; ``None``
    means this process's own, unchanged. ``TRACTOR_SECRET`` is dropped: the
    secret goes down the child's own pipe (see :func:`child_command`)."""
    return _secret.child_env()


def child_command(
    *, name: str, uuid: str, parent_addr: str, infect_asyncio: bool = False
) -> ChildCommand:
    """How to start the subactor ``(name, uuid)`` that dials ``parent_addr``
    (``infect_asyncio``: as a trio guest on an asyncio loop, ``--asyncio``).

    The tree's secret goes down an inherited pipe that only this child holds
    (``--secret-fd``), never argv or the environment (see tractor._secret): the
    child must authenticate to its parent before it gets its SpawnSpec. The
    same pipe carries the spawn's token (the parent's ``SpawnWaiter`` for
    ``(name, uuid)``), which the child proves to get its SpawnSpec.
    """
    plugins = [arg for path in plugin_paths_for_children() for arg in ('--plugin', path)]
    actor = _state.current_actor(err_on_no_runtime=False)
    waiter = actor._spawning.get((name, uuid)) if actor is not None else None
    token = waiter.token if waiter is not None else os.urandom(_secret.SPAWN_TOKEN_SIZE)
    secret_fd = _secret.secret_pipe(_secret.current_secret(), token)
    return ChildCommand(
        args=[
            '--name',
            name,
            '--uuid',
            uuid,
            '--parent',
            parent_addr,
            '--secret-fd',
            str(secret_fd),
            *(['--asyncio'] if infect_asyncio else []),
            *plugins,
        ],
        pass_fds=(secret_fd,),
        env=child_env(),
    )


async def spawn_trio(
    *, name: str, uuid: str, parent_addr: str, infect_asyncio: bool = False
) -> trio.Process:
    cmd = child_command(
        name=name, uuid=uuid, parent_addr=parent_addr, infect_asyncio=infect_asyncio
    )
    actor = _state.current_actor(err_on_no_runtime=False)
    if actor is not None:
        # the child's own children are this process's if the child dies
        # first (see tractor._reaper)
        reaper.spawning(actor, uuid)
    try:
        return await trio.lowlevel.open_process(
            # room for the child's process title (see tractor._proctitle)
            [sys.executable, '-m', CHILD_MODULE, *cmd.args, room_arg(actor_room(name, uuid))],
            pass_fds=cmd.pass_fds,
            env=cmd.env,
        )
    except BaseException:
        reaper.exited(uuid)
        raise
    finally:
        cmd.close_fds()


@hookimpl
def tractor_spawn_methods() -> dict[str, SpawnBackend]:
    # runs anywhere; priority 0, core's fallback (see _spawn.default_start_method)
    return {FALLBACK_START_METHOD: SpawnBackend(spawn_trio)}
