"""The ``'forkserver'`` spawn backend: subactors forked from a warm template.

The first actor of a tree that spawns with this method starts a fork server
(``python -m tractor._forkserver``) and owns it (``.owner``). Its children
learn the server's socket path from their ``SpawnSpec.ext`` and reuse it, so
one server serves a whole tree; an actor that has no server, or whose server
is gone, starts its own.

A spawn is one connection to the server (``.protocol``): the request (the
child's ``tractor._child`` arguments, environment, working directory, umask
and, as ``SCM_RIGHTS``, its stdio and ``pass_fds``), then the child's pid
with a pidfd, later its exit status, which :class:`~.process.ForkedProcess`
reads.

Imported on the first spawn with this method: core reaches it only
through the hooks of :mod:`.plugin`.
"""

from __future__ import annotations

import array
import os
import signal
import socket

import trio

from .. import _state
from .._exceptions import ActorFailure
from .._spawn import SPAWN_TIMEOUT
from .._spawn_trio import ChildCommand, child_command, spawn_trio
from ..log import get_logger
from .owner import tree_server
from .process import ForkedProcess
from .protocol import MAX_FDS, ForkRequest, Frames, decode_reply, fds_from_ancdata, frame

log = get_logger('forkserver')


class ServerUnavailable(Exception):
    """The fork server does not answer (gone, or never came up)."""


# -- a spawn ------------------------------------------------------------------


def _status() -> tuple[int | None, list[int]]:
    """This process's umask and the signals it ignores (``/proc``)."""
    umask: int | None = None
    ignored: list[int] = []
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    umask = int(line.split()[1], 8)
                elif line.startswith('SigIgn:'):
                    bits = int(line.split()[1], 16)
                    ignored = [n + 1 for n in range(bits.bit_length()) if bits >> n & 1]
    except (OSError, ValueError, IndexError):
        pass
    return umask, ignored


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _request(cmd: ChildCommand) -> tuple[ForkRequest, list[int]]:
    if cmd.env is None:
        env = list(os.environb.items())
    else:
        env = [(os.fsencode(k), os.fsencode(v)) for k, v in cmd.env.items()]
    try:
        cwd: bytes | None = os.getcwdb()
    except OSError:  # removed under us: the child stays where the server is
        cwd = None
    fds = [fd for fd in (0, 1, 2) if _fd_open(fd)] + list(cmd.pass_fds)
    umask, ignored = _status()
    blocked = [int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ())]
    req = ForkRequest(
        args=list(cmd.args), env=env, cwd=cwd, umask=umask, fds=fds, sigign=ignored, sigmask=blocked
    )
    return req, fds


async def _ask(path: str, cmd: ChildCommand) -> ForkedProcess | None:
    """One fork request to the server at ``path``: the child's process
    object, or ``None`` when the server says this child needs a fresh
    interpreter. Raises :class:`ServerUnavailable` when nobody answers."""
    req, fds = _request(cmd)
    data = frame(req)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    got: list[int] = []
    done = False
    # shielded (and bounded): abandoning the exchange half way could leave a
    # child running that nobody knows the pid of
    try:
        with trio.CancelScope(shield=True), trio.fail_after(SPAWN_TIMEOUT):
            try:
                await sock.connect(path)
                rights = (
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
                )
                sent = await sock.sendmsg([data], rights)
                view = memoryview(data)[sent:]
                while view:
                    view = view[await sock.send(view) :]
                frames = Frames()
                while (body := frames.next()) is None:
                    chunk, ancdata, _flags, _ = await sock.recvmsg(
                        65536, socket.CMSG_SPACE(4 * MAX_FDS)
                    )
                    got.extend(fds_from_ancdata(ancdata))
                    if not chunk:
                        raise ServerUnavailable(f'the fork server at {path} closed the request')
                    frames.feed(chunk)
            except OSError as err:  # refused, missing, reset: nobody serves there
                raise ServerUnavailable(f'no fork server at {path}: {err}') from err
            reply = decode_reply(body)
        # (after the scope: the type checker takes it for one that may end its block early)
        if 'pid' in reply and len(got) == 1:
            proc = ForkedProcess(int(reply['pid']), got.pop(), sock, frames, cmd.args)
            done = True
            return proc
        if 'fallback' in reply:
            log.info('spawning from a fresh interpreter: %s', reply['fallback'])
            return None
        raise ActorFailure(f'the fork server refused to fork: {reply.get("error", reply)!r}')
    except trio.TooSlowError:
        raise ActorFailure(
            f'the fork server at {path} did not answer within {SPAWN_TIMEOUT}s'
        ) from None
    finally:
        for fd in got:
            os.close(fd)
        if not done:
            sock.close()


async def spawn_forkserver(
    *, name: str, uuid: str, parent_addr: str, infect_asyncio: bool = False
) -> ForkedProcess | trio.Process:
    state = tree_server(_state.current_actor())
    # an infected child (``--asyncio``) is forked like any other: the server
    # runs no event loop of any kind, so the child starts a fresh asyncio one
    cmd = child_command(
        name=name, uuid=uuid, parent_addr=parent_addr, infect_asyncio=infect_asyncio
    )
    try:
        proc: ForkedProcess | None = None
        asked = False
        if state.inherited:
            try:
                proc = await _ask(state.inherited, cmd)
                asked = True
            except ServerUnavailable as err:
                log.warning("the tree's fork server is gone (%s): starting our own", err)
                state.inherited = None
        if not asked:
            own = await state.own_server()
            try:
                proc = await _ask(own.path, cmd)
            except ServerUnavailable as err:
                raise ActorFailure(
                    f'the fork server (pid {own.proc.pid}) does not answer: {err}'
                ) from err
        if proc is not None:
            return proc
    finally:
        cmd.close_fds()
    # the environment changed in ways a fork cannot honour
    return await spawn_trio(
        name=name, uuid=uuid, parent_addr=parent_addr, infect_asyncio=infect_asyncio
    )
