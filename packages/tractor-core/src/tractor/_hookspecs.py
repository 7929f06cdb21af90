"""The hook specifications: what a tractor plugin may implement.

Plugins mark their implementations with :data:`hookimpl`
(``from tractor.plugin import hookimpl``) and register through the
``tractor`` entry-point group.
"""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Awaitable

import pluggy

if TYPE_CHECKING:
    from ._runtime import Actor
    from ._transport import Address, Transport

hookspec = pluggy.HookspecMarker('tractor')
hookimpl = pluggy.HookimplMarker('tractor')


class TractorSpec:
    """Hook specifications; each plugin implements the ones it needs."""

    @hookspec
    def tractor_transports(self) -> list[Transport]:
        """Transports this plugin provides."""

    @hookspec
    def tractor_spawn_methods(self) -> dict[str, Any]:
        """Spawn backends by name: ``{'trio': async_spawn_fn}``."""

    @hookspec(firstresult=True)
    def tractor_root_bind_addrs(
        self,
        actor: Actor,
        registry_addrs: list[Address],
        ensure_registry: bool,
    ) -> Awaitable[list[Address]] | None:
        """Decide what a root actor binds (an awaitable of addresses).

        Discovery probes the registry here and either binds the registry
        addresses itself (becoming the registrar) or random ones.
        """

    @hookspec
    def tractor_actor_serving(self, actor: Actor) -> AbstractAsyncContextManager | None:
        """An async context manager entered once ``actor`` listens, exited at
        teardown (discovery registers on enter and unregisters on exit)."""

    @hookspec
    def tractor_registry_stores(self) -> list[Any]:
        """External registry stores this plugin provides (``etcd://...``):
        objects with a ``scheme`` (``'etcd'``) and ``parse(text)`` returning a
        :class:`~tractor.plugin.StoreAddress` for a registry address
        written ``scheme://...``."""

    @hookspec
    def tractor_rpc_modules(self, actor: Actor) -> list[str]:
        """Extra modules ``actor`` serves RPC from (beyond ``enable_modules``)."""
