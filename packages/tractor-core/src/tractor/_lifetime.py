"""An actor's lifetime: serving from boot to teardown.

:func:`open_runtime` starts the actor's two nurseries (I/O, service), its
listeners and the plugins' ``tractor_actor_serving`` hooks, runs the block,
and tears down in order: RPC tasks first (so nested actor nurseries can
still reach their children), then plugin hooks (unregister), then
connections. ``open_root_actor`` and a subactor's entry point
(``tractor._child``) run their actor inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import trio

from ._limits import raise_fd_limit
from ._plugins import get_plugin_manager

if TYPE_CHECKING:
    from ._runtime import Actor
    from ._transport import Address


@asynccontextmanager
async def open_runtime(actor: Actor, bind_addrs: list[Address]) -> AsyncIterator[Actor]:
    """Listen on ``bind_addrs``, serve until the block exits, then tear
    down: RPC tasks first (so nested actor nurseries can still reach
    their children), then plugin hooks (unregister), then connections.

    The block's own exceptions, and a failure to start serving (an
    address already taken, a plugin hook failing), come out unwrapped
    (never in a group).
    """
    body_exc: BaseException | None = None
    raise_fd_limit()
    async with trio.open_nursery() as runtime_tn:
        # listeners, connections and RPC tasks run in nurseries shielded
        # from the caller's scopes: when the code that opened the runtime
        # is cancelled, its actor nurseries still need the links to their
        # children (cancel requests, final replies, unregistering). Both
        # are cancelled explicitly here once the block is done.
        actor._io_tn = await runtime_tn.start(_host_nursery, None)
        actor._service_tn = await runtime_tn.start(_host_nursery, actor._service_done)
        actor._serve_adopted()  # channels a boot hook dialed before this
        try:
            async with AsyncExitStack() as hooks:
                try:
                    if actor.stack_on_sig:
                        # (imported here: only such actors pay for it)
                        from ._stack import dump_on_signal

                        await actor._io_tn.start(dump_on_signal, actor)
                    for addr in bind_addrs:
                        await actor._listen(addr)
                    for cm in get_plugin_manager().hook.tractor_actor_serving(actor=actor):
                        if cm is not None:
                            await hooks.enter_async_context(cm)
                except Exception as exc:
                    body_exc = exc  # never served: unwind, then raise it
                else:
                    try:
                        yield actor
                    except trio.Cancelled:
                        raise
                    except BaseException as exc:
                        body_exc = exc
                        if actor.debugger is not None:
                            await actor.debugger.post_mortem(actor, exc)
                    finally:
                        actor._cancel_called = True
                        actor._cancel_rpc()
                        with trio.CancelScope(shield=True):
                            await actor._rpc_done()
        finally:
            actor._cancel_called = True
            actor._cancel_rpc()
            actor._io_tn.cancel_scope.cancel()
            runtime_tn.cancel_scope.cancel()
            actor._cancel_complete.set()
            for addr in actor._listen_addrs:
                try:
                    addr.transport.close_listener(addr)
                except OSError:
                    pass
    if body_exc is not None:
        raise body_exc


async def _host_nursery(
    done: trio.Event | None, task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED
) -> None:
    """Host a nursery outside the caller's scopes (shielded), until it is
    cancelled explicitly: the I/O nursery (listeners, connections) and the
    service nursery (RPC tasks), so cancelling RPC work never cancels the
    code that opened the runtime, nor the reverse. ``done`` is set once the
    nursery's tasks are all gone."""
    try:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as tn:
                task_status.started(tn)
                await trio.sleep_forever()
    finally:
        if done is not None:
            done.set()
