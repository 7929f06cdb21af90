"""Becoming a child: how a spare, forked by the server, turns into the
subactor a request asks for, and what the server preloads so that children
start warm.

A spare has dropped the server's state (the server does that part, it knows
its own objects) and waits for one request on its socketpair; then it takes
the requester's fds, signal state, environment, working directory and umask,
and runs ``tractor._child`` as ``__main__`` exactly like ``python -m
tractor._child <args>`` (which shows its own title in the argv room the
server reserved).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from .._proctitle import set_title
from .._spawn_trio import CHILD_MODULE
from .protocol import MAX_FDS, ForkRequest, Frames, close_quietly, decode_request, fds_from_ancdata

_CLOSE_ALL = 0x7FFFFFFF


def run_spare(sock: socket.socket, drop_server_state: Callable[[], None]) -> NoReturn:
    """In a fresh fork: drop the server's state, wait for a request on
    ``sock``, then become the subactor it asks for; never returns."""
    code = 1
    try:
        drop_server_state()
        set_title('tractor: fork server spare')
        warm_up()
        got = receive_request(sock)
        sock.close()
        if got is None:  # the server closed its end: never used
            code = 0
        else:
            req, fds = got
            install_fds(fds, req.fds)
            reset_signals(req.sigign, req.sigmask)
            restore_process_state(req)
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
    every child takes (reading its signal state, a whole ``trio.run``; the
    spare's own title warms the title's), so the page copies their first
    touch costs after the fork (copy-on-write: about 300 pages for trio's
    run loop alone) are paid while idle, not on the spawn's critical path.
    Nothing here leaves a trace in the child: the run closes what it opened
    and restores the signal state it changed, and the child reseeds the
    random state (see :func:`restore_process_state`)."""
    try:
        _proc_status_masks()
        import trio

        trio.run(trio.lowlevel.checkpoint)
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
                close_quietly(fd)
            return None
        frames.feed(data)
    return decode_request(body), fds


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
            close_quietly(fd)
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


def reset_signals(ignored: Iterable[int] = (), blocked: Iterable[int] = ()) -> None:
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
            print(
                f"tractor fork server: cannot enter the requester's working directory: {err}",
                file=sys.stderr,
            )
    if req.umask is not None:
        os.umask(req.umask)
    import random

    random.seed()
    run_mod = sys.modules.get('trio._core._run')
    rng = getattr(run_mod, '_r', None)
    if isinstance(rng, random.Random):
        rng.seed()


#: ``tractor._child``'s spec and code object, loaded once by the server
_child_code: tuple[Any, Any] | None = None


def _load_child_code() -> tuple[Any, Any]:
    import importlib.util

    spec = importlib.util.find_spec(CHILD_MODULE)
    assert spec is not None and spec.loader is not None
    return spec, spec.loader.get_code(CHILD_MODULE)  # type: ignore[attr-defined]  # a source module's loader has it


def run_child(args: list[str]) -> int:
    """What ``python -m tractor._child <args>`` runs, in this process (the
    module's code executed afresh as ``__main__``, as ``-m`` does); the exit
    code it would end with."""
    import builtins
    import types

    if sys.modules.get('__mp_main__') is sys.modules.get('__main__'):
        # `import multiprocessing` (by a plugin, in the server) aliased the
        # server's own __main__: a child keeps that name for its parent's
        # main script (see tractor._modules.import_enabled)
        sys.modules.pop('__mp_main__', None)
    spec, code = _child_code or _load_child_code()
    main = types.ModuleType('__main__')
    main.__dict__.update(
        __file__=spec.origin,
        __cached__=spec.cached,
        __loader__=spec.loader,
        __package__=spec.parent,
        __spec__=spec,
        __builtins__=builtins,
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


def finish(code: int) -> NoReturn:
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

    # (importing any of these runs tractor/__init__ too: the public names)
    from tractor import (  # noqa: F401
        _child,
        _context,
        _ipc,
        _msg,
        _portal,
        _root,
        _runtime,
        _spawn,
        _spawn_trio,
        _supervise,
        log,
        trionics,
    )
    from tractor._forkserver import backend  # noqa: F401  (the spawner's side, for grandchildren)
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
