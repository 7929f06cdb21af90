"""``LocalPortal``: the registrar talking to itself, no IPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tractor.plugin import fn_address

if TYPE_CHECKING:
    from tractor import Actor


class LocalChannel:
    """Stands in for a channel when the peer is this very actor."""

    def __init__(self, actor: Actor) -> None:
        self._actor = actor
        self.aid = actor.aid

    @property
    def raddr(self):
        addrs = self._actor.listen_addrs
        return addrs[0] if addrs else None

    laddr = raddr

    @property
    def uid(self) -> tuple[str, str]:
        return self._actor.uid

    def connected(self) -> bool:
        return True

    def __repr__(self) -> str:
        where = ', '.join(map(str, self._actor.listen_addrs)) or 'nowhere'
        return f'<LocalChannel: this actor {self._actor.name!r} (the registrar) at {where}>'


class LocalPortal:
    """A portal-shaped handle to this actor itself (``get_registry()`` in
    the registrar): ``run_from_ns('self', 'find_actor', name=...)`` etc."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.channel = LocalChannel(actor)

    @property
    def chan(self) -> LocalChannel:
        return self.channel

    def __repr__(self) -> str:
        return f'<LocalPortal to {self.actor.name!r}>'

    async def run_from_ns(self, namespace_path: str, function_name: str, **kwargs: Any) -> Any:
        return await self.actor.call_local(namespace_path, function_name, kwargs)

    async def run(self, func: Callable, **kwargs: Any) -> Any:
        ns, name = fn_address(func)
        return await self.run_from_ns(ns, name, **kwargs)


class StoreChannel:
    """``StorePortal.channel``: there is no connection to a registrar, only
    the store's address (``raddr``)."""

    uid = None
    aid = None

    def __init__(self, addr: Any) -> None:
        self.raddr = self.laddr = addr

    def connected(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f'<StoreChannel: no registrar actor, the registry store at {self.raddr}>'


class StorePortal:
    """What ``get_registry()`` yields for a registry store (``etcd://...``):
    the registrar's methods (``find_actor``, ``find_actors``,
    ``wait_for_actor``, ``register_actor``, ``unregister_actor``,
    ``delete_addr``, ``get_registry``, ``registrar_info``), run in this
    actor against the store. Call them as attributes or, as with a
    registrar's portal, ``run_from_ns('self', 'find_actor', name=...)``."""

    def __init__(self, registrar: Any, addr: Any) -> None:
        self.registrar = registrar
        self.addr = addr
        self.channel = StoreChannel(addr)

    def __repr__(self) -> str:
        return f'<StorePortal to the registry at {self.addr}>'

    def __getattr__(self, name: str) -> Any:
        if name in type(self.registrar).METHODS:
            return getattr(self.registrar, name)
        raise AttributeError(f'{type(self).__name__!r} has no attribute {name!r}')

    async def run_from_ns(self, namespace_path: str, function_name: str, **kwargs: Any) -> Any:
        if namespace_path != 'self' or function_name not in type(self.registrar).METHODS:
            raise ValueError(
                f'the registry at {self.addr} serves only the registrar methods '
                f'{", ".join(type(self.registrar).METHODS)} in namespace "self", '
                f'not {namespace_path}:{function_name}'
            )
        return await getattr(self.registrar, function_name)(**kwargs)
