"""The restart policy of a supervisor: what its coordinator does when a
child ends.

One coordinator task per supervisor takes the children's ends one at a time
and applies the policy: the child's restart type (``permanent``,
``transient``, ``temporary``), the strategy (``one_for_one``,
``one_for_all``, ``rest_for_one``), the restart intensity (``max_restarts``
within ``within`` seconds) and the backoff. :class:`RestartPolicy` is that
half of :class:`~tractor._supervisor.Supervisor` (a base of it, not used
alone: it works on the supervisor's children and history); giving up is the
supervisor's own ``_give_up``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from .log import get_logger

if TYPE_CHECKING:
    from collections import deque

    from ._supervise import ActorNursery
    from ._supervised import _Incarnation, _SupChild

log = get_logger('supervisor')

STRATEGIES = ('one_for_one', 'one_for_all', 'rest_for_one')


def backoff_delay(backoff: tuple[float, float], streak: int) -> float:
    """The wait before a restart after ``streak`` quick ones in a row:
    ``first``, doubling, never more than ``cap``."""
    first, cap = backoff
    return min(cap, first * 2 ** min(streak, 64))


class RestartPolicy:
    """The coordinator of a :class:`~tractor._supervisor.Supervisor` and the
    decisions it makes: whether an ended child restarts, which group
    restarts with it, how long to back off, when to give up."""

    # the Supervisor's state this half reads and writes (declared for the
    # type checker; Supervisor.__init__ sets them)
    _an: ActorNursery
    strategy: str
    max_restarts: int
    within: float
    backoff: tuple[float, float] | None
    _children: dict[str, _SupChild]
    _history: deque[float]
    _pending: list[tuple[_SupChild, _Incarnation]]
    _wake: trio.Event
    _closing: bool
    _coord_scope: trio.CancelScope
    _coord_done: trio.Event

    if TYPE_CHECKING:  # the Supervisor's methods this half calls

        def _notify(self) -> None: ...
        async def _spawn(self, child: _SupChild) -> _Incarnation: ...
        def _give_up(
            self, child: _SupChild, failure: BaseException | None, reason: str
        ) -> None: ...

    async def _coordinate(self) -> None:
        try:
            with self._coord_scope:
                while not self._closing:
                    while not self._pending:
                        await self._wake.wait()
                        self._wake = trio.Event()
                    child, inc = self._pending.pop(0)
                    await self._on_end(child, inc)
        finally:
            self._coord_done.set()

    async def _on_end(self, child: _SupChild, inc: _Incarnation) -> None:
        if inc is not child.current or inc.stopping or self._closing or child.settled.is_set():
            # stopped on purpose (a group restart, cancel, teardown), or
            # already dealt with as part of a group: handled there
            return
        child.last_exit = inc.reason
        if not self._should_restart(child, inc):
            if inc.normal:
                log.info('actor %r %s; not restarted (%s)', child.name, inc.reason, child.restart)
                # a one-shot cancelled by someone keeps that ContextCancelled
                child.settle('done', inc.failure if child.call is not None else None, inc.result)
            else:
                log.warning(
                    'actor %r %s; not restarted (%s)', child.name, inc.reason, child.restart
                )
                child.settle('failed', inc.failure)
            self._notify()
            return
        await self._restart(child, inc)

    @staticmethod
    def _should_restart(child: _SupChild, inc: _Incarnation) -> bool:
        return child.restart == 'permanent' or (child.restart == 'transient' and not inc.normal)

    def _group(self, child: _SupChild) -> list[_SupChild]:
        """The children a failure of ``child`` restarts, in start order."""
        if self.strategy == 'one_for_one':
            return [child]
        members = [c for c in self._children.values() if c.state in ('running', 'restarting')]
        if self.strategy == 'rest_for_one':
            order = list(self._children.values())
            members = [c for c in members if order.index(c) >= order.index(child)]
        if child not in members:
            members.append(child)
        return sorted(members, key=list(self._children.values()).index)

    async def _restart(self, failed: _SupChild, inc: _Incarnation) -> None:
        failure: BaseException | None = inc.failure
        reason = inc.reason
        while failed is not None:
            now = trio.current_time()
            while self._history and self._history[0] <= now - self.within:
                self._history.popleft()
            if len(self._history) >= self.max_restarts:
                self._give_up(failed, failure, reason)
                return
            self._history.append(now)
            group = self._group(failed)
            # the living members are stopped first (the failed one is gone)
            # (a living child has a current incarnation: the test narrows the type)
            stopping = [
                s for c in group if c is not failed and c.alive and (s := c.current) is not None
            ]
            for c in group:
                if c.state == 'running':
                    c.state = 'restarting'
            failed.state = 'restarting'
            self._notify()
            if stopping:
                for s in stopping:
                    s.stopping = True
                async with trio.open_nursery() as tn:
                    for s in stopping:
                        if s.record is not None:
                            tn.start_soon(self._an._cancel_child, s.record, False)
                for s in stopping:
                    await s.watched.wait()
            delay = self._backoff_delay(failed)
            if delay > 0:
                await trio.sleep(delay)
            next_failure = None
            for c in group:
                last = c.current
                if c is not failed:
                    if c.restart == 'temporary':
                        c.settle('cancelled', last.failure if last else None)
                        continue
                    if (
                        last is not None
                        and last.ended
                        and not last.stopping
                        and not self._should_restart(c, last)
                    ):
                        # it ended on its own meanwhile, in a way its type does not restart
                        c.last_exit = last.reason
                        c.settle('done' if last.normal else 'failed', last.failure, last.result)
                        continue
                why = reason if c is failed else f'restarted with {failed.name!r} ({self.strategy})'
                c.restarts += 1
                log.warning(
                    'restarting actor %r (restart #%d; %s): %s',
                    c.name,
                    c.restarts,
                    self.strategy,
                    why,
                )
                try:
                    await self._spawn(c)
                except Exception as err:
                    c.last_exit = f'failed to restart: {err!r}'
                    next_failure = (c, err)
                    break
                c.state = 'running'
                self._notify()
            if next_failure is None:
                return
            failed, failure = next_failure
            reason = f'failed to restart ({failure!r})'

    def _backoff_delay(self, child: _SupChild) -> float:
        """Doubling delay for a child that keeps failing quickly; a child that
        ran for ``within`` seconds starts over."""
        if self.backoff is None:
            return 0.0
        inc = child.current
        if inc is not None and trio.current_time() - inc.born >= self.within:
            child.streak = 0
        delay = backoff_delay(self.backoff, child.streak)
        child.streak += 1
        return delay


def _check_args(
    strategy: Any, max_restarts: Any, within: Any, backoff: Any, restart_wait: Any
) -> tuple[float, float] | None:
    if strategy not in STRATEGIES:
        raise ValueError(f'strategy must be one of {list(STRATEGIES)}, got {strategy!r}')
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise ValueError(f'max_restarts must be an int >= 0, got {max_restarts!r}')
    if isinstance(within, bool) or not isinstance(within, (int, float)) or not within > 0:
        raise ValueError(f'within must be a number of seconds > 0, got {within!r}')
    if (
        isinstance(restart_wait, bool)
        or not isinstance(restart_wait, (int, float))
        or restart_wait < 0
    ):
        raise ValueError(f'restart_wait must be a number of seconds >= 0, got {restart_wait!r}')
    if backoff is None:
        return None
    pair = (
        (backoff, within)
        if isinstance(backoff, (int, float)) and not isinstance(backoff, bool)
        else backoff
    )
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or any(isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0 for x in pair)
        or pair[0] > pair[1]
    ):
        raise ValueError(
            'backoff must be None, a first delay in seconds, or a (first, cap) pair '
            f'of seconds with first <= cap, got {backoff!r}'
        )
    return (float(pair[0]), float(pair[1]))
