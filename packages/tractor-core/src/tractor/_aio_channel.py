"""A two-way channel between a trio task and the asyncio task it started:
:class:`LinkedTaskChannel` and :func:`open_channel_from` (re-exported by
:mod:`tractor.to_asyncio`). The asyncio task is linked to the trio task by
:class:`tractor._aio_task._Linked`, as :func:`~tractor.to_asyncio.run_task`'s is.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._aio_task import _call, _Linked, _require_loop, _task_name

#: values one side of a :class:`LinkedTaskChannel` may hold unread
DEFAULT_CHANNEL_SIZE = 256


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

    def __init__(
        self, loop: asyncio.AbstractEventLoop, maxsize: int = DEFAULT_CHANNEL_SIZE
    ) -> None:
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
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        params = {}
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
    target: Callable[..., Awaitable[Any]], *, maxsize: int = DEFAULT_CHANNEL_SIZE, **kwargs: Any
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
