"""Actors that run asyncio code: trio as a guest of an asyncio event loop.

An *infected* actor (``start_actor(..., infect_asyncio=True)``, or a root run
with :func:`run_as_asyncio_guest`) runs an asyncio event loop as its host and
trio on top of it with trio's guest mode (``trio.lowlevel.start_guest_run``).
The runtime, its RPC and its IPC are the same trio code as in any actor;
asyncio libraries run beside it, in the same thread, driven by the host loop.

Trio tasks start asyncio tasks through two calls, and each asyncio task is
tied to the trio task that started it, as a child task is to its nursery:

- :func:`run_task` runs one coroutine function and returns its result;
- :func:`open_channel_from` starts a long-lived asyncio task with a two-way
  :class:`LinkedTaskChannel` to it.

Errors and cancellation cross the way they cross trio tasks: an exception of
the asyncio task raises (as itself) in the trio task; cancelling the trio task
cancels the asyncio task and waits for it to finish. An asyncio task that
ignores its cancellation is waited for at most :data:`AIO_CANCEL_GRACE`
seconds (longer than the parent's cancel ladder, which kills the actor
first), then abandoned with an error log. When the actor's trio run ends,
every asyncio task still pending (tasks that asyncio code spawned on its own,
such as a server's connection handlers) is cancelled and awaited, bounded,
before the loop closes.

Both loops share one OS thread, so nothing here needs a lock: trio allows
code on the host loop to wake its tasks (``trio.lowlevel.reschedule``), and
asyncio futures are completed directly from trio tasks.
"""
from __future__ import annotations

import asyncio
import inspect
import os
from collections import deque
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, TypeVar

import trio

from . import _settings
from . import _state
from ._exceptions import TractorError
from .log import get_logger

log = get_logger('to_asyncio')

T = TypeVar('T')

#: how long a cancelled asyncio task may take to finish before the trio side
#: gives up on it; twice the parent's cancel grace, so that an actor whose
#: parent is alive is killed by the parent's ladder first
AIO_CANCEL_GRACE = (
    _settings.value('TRACTOR_AIO_CANCEL_GRACE') or 2 * _settings.value('TRACTOR_CANCEL_GRACE')
)
#: values one side of a :class:`LinkedTaskChannel` may hold unread
DEFAULT_CHANNEL_SIZE = 256

__all__ = [
    'AIO_CANCEL_GRACE', 'AsyncioCancelled', 'LinkedTaskChannel', 'NotInfectedError',
    'is_infected', 'open_channel_from', 'run_as_asyncio_guest', 'run_task',
]


class NotInfectedError(TractorError, RuntimeError):
    """An asyncio bridge (``run_task``, ``open_channel_from``) was used in a
    trio run that is not a guest of an asyncio loop."""


class AsyncioCancelled(TractorError):
    """The asyncio task was cancelled by asyncio code, not by the trio task
    that waits for it (a cancel the trio side asked for is a trio cancel)."""


# -- the host loop ------------------------------------------------------------

def is_infected() -> bool:
    """Whether this thread's trio run is a guest of an asyncio loop started
    by :func:`run_as_asyncio_guest` (``infect_asyncio=True`` actors)."""
    return _host_loop() is not None


def _host_loop() -> asyncio.AbstractEventLoop | None:
    loop = _state.asyncio_host_loop()
    if loop is None:
        return None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop if running is loop else None


def _require_loop(api: str) -> asyncio.AbstractEventLoop:
    loop = _host_loop()
    if loop is None:
        raise NotInfectedError(
            f'tractor.to_asyncio.{api}() needs an asyncio-infected actor, and this '
            f'trio run is not a guest of an asyncio loop: spawn the actor with '
            f'infect_asyncio=True (start_actor()/run_in_actor()), or run the root '
            f'with tractor.to_asyncio.run_as_asyncio_guest(main)'
        )
    return loop


def run_as_asyncio_guest(
    trio_main: Callable[..., Awaitable[T]],
    *args: Any,
) -> T:
    """Run ``trio_main(*args)`` as a trio guest on a fresh asyncio event loop
    (the host) and return its result, or raise its error.

    This is how an infected subactor runs, and how a root actor can be
    infected: ``tractor.to_asyncio.run_as_asyncio_guest(main)`` in place of
    ``trio.run(main)``. Ctrl-C raises ``KeyboardInterrupt`` in trio's main
    task at its next checkpoint (never inside asyncio's loop machinery). When
    the trio run is over, asyncio tasks still pending are cancelled and
    awaited (at most :data:`AIO_CANCEL_GRACE` seconds), async generators and
    the default executor are shut down and the loop is closed.
    """
    if _state.asyncio_host_loop() is not None:
        raise RuntimeError('run_as_asyncio_guest() is already running in this process')
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            'run_as_asyncio_guest() starts its own asyncio loop: call it from '
            'synchronous code, not from inside a running loop'
        )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _state._set_asyncio_host_loop(loop)
    try:
        return loop.run_until_complete(_host(loop, trio_main, args))
    finally:
        try:
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            _state._set_asyncio_host_loop(None)
            asyncio.set_event_loop(None)
            loop.close()


