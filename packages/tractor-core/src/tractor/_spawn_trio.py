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
    """How to start the subactor ``(name, uuid)`` of the parent listening
    at ``parent_addr`` (``infect_asyncio``: as a trio guest on an asyncio
    loop, ``--asyncio``).

    The tree's secret goes down an inherited pipe that only this child holds
    (``--secret-fd``), never argv or the environment (see tractor._secret).
    The same pipe carries the spawn's token (the parent's ``SpawnWaiter`` for
    ``(name, uuid)``). When this process is spawning that child, the child
    also inherits its end of a socket pair whose other end the parent serves
    (``--parent-fd``): its channel to the parent, connected before it starts,
    with a session keyed from the secret and the token, so it neither dials
    nor runs the preamble. Without it (a backend that cannot pass fds) the
    child dials ``parent_addr``, authenticates and proves the token.
    """
    plugins = [arg for path in plugin_paths_for_children() for arg in ('--plugin', path)]
    actor = _state.current_actor(err_on_no_runtime=False)
    waiter = actor._spawning.get((name, uuid)) if actor is not None else None
    token = waiter.token if waiter is not None else os.urandom(_secret.SPAWN_TOKEN_SIZE)
    secret_fd = _secret.secret_pipe(_secret.current_secret(), token)
    fds = [secret_fd]
    inherited = []
    if waiter is not None:
        # the child's channel to its parent, connected before it starts:
        # it need not dial ``parent_addr`` and authenticate (the pair's
        # session comes from the secret and the token, Session.for_spawn)
        fds.append(waiter.socket_pair().detach())
        inherited = ['--parent-fd', str(fds[-1])]
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
            *inherited,
            *(['--asyncio'] if infect_asyncio else []),
            *plugins,
        ],
        pass_fds=tuple(fds),
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
