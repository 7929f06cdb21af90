"""A context's inbox: the messages its channel's loop delivered that the
context's task has not taken yet.

What a trio memory channel would do here, minus what a context does not
use (a send side that can wait, clones, statistics): the channel's loop
only ever puts without waiting, and an empty inbox is reported by a
``None`` return rather than by raising ``WouldBlock``, since finding it
empty is the common case of an interactive stream. Bounded: a put beyond
the capacity fails (the sender overran its credit).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

import trio

if TYPE_CHECKING:
    from ._ipc import Channel

T = TypeVar('T')


class Inbox(Generic[T]):
    """A bounded FIFO of non-``None`` items, any number of waiting takers."""

    __slots__ = ('_data', '_capacity', '_waiters', '_closed', '_chan')

    def __init__(self, capacity: int, chan: Channel | None = None) -> None:
        #: the channel whose reader fills it: told when a put wakes a taker
        #: (its reader may then step aside: ``Actor._lead``)
        self._chan = chan
        self._data: deque[T] = deque()
        self._capacity = capacity
        #: tasks blocked in get(), oldest first, each with the cell that
        #: put() hands its item over in
        self._waiters: dict[trio.lowlevel.Task, list[T]] = {}
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._capacity

    def grow(self, capacity: int) -> None:
        """Raise the capacity to ``capacity`` (never lowers it: what is
        already buffered stays)."""
        self._capacity = max(self._capacity, capacity)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (items may still be buffered)."""
        return self._closed

    def put(self, item: T) -> bool:
        """Hand ``item`` to the oldest waiting taker, else buffer it;
        ``False`` (and nothing buffered) when full. Ignored once closed."""
        # Two hot paths copy this method's buffering branch inline (a call
        # per stream message saved): the channel reader's append of a Yield
        # behind queued ones (``Actor._read_channel``) and ``get_nowait``'s
        # pop in ``MsgStream.receive``. Behaviour added here must go there too.
        if self._closed:
            return True
        if self._waiters:  # (then nothing is buffered)
            task = next(iter(self._waiters))
            self._waiters.pop(task).append(item)
            trio.lowlevel.reschedule(task)
            if self._chan is not None:
                self._chan._woke = True
            return True
        if len(self._data) >= self._capacity:
            return False
        self._data.append(item)
        return True

    def close(self) -> None:
        """No more items will come: takers get what is buffered, then
        ``trio.EndOfChannel``."""
        self._closed = True
        waiters, self._waiters = self._waiters, {}
        for task in waiters:
            trio.lowlevel.reschedule(task)

    def get_nowait(self) -> T | None:
        """The oldest item, or ``None`` if there is none right now."""
        return self._data.popleft() if self._data else None

    async def get(self) -> T:
        """The oldest item, waiting for one; a checkpoint (as a memory
        channel's ``receive()``). ``trio.EndOfChannel`` once closed and drained."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._data:
            item = self._data.popleft()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        if self._closed:
            raise trio.EndOfChannel
        task = trio.lowlevel.current_task()
        cell: list[T] = []
        self._waiters[task] = cell

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiters.pop(task, None)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        if cell:  # put() handed us an item
            return cell[0]
        raise trio.EndOfChannel  # woken by close()