async def _host(
    loop: asyncio.AbstractEventLoop, trio_main: Callable[..., Awaitable[T]], args: tuple,
) -> T:
    # resolved with the run's outcome.Outcome (trio's own dependency)
    done: asyncio.Future[Any] = loop.create_future()

    def trio_done(run_outcome: Any) -> None:
        if not done.done():
            done.set_result(run_outcome)

    trio.lowlevel.start_guest_run(
        trio_main, *args,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=loop.call_soon,
        done_callback=trio_done,
        # asyncio only takes the wakeup fd if user code adds a signal handler;
        # until then trio's wakes both loops on a signal
        host_uses_signal_set_wakeup_fd=False,
        # a Ctrl-C must not be raised inside asyncio's loop machinery (that
        # would tear the host loop out from under the guest run): trio raises
        # it in its main task at the next checkpoint instead
        restrict_keyboard_interrupt_to_checkpoints=True,
    )
    # this host task ends with the trio run and nothing else: asyncio code
    # cancelling every task (its own "shutdown") must not abandon the guest
    while True:
        try:
            run_outcome = await asyncio.shield(done)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            continue
        return run_outcome.unwrap()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and await the asyncio tasks still pending once trio is done
    (what ``asyncio.run`` does, but bounded)."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    gathered = asyncio.gather(*pending, return_exceptions=True)
    loop.run_until_complete(asyncio.wait([gathered], timeout=AIO_CANCEL_GRACE))
    for task in pending:
        if not task.done():
            log.error('asyncio task %r ignored its cancellation for %.1fs: abandoned at exit',
                      task.get_name(), AIO_CANCEL_GRACE)
            # said once, here: asyncio would add "Task was destroyed but it
            # is pending" when the closed loop's task is collected (asyncio
            # turns this off itself for tasks it abandons on purpose)
            try:
                task._log_destroy_pending = False  # type: ignore[attr-defined]
            except AttributeError:
                pass
        elif not task.cancelled() and task.exception() is not None:
            log.error('asyncio task %r failed while being cancelled at exit: %r',
                      task.get_name(), task.exception())
    if not gathered.done():
        gathered.cancel()


# -- one asyncio task, tied to the trio task that awaits it ------------------

def _task_name(fn: Callable) -> str:
    return getattr(fn, '__qualname__', None) or repr(fn)


class _Linked:
    """An asyncio task and what the trio task that owns it knows of it."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], name: str,
    ) -> None:
        self.done = trio.Event()
        #: whether the trio side asked for the asyncio task's cancel
        self.cancelled_by_trio = False
        self.on_failure: Callable[[], None] | None = None
        self.task = loop.create_task(coro, name=name)
        # a done callback runs on the host loop: trio lets host-loop code
        # wake its tasks in guest mode
        self.task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.done.set()
        if self.on_failure is not None and self.failure() is not None:
            self.on_failure()

    def failure(self) -> BaseException | None:
        """The error the finished task ends with for the trio side: its own
        exception, or :class:`AsyncioCancelled` for a cancel that asyncio
        code (not the trio side) made; ``None`` for a result (or while it
        still runs: one the trio side gave up waiting for)."""
        task = self.task
        if not task.done():
            return None
        if task.cancelled():
            if self.cancelled_by_trio:
                return None
            return AsyncioCancelled(
                f'asyncio task {task.get_name()!r} was cancelled by asyncio code'
            )
        return task.exception()

    def result(self) -> Any:
        err = self.failure()
        if err is not None:
            raise err
        return self.task.result()

    async def cancel_and_wait(self) -> None:
        """Cancel the task (if still running) and wait for it, shielded and
        bounded by :data:`AIO_CANCEL_GRACE`; an error it raises while
        cancelled (not its ``CancelledError``) is raised here, as an error in
        a trio task's cleanup would be."""
        if self.task.done():
            return
        self.cancelled_by_trio = True
        self.task.cancel()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(AIO_CANCEL_GRACE):
                await self.done.wait()
        if not self.task.done():
            log.error(
                'asyncio task %r ignored its cancellation for %.1fs: the trio side '
                'stops waiting for it', self.task.get_name(), AIO_CANCEL_GRACE,
            )
            return
        err = self.failure()
        if err is not None:
            raise err


