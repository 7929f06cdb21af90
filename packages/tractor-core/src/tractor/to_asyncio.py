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

from ._aio_channel import DEFAULT_CHANNEL_SIZE as DEFAULT_CHANNEL_SIZE
from ._aio_channel import LinkedTaskChannel as LinkedTaskChannel
from ._aio_channel import open_channel_from as open_channel_from
from ._aio_task import AIO_CANCEL_GRACE as AIO_CANCEL_GRACE
from ._aio_task import AsyncioCancelled as AsyncioCancelled
from ._aio_task import NotInfectedError as NotInfectedError
from ._aio_task import is_infected as is_infected
from ._aio_task import run_as_asyncio_guest as run_as_asyncio_guest
from ._aio_task import run_task as run_task

__all__ = [
    'AIO_CANCEL_GRACE',
    'AsyncioCancelled',
    'LinkedTaskChannel',
    'NotInfectedError',
    'is_infected',
    'open_channel_from',
    'run_as_asyncio_guest',
    'run_task',
]
