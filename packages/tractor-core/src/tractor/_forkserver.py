"""The fork server: ``python -m tractor._forkserver --listen-fd N --control-fd M``.

A template process that has already imported everything a subactor needs
(trio, msgspec, the runtime, ``tractor._child``, the plugins) and forks each
new actor on request, so a spawn costs a fork and a handshake instead of an
interpreter start plus imports. The requester side is
``tractor._spawn_forkserver``; docs/architecture.md describes the whole.

The server is a plain blocking loop over one epoll selector (no trio run, no
threads, so forking is safe at any point):

- the *listener* (a unix socket in the per-user runtime directory, bound by
  the owner and inherited) accepts one connection per fork request, from the
  owner or from any actor of its tree; peers of another uid are refused;
- the *control* connection (one end of a socketpair held by the owner)
  only ever reaches end-of-file: the owner exited or was killed. The server
  then stops accepting and exits as soon as every child it forked is reaped
  (they exit on their own once their actor parent is gone);
- one *pidfd* per child: readable when the child exits; the server reaps it
  and reports the exit status on that request's connection.

Forking is done one request ahead: the server keeps one *spare* child,
forked and already rid of the server's state, blocked on a socketpair; a
request is handed to it (with its fds), the requester gets its pid at once,
and the server forks the next spare while that child boots. The fork itself
is thus off the spawn's critical path.

Wire format (both directions): 4-byte big-endian length + one msgpack value.
The request is a :class:`ForkRequest` carrying, as ``SCM_RIGHTS``, the fds
the child gets (the requester's 0, 1, 2 and any ``pass_fds``). Replies:
``{'pid': n}`` with the child's pidfd attached, right after the fork;
``{'exit': returncode}`` (``subprocess`` convention: ``-N`` for signal N)
once reaped, then the connection closes. ``{'error': text}`` when nothing
was forked; ``{'fallback': text}`` when the request's environment differs
from the server's in variables that are read at interpreter start or import
(``PYTHON*``, ``TRACTOR_*``, ``LD_*``): a fork could not honour them, so the
requester starts that child from a fresh interpreter instead.
"""
from __future__ import annotations

import argparse
import array
import ctypes
import os
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Any

import msgspec

from tractor import _settings

#: what every child runs, exactly like ``python -m tractor._child <args>``
CHILD_MODULE = 'tractor._child'
#: requests larger than this are refused (the environment dominates)
MAX_REQUEST = 16 * 1024 * 1024
#: once the owner (the tree's root) is gone, children still running after
#: this long are killed (``TRACTOR_ORPHAN_GRACE``, seconds)
ORPHAN_GRACE = _settings.value('TRACTOR_ORPHAN_GRACE')
#: request connections whose request has not fully arrived: at most this
#: many (past it the oldest is dropped), each for at most PENDING_TIMEOUT s
MAX_PENDING = _settings.value('TRACTOR_FORKSERVER_MAX_PENDING')
PENDING_TIMEOUT = _settings.value('TRACTOR_FORKSERVER_PENDING_TIMEOUT')
#: fds one request may hand over (stdio plus a few ``pass_fds``)
MAX_FDS = 16
#: environment variables read at interpreter start or import time: a forked
#: child cannot honour a change of these since the server started
STARTUP_ENV_PREFIXES = (b'PYTHON', b'TRACTOR_', b'LD_')
#: bytes of argv the server reserves so a child can show its own command
#: line (``/proc/<pid>/cmdline``, ``ps``) in place of the server's
TITLE_ROOM = 320
_CLOSE_ALL = 0x7FFFFFFF
_PEERCRED = struct.Struct('3i')


class ForkRequest(msgspec.Struct):
    """One child to fork: its ``tractor._child`` arguments and the process
    state it would have inherited had it been exec'd by the requester."""

    args: list[str]
    env: list[tuple[bytes, bytes]]
    cwd: bytes | None = None
    umask: int | None = None
    #: fd numbers the ``SCM_RIGHTS`` fds take in the child, in order
    fds: list[int] = []
    #: signals the requester ignores and blocks: an exec'd child would
    #: inherit both (every caught signal reverts to its default)
    sigign: list[int] = []
    sigmask: list[int] = []


