"""The registrar role: the table's RPC face, served as runtime methods.

An actor that becomes the registrar exposes these as ``'self'`` methods, so
any peer can ``portal.run_from_ns('self', 'find_actor', name=...)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._registry import MemoryRegistry, RegistryBackend, Uid, WireAddr

if TYPE_CHECKING:
    from tractor import Actor

EXTENSION_KEY = 'discovery.registrar'


class Registrar:
    """The registry service of one actor (``tractor.Arbiter`` is an alias).

    Methods are the RPC surface (all keyword arguments, msgpack values):
    ``register_actor``, ``unregister_actor``, ``find_actor``,
    ``find_actors``, ``wait_for_actor``, ``delete_addr``, ``get_registry``.
    """

    METHODS = (
        'register_actor', 'unregister_actor', 'find_actor', 'find_actors',
        'wait_for_actor', 'delete_addr', 'get_registry', 'registrar_info',
    )

    def __init__(self, actor: Actor, backend: RegistryBackend | None = None) -> None:
        self.actor = actor
        self.backend = backend or MemoryRegistry()

    def install(self) -> None:
        self.actor.is_registrar = True
        self.actor.extensions[EXTENSION_KEY] = self
        for name in self.METHODS:
            self.actor.expose(name, getattr(self, name))

    async def registrar_info(self) -> dict[str, Any]:
        return {'uid': list(self.actor.uid), 'backend': type(self.backend).__name__}

    async def register_actor(self, uid: Uid, addrs: list[WireAddr]) -> None:
        await self.backend.register(tuple(uid), addrs)  # type: ignore[arg-type]

    async def unregister_actor(self, uid: Uid) -> bool:
        return await self.backend.unregister(tuple(uid))  # type: ignore[arg-type]

    async def find_actor(self, name: str) -> tuple[Uid, list[WireAddr]] | None:
        """The newest entry named ``name`` (``None`` when there is none)."""
        found = await self.backend.find(name)
        return found[0] if found else None

    async def find_actors(self, name: str) -> list[tuple[Uid, list[WireAddr]]]:
        return await self.backend.find(name)

    async def wait_for_actor(self, name: str) -> tuple[Uid, list[WireAddr]]:
        return await self.backend.wait_for(name)

    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        return await self.backend.delete_addr(tuple(uid), addr)  # type: ignore[arg-type]

    async def get_registry(self) -> list[tuple[Uid, list[WireAddr]]]:
        return list((await self.backend.snapshot()).items())


#: the pre-"registrar" name, kept for code written against older releases
Arbiter = Registrar


def local_registrar(actor: Actor | None) -> Registrar | None:
    if actor is None:
        return None
    return actor.extensions.get(EXTENSION_KEY)
