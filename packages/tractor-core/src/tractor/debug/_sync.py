"""Waiting on trio from synchronous code: ``breakpoint()`` and pdb's hooks.

A debugger session started from sync code must first wait for the tree's
terminal without blocking the event loop (in the root, the loop itself
grants it). greenback gives a task a "portal" through which sync code
running in that task can ``await``; the runtime opens one for every RPC
task and for the root's main task in debug mode (and for the tasks they
spawn). Imported only in debug mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import greenback

T = TypeVar('T')


def can_wait() -> bool:
    """Whether sync code in the current task can wait on trio."""
    try:
        return greenback.has_portal()
    except RuntimeError:  # not in a trio task at all
        return False


def wait(aw: Awaitable[T]) -> T:
    """``await aw`` from sync code (needs :func:`can_wait`)."""
    return greenback.await_(aw)


async def run_tree(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """``await fn(*args, **kwargs)`` with portals for it and its child tasks."""
    return await greenback.with_portal_run_tree(fn, *args, **kwargs)


@asynccontextmanager
async def portals_for_block() -> AsyncIterator[None]:
    """Portals for this task and the tasks spawned in the block."""
    async with greenback.portals_for_tree():
        yield
