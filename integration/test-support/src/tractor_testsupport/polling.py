"""Waiting for a condition that nothing signals (a process exiting, state
in another actor): poll it, bounded, and say which condition failed.

Prefer an event when the code under test offers one; these are for
conditions only observable from outside.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar('T')

#: how long a wait lasts unless the caller says otherwise (tests usually
#: bound themselves more tightly with ``trio.fail_after``)
DEFAULT_TIMEOUT = 60.0


class ConditionTimeout(AssertionError):
    """The condition did not hold within the bound (an assertion failure:
    the test's expectation was not met)."""


def _describe(cond: Callable[..., Any], what: str | None) -> str:
    return what or getattr(cond, '__qualname__', None) or repr(cond)


async def wait_until(
    cond: Callable[[], T | Awaitable[T]],
    what: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float = 0.02,
) -> T:
    """Call ``cond()`` (sync or async) every ``poll`` seconds until it gives
    a true value, and return that value. :class:`ConditionTimeout` naming
    ``what`` (and the last value) when ``timeout`` seconds pass first."""
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = cond()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last
            await trio.sleep(poll)
    raise ConditionTimeout(
        f'{_describe(cond, what)}: still not true after {timeout}s (last value: {last!r})'
    )


def wait_until_sync(
    cond: Callable[[], T],
    what: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float = 0.02,
) -> T:
    """:func:`wait_until` for code outside a trio run (blocks the thread)."""
    deadline = time.monotonic() + timeout
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise ConditionTimeout(
                f'{_describe(cond, what)}: still not true after {timeout}s (last value: {last!r})'
            )
        time.sleep(poll)
