"""The ``'forkserver'`` spawn backend: subactors forked from a warm template.

The first actor of a tree that spawns with this method starts a fork server
(``python -m tractor._forkserver``, see there) and owns it: it holds the
server's control connection and shuts it down at its own runtime teardown.
Its children learn the server's socket path from their ``SpawnSpec`` and
reuse it, so one server serves a whole tree; an actor that has no server, or
whose server is gone, starts its own.

A spawn is one connection to the server: the request (the child's
``tractor._child`` arguments, environment, working directory, umask and,
as ``SCM_RIGHTS``, its stdio and ``pass_fds``), then the child's pid with a
pidfd, later its exit status. :class:`ForkedProcess` wraps that connection
in the part of ``trio.Process``'s API the supervisor uses.
"""
from __future__ import annotations

import array
import os
import secrets
import signal
import socket
import subprocess
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator

import trio

from ._exceptions import ActorFailure
from ._plugins import hookimpl
from ._spawn_trio import ChildCommand, child_command, child_env, spawn_trio
from .log import get_logger

if TYPE_CHECKING:
    from ._forkserver import ForkRequest, Frames
    from ._runtime import Actor

log = get_logger('forkserver')

METHOD = 'forkserver'
#: where an actor keeps its :class:`TreeForkServer` (``actor.extensions``)
EXTENSION = 'forkserver'
#: ``returncode`` of a child whose server vanished before reporting it
UNKNOWN_EXIT = 255
#: how long an owner waits for its server to exit before killing it
SERVER_EXIT_GRACE = 3.0


class ServerUnavailable(Exception):
    """The fork server does not answer (gone, or never came up)."""


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


# -- the requester's view of a forked child -------------------------------------

class ForkedProcess:
    """A child forked by the fork server, with the ``trio.Process`` API the
    actor nursery uses: ``pid``, ``returncode``, ``await wait()``, ``kill()``,
    ``terminate()``, ``send_signal()``, ``poll()``.

    The exit status arrives on the request's connection (the server is the
    child's OS parent and reaps it). Signals go through a pidfd the server
    opened right after the fork, so a recycled pid is never signalled.
    ``returncode`` is set by ``wait()``.
    """

    def __init__(
        self, pid: int, pidfd: int, sock: trio.socket.SocketType, frames: Frames, args: list[str],
    ) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self._pidfd: int | None = pidfd
        self._sock: trio.socket.SocketType | None = sock
        self._frames = frames
        self._wait_lock = trio.Lock()

    def __repr__(self) -> str:
        state = 'running' if self.returncode is None else f'exited with {self.returncode}'
        return f'<ForkedProcess pid={self.pid} {state}>'

    async def wait(self) -> int:
        async with self._wait_lock:
            if self.returncode is None:
                self._exited(await self._read_exit())
        assert self.returncode is not None
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode

    async def _read_exit(self) -> int:
        from ._forkserver import decode_reply

        assert self._sock is not None and self._pidfd is not None
        try:
            while True:
                body = self._frames.next()
                if body is not None:
                    reply = decode_reply(body)
                    if 'exit' in reply:
                        return int(reply['exit'])
                    continue
                data = await self._sock.recv(4096)
                if not data:
                    break
                self._frames.feed(data)
        except OSError:
            pass
        # the server died without reporting: the child is init's now; its
        # pidfd still says when it ends, but its status is lost
        await trio.lowlevel.wait_readable(self._pidfd)
        log.warning('fork server gone: exit status of pid %d unknown', self.pid)
        return UNKNOWN_EXIT

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._pidfd is not None:
            fd, self._pidfd = self._pidfd, None
            try:
                trio.lowlevel.notify_closing(fd)
            except RuntimeError:  # outside trio (garbage collection)
                pass
            os.close(fd)

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None or self._pidfd is None:
            return
        try:
            signal.pidfd_send_signal(self._pidfd, sig)
        except ProcessLookupError:  # exited, not reported yet
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def aclose(self) -> None:
        """Wait for the process; kill it if this wait is cancelled."""
        try:
            await self.wait()
        finally:
            if self.returncode is None:
                self.kill()
                with trio.CancelScope(shield=True):
                    await self.wait()

    def __del__(self) -> None:
        if self._pidfd is not None:
            try:
                os.close(self._pidfd)
            except OSError:
                pass
            self._pidfd = None


# -- one tree's server --------------------------------------------------------

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
                log.warning('fork server (pid %d) still has children %.1fs after its '
                            'owner finished: killing it', self.proc.pid, grace)
                self.proc.kill()
                await self.proc.wait()
        try:
            os.unlink(self.path)
        except OSError:
            pass


