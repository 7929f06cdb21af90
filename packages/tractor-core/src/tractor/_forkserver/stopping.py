"""How the fork server stops: its owner's end, SIGTERM and SIGHUP, and the
orphan grace.

- The *control* connection (one end of a socketpair held by the owner)
  only ever reaches end-of-file: the owner exited or was killed.
- A *wakeup* socket that SIGTERM and SIGHUP write to (``signal.set_wakeup_fd``):
  either signal (to the server, or to the tree's process group, which
  includes it) ends the server exactly as the control connection's end does,
  so it never leaves its socket file behind.

Either way the server stops accepting and exits as soon as every child it
forked is reaped (they exit on their own once their actor parent is gone);
children still running after :data:`ORPHAN_GRACE` are killed.

The same grace applies to the children of one requester that dies while
the tree goes on (an actor killed with its own children still running):
the request's connection, held by the requester until it learns the exit
status, reaches end-of-file, and a child still running :data:`ORPHAN_GRACE`
later is killed, since nobody is left to stop it if it is stuck.
:class:`StopHandling` is that half of
:class:`~tractor._forkserver.server.ForkServer` (a base of it, not used
alone: it works on the server's sockets and children).
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING

from tractor._reaper import ORPHAN_GRACE

if TYPE_CHECKING:
    from .server import _Kid, _Pending, _Spare

#: signals that stop the server as its owner's end does (the default action
#: would kill it on the spot, leaving its socket file in the runtime dir)
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP})


def _on_stop_signal(signum: int, frame: object) -> None:
    """Nothing here: the wakeup socket tells the loop (which may be in the
    middle of anything when the handler runs)."""


def _kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


class StopHandling:
    """Stopping a :class:`~tractor._forkserver.server.ForkServer`: the
    owner's end, a stop signal, then the orphans' deadline."""

    # the ForkServer's state this half reads and writes (declared for the
    # type checker; ForkServer.__init__ sets them)
    listener: socket.socket | None
    control: socket.socket | None
    path: str
    sel: selectors.EpollSelector
    pending: dict[socket.socket, _Pending]
    kids: dict[int, _Kid]
    spare: _Spare | None
    orphan_deadline: float | None
    wakeup: socket.socket | None
    sigmask: set[int]

    if TYPE_CHECKING:  # the ForkServer's method this half calls

        def _drop(self, pending: _Pending) -> None: ...

    def _catch_stop_signals(self) -> None:
        """SIGTERM and SIGHUP reach the loop through a wakeup socket."""
        self.sigmask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.wakeup, write_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (self.wakeup, write_end):
            sock.setblocking(False)
        # the C-level handler writes each signal's number to write_end
        signal.set_wakeup_fd(write_end.detach(), warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            signal.signal(sig, _on_stop_signal)
        self.sel.register(self.wakeup, selectors.EVENT_READ, self._signalled)

    def _signalled(self, key: selectors.SelectorKey) -> None:
        assert self.wakeup is not None
        try:
            got = self.wakeup.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        # silent: after a SIGHUP the terminal behind stderr may be gone
        if STOP_SIGNALS.intersection(got):
            self._stop_serving()

    def _control_readable(self, key: selectors.SelectorKey) -> None:
        if self.control is not None and _ended(self.control):
            self._stop_serving()

    def _stop_serving(self) -> None:
        """The owner is gone (or a stop signal came): no new requests;
        finish reaping, then exit. Children still running a moment later
        are killed: their own actor parents (also our children) would have
        stopped them by now unless they are stuck, stopped or ignoring their
        cancel, and nobody else is left to (the owner, the tree's root, is
        gone or done)."""
        if self.control is None:
            return  # stopped already
        self.orphan_deadline = time.monotonic() + ORPHAN_GRACE
        self.sel.unregister(self.control)
        self.control.close()
        self.control = None
        if self.listener is not None:
            self.sel.unregister(self.listener)
            self.listener.close()
            self.listener = None
            try:
                os.unlink(self.path)
            except OSError:
                pass
        for pending in list(self.pending.values()):
            self._drop(pending)
        if self.spare is not None:  # end-of-file: it exits without running
            self.spare.sock.close()
            self.spare = None

    def _kill_orphans(self) -> None:
        self.orphan_deadline = None
        if self.kids:
            print(
                f'tractor fork server: killing {len(self.kids)} child(ren) still running '
                f"{ORPHAN_GRACE}s after the tree's root left: {sorted(k.pid for k in self.kids.values())}",
                file=sys.stderr,
            )
        for kid in list(self.kids.values()):
            _kill(kid.pidfd)  # reaped as their pidfds turn readable

    def _watch_requester(self, kid: _Kid) -> None:
        """Learn when the requester of ``kid`` is gone (see the module doc)."""
        assert kid.sock is not None
        kid.sock.setblocking(False)
        self.sel.register(kid.sock, selectors.EVENT_READ, lambda key: self._requester_readable(kid))

    def _requester_readable(self, kid: _Kid) -> None:
        if kid.sock is None or not _ended(kid.sock):
            return
        self.sel.unregister(kid.sock)
        kid.sock.close()
        kid.sock = None
        kid.orphaned_at = time.monotonic()

    def _kill_lost_kids(self) -> float | None:
        """Kill the children whose requester has been gone for
        :data:`ORPHAN_GRACE`; seconds until the next one is due."""
        now = time.monotonic()
        due: float | None = None
        for kid in self.kids.values():
            if kid.orphaned_at is None:
                continue
            left = kid.orphaned_at + ORPHAN_GRACE - now
            if left <= 0:
                kid.orphaned_at = None
                print(
                    f'tractor fork server: killing pid {kid.pid}: still running '
                    f'{ORPHAN_GRACE}s after the actor that spawned it was gone',
                    file=sys.stderr,
                )
                _kill(kid.pidfd)  # reaped as its pidfd turns readable
            else:
                due = left if due is None else min(due, left)
        return due


def _ended(sock: socket.socket) -> bool:
    """Whether a readable connection that carries nothing (the control
    connection, a requester's) has ended: EOF or an error."""
    try:
        if sock.recv(4096):
            return False  # nothing is sent on it today; only its end matters
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        pass
    return True
