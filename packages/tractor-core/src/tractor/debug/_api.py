"""Pausing, post-mortems and the crash hook the runtime calls in debug mode."""

from __future__ import annotations

import bdb
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import trio

from .._exceptions import RemoteActorError
from .._state import current_actor
from ..log import get_logger
from ._lock import TtyHold, acquire_tty, tty_lock

if TYPE_CHECKING:
    from .._runtime import Actor

log = get_logger('debug')

#: errors that are not crashes: cancellation, exits, a developer quitting
#: the debugger, and errors of another actor (debugged where they happened)
_NOT_CRASHES = (
    trio.Cancelled,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    bdb.BdbQuit,
    RemoteActorError,
)
#: set on an exception once a post-mortem was opened on it
_DEBUGGED = '_tractor_debugged'


def _no_terminal(actor: Actor) -> bool:
    from ._repl import stdin_is_tty

    if stdin_is_tty():
        return False
    log.warning('debug_mode: stdin of %r is not a terminal; not opening the debugger', actor.name)
    return True


async def pause(*, shield: bool = False, hide_tb: bool = True) -> None:
    """Open a debugger session in this actor at the caller's next line.

    Waits for the tree's terminal first (one session at a time, tree-wide);
    the session ends, and the terminal goes to the next actor waiting, when
    the developer continues (``c``); quitting (``q``) raises ``bdb.BdbQuit``
    in the paused task. ``shield=True`` keeps a cancel from interrupting the
    wait for the terminal. ``hide_tb`` (default) leaves the frames of the
    runtime and trio that run the task out of the stack ``where``, ``up``
    and ``down`` walk; ``hide_tb=False`` shows every frame.
    """
    __tracebackhide__ = hide_tb
    from . import _repl

    frame = sys._getframe(1)
    actor = current_actor()
    if _no_terminal(actor):
        return
    with trio.CancelScope(shield=shield):
        hold = await acquire_tty(actor)
    _repl.trace(actor, frame, hold, partial(_acquire_from_sync, actor), hide_tb=hide_tb)


def pause_from_sync(*, hide_tb: bool = True) -> None:
    """:func:`pause` for synchronous code running in an actor's task: what
    the builtin ``breakpoint()`` calls in debug mode.

    It needs a task the runtime started in debug mode (every RPC task, the
    root's main task, and tasks they spawn), where it can wait for the
    terminal without blocking the event loop. ``hide_tb`` as for :func:`pause`.
    """
    __tracebackhide__ = hide_tb
    _pause_sync(sys._getframe(1), hide_tb=hide_tb)


def _pause_sync(frame: FrameType, hide_tb: bool = True) -> None:
    from . import _repl

    actor = current_actor()
    if _no_terminal(actor):
        return
    hold = _acquire_from_sync(actor)
    if hold is None:
        raise RuntimeError(
            "breakpoint()/pause_from_sync() cannot wait for the tree's terminal from "
            'this task: it was not started by the runtime in debug mode; use '
            '`await tractor.pause()` here'
        )
    _repl.trace(actor, frame, hold, partial(_acquire_from_sync, actor), hide_tb=hide_tb)


def _acquire_from_sync(actor: Actor) -> TtyHold | None:
    """Take the terminal from sync code (``None`` where this task cannot
    wait: it has no greenback portal)."""
    from . import _sync

    if not _sync.can_wait():
        return None
    return _sync.wait(acquire_tty(actor))


async def _post_mortem_session(
    actor: Actor, exc: BaseException, what: str, hide_tb: bool = True
) -> None:
    """Hold the terminal for a post-mortem on ``exc`` (unless there is no
    terminal); ``exc`` counts as debugged from now on."""
    from . import _repl

    setattr(exc, _DEBUGGED, True)
    if _no_terminal(actor):
        return
    async with tty_lock(actor):
        _repl.post_mortem(actor, exc, what=what, hide_tb=hide_tb)


async def post_mortem(exc: BaseException | None = None, *, hide_tb: bool = True) -> None:
    """Open a post-mortem session on ``exc`` (default: the exception being
    handled, for use in an ``except`` block) once the tree's terminal is free.
    Returns when the developer continues or quits. ``hide_tb`` (default)
    leaves the runtime's frames out of the traceback shown and the stack
    walked; ``hide_tb=False`` keeps them."""
    __tracebackhide__ = hide_tb
    if exc is None:
        exc = sys.exc_info()[1]
        if exc is None:
            raise RuntimeError('post_mortem() without an exception: call it in an except block')
    await _post_mortem_session(current_actor(), exc, 'post-mortem', hide_tb=hide_tb)


def _crash_of(exc: BaseException) -> BaseException | None:
    """The error to open a post-mortem on: the first leaf of ``exc`` that is
    a crash of this actor's own code and was not debugged yet."""
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            leaf = _crash_of(sub)
            if leaf is not None:
                return leaf
        return None
    if isinstance(exc, _NOT_CRASHES) or getattr(exc, _DEBUGGED, False):
        return None
    return exc


