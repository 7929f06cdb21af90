"""The hook specifications: what a tractor plugin may implement.

Plugins mark their implementations with :data:`hookimpl`
(``from tractor.plugin import hookimpl``) and register through the
``tractor`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._msg import SpawnSpec
    from ._runtime import Actor
    from ._spawn import SpawnBackend, SpawnFn
    from ._transport import Address, Transport

hookspec = pluggy.HookspecMarker('tractor')
hookimpl = pluggy.HookimplMarker('tractor')


class TractorSpec:
    """Hook specifications; each plugin implements the ones it needs."""

    @hookspec
    def tractor_transports(self) -> list[Transport]:
        """Transports this plugin provides."""

    @hookspec
    def tractor_spawn_methods(self) -> dict[str, SpawnBackend | SpawnFn]:
        """Spawn backends by name: ``{'forkserver': SpawnBackend(spawn_fn,
        available=supported, priority=10, needs='Linux 5.3+')}``.

        A :class:`~tractor._spawn.SpawnBackend` says whether it can run here
        and how preferred it is: the default start method is the available
        one of highest priority (core's ``'trio'``: 0, winning ties). A plain
        ``async_spawn_fn`` is accepted too, as an always-available backend
        of priority 0. The function is awaited as ``spawn(name=, uuid=,
        parent_addr=)`` (plus ``infect_asyncio=True`` for an asyncio-hosted
        child) and returns a :class:`~tractor._spawn.Process`.
        """

    @hookspec
    def tractor_spawn_spec_ext(
        self, actor: Actor, child_uid: tuple[str, str], start_method: str, spec: SpawnSpec
    ) -> dict[str, Any] | None:
        """(in the parent) Entries for the ``SpawnSpec.ext`` of the child
        ``child_uid`` that ``actor`` just started with ``start_method``: a
        plugin hands its own state down the tree this way (``spec`` is the
        rest of what the child gets: read it, do not change it). Asked as soon
        as the backend's spawn returns (the process started). The spec goes
        out once the child has booted and dialed back, so with the built-in
        backends it carries these entries; a backend whose spawn keeps
        awaiting long after the process started could race it. Key the entries by
        the plugin's name; values must be msgpack-encodable. The child reads
        them in :meth:`tractor_spawn_spec_ext_received`."""

    @hookspec
    def tractor_spawn_spec_ext_received(self, actor: Actor, ext: dict[str, Any]) -> None:
        """(in a child) The ``SpawnSpec.ext`` its parent sent (every
        plugin's entries, possibly none of this plugin's), before the
        child imports its modules and starts serving. An exception fails
        the spawn: the parent's ``start_actor()`` raises it."""

    @hookspec
    def tractor_child_ready(
        self, actor: Actor, chan: Channel, accept_addrs: list[tuple[str, list]]
    ) -> Awaitable[None] | None:
        """(in the parent) The child on ``chan`` answered its spawn spec with
        ``Ready``: it serves on ``accept_addrs`` (wire form); ``chan.aid``
        says who it is (uid and pid). A returned awaitable is awaited before
        ``start_actor()`` returns, so what it does (discovery registers a
        child whose parent is its registrar) is done for whoever gets the
        portal. ``chan`` is not read yet: do not wait for the child here. An
        exception fails the spawn (the child is reaped)."""

    @hookspec(firstresult=True)
    def tractor_root_bind_addrs(
        self, actor: Actor, registry_addrs: list[Address], ensure_registry: bool
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
