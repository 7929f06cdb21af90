"""Supervisors: actor nurseries that restart the children that end,
Erlang/OTP style, inside structured concurrency.

A :class:`Supervisor` is built on an ordinary :class:`~tractor.ActorNursery`
(which still spawns, reaps and cancels every process) and adds:

- a *watcher* task per child incarnation that learns how it ended: for a
  ``start_actor`` child through a ``lifeline()`` call it keeps open in the
  child (see :mod:`tractor._lifeline`), for a ``run_in_actor`` child through
  the call of its function, and in both cases through the process's exit
  status, which the nursery collects;
- one *coordinator* task that takes those ends one at a time and applies the
  policy: the child's restart type, the strategy, the restart intensity and
  the backoff. Serialising the decisions in one task means a group restart
  (``one_for_all``, ``rest_for_one``) never races another child's end.

Portals handed out by the supervisor (:class:`SupervisedPortal`) follow their
child across restarts.

This module holds :class:`Supervisor` (starting, giving up on and stopping
the children) and :func:`open_supervisor`; the watcher of each incarnation
is :mod:`tractor._watcher`, the policy the coordinator applies
:mod:`tractor._restarts`, the children's records and their portal
:mod:`tractor._supervised`.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._exceptions import TractorError, check_actor_name
from ._nursery import open_nursery
from ._portal import _fn_address
from ._restarts import RestartPolicy, _check_args
from ._supervise import ActorNursery
from ._supervised import ChildInfo, SupervisedPortal, _Incarnation, _SupChild
from ._watcher import _LIFELINE_NS, IncarnationWatcher
from .log import get_logger
from .trionics import collapse_eg

log = get_logger('supervisor')

RESTART_TYPES = ('permanent', 'transient', 'temporary')
#: what run_in_actor() takes as spawn options (the rest are the function's
#: kwargs): start_actor()'s own keywords, read off it so the two stay in step
SPAWN_OPTIONS = tuple(
    p.name
    for p in inspect.signature(ActorNursery.start_actor).parameters.values()
    if p.kind is p.KEYWORD_ONLY and p.name != 'enable_modules'
)


class TooManyRestarts(TractorError):
    """A supervisor gave up: a child failed again after ``max_restarts``
    restarts within ``within`` seconds.

    ``child`` names the child whose failure was one too many, ``restarts``
    is how many restarts the supervisor had made in the window, and the
    child's last failure is the ``__cause__``. Every other child was
    cancelled before this was raised.
    """

    def __init__(
        self, child: str, restarts: int, max_restarts: int, within: float, reason: str
    ) -> None:
        super().__init__(
            f'actor {child!r} {reason} after {restarts} restart(s) within {within}s '
            f'(max_restarts={max_restarts}): the supervisor gave up'
        )
        self.child = child
        self.restarts = restarts
        self.max_restarts = max_restarts
        self.within = within
        self.reason = reason

    def __reduce__(self):  # picklable like the other runtime errors
        return (
            type(self),
            (self.child, self.restarts, self.max_restarts, self.within, self.reason),
        )


class Supervisor(RestartPolicy, IncarnationWatcher):
    """Starts children like an actor nursery and restarts them when they
    end, by their restart type and the supervisor's strategy.

    Made by :func:`open_supervisor`; ``start_actor()``, ``run_in_actor()``
    and ``cancel()`` take the nursery's arguments plus ``restart=``.
    ``children`` is a view of every child's state.
    """

    def __init__(
        self,
        an: ActorNursery,
        strategy: str,
        max_restarts: int,
        within: float,
        backoff: tuple[float, float] | None,
        restart_wait: float,
    ) -> None:
        self._an = an
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.within = within
        self.backoff = backoff
        self.restart_wait = restart_wait
        self._children: dict[str, _SupChild] = {}  # start order
        self._history: deque[float] = deque()  # restart times in the window
        #: ends not yet looked at by the coordinator: at most one per live
        #: incarnation, so bounded by the number of children
        self._pending: list[tuple[_SupChild, _Incarnation]] = []
        self._wake = trio.Event()
        #: set and replaced on every state change (waiters re-check)
        self._changed = trio.Event()
        self._closing = False
        self._gave_up: TooManyRestarts | None = None
        self._tn: trio.Nursery | None = None
        self._body_scope: trio.CancelScope | None = None
        self._coord_scope = trio.CancelScope()
        self._coord_done = trio.Event()

    @property
    def children(self) -> dict[str, ChildInfo]:
        """``{name: ChildInfo}`` in start order: state, restart count, pid."""
        return {c.name: self._info(c) for c in self._children.values()}

    @staticmethod
    def _info(c: _SupChild) -> ChildInfo:
        return ChildInfo(
            name=c.name,
            restart=c.restart,
            state=c.state,
            restarts=c.restarts,
            pid=c.current.pid if c.current is not None and not c.current.ended else None,
            last_exit=c.last_exit,
            portal=c.portal,
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- starting children ----------------------------------------------------
    def _add(
        self,
        name: str,
        restart: str,
        options: dict[str, Any],
        call: tuple[str, str, dict[str, Any]] | None,
    ) -> _SupChild:
        if self._closing:
            raise RuntimeError('this supervisor was cancelled; it starts no more children')
        if restart not in RESTART_TYPES:
            raise ValueError(f'restart must be one of {list(RESTART_TYPES)}, got {restart!r}')
        check_actor_name(name)
        old = self._children.get(name)
        if old is not None and not old.settled.is_set():
            raise ValueError(
                f'this supervisor already has a child named {name!r} ({old.state}): '
                'supervised children need distinct names'
            )
        self._children.pop(name, None)  # a child that ended for good makes room
        child = _SupChild(name, restart, options, call)
        child.portal = SupervisedPortal(self, child)
        self._children[name] = child
        return child

    async def start_actor(
        self, name: str, *, restart: str = 'permanent', **options: Any
    ) -> SupervisedPortal:
        """Spawn a daemon actor ``name`` (the options of
        ``ActorNursery.start_actor``); returns a portal that follows it
        across restarts once the child serves.

        ``restart``: ``'permanent'`` (default: always restarted),
        ``'transient'`` (restarted unless it was cancelled: a signal, a crash
        or an exit of its own count as abnormal) or ``'temporary'`` (never).
        """
        child = self._add(name, restart, options, None)
        await self._first_spawn(child)
        return child.portal

    async def run_in_actor(
        self,
        fn: Callable,
        *,
        name: str | None = None,
        restart: str = 'transient',
        enable_modules: list[str] | None = None,
        **kwargs: Any,
    ) -> SupervisedPortal:
        """Spawn an actor that runs ``fn(**kwargs)``; ``await
        portal.wait_for_result()`` gives its result.

        Its error does not cancel the siblings: a ``'transient'`` (default)
        or ``'permanent'`` child re-runs ``fn`` in a new incarnation, a
        ``'temporary'`` one keeps the error for ``wait_for_result()``. A
        ``'permanent'`` one is re-run even after it returned.
        """
        ns, fname = _fn_address(fn)
        options = {k: kwargs.pop(k) for k in SPAWN_OPTIONS if k in kwargs}
        options['enable_modules'] = [ns, *(enable_modules or ())]
        child = self._add(fname if name is None else name, restart, options, (ns, fname, kwargs))
        await self._first_spawn(child)
        return child.portal

    async def _first_spawn(self, child: _SupChild) -> None:
        try:
            await self._spawn(child)
        except BaseException:
            if self._children.get(child.name) is child:
                del self._children[child.name]
            raise
        child.state = 'running'
        self._notify()

    async def _spawn(self, child: _SupChild) -> _Incarnation:
        options = dict(child.options)
        if child.call is None:
            mods = options.get('enable_modules')
            if mods is None or isinstance(mods, (list, tuple)):
                mods = list(mods or ())
                if _LIFELINE_NS not in mods:
                    mods.append(_LIFELINE_NS)
                options['enable_modules'] = mods
        portal = await self._an.start_actor(child.name, **options)
        aid = portal.channel.aid
        assert aid is not None
        # the nursery's own record of the process: its exit event and
        # status (absent only if it already died and was reaped)
        record = self._an._children.get(aid.uid)
        inc = _Incarnation(portal, record)
        child.current = inc
        assert self._tn is not None
        self._tn.start_soon(self._watch, child, inc, name=f'watch {child.name}')
        return inc

    # -- giving up (the rest of the policy is _restarts.RestartPolicy) ---------------
    def _give_up(self, child: _SupChild, failure: BaseException | None, reason: str) -> None:
        err = TooManyRestarts(
            child.name, len(self._history), self.max_restarts, self.within, reason
        )
        err.__cause__ = failure
        log.error('%s', err)
        self._gave_up = err
        self._closing = True
        child.settle('failed', failure)
        self._notify()
        if self._body_scope is not None:
            self._body_scope.cancel()

    # -- stopping -------------------------------------------------------------------
    async def cancel(self, hard_kill: bool = False) -> None:
        """Stop every child for good, restarting none: the nursery's cancel
        ladder (``hard_kill=True`` kills at once). Returns once all are reaped;
        the supervisor starts no more children afterwards."""
        self._closing = True
        self._coord_scope.cancel()
        with trio.CancelScope(shield=True):
            await self._coord_done.wait()
            for c in self._children.values():
                if c.current is not None:
                    c.current.stopping = True
            self._notify()
            # every child through the nursery's cancel ladder (it leaves
            # the nursery's block, that is ours, running)
            await self._an.cancel(hard_kill=hard_kill)
            for c in list(self._children.values()):
                if c.current is not None:
                    await c.current.watched.wait()
                if not c.settled.is_set():
                    last = c.current
                    c.last_exit = last.reason if last is not None else c.last_exit
                    if (
                        last is not None
                        and last.normal
                        and c.call is not None
                        and last.failure is None
                    ):
                        c.settle('done', None, last.result)  # it returned before the cancel
                    else:
                        c.settle('cancelled', last.failure if last is not None else None)
            self._notify()

    async def _wait_settled(self) -> None:
        """Until every child has ended for good (or the supervisor gave up)."""
        while not self._closing and not all(c.settled.is_set() for c in self._children.values()):
            await self._changed.wait()


@asynccontextmanager
async def open_supervisor(
    strategy: str = 'one_for_one',
    max_restarts: int = 3,
    within: float = 5.0,
    backoff: float | tuple[float, float] | None = None,
    restart_wait: float = 30.0,
    **nursery_options: Any,
) -> AsyncIterator[Supervisor]:
    """Open a supervisor: an actor nursery whose children are restarted when
    they end, instead of one failure cancelling all.

    - ``strategy``: ``'one_for_one'`` restarts only the child that ended;
      ``'one_for_all'`` cancels the others and restarts all in start order;
      ``'rest_for_one'`` restarts it and the children started after it.
    - More than ``max_restarts`` restarts within ``within`` seconds: the
      supervisor cancels every child and raises :class:`TooManyRestarts`
      from this block, the last failure as its ``__cause__``.
    - ``backoff``: ``None`` (restart at once), a first delay ``d`` (then
      ``2d``, ``4d``, ... at most ``within``) or a ``(first, cap)`` pair.
    - ``restart_wait``: how long a call through a supervised portal waits
      for a restarting child to be back before raising ``TransportClosed``.
    - ``nursery_options`` go to ``open_nursery()`` (which boots the root
      actor when none runs).

    The block exits once every child has ended for good; ``cancel()`` stops
    them all. An error or a cancel in the block stops them all, restarting
    none, before it propagates.
    """
    pair = _check_args(strategy, max_restarts, within, backoff, restart_wait)
    async with open_nursery(**nursery_options) as an:
        sup = Supervisor(an, strategy, max_restarts, float(within), pair, float(restart_wait))
        body_exc: BaseException | None = None
        # only a KeyboardInterrupt landing in one of our own tasks (or a bug
        # in one) can leave this nursery: as itself, not in a group
        async with collapse_eg(), trio.open_nursery() as tn:
            sup._tn = tn
            tn.start_soon(sup._coordinate, name='supervisor coordinator')
            try:
                with trio.CancelScope() as body_scope:
                    sup._body_scope = body_scope
                    yield sup
                    await sup._wait_settled()
            except BaseException as exc:
                # an error, a cancel from outside, Ctrl-C: every child is
                # stopped (none restarted) before it goes on
                body_exc = exc
            finally:
                sup._body_scope = None
                await sup.cancel()
                tn.cancel_scope.cancel()
        if body_exc is not None:
            raise body_exc
        if sup._gave_up is not None:
            raise sup._gave_up
