"""The registrar role: the table's RPC face, served as runtime methods.

An actor that becomes the registrar exposes these as ``'self'`` methods, so
any peer can ``portal.run_from_ns('self', 'find_actor', name=...)``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import trio

from tractor import TransportClosed, context
from tractor.log import get_logger
from tractor.plugin import (
    check_actor_name,
    current_channel,
    parse_positive_int,
    parse_seconds,
    register_setting,
    setting_value,
)

from ._registry import MemoryRegistry, RegistryBackend, Uid, WireAddr, check_uid

if TYPE_CHECKING:
    from tractor import Actor

EXTENSION_KEY = 'discovery.registrar'
#: ``SpawnSpec.ext`` key (and the child's ``actor.extensions`` key): the
#: child's registry addresses that its parent serves as the registrar. The
#: parent registers such a child itself once it is Ready (see
#: :meth:`Registrar.register_child`), so the child neither dials the
#: registrar nor holds a registration of its own there.
PARENT_REGISTERS = 'discovery.parent_registers'
#: entries one connection may register (an actor registers itself: one)
register_setting(
    'TRACTOR_REGISTRY_MAX_PER_CONNECTION',
    parse_positive_int,
    16384,
    'a whole number >= 1',
    'registry entries one connection may register',
)
MAX_ENTRIES_PER_CONNECTION = setting_value('TRACTOR_REGISTRY_MAX_PER_CONNECTION')
#: how long entries outlive the connection that registered them, for their
#: actor to register again over a new one (seconds)
register_setting(
    'TRACTOR_REGISTRY_REREGISTER_GRACE',
    parse_seconds,
    10.0,
    'a number of seconds > 0',
    'how long entries outlive the connection that registered them, unless re-registered',
)
REREGISTER_GRACE = setting_value('TRACTOR_REGISTRY_REREGISTER_GRACE')
log = get_logger('discovery')


class Registrar:
    """The registry service of one actor (``tractor.Arbiter`` is an alias).

    Methods are the RPC surface (all keyword arguments, msgpack values):
    ``register_actor``, ``unregister_actor``, ``find_actor``,
    ``find_actors``, ``wait_for_actor``, ``delete_addr``, ``get_registry``,
    ``list_entries``; and two streaming contexts: ``watch_registry`` (see
    :func:`tractor.discovery.watch`) and ``hold_registration``, which a
    registered actor keeps open so that the loss of its connection makes the
    registrar check whether it is still alive (a SIGKILLed actor's entry goes
    at once, as ``'stale'``).
    """

    METHODS = (
        'register_actor',
        'unregister_actor',
        'find_actor',
        'find_actors',
        'wait_for_actor',
        'delete_addr',
        'get_registry',
        'registrar_info',
        'list_entries',
    )

    def __init__(self, actor: Actor, backend: RegistryBackend | None = None) -> None:
        self.actor = actor
        self.backend = backend if backend is not None else MemoryRegistry()
        #: which connection registered each entry last, and the reverse
        self._owner: dict[Uid, Any] = {}
        self._by_chan: dict[Any, set[Uid]] = {}
        # backends written before metadata and reasons existed keep working
        params = inspect.signature(self.backend.register).parameters
        self._takes_meta = 'meta' in params
        self._takes_reason = 'reason' in inspect.signature(self.backend.unregister).parameters
        #: requests served, by kind (see :meth:`registrar_info`)
        self.served = {
            'register': 0,
            'unregister': 0,
            'lookup': 0,
            'wait': 0,
            'delete': 0,
            'watch': 0,
            'hold': 0,
        }

    def install(self) -> None:
        self.actor.is_registrar = True
        self.actor.extensions[EXTENSION_KEY] = self
        for name in self.METHODS:
            self.actor.expose(name, getattr(self, name))
        from ._watch import watch_endpoint

        self.actor.expose('watch_registry', watch_endpoint(self))
        self.actor.expose('hold_registration', hold_endpoint(self))

    async def registrar_info(self) -> dict[str, Any]:
        """Who serves the registry, with which backend, and counters: the
        requests served by kind and the backend's own stats."""
        return {
            'uid': list(self.actor.uid),
            'backend': type(self.backend).__name__,
            'served': dict(self.served),
            **self.backend.stats(),
        }

    async def register_actor(
        self, uid: Uid, addrs: list[WireAddr], meta: dict[str, Any] | None = None
    ) -> None:
        """Add or refresh ``uid``'s entry at ``addrs``; ``meta`` (optional, from
        newer releases): ``{'pid': ..., 'host': ..., 'parent': [name, uuid]}``.
        Over a connection, at most
        :data:`MAX_ENTRIES_PER_CONNECTION` entries, dropped once that
        connection ends for good (it is not re-registered over another
        within :data:`REREGISTER_GRACE`)."""
        self.served['register'] += 1
        chan = current_channel.get()
        if chan is not None and chan.raddr is None:
            # dialed by the actor's boot-time probe, before it knew where it
            # would listen (its Hello named no address): now it says
            chan.set_raddr_from(addrs)
        await self._register(check_uid(uid), addrs, meta, chan)

    async def register_child(
        self, chan: Any, uid: Uid, addrs: list[WireAddr], meta: dict[str, Any]
    ) -> None:
        """Register this actor's child ``uid``, which booted over ``chan``
        (this side of its spawn connection), as though the child had
        registered over ``chan`` and held the registration open: the entry
        belongs to ``chan``, and once ``chan`` is lost the child is checked
        for life (a killed child's entry goes at once, as ``'stale'``)."""
        self.served['register'] += 1
        self.served['hold'] += 1
        uid = check_uid(uid)
        await self._register(uid, addrs, meta, chan)
        self.actor.start_service_task(self._hold_over, chan, uid, name=f'hold {uid[0]}')

    async def _hold_over(self, chan: Any, uid: Uid) -> None:
        # what hold_registration's end does for a connection that is lost
        await chan.wait_closed()
        if not self.actor.cancel_called:
            await check_alive(self, uid)

    async def _register(
        self, uid: Uid, addrs: list[WireAddr], meta: dict[str, Any] | None, chan: Any
    ) -> None:
        if chan is not None:
            mine = self._by_chan.get(chan)
            if mine is not None and uid not in mine and len(mine) >= MAX_ENTRIES_PER_CONNECTION:
                raise ValueError(
                    f'one connection may register at most {MAX_ENTRIES_PER_CONNECTION} '
                    f'entries (TRACTOR_REGISTRY_MAX_PER_CONNECTION): refused {uid!r}'
                )
        if self._takes_meta:
            await self.backend.register(uid, addrs, meta)
        else:
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
            self.actor.start_service_task(self._drop_when_gone, chan)
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
                if self._takes_reason:
                    await self.backend.unregister(uid, reason='stale')
                else:
                    await self.backend.unregister(uid)

    async def unregister_actor(self, uid: Uid) -> bool:
        self.served['unregister'] += 1
        uid = check_uid(uid)
        self._claim(uid, None)
        return await self.backend.unregister(uid)

    async def list_entries(self, name: str | None = None, prefix: bool = False) -> list[dict]:
        """Every entry (or those named ``name``, or starting with it with
        ``prefix=True``) with its metadata, newest first, each in the wire
        form of :class:`~tractor.discovery.Registered`."""
        self.served['lookup'] += 1
        if name is not None:
            check_actor_name(name)
        from ._events import to_wire

        return [to_wire(rec) for rec in await self.backend.entries(name, bool(prefix))]

    async def find_actor(self, name: str) -> tuple[Uid, list[WireAddr]] | None:
        """The newest entry named ``name`` (``None`` when there is none)."""
        self.served['lookup'] += 1
        return await self.backend.find_newest(check_actor_name(name))

    async def find_actors(self, name: str) -> list[tuple[Uid, list[WireAddr]]]:
        """Every entry named ``name``, newest first."""
        self.served['lookup'] += 1
        return await self.backend.find(check_actor_name(name))

    async def wait_for_actor(self, name: str) -> tuple[Uid, list[WireAddr]]:
        """The newest entry named ``name``, once there is one."""
        self.served['wait'] += 1
        return await self.backend.wait_for(check_actor_name(name))

    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        self.served['delete'] += 1
        return await self.backend.delete_addr(check_uid(uid), addr)

    async def get_registry(self) -> dict[tuple[str, str], list[WireAddr]]:
        """The whole table: ``{(name, uuid): [addresses]}`` (the uid keys
        arrive as tuples through RPC too)."""
        return {uid: list(addrs) for uid, addrs in (await self.backend.snapshot()).items()}


