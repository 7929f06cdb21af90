"""The registry table behind a small interface (the backend seam).

The registrar actor holds a :class:`RegistryBackend`; the embedded default
is :class:`MemoryRegistry`, a dict in the registrar's process. A backend
for an external store (etcd with leases and watches) implements the same
five operations: ``register``, ``unregister``, ``find``, ``wait_for`` and
``delete_addr``.

Entries map an actor's uid ``(name, uuid)`` to its addresses in wire form,
``(proto_key, [fields...])`` (e.g. ``('tcp', ['127.0.0.1', 1616])``).
"""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from tractor.plugin import check_actor_name

from ._events import (
    DEFAULT_BUFFER,
    Hub,
    Registered,
    Subscription,
    Unregistered,
    matches,
    meta_fields,
)

Uid = tuple[str, str]
WireAddr = tuple[str, list]
Entry = tuple[Uid, list[WireAddr]]


class RegistryBackend(abc.ABC):
    """Where the registrar keeps ``(name, uuid) -> [addresses]``.

    Names are not unique: ``find`` returns every entry of a name, the most
    recently registered first. Implementations must wake ``wait_for``
    callers when the name registers (no polling).
    """

    @abc.abstractmethod
    async def register(
        self, uid: Uid, addrs: list[WireAddr], meta: dict[str, Any] | None = None
    ) -> None:
        """Add or refresh an entry; it becomes the newest for its name.
        ``meta`` optionally describes the actor (``pid``, ``host``,
        ``parent``; see :func:`~tractor.discovery._events.meta_fields`)."""

    @abc.abstractmethod
    async def unregister(self, uid: Uid, reason: str = 'graceful') -> bool:
        """Drop an entry; ``True`` if it existed. ``reason`` is what watchers
        are told (``'graceful'``, ``'stale'``)."""

    @abc.abstractmethod
    async def find(self, name: str) -> list[Entry]:
        """Every entry named ``name``, newest first (empty on a miss)."""

    @abc.abstractmethod
    async def wait_for(self, name: str) -> Entry:
        """The newest entry named ``name``, waiting for one to register."""

    @abc.abstractmethod
    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        """Remove one stale address (the entry too once it has none left);
        ``True`` if it was there."""

    # -- optional: defaults built on the five operations above ---------------
    async def find_newest(self, name: str) -> Entry | None:
        """The newest entry named ``name`` or ``None``."""
        found = await self.find(name)
        return found[0] if found else None

    async def snapshot(self) -> dict[Uid, list[WireAddr]]:
        """Everything, for inspection (may be expensive)."""
        raise NotImplementedError(f'{type(self).__name__} cannot list its entries')

    def stats(self) -> dict[str, Any]:
        """Cheap numbers for monitoring (``entries``, ``waiters``)."""
        return {}

    async def entries(self, name: str | None = None, prefix: bool = False) -> list[Registered]:
        """Every entry (named ``name``, or starting with it with ``prefix``)
        with its metadata, newest first. Default: from :meth:`snapshot`,
        without metadata."""
        snap = await self.snapshot()
        return [
            Registered(uid=uid, addrs=addrs)
            for uid, addrs in reversed(snap.items())
            if matches(name, prefix, uid[0])
        ]

    # -- optional: watching --------------------------------------------------
    def subscribe(
        self, name: str | None = None, prefix: bool = False, size: int = DEFAULT_BUFFER
    ) -> Any:
        """``async with backend.subscribe(...) as (current, sub)``: the
        matching entries now (a list of :class:`~tractor.discovery.Registered`,
        newest first) and a :class:`~tractor.discovery._events.Subscription`
        whose ``sub.events`` channel receives every later change, with no
        gap between the two. It is bounded by ``size``: a subscriber that
        falls that far behind finds the channel closed after what was queued,
        and ``sub.check()`` raises :class:`~tractor.discovery.WatchOverflow`.
        Exiting the block ends the subscription. Emit changes through a
        :class:`~tractor.discovery._events.Hub`. Default: this backend
        cannot be watched (``NotImplementedError``)."""
        raise NotImplementedError(f'{type(self).__name__} cannot be watched')

    # -- optional: for a backend that an actor uses to register itself -------
    async def keep_alive(self) -> None:
        """Keep this actor's own registrations alive for its lifetime (an
        external store's lease keepalive, re-registering after an outage).
        Runs in the actor's service nursery; never raises. Default: none
        needed."""

    async def aclose(self) -> None:
        """Release what the backend holds (connections, a lease) at teardown."""