_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(ForkRequest)
_reply_decoder = msgspec.msgpack.Decoder(dict[str, Any])


def frame(obj: Any) -> bytes:
    body = _encoder.encode(obj)
    return len(body).to_bytes(4, 'big') + body


def decode_reply(body: bytes) -> dict[str, Any]:
    return _reply_decoder.decode(body)


class Frames:
    """Accumulates bytes and splits them into frame bodies."""

    __slots__ = ('data',)

    def __init__(self, data: bytes = b'') -> None:
        self.data = data

    def feed(self, chunk: bytes) -> None:
        self.data += chunk

    def next(self) -> bytes | None:
        data = self.data
        if len(data) < 4:
            return None
        end = 4 + int.from_bytes(data[:4], 'big')
        if len(data) < end:
            return None
        self.data = data[end:]
        return data[4:end]

    def pending(self) -> int:
        return len(self.data)


def fds_from_ancdata(ancdata: list) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array('i')
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds.extend(arr)
    return fds


def startup_env(env: dict[bytes, bytes] | list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    items = env.items() if isinstance(env, dict) else env
    return {k: v for k, v in items if k.startswith(STARTUP_ENV_PREFIXES)}


def _kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# -- the server ---------------------------------------------------------------

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
            _close_quietly(fd)
        self.fds = []
        self.sock.close()


class _Kid:
    """A forked child not reaped yet, and the connection to report it on."""

    __slots__ = ('pid', 'pidfd', 'sock')

    def __init__(self, pid: int, pidfd: int, sock: socket.socket | None) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.sock = sock


class _Spare:
    """A forked child waiting for its request on ``sock``."""

    __slots__ = ('kid', 'sock')

    def __init__(self, kid: _Kid, sock: socket.socket) -> None:
        self.kid = kid
        self.sock = sock


class ForkServer:
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

    # the loop ------------------------------------------------------------
    def run(self) -> int:
        assert self.listener is not None and self.control is not None
        for sock in (self.listener, self.control):
            sock.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
        self.sel.register(self.control, selectors.EVENT_READ, self._control_readable)
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
                    pending = self.pending.get(key.fileobj)  # type: ignore[call-overload]
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
            print('tractor fork server: too many unfinished requests: dropping the oldest',
                  file=sys.stderr)
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
        pending = self.pending.get(key.fileobj)  # type: ignore[call-overload]
        if pending is None:  # dropped earlier in this batch of events
            return
        try:
            data, ancdata, flags, _ = pending.sock.recvmsg(
                65536, socket.CMSG_SPACE(MAX_FDS * 4)
            )
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
            req = _request_decoder.decode(body)
        except msgspec.DecodeError as err:
            self._refuse(pending, {'error': f'malformed fork request: {err}'})
            return
        if len(req.fds) != len(pending.fds):
            self._refuse(pending, {'error': 'fork request: fd count mismatch'})
            return
        changed = sorted({
            key.decode(errors='replace')
            for key, _value in set(startup_env(req.env).items()) ^ set(self.startup_env.items())
        })
        if changed:
            self._refuse(pending, {'fallback': f'environment changed since the fork '
                                               f'server started: {changed}'})
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
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            raise
        if pid == 0:
            ours.close()
            self._spare_main(theirs)  # never returns
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
                    spare.sock, [len(body).to_bytes(4, 'big') + body], pending.fds,
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
            _close_quietly(fd)
        pending.fds = []
        if kid is None:
            self._refuse(pending, {'error': 'no child could take the request'})
            return
        try:
            socket.send_fds(pending.sock, [frame({'pid': kid.pid})], [kid.pidfd], socket.MSG_NOSIGNAL)
        except OSError:
            # the requester gave up before it learnt the pid: nobody can
            # supervise this child, so it must not run
            _kill(kid.pidfd)
            pending.sock.close()
        else:
            kid.sock = pending.sock
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
        if self.spare is not None and self.spare.kid is kid:  # died unused
            self.spare.sock.close()
            self.spare = None
        if kid.sock is not None:
            try:
                kid.sock.send(frame({'exit': os.waitstatus_to_exitcode(status)}), socket.MSG_NOSIGNAL)
            except OSError:
                pass
            kid.sock.close()

    def _control_readable(self, key: selectors.SelectorKey) -> None:
        if self.control is None:
            return
        try:
            if self.control.recv(4096):
                return  # nothing is sent on it today; only its end matters
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        # the owner is gone: no new requests; finish reaping, then exit.
        # Children still running a moment later are killed: their own actor
        # parents (also our children) would have stopped them by now unless
        # they are stuck, stopped or ignoring their cancel, and nobody else
        # is left to (the owner, the tree's root, is gone or done)
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
                f'{ORPHAN_GRACE}s after the tree\'s root left: {sorted(k.pid for k in self.kids.values())}',
                file=sys.stderr,
            )
        for kid in list(self.kids.values()):
            _kill(kid.pidfd)  # reaped as their pidfds turn readable

    # the child -------------------------------------------------------------
    def _spare_main(self, sock: socket.socket) -> None:
        """In a fresh fork: drop the server's state, wait for a request, then
        become the subactor it asks for; never returns."""
        code = 1
        try:
            # close the server's objects here (the server keeps its own
            # copies): left to the garbage collector they would close fds by
            # number, long after those numbers were reused by the actor
            self.sel.close()
            socks = [*self.pending, *(k.sock for k in self.kids.values()), self.handing]
            if self.spare is not None:
                socks.append(self.spare.sock)
            for other in (self.listener, self.control, *socks):
                if other is not None:
                    other.close()
            self.kids.clear()
            self.pending.clear()
            self.spare = None
            set_cmdline(['tractor', 'fork', 'server', 'spare'])
            warm_up()
            got = receive_request(sock)
            sock.close()
            if got is None:  # the server closed its end: never used
                code = 0
                return
            req, fds = got
            install_fds(fds, req.fds)
            reset_signals(req.sigign, req.sigmask)
            restore_process_state(req)
            set_cmdline([sys.executable, '-m', CHILD_MODULE, *req.args])
            code = run_child(req.args)
        except BaseException:
            try:
                import traceback

                traceback.print_exc()
            except BaseException:
                pass
        finally:
            finish(code)


