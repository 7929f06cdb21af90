"""The registrar role: the table's RPC face, served as runtime methods.

An actor that becomes the registrar exposes these as ``'self'`` methods, so
any peer can ``portal.run_from_ns('self', 'find_actor', name=...)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._registry import MemoryRegistry, RegistryBackend, Uid, WireAddr, check_uid

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
        self.backend = backend if backend is not None else MemoryRegistry()
        #: requests served, by kind (see :meth:`registrar_info`)
        self.served = {'register': 0, 'unregister': 0, 'lookup': 0, 'wait': 0, 'delete': 0}

    def install(self) -> None:
        self.actor.is_registrar = True
        self.actor.extensions[EXTENSION_KEY] = self
        for name in self.METHODS:
            self.actor.expose(name, getattr(self, name))

    async def registrar_info(self) -> dict[str, Any]:
        """Who serves the registry, with which backend, and counters: the
        requests served by kind and the backend's own stats."""
        return {
            'uid': list(self.actor.uid),
            'backend': type(self.backend).__name__,
            'served': dict(self.served),
            **self.backend.stats(),
        }

    async def register_actor(self, uid: Uid, addrs: list[WireAddr]) -> None:
        self.served['register'] += 1
        await self.backend.register(check_uid(uid), addrs)

    async def unregister_actor(self, uid: Uid) -> bool:
        self.served['unregister'] += 1
        return await self.backend.unregister(check_uid(uid))

    async def find_actor(self, name: str) -> tuple[Uid, list[WireAddr]] | None:
        """The newest entry named ``name`` (``None`` when there is none)."""
        self.served['lookup'] += 1
        return await self.backend.find_newest(_check_name(name))

    async def find_actors(self, name: str) -> list[tuple[Uid, list[WireAddr]]]:
        """Every entry named ``name``, newest first."""
        self.served['lookup'] += 1
        return await self.backend.find(_check_name(name))

    async def wait_for_actor(self, name: str) -> tuple[Uid, list[WireAddr]]:
        """The newest entry named ``name``, once there is one."""
        self.served['wait'] += 1
        return await self.backend.wait_for(_check_name(name))

    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        self.served['delete'] += 1
        return await self.backend.delete_addr(check_uid(uid), addr)

    async def get_registry(self) -> dict[tuple[str, str], list[WireAddr]]:
        """The whole table: ``{(name, uuid): [addresses]}`` (the uid keys
        arrive as tuples through RPC too)."""
        return {tuple(uid): list(addrs) for uid, addrs in (await self.backend.snapshot()).items()}


#: the pre-"registrar" name, kept for code written against older releases
Arbiter = Registrar


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f'an actor name must be a non-empty string, got {name!r}')
    return name


def local_registrar(actor: Actor | None) -> Registrar | None:
    if actor is None:
        return None
    return actor.extensions.get(EXTENSION_KEY)
