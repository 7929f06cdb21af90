"""The registrar role: the table's RPC face, served as runtime methods.

An actor that becomes the registrar exposes these as ``'self'`` methods, so
any peer can ``portal.run_from_ns('self', 'find_actor', name=...)``.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tractor import _settings

import trio

from ._registry import MemoryRegistry, RegistryBackend, Uid, WireAddr, check_uid

if TYPE_CHECKING:
    from tractor import Actor

EXTENSION_KEY = 'discovery.registrar'
#: entries one connection may register (an actor registers itself: one)
_settings.register(
    'TRACTOR_REGISTRY_MAX_PER_CONNECTION', _settings._positive_int, 16384, 'a whole number >= 1',
    'registry entries one connection may register',
)
MAX_ENTRIES_PER_CONNECTION = _settings.value('TRACTOR_REGISTRY_MAX_PER_CONNECTION')
#: how long entries outlive the connection that registered them, for their
#: actor to register again over a new one (seconds)
_settings.register(
    'TRACTOR_REGISTRY_REREGISTER_GRACE', _settings._seconds, 10.0, 'a number of seconds > 0',
    "how long entries outlive the connection that registered them, unless re-registered",
)
REREGISTER_GRACE = _settings.value('TRACTOR_REGISTRY_REREGISTER_GRACE')


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
        #: which connection registered each entry last, and the reverse
        self._owner: dict[Uid, Any] = {}
        self._by_chan: dict[Any, set[Uid]] = {}
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
        """Register ``uid`` at ``addrs``. Over a connection, at most
        :data:`MAX_ENTRIES_PER_CONNECTION` entries, dropped once that
        connection ends for good (it is not re-registered over another
        within :data:`REREGISTER_GRACE`)."""
        self.served['register'] += 1
        uid = check_uid(uid)
        from tractor._runtime import current_channel

        chan = current_channel.get()
        if chan is not None:
            mine = self._by_chan.get(chan)
            if mine is not None and uid not in mine and len(mine) >= MAX_ENTRIES_PER_CONNECTION:
                raise ValueError(
                    f'one connection may register at most {MAX_ENTRIES_PER_CONNECTION} '
                    f'entries (TRACTOR_REGISTRY_MAX_PER_CONNECTION): refused {uid!r}'
                )
        await self.backend.register(uid, addrs)
        self._claim(uid, chan)

    def _claim(self, uid: Uid, chan: Any) -> None:
        old = self._owner.pop(uid, None)
        if old is not None and old in self._by_chan:
            self._by_chan[old].discard(uid)
        if chan is None:
            return
        self._owner[uid] = chan
        if chan not in self._by_chan:
            self._by_chan[chan] = set()
            assert self.actor._service_tn is not None
            self.actor._service_tn.start_soon(self._drop_when_gone, chan)
        self._by_chan[chan].add(uid)

    async def _drop_when_gone(self, chan: Any) -> None:
        """Once ``chan`` ends and a grace passed, unregister what it still
        owns (an actor that re-registered elsewhere meanwhile keeps its
        entry)."""
        await chan.wait_closed()
        await trio.sleep(REREGISTER_GRACE)
        for uid in self._by_chan.pop(chan, set()):
            if self._owner.get(uid) is chan:
                del self._owner[uid]
                await self.backend.unregister(uid)

    async def unregister_actor(self, uid: Uid) -> bool:
        self.served['unregister'] += 1
        uid = check_uid(uid)
        self._claim(uid, None)
        return await self.backend.unregister(uid)

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