def warm_up() -> None:
    """In a spare, before its request: throwaway runs of the first steps
    every child takes (parsing its arguments, reading its signal state,
    loading libc for its process name), so the page copies their first
    touch costs after the fork (copy-on-write) are paid while idle, not on
    the spawn's critical path. Nothing here leaves a trace in the child."""
    try:
        _proc_status_masks()
        parser = argparse.ArgumentParser(prog='warm-up')
        for name in ('--name', '--uuid', '--parent'):
            parser.add_argument(name, required=True)
        parser.add_argument('--secret-fd', type=int, default=None)
        parser.parse_args(['--name', 'n', '--uuid', 'u', '--parent', 'p', '--secret-fd', '3'])
        ctypes.CDLL(None, use_errno=True)
    except Exception:
        pass


def receive_request(sock: socket.socket) -> tuple[ForkRequest, list[int]] | None:
    """Block until one whole request (and its fds) arrives on ``sock``;
    ``None`` at end-of-file."""
    frames = Frames()
    fds: list[int] = []
    while (body := frames.next()) is None:
        data, ancdata, _flags, _ = sock.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * 4))
        fds.extend(fds_from_ancdata(ancdata))
        if not data:
            for fd in fds:
                _close_quietly(fd)
            return None
        frames.feed(data)
    return _request_decoder.decode(body), fds


