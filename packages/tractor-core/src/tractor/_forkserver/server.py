"""The fork server: ``python -m tractor._forkserver --listen-fd N --control-fd M``.

A template process that has already imported everything a subactor needs
(trio, msgspec, the runtime, ``tractor._child``, the plugins) and forks each
new actor on request, so a spawn costs a fork and a handshake instead of an
interpreter start plus imports. The requester side is
``tractor._forkserver.backend``; the wire format ``.protocol``; what a
forked spare does to become a child ``.child``; docs/architecture.md
describes the whole.

The server is a plain blocking loop over one epoll selector (no trio run, no
threads, so forking is safe at any point):

- the *listener* (a unix socket in the per-user runtime directory, bound by
  the owner and inherited) accepts one connection per fork request, from the
  owner or from any actor of its tree; peers of another uid are refused;
- the *control* connection (held by the owner) and a *wakeup* socket that
  SIGTERM and SIGHUP write to: either one's news stops the server (see
  ``.stopping``, which also holds the orphan grace);
- one *pidfd* per child: readable when the child exits; the server reaps it
  and reports the exit status on that request's connection.

Forking is done one request ahead: the server keeps one *spare* child,
forked and already rid of the server's state, blocked on a socketpair; a
request is handed to it (with its fds), the requester gets its pid at once,
and the server forks the next spare while that child boots. The fork itself
is thus off the spawn's critical path.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import struct
import sys
import time

import msgspec

from tractor import _settings

from .child import preload_asyncio, run_spare
from .protocol import (
    MAX_FDS,
    MAX_REQUEST,
    Frames,
    close_quietly,
    decode_request,
    fds_from_ancdata,
    frame,
    startup_env,
)
from .stopping import STOP_SIGNALS, StopHandling, _kill

#: request connections whose request has not fully arrived: at most this
#: many (past it the oldest is dropped), each for at most PENDING_TIMEOUT s
MAX_PENDING = _settings.value('TRACTOR_FORKSERVER_MAX_PENDING')
PENDING_TIMEOUT = _settings.value('TRACTOR_FORKSERVER_PENDING_TIMEOUT')
_PEERCRED = struct.Struct('3i')


class _Pending:
    """A request connection whose request has not fully arrived yet."""

    __slots__ = ('sock', 'frames', 'fds', 'deadline')

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = Frames()
        self.fds: list[int] = []
        #: dropped if the request is not whole by then
        self.deadline = time.monotonic() + PENDING_TIMEOUT

    def close(self) -> None:
        for fd in self.fds:
            close_quietly(fd)
        self.fds = []
        self.sock.close()


class _Kid:
    """A forked child not reaped yet, and the connection to report it on."""

    __slots__ = ('pid', 'pidfd', 'sock', 'orphaned_at')

    def __init__(self, pid: int, pidfd: int, sock: socket.socket | None) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.sock = sock
        #: when its requester was found gone (see .stopping)
        self.orphaned_at: float | None = None


class _Spare:
    """A forked child waiting for its request on ``sock``."""

    __slots__ = ('kid', 'sock')

    def __init__(self, kid: _Kid, sock: socket.socket) -> None:
        self.kid = kid
        self.sock = sock


class ForkServer(StopHandling):
    def __init__(self, listener: socket.socket, control: socket.socket) -> None:
        self.listener: socket.socket | None = listener
        self.control: socket.socket | None = control
        self.path = listener.getsockname()
        self.sel = selectors.EpollSelector()
        self.pending: dict[socket.socket, _Pending] = {}
        self.kids: dict[int, _Kid] = {}
        self.spare: _Spare | None = None
        #: the request connection being handed over (in no table meanwhile)
        self.handing: socket.socket | None = None
        self.startup_env = startup_env(dict(os.environb))
        self.uid = os.geteuid()
        #: once the owner is gone: when the children still running are killed
        self.orphan_deadline: float | None = None
        #: the read end of the signal wakeup socket (see _catch_stop_signals)
        self.wakeup: socket.socket | None = None
        #: the signal mask the server started with, for its children
        self.sigmask: set[int] = set()

    # the loop ------------------------------------------------------------
    def run(self) -> int:
        assert self.listener is not None and self.control is not None
        for sock in (self.listener, self.control):
            sock.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
        self.sel.register(self.control, selectors.EVENT_READ, self._control_readable)
        self._catch_stop_signals()
        try:
            self._make_spare()
        except OSError as err:  # forks on demand then
            print(f'tractor fork server: cannot fork a spare: {err}', file=sys.stderr)
        while self.control is not None or self.kids:
            timeout = None
            if self.orphan_deadline is not None:
                timeout = self.orphan_deadline - time.monotonic()
                if timeout <= 0:
                    self._kill_orphans()
                    timeout = None
            lost = self._kill_lost_kids() if self.kids else None
            if lost is not None:
                timeout = lost if timeout is None else min(timeout, lost)
            if self.pending:
                # oldest first (dicts keep insertion order)
                wait = self._expire_pending()
                if wait is not None:
                    timeout = wait if timeout is None else min(timeout, wait)
            for key, _events in self.sel.select(timeout):
                try:
                    key.data(key)
                except Exception:  # a bug must not take every child's reaper down
                    import traceback

                    print('tractor fork server: unexpected error (serving on):', file=sys.stderr)
                    traceback.print_exc()
                    pending = self.pending.get(key.fileobj)  # type: ignore[call-overload]  # a registered socket
                    if pending is not None:
                        self._drop(pending)
        self.sel.close()
        return 0

    def _accept(self, key: selectors.SelectorKey) -> None:
        if self.listener is None:  # closed earlier in this batch of events
            return
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as err:  # EMFILE and friends: keep serving the rest
            print(f'tractor fork server: accept failed: {err}', file=sys.stderr)
            return
        try:
            _pid, uid, _gid = _PEERCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
        except OSError:
            uid = -1
        if uid != self.uid:  # the socket's directory is private; belt and braces
            sock.close()
            return
        sock.setblocking(False)
        while len(self.pending) >= MAX_PENDING:
            oldest = next(iter(self.pending.values()))
            print(
                'tractor fork server: too many unfinished requests: dropping the oldest',
                file=sys.stderr,
            )
            self._drop(oldest)
        pending = _Pending(sock)
        self.pending[sock] = pending
        self.sel.register(sock, selectors.EVENT_READ, self._request_readable)

    def _expire_pending(self) -> float | None:
        """Drop requests past their deadline; seconds until the next one."""
        now = time.monotonic()
        for pending in list(self.pending.values()):
            if pending.deadline > now:
                return pending.deadline - now
            self._drop(pending)
        return None

    def _drop(self, pending: _Pending) -> None:
        self.sel.unregister(pending.sock)
        del self.pending[pending.sock]
        pending.close()

    def _request_readable(self, key: selectors.SelectorKey) -> None:
        pending = self.pending.get(key.fileobj)  # type: ignore[call-overload]  # the socket registered
        if pending is None:  # dropped earlier in this batch of events
            return
        try:
            data, ancdata, flags, _ = pending.sock.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * 4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(pending)
            return
        pending.fds.extend(fds_from_ancdata(ancdata))
        if not data or flags & socket.MSG_CTRUNC or len(pending.fds) > MAX_FDS:
            self._drop(pending)
            return
        pending.frames.feed(data)
        body = pending.frames.next()
        if body is None:
            if pending.frames.pending() > MAX_REQUEST:
                self._drop(pending)
            return
        self.sel.unregister(pending.sock)
        del self.pending[pending.sock]
        try:
            self._handle(pending, body)
        except Exception as err:  # the server serves on; this request failed
            self._refuse(pending, {'error': f'fork server error: {err!r}'})
            raise

    def _handle(self, pending: _Pending, body: bytes) -> None:
        try:
            req = decode_request(body)
        except msgspec.DecodeError as err:
            self._refuse(pending, {'error': f'malformed fork request: {err}'})
            return
        if len(req.fds) != len(pending.fds):
            self._refuse(pending, {'error': 'fork request: fd count mismatch'})
            return
        changed = sorted(
            {
                key.decode(errors='replace')
                for key, _value in set(startup_env(req.env).items()) ^ set(self.startup_env.items())
            }
        )
        if changed:
            self._refuse(
                pending,
                {'fallback': f'environment changed since the fork server started: {changed}'},
            )
            return
        self._fork(pending, body, warm_asyncio='--asyncio' in req.args)

    def _refuse(self, pending: _Pending, reply: dict) -> None:
        try:
            pending.sock.send(frame(reply), socket.MSG_NOSIGNAL)
        except OSError:
            pass
        pending.close()

    def _make_spare(self) -> None:
        """Fork the child that will serve the next request."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # held back over the fork: a stop signal that hit the new child
        # before it dropped our handler would write to our wakeup socket
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.sigmask)
            ours.close()
            theirs.close()
            raise
        if pid == 0:
            ours.close()
            self._spare_main(theirs)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, self.sigmask)  # a pending one runs now
        theirs.close()
        try:
            pidfd = os.pidfd_open(pid)  # ours until reaped: the pid cannot be reused yet
        except OSError:  # out of fds: this child cannot be tracked
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            ours.close()
            raise
        kid = _Kid(pid, pidfd, None)
        self.kids[pidfd] = kid
        self.sel.register(pidfd, selectors.EVENT_READ, self._kid_exited)
        self.spare = _Spare(kid, ours)

    def _fork(self, pending: _Pending, body: bytes, warm_asyncio: bool = False) -> None:
        """Hand the request to the spare (forking one first if there is
        none), tell the requester its pid, then fork the next spare (with
        asyncio imported, from the first request for an infected child on)."""
        kid = None
        self.handing = pending.sock
        for _attempt in range(2):  # a spare that died since: fork another
            if self.spare is None:
                try:
                    self._make_spare()
                except OSError as err:
                    self._refuse(pending, {'error': f'fork() failed: {err}'})
                    return
            spare, self.spare = self.spare, None
            assert spare is not None
            try:
                socket.send_fds(
                    spare.sock,
                    [len(body).to_bytes(4, 'big') + body],
                    pending.fds,
                    socket.MSG_NOSIGNAL,
                )
            except OSError:
                _kill(spare.kid.pidfd)
                continue
            finally:
                spare.sock.close()
            kid = spare.kid
            break
        self.handing = None
        for fd in pending.fds:
            close_quietly(fd)
        pending.fds = []
        if kid is None:
            self._refuse(pending, {'error': 'no child could take the request'})
            return
        try:
            socket.send_fds(
                pending.sock, [frame({'pid': kid.pid})], [kid.pidfd], socket.MSG_NOSIGNAL
            )
        except OSError:
            # the requester gave up before it learnt the pid: nobody can
            # supervise this child, so it must not run
            _kill(kid.pidfd)
            pending.sock.close()
        else:
            kid.sock = pending.sock
            self._watch_requester(kid)
        if self.control is not None:
            if warm_asyncio:
                preload_asyncio()
            try:
                self._make_spare()
            except OSError as err:  # the next request forks on demand
                print(f'tractor fork server: cannot fork a spare: {err}', file=sys.stderr)

    def _kid_exited(self, key: selectors.SelectorKey) -> None:
        kid = self.kids.get(key.fd)
        if kid is None:
            return
        try:
            pid, status = os.waitpid(kid.pid, os.WNOHANG)
        except ChildProcessError:  # cannot happen while SIGCHLD is not ignored
            pid, status = kid.pid, 255 << 8
        if pid == 0:
            return
        self.sel.unregister(kid.pidfd)
        del self.kids[kid.pidfd]
        os.close(kid.pidfd)
        if kid.sock is not None:
            self.sel.unregister(kid.sock)
        if self.spare is not None and self.spare.kid is kid:  # died unused
            self.spare.sock.close()
            self.spare = None
        if kid.sock is not None:
            try:
                kid.sock.send(
                    frame({'exit': os.waitstatus_to_exitcode(status)}), socket.MSG_NOSIGNAL
                )
            except OSError:
                pass
            kid.sock.close()
            kid.sock = None  # a requester-readable event later in this batch sees it gone

    # the child -------------------------------------------------------------
    def _spare_main(self, sock: socket.socket) -> None:
        """In a fresh fork: become the spare (see ``child.run_spare``); never
        returns."""
        run_spare(sock, self._drop_state)

    def _drop_state(self) -> None:
        """(in a spare) Close the server's objects here (the server keeps its
        own copies): left to the garbage collector they would close fds by
        number, long after those numbers were reused by the actor. A stop
        signal is the spare's own again (its default: exit)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        wakeup_write = signal.set_wakeup_fd(-1)
        if wakeup_write != -1:
            close_quietly(wakeup_write)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.sigmask)
        self.sel.close()
        # a request still arriving holds the fds it brought so far, among
        # them the other end of its child's inherited parent socket: a spare
        # keeping a copy would keep that channel open past the child's death
        for pending in self.pending.values():
            pending.close()
        socks = [*(k.sock for k in self.kids.values()), self.handing]
        if self.spare is not None:
            socks.append(self.spare.sock)
        for other in (self.listener, self.control, self.wakeup, *socks):
            if other is not None:
                other.close()
        self.kids.clear()
        self.pending.clear()
        self.spare = None
