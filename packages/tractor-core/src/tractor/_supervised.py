"""What a supervisor keeps per child, and the portal that follows a child
across its restarts (:class:`SupervisedPortal`).

A supervised child (:class:`_SupChild`) lives through one or more
incarnations (:class:`_Incarnation`: one process each); ``ChildInfo`` is the
public snapshot of it. The supervisor itself is :mod:`tractor._supervisor`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ._exceptions import TransportClosed
from ._portal import Portal

if TYPE_CHECKING:
    from ._cancel_ladder import _Child
    from ._context import Context
    from ._ipc import Channel
    from ._supervisor import Supervisor


class ChildInfo(msgspec.Struct, frozen=True):  # (a Struct: msgspec is loaded anyway)
    """A snapshot of one supervised child (``Supervisor.children``).

    ``state`` is ``'starting'`` (first spawn under way), ``'running'``,
    ``'restarting'`` (it ended and a new incarnation is on its way),
    ``'done'`` (ended normally, not restarted), ``'failed'`` (ended
    abnormally and not restarted: a temporary child, or the supervisor gave
    up) or ``'cancelled'`` (stopped by the supervisor's cancel or teardown).
    ``restarts`` counts its restarts so far; ``last_exit`` says how its
    previous incarnation ended.
    """

    name: str
    restart: str
    state: str
    restarts: int
    pid: int | None
    last_exit: str | None
    portal: SupervisedPortal


class _Incarnation:
    """One process of a supervised child."""

    __slots__ = (
        'portal',
        'record',
        'uid',
        'pid',
        'born',
        'stopping',
        'ended',
        'watched',
        'normal',
        'reason',
        'failure',
        'result',
    )

    def __init__(self, portal: Portal, record: _Child | None) -> None:
        aid = portal.channel.aid
        assert aid is not None
        self.portal = portal
        #: the nursery's record of the process (None: already reaped)
        self.record = record
        self.uid = aid.uid
        self.pid = aid.pid
        self.born = trio.current_time()
        #: the supervisor itself is stopping it (strategy, cancel, teardown)
        self.stopping = False
        self.ended = False
        self.watched = trio.Event()  # its watcher is done with it
        self.normal = False
        self.reason = ''
        self.failure: BaseException | None = None
        self.result: Any = None


class _SupChild:
    __slots__ = (
        'name',
        'restart',
        'options',
        'call',
        'restarts',
        'state',
        'current',
        'streak',
        'last_exit',
        'settled',
        'final_error',
        'final_result',
        'portal',
        'collected',
    )

    def __init__(
        self,
        name: str,
        restart: str,
        options: dict[str, Any],
        call: tuple[str, str, dict[str, Any]] | None,
    ) -> None:
        self.name = name
        self.restart = restart
        self.options = options
        #: a one-shot's function: (module, name, kwargs); None for a daemon
        self.call = call
        self.restarts = 0
        self.state = 'starting'
        self.current: _Incarnation | None = None
        #: consecutive quick failures, for the backoff
        self.streak = 0
        self.last_exit: str | None = None
        self.settled = trio.Event()  # ended for good
        #: a one-shot's result was read (wait_for_result())
        self.collected = False
        self.final_error: BaseException | None = None
        self.final_result: Any = None
        self.portal: SupervisedPortal

    @property
    def alive(self) -> bool:
        return self.current is not None and not self.current.ended

    def settle(self, state: str, error: BaseException | None = None, result: Any = None) -> None:
        if self.settled.is_set():
            return
        self.state = state
        self.final_error = error
        self.final_result = result
        self.settled.set()


class SupervisedPortal(Portal):
    """A portal to a supervised child that stays valid across its restarts.

    Each call goes to the child's current incarnation. A call in flight
    when that incarnation dies raises :class:`~tractor.TransportClosed` at
    once; a call made while the child is restarting waits (at most the
    supervisor's ``restart_wait``) for the new incarnation and goes to it.
    Once the child has ended for good, calls raise ``TransportClosed``.
    """

    def __init__(self, sup: Supervisor, child: _SupChild) -> None:
        # no Portal.__init__: this portal has no channel of its own
        self._sup = sup
        self._child = child

    @property
    def channel(self) -> Channel:  # type: ignore[override]  # read-only: the current incarnation's
        """The current incarnation's channel (possibly a dead one)."""
        inc = self._child.current
        if inc is None:
            raise RuntimeError(f'actor {self._child.name!r} has not started yet')
        return inc.portal.channel

    def __repr__(self) -> str:
        return f'<SupervisedPortal to {self._child.name!r} ({self._child.state})>'

    @property
    def info(self) -> ChildInfo:
        """Its child's current state and restart count (as in ``Supervisor.children``)."""
        return self._sup._info(self._child)

    async def _live(self) -> Portal:
        child, sup = self._child, self._sup
        inc = child.current
        if inc is not None and not inc.ended and inc.portal.channel.connected():
            return inc.portal  # the common case, without a cancel scope
        with trio.move_on_after(sup.restart_wait):
            while True:
                changed = sup._changed
                inc = child.current
                if inc is not None and not inc.ended and inc.portal.channel.connected():
                    return inc.portal
                if child.settled.is_set() or sup._closing:
                    raise TransportClosed(
                        f'actor {child.name!r} has ended ({child.last_exit or child.state}) '
                        'and will not be restarted'
                    )
                await changed.wait()
        raise TransportClosed(
            f'actor {child.name!r} is restarting and was not back within '
            f'restart_wait={sup.restart_wait}s'
        )

    async def run(self, func: Callable | str, fn_name: str | None = None, /, **kwargs: Any) -> Any:
        portal = await self._live()
        return await portal.run(func, fn_name, **kwargs)

    async def run_from_ns(self, namespace_path: str, function_name: str, **kwargs: Any) -> Any:
        portal = await self._live()
        return await portal.run_from_ns(namespace_path, function_name, **kwargs)

    @asynccontextmanager
    async def open_context(
        self, func: Callable, **kwargs: Any
    ) -> AsyncIterator[tuple[Context, Any]]:
        portal = await self._live()
        async with portal.open_context(func, **kwargs) as pair:
            yield pair

    async def cancel_actor(self, timeout: float | None = None) -> bool:
        """Cancel the current incarnation. A ``permanent`` child is then
        restarted; use ``Supervisor.cancel()`` to stop them all for good."""
        inc = self._child.current
        if inc is None or inc.ended:
            return False
        return await inc.portal.cancel_actor(timeout=timeout)

    async def wait_for_result(self) -> Any:
        """A ``run_in_actor`` child's result: the return value of the run
        that ended it for good (after any restarts), or its last error."""
        if self._child.call is None:
            raise RuntimeError(
                f'{self!r} has no main result: it was started with start_actor(), '
                'use run_in_actor() for a one-shot actor with a result'
            )
        await self._child.settled.wait()
        if not self._child.collected:
            self._child.collected = True
            self._sup._notify()  # its process may go now
        if self._child.final_error is not None:
            raise self._child.final_error
        return self._child.final_result

    result = wait_for_result

    async def aclose(self) -> None:
        """Nothing to close: the supervisor owns the connections."""

    async def __aexit__(self, *exc: Any) -> None:
        pass