async def run_task(async_fn: Callable[..., Awaitable[T]], **kwargs: Any) -> T:
    """Run the asyncio coroutine function ``async_fn(**kwargs)`` as an
    asyncio task and return its result to this trio task.

    Its exception is raised here as itself; an asyncio-side cancel raises
    :class:`AsyncioCancelled`. Cancelling this trio task cancels the asyncio
    task and waits for it. Raises :class:`NotInfectedError` outside an
    infected actor.
    """
    loop = _require_loop('run_task')
    coro = _call(async_fn, kwargs, 'run_task')
    linked = _Linked(loop, coro, _task_name(async_fn))
    try:
        await linked.done.wait()
    finally:
        await linked.cancel_and_wait()
    return linked.result()


def _call(fn: Callable, kwargs: dict[str, Any], api: str) -> Coroutine[Any, Any, Any]:
    if not callable(fn):
        raise TypeError(f'{api}() takes an asyncio coroutine function, got {fn!r}')
    coro = fn(**kwargs)
    if not inspect.iscoroutine(coro):
        raise TypeError(
            f'{api}() takes an asyncio coroutine function; {_task_name(fn)} '
            f'returned {type(coro).__name__}, not a coroutine'
        )
    return coro


# -- a two-way channel between a trio task and an asyncio task --------------

class LinkedTaskChannel:
    """The two ends of one trio task <-> asyncio task pair, in one object.

    trio side (the ``open_channel_from`` block): ``await chan.send(value)``
    (waits while the asyncio side has ``maxsize`` values unread),
    ``await chan.receive()`` and ``async for value in chan`` (the stream ends
    with ``trio.EndOfChannel`` once the asyncio task returned and everything
    it sent was read; its error, if it failed, is raised instead).

    asyncio side (the target's ``chan`` argument):
    ``chan.started_nowait(value)`` hands the trio side its ``first`` value
    (once, before anything else); ``chan.send_nowait(value)`` sends a value
    (``asyncio.QueueFull`` while the trio side has ``maxsize`` values unread;
    before ``started_nowait`` the first value sent is ``first``);
    ``await chan.put(value)`` sends, waiting for room; ``await chan.get()``
    receives what the trio side sent.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = DEFAULT_CHANNEL_SIZE) -> None:
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f'maxsize must be an int >= 1, got {maxsize!r}')
        self._loop = loop
        self.maxsize = maxsize
        self._to_trio: deque[Any] = deque()
        self._to_aio: deque[Any] = deque()
        #: trio task blocked in receive()/send()/the wait for `first`
        self._trio_wakeup: trio.Event | None = None
        #: asyncio task blocked in get()/put()
        self._aio_wakeup: asyncio.Future[None] | None = None
        self._started = False
        self._first: Any = None
        self._linked: _Linked | None = None

    # -- waking either side ------------------------------------------------
    def _wake_trio(self) -> None:
        ev, self._trio_wakeup = self._trio_wakeup, None
        if ev is not None:
            ev.set()

    def _wake_aio(self) -> None:
        fut, self._aio_wakeup = self._aio_wakeup, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _trio_wait(self) -> None:
        if self._trio_wakeup is None:
            self._trio_wakeup = trio.Event()
        await self._trio_wakeup.wait()

    async def _aio_wait(self) -> None:
        if self._aio_wakeup is None or self._aio_wakeup.done():
            self._aio_wakeup = self._loop.create_future()
        await self._aio_wakeup

    def _aio_finished(self) -> bool:
        return self._linked is not None and self._linked.task.done()

    # -- asyncio side ------------------------------------------------------
    def started_nowait(self, value: Any = None) -> None:
        """(asyncio side) Hand the trio side ``value`` as the ``first`` of
        ``open_channel_from``; allowed once, before any other send."""
        if self._started:
            raise RuntimeError('started_nowait() was already called (or a value already sent)')
        self._started = True
        self._first = value
        self._wake_trio()

    def send_nowait(self, value: Any) -> None:
        """(asyncio side) Send ``value`` to the trio side without waiting;
        ``asyncio.QueueFull`` when it has ``maxsize`` values unread."""
        if not self._started:
            self.started_nowait(value)
            return
        if len(self._to_trio) >= self.maxsize:
            raise asyncio.QueueFull(
                f'the trio side has {self.maxsize} values unread: use `await chan.put(value)` '
                'to wait for room'
            )
        self._to_trio.append(value)
        self._wake_trio()

    async def put(self, value: Any) -> None:
        """(asyncio side) Send ``value``, waiting while the trio side has
        ``maxsize`` values unread."""
        while self._started and len(self._to_trio) >= self.maxsize:
            await self._aio_wait()
        self.send_nowait(value)

    async def get(self) -> Any:
        """(asyncio side) The next value the trio side sent."""
        while not self._to_aio:
            await self._aio_wait()
        value = self._to_aio.popleft()
        self._wake_trio()  # room for a trio sender
        return value

    # -- trio side ---------------------------------------------------------
    async def send(self, value: Any) -> None:
        """(trio side) Send ``value`` to the asyncio task, waiting while it
        has ``maxsize`` values unread; ``trio.BrokenResourceError`` once it
        has finished."""
        while True:
            if self._aio_finished():
                raise trio.BrokenResourceError('the asyncio task has finished')
            if len(self._to_aio) < self.maxsize:
                break
            await self._trio_wait()
        self._to_aio.append(value)
        self._wake_aio()
        await trio.lowlevel.checkpoint()

    async def receive(self) -> Any:
        """(trio side) The next value the asyncio task sent; at its end
        ``trio.EndOfChannel``, or its error if it failed."""
        while not self._to_trio:
            if self._aio_finished():
                assert self._linked is not None
                self._linked.result()  # its error, if it failed
                raise trio.EndOfChannel
            await self._trio_wait()
        value = self._to_trio.popleft()
        self._wake_aio()  # room for an asyncio sender
        await trio.lowlevel.checkpoint()
        return value

    def __aiter__(self) -> LinkedTaskChannel:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def _wait_first(self) -> Any:
        while not self._started:
            if self._aio_finished():
                assert self._linked is not None
                result = self._linked.result()
                raise RuntimeError(
                    f'asyncio task {self._linked.task.get_name()!r} returned {result!r} before it '
                    'called chan.started_nowait(): open_channel_from() needs a first value'
                )
            await self._trio_wait()
        return self._first


def _channel_kwargs(target: Callable, chan: LinkedTaskChannel, kwargs: dict[str, Any]) -> dict:
    """The channel goes to the target as ``chan``, or as ``to_trio`` and
    ``from_trio`` (the spelling of earlier releases: ``to_trio.send_nowait``,
    ``await from_trio.get()``), whichever its signature names."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    names = [n for n in ('chan', 'to_trio', 'from_trio') if n in params]
    if not names:
        raise TypeError(
            f'{_task_name(target)} must take a `chan` argument (the LinkedTaskChannel '
            f'to the trio side), or `to_trio` and `from_trio`'
        )
    clash = sorted(set(names) & set(kwargs))
    if clash:
        raise TypeError(f'{clash} are provided by open_channel_from(); do not pass them')
    return {**kwargs, **{n: chan for n in names}}


