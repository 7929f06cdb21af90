"""The asyncio side of an infected actor: the host loop trio runs as a guest
of, and one asyncio task tied to the trio task that awaits it.

:func:`run_as_asyncio_guest` starts the loop and trio on it; :class:`_Linked`
ties one asyncio task to a trio task (errors cross, cancellation crosses,
a stubborn task is waited for at most :data:`AIO_CANCEL_GRACE`);
:func:`run_task` is the one-shot call built on it. The public names are
re-exported by :mod:`tractor.to_asyncio`, whose docstring tells the whole
story; the two-way channel is :mod:`tractor._aio_channel`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import trio

from . import _settings, _state
from ._exceptions import TractorError
from .log import get_logger

log = get_logger('to_asyncio')

T = TypeVar('T')

#: how long a cancelled asyncio task may take to finish before the trio side
#: gives up on it; twice the parent's cancel grace, so that an actor whose
#: parent is alive is killed by the parent's ladder first
AIO_CANCEL_GRACE = _settings.value('TRACTOR_AIO_CANCEL_GRACE') or 2 * _settings.value(
    'TRACTOR_CANCEL_GRACE'
)


class NotInfectedError(TractorError, RuntimeError):
    """An asyncio bridge (``run_task``, ``open_channel_from``) was used in a
    trio run that is not a guest of an asyncio loop."""

    # named for the public module that exports it: the name it crosses
    # actors with (``RemoteActorError.boxed_type_str``) stays the same
    __module__ = 'tractor.to_asyncio'


class AsyncioCancelled(TractorError):
    """The asyncio task was cancelled by asyncio code, not by the trio task
    that waits for it (a cancel the trio side asked for is a trio cancel)."""

    __module__ = 'tractor.to_asyncio'  # (as NotInfectedError's)


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


def run_as_asyncio_guest(trio_main: Callable[..., Awaitable[T]], *args: Any) -> T:
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
    loop: asyncio.AbstractEventLoop, trio_main: Callable[..., Awaitable[T]], args: tuple
) -> T:
    # resolved with the run's outcome.Outcome (trio's own dependency)
    done: asyncio.Future[Any] = loop.create_future()

    def trio_done(run_outcome: Any) -> None:
        if not done.done():
            done.set_result(run_outcome)

    trio.lowlevel.start_guest_run(
        trio_main,
        *args,
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
            log.error(
                'asyncio task %r ignored its cancellation for %.1fs: abandoned at exit',
                task.get_name(),
                AIO_CANCEL_GRACE,
            )
            # said once, here: asyncio would add "Task was destroyed but it
            # is pending" when the closed loop's task is collected (asyncio
            # turns this off itself for tasks it abandons on purpose)
            try:
                task._log_destroy_pending = False  # type: ignore[attr-defined]  # private asyncio, hence the except
            except AttributeError:
                pass
        elif not task.cancelled() and task.exception() is not None:
            log.error(
                'asyncio task %r failed while being cancelled at exit: %r',
                task.get_name(),
                task.exception(),
            )
    if not gathered.done():
        gathered.cancel()


# -- one asyncio task, tied to the trio task that awaits it ------------------


def _task_name(fn: Callable) -> str:
    return getattr(fn, '__qualname__', None) or repr(fn)


class _Linked:
    """An asyncio task and what the trio task that owns it knows of it."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], name: str
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
                'stops waiting for it',
                self.task.get_name(),
                AIO_CANCEL_GRACE,
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
