"""The seam debug mode plugs into: what the runtime asks of a debugger.

The runtime never imports :mod:`tractor.debug`. An actor in debug mode gets
a :class:`Debugger` in ``actor.debugger`` from the debug plugin (hook
``tractor_actor_serving``, see ``tractor/debug/_plugin.py``); without one
each of these points does what a tree without a debugger does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ._runtime import Actor


class Debugger:
    """What a debugger installed in an actor is asked, and when."""

    async def within_grace(
        self, actor: Actor, grace: float, afn: Callable[[], Awaitable[Any]]
    ) -> bool:
        """A cancel bound (the ladder's wait for a child, a context's cancel
        acknowledgement): ``await afn()`` for at most ``grace`` seconds, or
        longer while a developer is at a prompt somewhere in the tree."""
        return await plain_grace(grace, afn)

    async def post_mortem(self, actor: Actor, exc: BaseException) -> None:
        """An error leaves user code here (an RPC target, an actor nursery's
        body, the root's block): the chance to inspect it before it goes on."""

    async def run_rpc(self, actor: Actor, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run an RPC task's target, ``await fn(*args)``."""
        return await fn(*args)

    def main_block(self, actor: Actor) -> AbstractAsyncContextManager[None]:
        """Wraps the body of a root actor's ``open_root_actor`` block."""
        return nullcontext()


async def plain_grace(grace: float, afn: Callable[[], Awaitable[Any]]) -> bool:
    """``await afn()`` for at most ``grace`` seconds; ``True`` if it finished."""
    with trio.move_on_after(grace):
        await afn()
        return True
    return False


async def within_grace(actor: Actor, grace: float, afn: Callable[[], Awaitable[Any]]) -> bool:
    """The runtime's cancel-grace policy: the plain bound, unless the actor
    has a debugger installed, which may extend it (see
    :meth:`Debugger.within_grace`). ``True`` if ``afn`` finished."""
    debugger = actor.debugger
    if debugger is None:
        return await plain_grace(grace, afn)
    return await debugger.within_grace(actor, grace, afn)
