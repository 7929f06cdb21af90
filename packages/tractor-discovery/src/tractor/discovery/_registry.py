"""The registry table behind a small interface (the backend seam).

The registrar actor holds a :class:`RegistryBackend`; the embedded default
is :class:`MemoryRegistry`, a dict in the registrar's process. A backend
for an external store (etcd with leases and watches) implements the same
five operations.
"""
from __future__ import annotations

import abc
from typing import Any

import trio

Uid = tuple[str, str]
WireAddr = tuple[str, list]


class RegistryBackend(abc.ABC):
    """Where the registrar keeps ``(name, uuid) -> [addresses]``."""

    @abc.abstractmethod
    async def register(self, uid: Uid, addrs: list[WireAddr]) -> None:
        """Add or refresh an entry; it becomes the newest for its name."""

    @abc.abstractmethod
    async def unregister(self, uid: Uid) -> bool:
        """Drop an entry; ``True`` if it existed."""

    @abc.abstractmethod
    async def find(self, name: str) -> list[tuple[Uid, list[WireAddr]]]:
        """Every entry named ``name``, newest first."""

    @abc.abstractmethod
    async def wait_for(self, name: str) -> tuple[Uid, list[WireAddr]]:
        """The newest entry named ``name``, waiting for one to register."""

    @abc.abstractmethod
    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        """Remove one stale address (the entry too once it has none left)."""

    async def snapshot(self) -> dict[Uid, list[WireAddr]]:
        """Everything, for inspection (may be expensive)."""
        raise NotImplementedError


class MemoryRegistry(RegistryBackend):
    """The embedded default: O(1) register, unregister and newest-by-name.

    Waiters for a name block on an event that the next registration of that
    name sets, so ``wait_for`` never polls.
    """

    def __init__(self) -> None:
        # name -> {uid: addrs}, insertion ordered: the last item is the newest
        self._by_name: dict[str, dict[Uid, list[WireAddr]]] = {}
        self._waiters: dict[str, trio.Event] = {}

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_name.values())

    async def register(self, uid: Uid, addrs: list[WireAddr]) -> None:
        uid = (uid[0], uid[1])
        entries = self._by_name.setdefault(uid[0], {})
        entries.pop(uid, None)  # re-registering makes it the newest
        entries[uid] = [_wire(a) for a in addrs]
        ev = self._waiters.pop(uid[0], None)
        if ev is not None:
            ev.set()

    async def unregister(self, uid: Uid) -> bool:
        entries = self._by_name.get(uid[0])
        if not entries or entries.pop((uid[0], uid[1]), None) is None:
            return False
        if not entries:
            del self._by_name[uid[0]]
        return True

    async def find(self, name: str) -> list[tuple[Uid, list[WireAddr]]]:
        entries = self._by_name.get(name)
        if not entries:
            return []
        return [(uid, list(addrs)) for uid, addrs in reversed(entries.items())]

    def newest(self, name: str) -> tuple[Uid, list[WireAddr]] | None:
        entries = self._by_name.get(name)
        if not entries:
            return None
        uid = next(reversed(entries))
        return uid, list(entries[uid])

    async def wait_for(self, name: str) -> tuple[Uid, list[WireAddr]]:
        while True:
            found = self.newest(name)
            if found is not None:
                return found
            ev = self._waiters.get(name)
            if ev is None:
                ev = self._waiters[name] = trio.Event()
            await ev.wait()

    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        entries = self._by_name.get(uid[0])
        addrs = entries.get((uid[0], uid[1])) if entries else None
        if addrs is None:
            return False
        wire = _wire(addr)
        if wire not in addrs:
            return False
        addrs.remove(wire)
        if not addrs:
            await self.unregister(uid)
        return True

    async def snapshot(self) -> dict[Uid, list[WireAddr]]:
        return {uid: list(a) for d in self._by_name.values() for uid, a in d.items()}


def _wire(addr: Any) -> WireAddr:
    """Normalize a wire address to ``(proto, [fields])`` for comparisons."""
    proto, fields = addr
    return (str(proto), list(fields))