async def _start_server() -> _OwnServer:
    # imported here, not at the top: the package must not import the module
    # that `python -m tractor._forkserver` runs as __main__
    from ._forkserver import TITLE_ROOM
    from ._paths import runtime_dir

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
                    sys.executable, '-m', 'tractor._forkserver',
                    '--listen-fd', str(listener.fileno()),
                    '--control-fd', str(theirs.fileno()),
                    # room to show each child's own command line (see set_cmdline)
                    '--title-room=' + ' ' * TITLE_ROOM,
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
                log.warning('fork server (pid %d) exited with %s: starting a new one',
                            old.proc.pid, old.proc.returncode)
                await old.shutdown(0)
            if self.own is None:
                # shielded: a server started but not recorded would be nobody's
                with trio.CancelScope(shield=True):
                    self.own = await _start_server()
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
    from ._forkserver import ForkRequest

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
        args=list(cmd.args), env=env, cwd=cwd, umask=umask, fds=fds,
        sigign=ignored, sigmask=blocked,
    )
    return req, fds


async def _ask(path: str, cmd: ChildCommand) -> ForkedProcess | None:
    """One fork request to the server at ``path``: the child's process
    object, or ``None`` when the server says this child needs a fresh
    interpreter. Raises :class:`ServerUnavailable` when nobody answers."""
    from . import _forkserver as _fs
    from ._spawn import SPAWN_TIMEOUT

    req, fds = _request(cmd)
    data = _fs.frame(req)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    got: list[int] = []
    done = False
    # shielded (and bounded): abandoning the exchange half way could leave a
    # child running that nobody knows the pid of
    try:
        with trio.CancelScope(shield=True), trio.fail_after(SPAWN_TIMEOUT):
            try:
                await sock.connect(path)
                ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
                sent = await sock.sendmsg([data], ancdata)
                view = memoryview(data)[sent:]
                while view:
                    view = view[await sock.send(view):]
                frames = _fs.Frames()
                while (body := frames.next()) is None:
                    chunk, ancdata, _flags, _ = await sock.recvmsg(
                        65536, socket.CMSG_SPACE(4 * _fs.MAX_FDS)
                    )
                    got.extend(_fs.fds_from_ancdata(ancdata))
                    if not chunk:
                        raise ServerUnavailable(f'the fork server at {path} closed the request')
                    frames.feed(chunk)
            except OSError as err:  # refused, missing, reset: nobody serves there
                raise ServerUnavailable(f'no fork server at {path}: {err}') from err
            reply = _fs.decode_reply(body)
            if 'pid' in reply and len(got) == 1:
                proc = ForkedProcess(int(reply['pid']), got.pop(), sock, frames, cmd.args)
                done = True
                return proc
            if 'fallback' in reply:
                log.info('spawning from a fresh interpreter: %s', reply['fallback'])
                return None
            raise ActorFailure(f'the fork server refused to fork: {reply.get("error", reply)!r}')
    except trio.TooSlowError:
        raise ActorFailure(f'the fork server at {path} did not answer within {SPAWN_TIMEOUT}s') from None
    finally:
        for fd in got:
            os.close(fd)
        if not done:
            sock.close()


async def spawn_forkserver(
    *, name: str, uuid: str, parent_addr: str, infect_asyncio: bool = False,
) -> ForkedProcess | trio.Process:
    if not supported():
        raise RuntimeError(
            "start_method='forkserver' needs Linux 5.3+ (pidfds); use start_method='trio'"
        )
    from . import _state

    state = tree_server(_state.current_actor())
    # an infected child (``--asyncio``) is forked like any other: the server
    # runs no event loop of any kind, so the child starts a fresh asyncio one
    cmd = child_command(name=name, uuid=uuid, parent_addr=parent_addr, infect_asyncio=infect_asyncio)
    try:
        proc: ForkedProcess | None = None
        asked = False
        if state.inherited:
            try:
                proc = await _ask(state.inherited, cmd)
                asked = True
            except ServerUnavailable as err:
                log.warning('the tree\'s fork server is gone (%s): starting our own', err)
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
    return await spawn_trio(name=name, uuid=uuid, parent_addr=parent_addr, infect_asyncio=infect_asyncio)


@asynccontextmanager
async def _serving(actor: Actor) -> AsyncIterator[None]:
    try:
        yield
    finally:
        state = actor.extensions.get(EXTENSION)
        if state is not None and state.own is not None:
            own, state.own = state.own, None
            await own.shutdown()


@hookimpl
def tractor_spawn_methods() -> dict:
    return {METHOD: spawn_forkserver}


@hookimpl
def tractor_actor_serving(actor: Actor):
    """The owner shuts its fork server down at its runtime teardown (every
    child it spawned is reaped by then)."""
    return _serving(actor)
