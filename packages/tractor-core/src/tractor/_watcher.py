"""The watcher of a supervised child's incarnation: how that process ended.

One watcher task per incarnation (in the supervisor's own trio nursery).
For a ``start_actor`` child it keeps a ``lifeline()`` call open in the child
(see :mod:`tractor._lifeline`), for a ``run_in_actor`` child it makes the
call of its function; the call's end, then the process's exit status (which
the nursery collects), say whether the end was normal and why. It stops
what is left of the process through the nursery's cancel ladder and hands
the end to the coordinator (:mod:`tractor._restarts`).
:class:`IncarnationWatcher` is that half of
:class:`~tractor._supervisor.Supervisor` (a base of it, not used alone).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import trio

from . import _state
from ._cancel_ladder import CANCEL_GRACE
from ._exceptions import ActorFailure, ContextCancelled, RemoteActorError, TransportClosed

if TYPE_CHECKING:
    from ._runtime import Actor
    from ._supervise import ActorNursery
    from ._supervised import _Incarnation, _SupChild

#: the module every supervised daemon serves for its watcher
_LIFELINE_NS = 'tractor._lifeline'


def _exit_reason(rc: int | None) -> str:
    if rc is None:
        return 'ended (exit status unknown)'
    if rc < 0:
        try:
            return f'was killed by {signal.Signals(-rc).name}'
        except ValueError:
            return f'was killed by signal {-rc}'
    if rc == 0:
        return 'exited on its own (code 0)'
    return f'exited with code {rc}'


class IncarnationWatcher:
    """The watcher task of each incarnation of a
    :class:`~tractor._supervisor.Supervisor`'s children."""

    # the Supervisor's state this half reads and writes (declared for the
    # type checker; Supervisor.__init__ sets them)
    _an: ActorNursery
    _pending: list[tuple[_SupChild, _Incarnation]]
    _wake: trio.Event
    _changed: trio.Event
    _closing: bool

    if TYPE_CHECKING:  # the Supervisor's methods this half calls

        def _notify(self) -> None: ...
        @staticmethod
        def _should_restart(child: _SupChild, inc: _Incarnation) -> bool: ...

    @property
    def _actor(self) -> Actor:
        return _state.current_actor()

    async def _watch(self, child: _SupChild, inc: _Incarnation) -> None:
        actor = self._actor
        chan = inc.portal.channel
        died = False
        try:
            if child.call is None:
                await actor.call(chan, _LIFELINE_NS, 'lifeline', {})
                inc.reason = 'ended its lifeline call'  # it never returns by itself
            else:
                ns, fname, kwargs = child.call
                inc.result = await actor.call(chan, ns, fname, kwargs, reply_on_cancel=CANCEL_GRACE)
                inc.normal = True
                inc.reason = f'{fname}() returned'
        except ContextCancelled as err:
            # cancelled by another actor (or by us): a normal end; with
            # itself as the canceller the actor shut down on its own
            canceller = tuple(err.canceller) if err.canceller else None
            inc.failure = err
            if canceller is not None and canceller != inc.uid:
                inc.normal = True
                inc.reason = f'was cancelled by {canceller[0]!r}'
            else:
                inc.normal = False
                inc.reason = 'shut down on its own'
        except RemoteActorError as err:
            inc.failure = err
            inc.reason = f'raised {err.type_name}: {err.msg}'
        except TransportClosed:
            died = True
        except Exception as err:  # e.g. kwargs that cannot cross the wire
            inc.failure = err
            inc.reason = f'could not be called: {err!r}'
        finally:
            with trio.CancelScope(shield=True):
                record = inc.record
                if (
                    record is not None
                    and inc.normal
                    and inc.failure is None
                    and child.call is not None
                    and not self._should_restart(child, inc)
                ):
                    # a one-shot that returned for good: like a nursery's, it
                    # keeps serving its siblings until its result was read
                    # or the supervisor closes; it is done already
                    inc.ended = True
                    self._pending.append((child, inc))
                    self._wake.set()
                    self._notify()
                    while not (child.collected or self._closing):
                        await self._changed.wait()
                if record is not None:
                    if died or child.call is None:
                        # it is dying or gone: let the nursery see the exit
                        # (and log it) before anyone asks it to cancel
                        with trio.move_on_after(CANCEL_GRACE):
                            await record.exited.wait()
                    # a one-shot that returned, or anything still there: the ladder
                    await self._an._cancel_child(record, hard_kill=False)
                rc = record.proc.returncode if record is not None else None
                if died or (inc.normal and child.call is None and rc != 0):
                    inc.normal = False
                    inc.reason = _exit_reason(rc)
                if not inc.normal and (
                    inc.failure is None or isinstance(inc.failure, ContextCancelled)
                ):
                    # no error of its own to show for it: describe the death
                    inc.failure = ActorFailure(f'actor {child.name!r} (pid {inc.pid}) {inc.reason}')
                inc.watched.set()
                if not inc.ended:
                    inc.ended = True
                    self._pending.append((child, inc))
                    self._wake.set()
                self._notify()