#: the pre-"registrar" name, kept for code written against older releases
Arbiter = Registrar


def hold_endpoint(registrar: Registrar) -> Any:
    """The registrar's ``hold_registration`` context function."""

    @context
    async def hold_registration(ctx: Any, uid: Uid) -> None:
        uid = check_uid(uid)
        registrar.served['hold'] += 1
        await ctx.started()
        try:
            await trio.sleep_forever()
        finally:
            # the holder cancelling it leaves the connection up (it is
            # leaving and unregisters itself); a lost connection does not
            lost = isinstance(ctx.maybe_error, TransportClosed) or not ctx.chan.connected()
            if lost and not registrar.actor.cancel_called:
                registrar.actor.start_service_task(
                    check_alive, registrar, uid, name=f'check {uid[0]} is alive'
                )

    return hold_registration


async def check_alive(registrar: Registrar, uid: Uid) -> None:
    """``uid`` lost its connection to this registrar: dial its entry; if no
    address answers as ``uid``, drop the entry as ``'stale'``."""
    from ._client import dial_entry

    found = [r for r in await registrar.backend.entries(uid[0]) if r.uid == uid]
    if not found:
        return  # it unregistered
    try:
        dialed = await dial_entry(registrar.actor, None, uid, found[0].addrs)
    except Exception as err:
        log.debug('checking %r: %s', uid[0], err)
        dialed = None
    if dialed is not None:
        chan, owned = dialed
        if owned:
            await chan.aclose()
        return
    gone = (
        await registrar.backend.unregister(uid, reason='stale')
        if registrar._takes_reason
        else await registrar.backend.unregister(uid)
    )
    if gone:
        log.info('%r (%s) is gone without unregistering: entry dropped', uid[0], uid[1][:8])


def local_registrar(actor: Actor | None) -> Registrar | None:
    if actor is None:
        return None
    return actor.extensions.get(EXTENSION_KEY)
