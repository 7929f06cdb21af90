"""The debugger itself: the stdlib ``pdb``, naming the actor it runs in.

``pdb`` runs synchronously in the actor's trio thread, so the actor's event
loop stands still during a session; its peers simply see a slow actor. The
tree's terminal lock (``tractor.debug._lock``) is held for the whole
session: a post-mortem holds it around :meth:`ActorPdb.interaction`, a live
trace (``pause()``, ``breakpoint()``) from the pause until the developer
continues or quits (:meth:`ActorPdb.set_continue`, :meth:`ActorPdb.set_quit`).
"""

from __future__ import annotations

import pdb
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from .._boxing import runtime_dirs

if TYPE_CHECKING:
    from .._runtime import Actor
    from ._lock import TtyHold


def banner(actor: Actor, what: str) -> str:
    return f'\n>>> tractor debugger: actor {actor.name!r} (pid {actor.pid}) {what}'


class ActorPdb(pdb.Pdb):
    """``pdb.Pdb`` whose prompt names the actor: ``(Pdb <name> <pid>) ``."""

    #: pdb.Pdb's own flag, True while its prompt reads a line (the stubs omit it)
    allow_kbdint: bool

    def __init__(
        self,
        actor: Actor,
        hold: TtyHold | None = None,
        reacquire: Callable[[], TtyHold | None] | None = None,
        hide_tb: bool = True,
    ) -> None:
        # nosigint: pdb would install its own SIGINT handler on `continue`
        # and leave it there; the runtime decides what Ctrl-C does
        super().__init__(nosigint=True)
        self.prompt = f'(Pdb {actor.name} {actor.pid}) '
        self._hold = hold
        self._reacquire = reacquire
        self._hide_tb = hide_tb

    def _end_session(self) -> None:
        hold = self._hold
        if hold is None or hold.released:
            return
        hold.release()
        from . import _sync

        if _sync.can_wait():
            # the terminal is back with the root before the code runs on
            # (so e.g. a Ctrl-C right after reaches a tree that is not
            # ignoring it any more)
            _sync.wait(hold.wait_returned())

    # a live trace's session ends when the developer lets the code run on
    def set_continue(self) -> None:
        try:
            super().set_continue()
        finally:
            self._end_session()

    def set_quit(self) -> None:
        try:
            super().set_quit()
        finally:
            self._end_session()

    def get_stack(self, f: FrameType | None, t: TracebackType | None) -> tuple[list, int]:
        """The stack ``where``/``up``/``down`` walk, without the frames of
        the runtime and trio that run the task (unless the session stopped
        in one of them, or ``hide_tb=False`` asked for every frame)."""
        stack, index = super().get_stack(f, t)
        if not self._hide_tb:
            return stack, index
        keep = [
            k for k, (frame, _) in enumerate(stack) if not _is_runtime(frame.f_code.co_filename)
        ]
        if index not in keep:
            return stack, index
        return [stack[k] for k in keep], keep.index(index)

    def interaction(self, frame: FrameType | None, tb: TracebackType | None) -> None:
        if self._hold is not None and self._hold.released and self._reacquire:
            # a breakpoint hit after `continue` gave the terminal back
            self._hold = self._reacquire()
        with _sigint_to(self):
            super().interaction(frame, tb)


@contextmanager
def _sigint_to(repl: ActorPdb) -> Iterator[None]:
    """Ctrl-C at the prompt interrupts the line being typed (pdb prints
    ``--KeyboardInterrupt--``) and nothing else, in the root (whose handler
    is trio's otherwise) and in subactors (which ignore SIGINT otherwise)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if repl.allow_kbdint:
            raise KeyboardInterrupt

    saved = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


def post_mortem(
    actor: Actor, exc: BaseException, what: str = 'crashed', hide_tb: bool = True
) -> None:
    """Open a post-mortem session on ``exc``'s traceback; returns when the
    developer continues or quits. ``hide_tb=False`` keeps the runtime's
    frames in the traceback shown and in the stack ``where`` walks."""
    repl = ActorPdb(actor, hide_tb=hide_tb)
    repl.message(banner(actor, f'{what}: {type(exc).__name__}: {exc}'))
    repl.message(format_crash(exc, hide_tb=hide_tb))
    tb = exc.__traceback__
    repl.reset()
    repl.interaction(None, tb)


def _is_runtime(filename: str) -> bool:
    return filename.startswith(runtime_dirs())


def format_crash(exc: BaseException, hide_tb: bool = True) -> str:
    """``exc``'s traceback without the runtime's own frames (the ones that
    ran the task), so it reads as the code that crashed (all of them with
    ``hide_tb=False``)."""
    te = traceback.TracebackException.from_exception(exc)
    kept = [f for f in te.stack if not _is_runtime(f.filename)] if hide_tb else []
    if kept:
        te.stack = traceback.StackSummary.from_list(kept)
    return ''.join(te.format()).rstrip()


def trace(
    actor: Actor,
    frame: FrameType,
    hold: TtyHold,
    reacquire: Callable[[], TtyHold | None] | None = None,
    hide_tb: bool = True,
) -> None:
    """Start a live session that stops at ``frame``'s next line; ``hold`` is
    released (the terminal given back) when the developer continues or
    quits. ``reacquire`` takes the terminal again for a breakpoint hit later."""
    repl = ActorPdb(actor, hold, reacquire, hide_tb=hide_tb)
    repl.message(banner(actor, 'paused'))
    repl.set_trace(frame)


def stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