@asynccontextmanager
async def open_channel_from(
    target: Callable[..., Awaitable[Any]],
    *,
    maxsize: int = DEFAULT_CHANNEL_SIZE,
    **kwargs: Any,
) -> AsyncIterator[tuple[Any, LinkedTaskChannel]]:
    """Start ``target(chan=..., **kwargs)`` as an asyncio task linked to this
    trio task, wait for its first value and yield ``(first, chan)``.

    The asyncio function takes a ``chan`` argument and calls
    ``chan.started_nowait(first)`` once it is ready (``to_trio``/``from_trio``
    arguments are accepted too; then its first ``to_trio.send_nowait()`` is
    ``first``). See :class:`LinkedTaskChannel` for both sides' calls.

    - an error of the asyncio task cancels the block and is raised from it;
    - leaving the block (for any reason) cancels the asyncio task if it still
      runs and waits for it;
    - a cancel of this trio task cancels the asyncio task and waits for it.

    Raises :class:`NotInfectedError` outside an infected actor.
    """
    loop = _require_loop('open_channel_from')
    chan = LinkedTaskChannel(loop, maxsize)
    coro = _call(target, _channel_kwargs(target, chan, kwargs), 'open_channel_from')
    body_scope = trio.CancelScope()
    linked = _Linked(loop, coro, _task_name(target))
    chan._linked = linked
    # an error (or an asyncio-side cancel) of the asyncio task stops the
    # block, as a failing child task stops its nursery; it is raised below
    linked.on_failure = body_scope.cancel
    linked.task.add_done_callback(lambda _t: chan._wake_trio())
    yielded = False
    try:
        with body_scope:
            first = await chan._wait_first()
            yielded = True
            yield first, chan
    finally:
        await linked.cancel_and_wait()
    err = linked.failure()
    if err is not None:
        raise err
    if not yielded:  # pragma: no cover (the scope is only cancelled on a failure)
        raise RuntimeError(f'asyncio task {linked.task.get_name()!r} ended before its first value')
