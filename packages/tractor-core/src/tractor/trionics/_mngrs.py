from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar, cast

import trio

from ._eg import single_exception

T = TypeVar('T')


@asynccontextmanager
async def gather_contexts(
    mngrs: Iterable[AbstractAsyncContextManager[T]],
) -> AsyncIterator[tuple[T, ...]]:
    """Enter every async context manager concurrently, each in its own task,
    and yield their values in input order; all are exited on block exit.

    Typical use: open a context (or a stream) on each of several portals::

        async with gather_contexts(
            [p.open_context(fn) for p in portals]
        ) as pairs:
            ...

    Raises ``ValueError`` for an empty input. A clean block exit exits every
    manager cleanly (concurrently); an error in the block, or in entering or
    exiting any manager, cancels the others (their ``__aexit__`` sees
    ``trio.Cancelled``). A lone error is raised as itself, several as an
    exception group.
    """
    cms = list(mngrs)
    if not cms:
        raise ValueError('gather_contexts() needs at least one async context manager')
    values: list[T | None] = [None] * len(cms)
    entered = 0
    all_in = trio.Event()
    leave = trio.Event()

    async def hold(i: int, cm: AbstractAsyncContextManager[T]) -> None:
        nonlocal entered
        async with cm as value:
            values[i] = value
            entered += 1
            if entered == len(cms):
                all_in.set()
            await leave.wait()

    try:
        async with trio.open_nursery() as tn:
            for i, cm in enumerate(cms):
                tn.start_soon(hold, i, cm)
            await all_in.wait()
            try:
                # every slot holds its manager's value once `all_in` is set
                yield cast('tuple[T, ...]', tuple(values))
            except BaseException:
                # the managers exit by cancellation, not as if all went well
                tn.cancel_scope.cancel()
                raise
            finally:
                leave.set()
    except BaseExceptionGroup as group:
        lone = single_exception(group)
        if lone is None:
            raise
        raise lone from lone.__cause__
