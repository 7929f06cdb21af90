from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


def single_exception(group: BaseExceptionGroup) -> BaseException | None:
    """The lone leaf of a (possibly nested) group, or ``None`` if several."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def collapse_eg() -> AsyncIterator[None]:
    """Re-raise an exception group that holds exactly one exception as that
    exception (so ``except KeyboardInterrupt`` & co. work as written);
    groups of several pass through untouched."""
    try:
        yield
    except BaseExceptionGroup as group:
        exc = single_exception(group)
        if exc is None:
            raise
        raise exc from exc.__cause__
