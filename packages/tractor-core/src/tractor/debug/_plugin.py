"""Debug mode as a plugin of the runtime's own hooks.

The runtime knows only the seam in ``tractor._debugger``; this plugin fills
it in an actor in debug mode (the post-mortem on a crash, RPC tasks that can
wait from synchronous code, the cancel bounds that wait for a developer at a
prompt, ``breakpoint()``), and makes a root in debug mode serve the tree's
terminal lock. It imports the debugger itself only in such an actor, so it
costs every other actor nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from .._debugger import Debugger
from .._hookspecs import hookimpl

if TYPE_CHECKING:
    from .._msg import SpawnSpec
    from .._runtime import Actor

#: the RPC module of the tree's terminal lock, served by a root in debug
#: mode (or once it spawned a child in debug mode)
LOCK_MODULE = 'tractor.debug._lock'


class TreeDebugger(Debugger):
    """The debugger of an actor in debug mode (one per actor)."""

    async def within_grace(
        self, actor: Actor, grace: float, afn: Callable[[], Awaitable[Any]]
    ) -> bool:
        from ._lock import within_grace

        return await within_grace(actor, grace, afn)

    async def post_mortem(self, actor: Actor, exc: BaseException) -> None:
        from ._api import maybe_post_mortem

        await maybe_post_mortem(actor, exc)

    async def run_rpc(self, actor: Actor, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        from ._api import run_debuggable

        return await run_debuggable(actor, fn, *args)

    def main_block(self, actor: Actor) -> AbstractAsyncContextManager[None]:
        # breakpoint() can wait for the terminal in the root's main task and
        # in the tasks it spawns
        from ._sync import portals_for_block

        return portals_for_block()


@hookimpl
def tractor_rpc_modules(actor: Actor) -> list[str]:
    return [LOCK_MODULE] if actor.is_root and actor.debug_mode else []


@hookimpl
def tractor_spawn_spec_ext(actor: Actor, spec: SpawnSpec) -> None:
    if spec.debug_mode and actor.is_root:
        # debug mode for this child only: its sessions still need the tree's
        # terminal lock, which a root not in debug mode does not serve yet
        actor.serve_module(LOCK_MODULE)


@hookimpl
def tractor_actor_serving(actor: Actor) -> AbstractAsyncContextManager[None] | None:
    return _debugging(actor) if actor.debug_mode else None


@asynccontextmanager
async def _debugging(actor: Actor) -> AsyncIterator[None]:
    from ._api import breakpoint_hook

    actor.debugger = TreeDebugger()
    try:
        with breakpoint_hook():
            yield
    finally:
        actor.debugger = None
