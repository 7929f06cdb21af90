"""``ForkedProcess``: the spawner's handle on a child the fork server forked.

The exit status arrives on the request's connection (the server is the
child's OS parent and reaps it); signals go through a pidfd.
"""

from __future__ import annotations

import os
import signal

import trio

from ..log import get_logger
from .protocol import Frames, decode_reply

log = get_logger('forkserver')

#: ``returncode`` of a child whose server vanished before reporting it
UNKNOWN_EXIT = 255


class ForkedProcess:
    """A child forked by the fork server, with the ``trio.Process`` API the
    actor nursery uses: ``pid``, ``returncode``, ``await wait()``, ``kill()``,
    ``terminate()``, ``send_signal()``.

    The exit status arrives on the request's connection (the server is the
    child's OS parent and reaps it). Signals go through a pidfd the server
    opened right after the fork, so a recycled pid is never signalled.
    ``returncode`` is set by ``wait()``.
    """

    def __init__(
        self, pid: int, pidfd: int, sock: trio.socket.SocketType, frames: Frames, args: list[str]
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

    async def _read_exit(self) -> int:
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
        # the server died without reporting: the child is re-parented (to
        # init, or to a subreaper ancestor); its
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
