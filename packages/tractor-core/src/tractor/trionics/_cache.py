"""``maybe_open_context``: one async context manager shared by every task of
an actor that asks for it under the same key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from .. import _state


class _Entry:
    __slots__ = ('value', 'users', 'ready', 'leave', 'done', 'error', 'scope')

    def __init__(self) -> None:
        self.value: Any = None
        self.users = 0
        self.ready = trio.Event()
        #: set when the last user left: the hosting task exits the manager
        self.leave = trio.Event()
        self.done = trio.Event()
        self.error: BaseException | None = None
        #: the hosting task's scope: cancelled when nobody waits for it any
        #: more while it is still entering the manager
        self.scope = trio.CancelScope()


#: (actor, key) -> entry; a lock per key serialises opening and closing
_entries: dict[tuple[int, Hashable], _Entry] = {}
_locks: dict[tuple[int, Hashable], trio.Lock] = {}


async def _host(
    acm: AbstractAsyncContextManager[Any], entry: _Entry, slot: tuple[int, Hashable]
) -> None:
    """Enter ``acm`` in a task of its own, so it outlives whichever user
    opened it, and exit it once the last user left."""
    try:
        with entry.scope:
            async with acm as value:
                entry.value = value
                entry.ready.set()
                await entry.leave.wait()
    except Exception as exc:
        entry.error = exc
    finally:
        # a manager that ended (failed, or its actor shut down) while in use
        # is not handed to anyone else
        if _entries.get(slot) is entry:
            del _entries[slot]
        entry.ready.set()
        entry.done.set()


@asynccontextmanager
async def maybe_open_context(
    acm_func: Callable[..., AbstractAsyncContextManager[Any]],
    kwargs: dict[str, Any] | None = None,
    key: Hashable | Callable[..., Hashable] | None = None,
) -> AsyncIterator[tuple[bool, Any]]:
    """Enter ``acm_func(**kwargs)`` once per actor and ``key``, and share it.

    Yields ``(cache_hit, value)``: ``cache_hit`` is ``False`` for the task
    that opened it and ``True`` for every task that joined it while it was
    open. The manager is exited when its last user leaves the block. It is
    entered in a task of the actor's service nursery (so it needs a running
    actor) and is safe to cancel at any point: a user cancelled while it
    opens or joins leaves nothing half-open behind. ``key`` defaults to
    ``(acm_func, sorted kwargs)``; a callable ``key`` is called with
    ``**kwargs``.
    """
    kwargs = dict(kwargs or {})
    actor = _state.current_actor()
    if key is None:
        try:
            ident: Hashable = (acm_func, tuple(sorted(kwargs.items())))
            hash(ident)
        except TypeError:
            raise TypeError(
                'maybe_open_context() needs a hashable key: the kwargs are not '
                'hashable, pass key=...'
            ) from None
    elif callable(key):
        ident = key(**kwargs)
    else:
        ident = key
    slot = (id(actor), ident)
    lock = _locks.setdefault(slot, trio.Lock())
    async with lock:
        entry = _entries.get(slot)
        hit = entry is not None
        if entry is None:
            entry = _Entry()
            assert actor._service_tn is not None
            actor._service_tn.start_soon(_host, acm_func(**kwargs), entry, slot)
            try:
                await entry.ready.wait()
            except BaseException:
                # cancelled while it opened: stop it, entering or entered
                entry.scope.cancel()
                with trio.CancelScope(shield=True):
                    await entry.done.wait()
                raise
            if entry.error is not None:
                raise entry.error
            if entry.done.is_set():  # its actor is shutting down
                raise trio.ClosedResourceError(f'{acm_func!r} ended as it opened')
            _entries[slot] = entry
        entry.users += 1
    try:
        yield hit, entry.value
    finally:
        entry.users -= 1
        if entry.users == 0:
            with trio.CancelScope(shield=True):
                async with lock:
                    # nobody joined meanwhile: close it
                    if entry.users == 0 and _entries.get(slot) is entry:
                        del _entries[slot]
                        entry.leave.set()
                        await entry.done.wait()
                        if not lock.statistics().tasks_waiting:
                            _locks.pop(slot, None)
            if entry.error is not None:
                raise entry.error