async def maybe_post_mortem(actor: Actor, exc: BaseException) -> None:
    """(runtime) In debug mode, open a post-mortem on a crash of this actor
    before it propagates. Errors raised while the actor is being cancelled
    are the cancel's consequences, not crashes: they are left alone."""
    if not actor.debug_mode or actor._cancel_called:
        return
    crash = _crash_of(exc)
    if crash is None:
        return
    try:
        await _post_mortem_session(actor, crash, 'crashed')
    except Exception as err:
        log.error('could not open the debugger in %r: %s', actor.name, err)


async def run_debuggable(
    actor: Actor, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> Any:
    """(runtime, debug mode) ``await fn(*args, **kwargs)`` (an RPC task's
    target), opening a post-mortem on its crash before the error goes on.
    The task, and every task it spawns, can wait from synchronous code
    (``breakpoint()``)."""
    from . import _sync

    try:
        return await _sync.run_tree(fn, *args, **kwargs)
    except Exception as err:
        await maybe_post_mortem(actor, err)
        raise


@contextmanager
def breakpoint_hook() -> Iterator[None]:
    """(runtime, debug mode) Make ``breakpoint()`` pause through the tree's
    terminal lock for the block, then restore the hook that was there. A
    ``PYTHONBREAKPOINT`` the user set is left alone."""
    if os.environ.get('PYTHONBREAKPOINT'):
        yield
        return
    saved = sys.breakpointhook

    def hook(*args: Any, **kwargs: Any) -> None:
        _pause_sync(sys._getframe(1))

    sys.breakpointhook = hook
    try:
        yield
    finally:
        if sys.breakpointhook is hook:
            sys.breakpointhook = saved


class maybe_open_crash_handler:
    """Open a post-mortem on an uncaught error of the block, then let it go on.

    Works as ``with`` (sync code, also with no runtime at all, e.g. a CLI's
    entry point) and as ``async with`` (a task of an actor). ``pdb`` decides
    whether a session opens: ``None`` (default) follows the current actor's
    debug mode (:func:`tractor.debug_mode`), ``True``/``False`` force it.
    Only crashes open one: cancellation, ``KeyboardInterrupt``, ``SystemExit``,
    a developer quitting the debugger and errors of other actors
    (``RemoteActorError``, debugged where they happened) pass straight
    through. Either way the error propagates unchanged once the developer
    continues; it is not debugged again by the runtime's own crash hook.
    Without a terminal on stdin no session opens (a warning is logged).

    The value bound by ``as`` has ``.value``: the error that left the block
    (``None`` while it runs or when it ended cleanly).
    """

    def __init__(self, pdb: bool | None = None, *, hide_tb: bool = True) -> None:
        if pdb is not None and not isinstance(pdb, bool):
            raise TypeError(f'pdb takes True, False or None, got {pdb!r}')
        self.pdb = pdb
        self.hide_tb = hide_tb
        self.value: BaseException | None = None

    def _crash(self, exc: BaseException | None) -> BaseException | None:
        self.value = exc
        if exc is None:
            return None
        if self.pdb is None:
            actor = current_actor(err_on_no_runtime=False)
            enabled = actor is not None and actor.debug_mode
        else:
            enabled = self.pdb
        return _crash_of(exc) if enabled else None

    def __enter__(self) -> maybe_open_crash_handler:
        return self

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        crash = self._crash(exc)
        if crash is None:
            return False
        actor = current_actor(err_on_no_runtime=False)
        if actor is None:
            _standalone_post_mortem(crash, self.hide_tb)
            return False
        from . import _sync

        if not _sync.can_wait():
            log.warning(
                "maybe_open_crash_handler: this task of %r cannot wait for the tree's "
                'terminal from sync code (it was not started by the runtime in debug '
                'mode); use `async with` here',
                actor.name,
            )
            return False
        try:
            _sync.wait(_post_mortem_session(actor, crash, 'crashed', hide_tb=self.hide_tb))
        except Exception as err:
            log.error('could not open the debugger in %r: %s', actor.name, err)
        return False

    async def __aenter__(self) -> maybe_open_crash_handler:
        return self

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> bool:
        crash = self._crash(exc)
        if crash is None:
            return False
        actor = current_actor(err_on_no_runtime=False)
        if actor is None:
            _standalone_post_mortem(crash, self.hide_tb)
            return False
        try:
            await _post_mortem_session(actor, crash, 'crashed', hide_tb=self.hide_tb)
        except Exception as err:
            log.error('could not open the debugger in %r: %s', actor.name, err)
        return False


def _standalone_post_mortem(exc: BaseException, hide_tb: bool) -> None:
    """A post-mortem outside any runtime: no tree, no terminal lock."""
    import pdb

    from ._repl import format_crash, stdin_is_tty

    setattr(exc, _DEBUGGED, True)
    if not stdin_is_tty():
        log.warning('stdin is not a terminal; not opening the debugger')
        return
    repl = pdb.Pdb()
    repl.message(
        f'\n>>> tractor debugger (no runtime, pid {os.getpid()}) crashed: '
        f'{type(exc).__name__}: {exc}'
    )
    repl.message(format_crash(exc, hide_tb=hide_tb))
    repl.reset()
    repl.interaction(None, exc.__traceback__)
