"""The nursery's record of each child and the cancel ladder that stops one.

The ladder: a ``cancel_actor()`` request, a bounded wait
(:data:`CANCEL_GRACE`, ``TRACTOR_CANCEL_GRACE``), then SIGKILL; or a kill
at once with ``hard_kill=True``. An actor that lost its parent (an orphan
shutting down) waits only :data:`~tractor._reaper.ORPHAN_GRACE` for its
children: nobody waits for their results any more, and its subtree must be
gone within a few seconds of its root's death. :class:`CancelLadder` is that half of
:class:`~tractor.ActorNursery` (a base of it, not used alone: it works on
the nursery's children); spawning and supervising them is
:mod:`tractor._supervise`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from . import _settings
from ._debugger import within_grace
from ._reaper import ORPHAN_GRACE
from .log import get_logger

if TYPE_CHECKING:
    from ._portal import Portal
    from ._runtime import Actor
    from ._spawn import Process, SpawnWaiter

log = get_logger('supervise')

#: graceful-cancel bound: after this a child that has not exited is killed
CANCEL_GRACE = _settings.value('TRACTOR_CANCEL_GRACE')


class _Child:
    """One child of an actor nursery: its process, its portal once it
    serves, and the events its spawn, call and exit set."""

    __slots__ = (
        'uid',
        'proc',
        'portal',
        'exited',
        'cancel_requested',
        'waiter',
        'one_shot',
        'settled',
        'kill_at',
    )

    def __init__(self, uid: tuple[str, str], proc: Process, waiter: SpawnWaiter) -> None:
        self.uid = uid
        self.proc = proc
        self.portal: Portal | None = None
        self.exited = trio.Event()
        self.cancel_requested = False
        self.waiter = waiter
        #: the scope of the run_in_actor call this child runs, while it runs
        self.one_shot: trio.CancelScope | None = None
        #: the spawn is over: the child serves (``portal`` is set) or was killed
        self.settled = trio.Event()
        #: (trio clock) when the grace of the first cancel of it runs out: a
        #: later ladder (a second cancel, a Ctrl-C meanwhile) keeps it
        self.kill_at: float | None = None


class CancelLadder:
    """Cancelling an :class:`~tractor.ActorNursery`'s children: the whole
    nursery (``cancel()``) or one child (``_cancel_child``)."""

    # the ActorNursery's state this half reads and writes (declared for the
    # type checker; ActorNursery.__init__ sets them)
    _actor: Actor
    _children: dict[tuple[str, str], _Child]
    cancel_called: bool

    @property
    def _grace(self) -> float:
        """How long a cancelled child has before it is killed."""
        return min(CANCEL_GRACE, ORPHAN_GRACE) if self._actor.orphaned else CANCEL_GRACE

    def _grace_left(self, child: _Child) -> tuple[float, bool]:
        """Seconds ``child`` has left before it is killed, and whether this
        is the first cancel of it: the grace starts once, at the first."""
        now = trio.current_time()
        first = child.kill_at is None
        if first:
            child.kill_at = now + self._grace
        assert child.kill_at is not None
        return max(0.0, child.kill_at - now), first

    async def _cancel_child(self, child: _Child, hard_kill: bool) -> None:
        """The ladder for one child; returns once it is reaped."""
        child.cancel_requested = True
        if child.exited.is_set():
            return
        if not hard_kill and child.portal is None:
            # still booting (its spawn is finishing): cancel it once it
            # serves, within the same grace
            with trio.move_on_after(self._grace):
                await child.settled.wait()
            if child.one_shot is not None:
                # its call task cancels it (see cancel())
                child.one_shot.cancel()
                await child.exited.wait()
                return
        if hard_kill or child.portal is None:
            log.cancel('killing %r (pid %d)', child.uid[0], child.proc.pid)
            child.proc.kill()
        else:
            portal = child.portal
            left, first = self._grace_left(child)
            if first:
                log.cancel(
                    'cancelling %r (pid %d): a graceful request, then a kill after %.1fs',
                    child.uid[0],
                    child.proc.pid,
                    left,
                )
            else:
                log.cancel(
                    'cancelling %r (pid %d) again: killed in %.1fs unless it exits',
                    child.uid[0],
                    child.proc.pid,
                    left,
                )

            async def cancel_and_wait() -> None:
                if first:  # (a later ladder only waits out what is left)
                    await portal.cancel_actor(timeout=left)
                await child.exited.wait()

            # (longer while a developer is in the debugger: see within_grace)
            await within_grace(self._actor, left, cancel_and_wait)
            self._kill_if_alive(child)
        await child.exited.wait()

    async def cancel(self, hard_kill: bool = False) -> None:
        """Cancel every child: a graceful request, then a kill after a bound
        (or a kill at once with ``hard_kill=True``); returns once all are reaped.

        The nursery's own block is not cancelled: it goes on once this
        returns (tasks of it that talked to a child see that child's end as
        ``ContextCancelled`` or ``TransportClosed``).
        """
        self.cancel_called = True
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as tn:
                for child in list(self._children.values()):
                    if child.one_shot is not None:
                        # its call task cancels the call, collects the final
                        # reply (an error racing the cancel still counts)
                        # and then cancels the child; all within one grace
                        child.one_shot.cancel()
                        if hard_kill:
                            tn.start_soon(self._cancel_child, child, True)
                        else:
                            tn.start_soon(self._kill_after_grace, child)
                    else:
                        tn.start_soon(self._cancel_child, child, hard_kill)

    async def _kill_after_grace(self, child: _Child) -> None:
        left, _ = self._grace_left(child)
        await within_grace(self._actor, left, child.exited.wait)
        self._kill_if_alive(child)
        await child.exited.wait()

    def _kill_if_alive(self, child: _Child) -> None:
        """The ladder's last rung: a child still running once its grace is
        over is killed."""
        if not child.exited.is_set():
            log.warning(
                'actor %r did not exit within %.1fs of a cancel: killing it',
                child.uid[0],
                self._grace,
            )
            child.proc.kill()
