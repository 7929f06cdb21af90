"""Small structured-concurrency helpers users of the established project reach for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


@asynccontextmanager
async def maybe_open_nursery(nursery: trio.Nursery | None = None) -> AsyncIterator[trio.Nursery]:
    """Yield ``nursery`` when one is given, else open (and close) a new one:
    for functions that take an optional nursery from their caller."""
    if nursery is not None:
        yield nursery
        return
    async with trio.open_nursery() as tn:
        yield tn


def is_multi_cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is a (possibly nested) exception group holding
    nothing but ``trio.Cancelled``: a cancellation that passed through
    nurseries, not an error."""
    if not isinstance(exc, BaseExceptionGroup):
        return False
    return all(isinstance(e, trio.Cancelled) or is_multi_cancelled(e) for e in exc.exceptions)


@asynccontextmanager
async def maybe_raise_from_masking_exc(
    unmask_from: tuple[type[BaseException], ...] = (trio.Cancelled,),
) -> AsyncIterator[None]:
    """Raise an error that a cancel masked instead of the cancel.

    When code in the block fails and, while that error is being handled
    (in an ``except``/``finally``), a checkpoint raises ``trio.Cancelled``,
    the cancel replaces the error and it would be lost. If the block exits
    with one of ``unmask_from`` whose ``__context__`` is a real error, that
    error is raised instead, chained from the masking exception.
    """
    try:
        yield
    except unmask_from as masker:
        masked = masker.__context__
        if (
            masked is not None
            and not isinstance(masked, unmask_from)
            and isinstance(masked, Exception)
        ):
            raise masked from masker
        raise
