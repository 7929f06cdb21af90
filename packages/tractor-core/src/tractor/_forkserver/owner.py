"""A tree's fork server: started by the first actor of the tree that spawns
with ``'forkserver'`` (its *owner*), reused by every descendant that learnt
its path from its ``SpawnSpec``, stopped with the owner's runtime.

An actor keeps its :class:`TreeForkServer` in ``actor.extensions``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import trio

from .._exceptions import ActorFailure
from .._paths import runtime_dir
from .._proctitle import room_arg
from .._spawn_trio import child_env
from ..log import get_logger
from . import EXTENSION
from .protocol import TITLE_ROOM

if TYPE_CHECKING:
    from .._runtime import Actor

log = get_logger('forkserver')

#: how long an owner waits for its server to exit before killing it
SERVER_EXIT_GRACE = 3.0


class _OwnServer:
    """A fork server this process started and owns."""

    def __init__(self, path: str, proc: trio.Process, control: socket.socket) -> None:
        self.path = path
        self.proc = proc
        self.control = control

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def shutdown(self, grace: float = SERVER_EXIT_GRACE) -> None:
        """Close the control connection (the server stops accepting and exits
        once its children are reaped), wait a bounded time, then kill."""
        self.control.close()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(grace):
                await self.proc.wait()
            if self.proc.returncode is None:
                log.warning(
                    'fork server (pid %d) still has children %.1fs after its '
                    'owner finished: killing it',
                    self.proc.pid,
                    grace,
                )
                self.proc.kill()
                await self.proc.wait()
        try:
            os.unlink(self.path)
        except OSError:
            pass


async def _start_server() -> _OwnServer:
    path = os.path.join(runtime_dir(), f'forkserver-{os.getpid()}-{secrets.token_hex(4)}.sock')
    if len(os.fsencode(path)) > 107:
        raise ActorFailure(
            f'the fork server socket path {path!r} is too long for a unix socket; '
            'set TRACTOR_RUNTIME_DIR to a shorter directory'
        )
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # bound and listening before the server runs: requests queue in the
        # backlog while it boots, nobody waits for a "ready" signal
        listener.bind(path)
        listener.listen(256)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    '-m',
                    'tractor._forkserver',
                    '--listen-fd',
                    str(listener.fileno()),
                    '--control-fd',
                    str(theirs.fileno()),
                    # room for each child's own title (see tractor._proctitle)
                    room_arg(TITLE_ROOM),
                ],
                pass_fds=(listener.fileno(), theirs.fileno()),
                # children get their requester's stdio; the server itself
                # only ever writes its own errors to stderr
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=child_env(),
            )
        except BaseException:
            ours.close()
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        finally:
            theirs.close()
    finally:
        listener.close()
    log.debug('started fork server pid %d at %s', proc.pid, path)
    return _OwnServer(path, proc, ours)


class TreeForkServer:
    """Per-actor state: the server inherited from the parent, and the one
    this actor started itself (if any)."""

    def __init__(self, inherited: str | None = None) -> None:
        self.inherited = inherited
        self.own: _OwnServer | None = None
        self._lock: trio.Lock | None = None

    def path_for_children(self) -> str | None:
        if self.own is not None and self.own.alive:
            return self.own.path
        return self.inherited

    async def own_server(self) -> _OwnServer:
        if self._lock is None:
            self._lock = trio.Lock()
        async with self._lock:
            if self.own is not None and not self.own.alive:
                old, self.own = self.own, None
                log.warning(
                    'fork server (pid %d) exited with %s: starting a new one',
                    old.proc.pid,
                    old.proc.returncode,
                )
                await old.shutdown(0)
            if self.own is None:
                # shielded: a server started but not recorded would be nobody's
                with trio.CancelScope(shield=True):
                    self.own = await _start_server()
            # (nobody cancels that scope: the block ran to its end)
            assert self.own is not None
            return self.own


def tree_server(actor: Actor) -> TreeForkServer:
    state = actor.extensions.get(EXTENSION)
    if state is None:
        state = actor.extensions[EXTENSION] = TreeForkServer()
    return state


def inherit(actor: Actor, path: str | None) -> None:
    """Record the tree's server path from this actor's ``SpawnSpec``."""
    if path:
        tree_server(actor).inherited = path


def path_for_children(actor: Actor) -> str | None:
    """The server a child of ``actor`` should reuse (for its ``SpawnSpec``)."""
    state = actor.extensions.get(EXTENSION)
    return state.path_for_children() if state is not None else None