class MemoryRegistry(RegistryBackend):
    """The embedded default: O(1) register, unregister and newest-by-name.

    Waiters for a name block on an event that the next registration of that
    name sets, so ``wait_for`` never polls.
    """

    def __init__(self) -> None:
        # name -> {uid: addrs}, insertion ordered: the last item is the newest
        self._by_name: dict[str, dict[Uid, list[WireAddr]]] = {}
        self._count = 0
        # name -> (event set by the next registration, number of waiters)
        self._waiters: dict[str, list[Any]] = {}
        # uid -> metadata (pid, host, parent, registered time)
        self._meta: dict[Uid, dict[str, Any]] = {}
        self.hub = Hub()

    def __len__(self) -> int:
        return self._count

    def waiting(self, name: str | None = None) -> int:
        """How many ``wait_for`` callers are blocked (on ``name``, or in all)."""
        if name is not None:
            slot = self._waiters.get(name)
            return slot[1] if slot else 0
        return sum(slot[1] for slot in self._waiters.values())

    def stats(self) -> dict[str, Any]:
        return {'entries': self._count, 'waiters': self.waiting(), 'watchers': len(self.hub)}

    async def register(
        self, uid: Uid, addrs: list[WireAddr], meta: dict[str, Any] | None = None
    ) -> None:
        uid = check_uid(uid)
        wire = [check_wire(a) for a in addrs]
        entries = self._by_name.setdefault(uid[0], {})
        old = entries.pop(uid, None)  # re-registering makes it the newest
        if old is None:
            self._count += 1
        entries[uid] = wire
        known = self._meta.get(uid)
        fields = meta_fields(meta) or (known or {})
        # the first registration's time stays while the entry lives
        fields = {**fields, 'registered': known['registered'] if known else time.time()}
        self._meta[uid] = fields
        if old != wire or known is None or fields != known:
            self.hub.emit(self._record(uid, wire))
        slot = self._waiters.pop(uid[0], None)
        if slot is not None:
            slot[0].set()

    async def unregister(self, uid: Uid, reason: str = 'graceful') -> bool:
        uid = check_uid(uid)
        entries = self._by_name.get(uid[0])
        if not entries or entries.pop(uid, None) is None:
            return False
        self._count -= 1
        self._meta.pop(uid, None)
        if not entries:
            del self._by_name[uid[0]]
        self.hub.emit(Unregistered(uid=uid, reason=reason))  # type: ignore[arg-type]  # the base types it str
        return True

    def _record(self, uid: Uid, addrs: list[WireAddr]) -> Registered:
        return Registered(uid=uid, addrs=list(addrs), **self._meta.get(uid, {}))

    async def entries(self, name: str | None = None, prefix: bool = False) -> list[Registered]:
        out: list[Registered] = []
        for ename, by_uid in self._by_name.items():
            if matches(name, prefix, ename):
                out.extend(self._record(uid, addrs) for uid, addrs in by_uid.items())
        out.sort(key=lambda r: r.registered or 0.0, reverse=True)
        return out

    @asynccontextmanager
    async def subscribe(
        self, name: str | None = None, prefix: bool = False, size: int = DEFAULT_BUFFER
    ) -> AsyncIterator[tuple[list[Registered], Subscription]]:
        # no checkpoint between the snapshot and subscribing: no gap
        sub = self.hub.subscribe(name, prefix, size)
        try:
            yield await self.entries(name, prefix), sub
        finally:
            sub.close()

    async def find(self, name: str) -> list[Entry]:
        entries = self._by_name.get(name)
        if not entries:
            return []
        return [(uid, list(addrs)) for uid, addrs in reversed(entries.items())]

    def newest(self, name: str) -> Entry | None:
        entries = self._by_name.get(name)
        if not entries:
            return None
        uid = next(reversed(entries))
        return uid, list(entries[uid])

    async def find_newest(self, name: str) -> Entry | None:
        return self.newest(name)

    async def wait_for(self, name: str) -> Entry:
        while True:
            found = self.newest(name)
            if found is not None:
                return found
            slot = self._waiters.get(name)
            if slot is None:
                slot = self._waiters[name] = [trio.Event(), 0]
            slot[1] += 1
            try:
                await slot[0].wait()
            finally:
                slot[1] -= 1
                # a cancelled last waiter leaves nothing behind
                if slot[1] == 0 and self._waiters.get(name) is slot:
                    del self._waiters[name]

    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        uid = check_uid(uid)
        entries = self._by_name.get(uid[0])
        addrs = entries.get(uid) if entries else None
        if addrs is None:
            return False
        wire = check_wire(addr)
        if wire not in addrs:
            return False
        addrs.remove(wire)
        if not addrs:
            await self.unregister(uid, reason='stale')
        else:
            self.hub.emit(self._record(uid, addrs))
        return True

    async def snapshot(self) -> dict[Uid, list[WireAddr]]:
        return {uid: list(a) for d in self._by_name.values() for uid, a in d.items()}


def check_uid(uid: Any) -> Uid:
    """``(name, uuid)`` as a tuple of two non-empty strings, else ``ValueError``."""
    try:
        name, uuid = uid
    except (TypeError, ValueError):
        raise ValueError(f'an actor uid is (name, uuid), got {uid!r}') from None
    if not isinstance(name, str) or not isinstance(uuid, str) or not name or not uuid:
        raise ValueError(f'an actor uid is two non-empty strings, got {uid!r}')
    # what the registry lists (`tractor ls`) is printable: no control characters
    check_actor_name(name)
    if not uuid.isprintable():
        raise ValueError(f'an actor uuid may not hold control characters, got {uuid!r}')
    return (name, uuid)


def check_wire(addr: Any) -> WireAddr:
    """Normalize a wire address to ``(proto, [fields])``, else ``ValueError``."""
    try:
        proto, fields = addr
    except (TypeError, ValueError):
        raise ValueError(f'a wire address is (proto_key, [fields]), got {addr!r}') from None
    if not isinstance(proto, str) or not proto or not isinstance(fields, (list, tuple)):
        raise ValueError(f'a wire address is (proto_key, [fields]), got {addr!r}')
    return (proto, list(fields))