def install_fds(fds: list[int], targets: list[int]) -> None:
    """Give the child exactly ``fds`` at ``targets`` (like ``pass_fds``), and
    close everything else it inherited, stdio the requester lacked included."""
    import fcntl

    top = max([*fds, *targets, 2]) + 1
    moved = []
    for fd in fds:  # first out of the way of every target
        moved.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top))
        os.close(fd)
    for src, dst in zip(moved, targets):
        os.dup2(src, dst, inheritable=True)
    for src in moved:
        os.close(src)
    keep = set(targets)
    for fd in (0, 1, 2):
        if fd not in keep:
            _close_quietly(fd)
    low = 3
    for fd in sorted(t for t in keep if t >= 3):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _CLOSE_ALL)


def _proc_status_masks() -> dict[str, int]:
    masks = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('SigIgn:', 'SigCgt:')):
                key, value = line.split(':', 1)
                masks[key] = int(value, 16)
    return masks


def reset_signals(ignored: list[int] = (), blocked: list[int] = ()) -> None:  # type: ignore[assignment]
    """Signal state as an exec'd interpreter would start with: what the
    requester ignores stays ignored and what it blocks stays blocked (exec
    keeps both), every other signal gets its default disposition; then what
    the interpreter sets up itself: SIGPIPE and SIGXFSZ ignored, SIGINT
    raising KeyboardInterrupt unless ignored (``tractor._child`` then ignores
    it). Only dispositions that differ are changed (the kernel's view in
    ``/proc/self/status`` says which)."""
    want_ignored = set(ignored)
    for name in ('SIGPIPE', 'SIGXFSZ'):
        if hasattr(signal, name):
            want_ignored.add(int(getattr(signal, name)))
    try:
        masks = _proc_status_masks()
        now_ignored, now_caught = masks['SigIgn'], masks['SigCgt']
    except (OSError, KeyError, ValueError):  # no /proc: set every one
        now_ignored, now_caught = 0, -1
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        bit = 1 << (sig - 1)
        ignore = sig in want_ignored
        if not now_caught & bit and bool(now_ignored & bit) == ignore:
            continue  # already as wanted
        try:
            signal.signal(sig, signal.SIG_IGN if ignore else signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    if signal.SIGINT not in want_ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    valid = signal.valid_signals()
    signal.pthread_sigmask(signal.SIG_SETMASK, [s for s in blocked if s in valid])
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass


def restore_process_state(req: ForkRequest) -> None:
    """The requester's environment, working directory and umask; fresh
    random state (the ``random`` module reseeds itself after a fork; trio's
    scheduler has its own generator)."""
    env = os.environb
    wanted = dict(req.env)
    for key in [k for k in env if k not in wanted]:
        del env[key]
    for key, value in wanted.items():
        if env.get(key) != value:
            env[key] = value
    if req.cwd is not None:
        try:
            os.chdir(req.cwd)
        except OSError as err:
            print(f'tractor fork server: cannot enter the requester\'s working directory: {err}',
                  file=sys.stderr)
    if req.umask is not None:
        os.umask(req.umask)
    import random

    random.seed()
    run_mod = sys.modules.get('trio._core._run')
    rng = getattr(run_mod, '_r', None)
    if isinstance(rng, random.Random):
        rng.seed()


def set_cmdline(words: list[str]) -> None:
    """Show ``words`` as this process's command line (``/proc/<pid>/cmdline``,
    ``ps``): overwrite the argv area the kernel reports, within its size
    (the server reserved :data:`TITLE_ROOM` bytes for this)."""
    try:
        with open('/proc/self/stat', 'rb') as f:
            fields = f.read().rsplit(b')', 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end
    except (OSError, IndexError, ValueError):
        return
    room = end - start
    if start <= 0 or room <= 1:
        return
    data = b'\0'.join(os.fsencode(w) for w in words)[: room - 1]
    ctypes.memmove(start, data + b'\0' * (room - len(data)), room)


#: ``tractor._child``'s spec and code object, loaded once by the server
_child_code: tuple[Any, Any] | None = None


def _load_child_code() -> tuple[Any, Any]:
    import importlib.util

    spec = importlib.util.find_spec(CHILD_MODULE)
    assert spec is not None and spec.loader is not None
    return spec, spec.loader.get_code(CHILD_MODULE)  # type: ignore[attr-defined]


def run_child(args: list[str]) -> int:
    """What ``python -m tractor._child <args>`` runs, in this process (the
    module's code executed afresh as ``__main__``, as ``-m`` does); the exit
    code it would end with."""
    import builtins
    import types

    if sys.modules.get('__mp_main__') is sys.modules.get('__main__'):
        # `import multiprocessing` (by a plugin, in the server) aliased the
        # server's own __main__: a child keeps that name for its parent's
        # main script (see Actor._import)
        sys.modules.pop('__mp_main__', None)
    spec, code = _child_code or _load_child_code()
    main = types.ModuleType('__main__')
    main.__dict__.update(
        __file__=spec.origin, __cached__=spec.cached, __loader__=spec.loader,
        __package__=spec.parent, __spec__=spec, __builtins__=builtins,
    )
    sys.modules['__main__'] = main
    sys.argv[:] = [spec.origin or CHILD_MODULE, *args]
    try:
        exec(code, main.__dict__)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


def finish(code: int) -> None:
    """End the child like an interpreter exit does for what matters here
    (non-daemon threads joined, atexit handlers, stdio flushed), then
    ``os._exit``: module teardown and garbage collection of the whole
    runtime are skipped, like CPython's own fork-based start methods do."""
    try:
        import threading

        shutdown = getattr(threading, '_shutdown', None)
        if shutdown is not None:
            shutdown()
    except BaseException:
        pass
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(code)


def preload() -> None:
    """Import everything a subactor needs before it runs user code, so the
    children forked from here start warm."""
    import trio  # noqa: F401

    import tractor  # noqa: F401
    from tractor import (  # noqa: F401
        _child, _context, _ipc, _msg, _portal, _root, _runtime, _spawn,
        _spawn_forkserver, _spawn_trio, _supervise, log, trionics,
    )
    from tractor._plugins import get_plugin_manager

    get_plugin_manager()  # transports, discovery and any third-party plugins
    try:
        import tractor.discovery  # noqa: F401
    except ImportError:
        pass
    import encodings.idna  # noqa: F401  (trio's getaddrinfo encodes host names)

    global _child_code
    _child_code = _load_child_code()


_asyncio_loaded = False


def preload_asyncio() -> None:
    """Import asyncio and ``tractor.to_asyncio`` into the server, once: the
    first request for an infected child (``--asyncio``) pays its own import
    (its spare was forked before), every later one starts warm. Not part of
    :func:`preload`: most trees never infect an actor, and asyncio would
    add its import to every tree's first spawn."""
    global _asyncio_loaded
    if _asyncio_loaded:
        return
    _asyncio_loaded = True
    import gc

    import tractor.to_asyncio  # noqa: F401  (imports asyncio)

    gc.freeze()  # as after preload(): children do not copy these pages to scan them


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='tractor._forkserver')
    parser.add_argument('--listen-fd', type=int, required=True)
    parser.add_argument('--control-fd', type=int, required=True)
    parser.add_argument('--title-room', default='', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # keep the reserved room, show it as trailing NULs rather than spaces
    set_cmdline([sys.executable, '-m', 'tractor._forkserver',
                 '--listen-fd', str(args.listen_fd), '--control-fd', str(args.control_fd)])
    # Ctrl-C is the root actor's to handle; the server ends with its owner
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # an ignored SIGCHLD (inherited through exec) would reap children for us
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    listener = socket.socket(fileno=args.listen_fd)
    control = socket.socket(fileno=args.control_fd)
    preload()
    from tractor._child import _set_process_name

    _set_process_name('forkserver')
    import gc

    gc.collect()
    gc.freeze()  # children do not copy pages just to scan the warm objects
    return ForkServer(listener, control).run()


if __name__ == '__main__':
    # run the real module (not this `__main__` copy), so every object the
    # children inherit belongs to `tractor._forkserver`
    from tractor._forkserver import main as _main

    sys.exit(_main())
