"""The registry table in etcd: discovery's ``RegistryBackend`` over leases.

Layout, under the address's prefix ``P``::

    P/actors/<name, percent-quoted>/<uuid>  ->  Registration (JSON)

Each actor registers its own entry, on a lease of its own that a task keeps
alive (:meth:`EtcdRegistry.keep_alive`); graceful teardown revokes the
lease, so the entry goes at once, and a killed actor's lease expires after
the TTL. A name's entries are one range read; the newest registration
(highest ``mod_revision``) comes first. Waiting for a name is a watch on
its key range.
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import msgspec
import trio

from tractor.discovery import RegistryBackend
from tractor.discovery._registry import Entry, Uid, WireAddr, check_uid, check_wire
from tractor.log import get_logger

from ._address import PASSWORD_ENV, EtcdAddress
from ._gateway import KV, EtcdError, EtcdUnreachable, Gateway, range_end
from ._host import host_id, host_only

log = get_logger('etcd')

#: bound on revoking the lease at teardown (etcd may be gone)
REVOKE_TIMEOUT = 2.0
#: gRPC NOT_FOUND: e.g. "requested lease not found"
_NOT_FOUND = 5


class Registration(msgspec.Struct):
    """One actor's entry as stored in etcd."""

    uid: tuple[str, str]
    addrs: list[tuple[str, list]]
    #: the registering host (:func:`host_id`)
    host: str
    #: indexes into ``addrs`` that only the same host can dial
    host_only: list[int] = []


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Registration)


class EtcdRegistry(RegistryBackend):
    """Registry entries in etcd, for one actor (it registers itself)."""

    def __init__(self, addr: EtcdAddress) -> None:
        self.addr = addr
        self.ttl = addr.lease_ttl()
        self.gateway = Gateway(
            addr.endpoints, tls=addr.ssl_context(), user=addr.user,
            password=os.environ.get(PASSWORD_ENV) if addr.user else None,
        )
        self.root = f'{addr.prefix}/actors/'.encode()
        self.host = host_id()
        #: this actor's own entries, put again when the lease was lost
        self._mine: dict[Uid, bytes] = {}
        self._lease = 0
        self._lease_lock = trio.Lock()
        self._closed = False
        self.reregistered = 0

    # -- keys and values ----------------------------------------------------
    def _name_key(self, name: str) -> bytes:
        return self.root + quote(name, safe='').encode() + b'/'

    def _key(self, uid: Uid) -> bytes:
        return self._name_key(uid[0]) + uid[1].encode()

    def _entry(self, kv: KV) -> Entry | None:
        """A stored entry as this host may dial it (``None``: unusable here)."""
        try:
            reg = _dec.decode(kv.value)
        except msgspec.DecodeError:
            log.debug('etcd: ignoring a foreign value at %r', kv.key)
            return None
        addrs = [check_wire(a) for a in reg.addrs]
        if reg.host != self.host:
            skip = set(reg.host_only)
            addrs = [a for i, a in enumerate(addrs) if i not in skip]
        if not addrs:
            return None
        return (reg.uid[0], reg.uid[1]), addrs

    def _entries(self, kvs: list[KV]) -> list[Entry]:
        out = []
        for kv in sorted(kvs, key=lambda kv: kv.mod_revision, reverse=True):
            entry = self._entry(kv)
            if entry is not None:
                out.append(entry)
        return out

    # -- the lease ------------------------------------------------------------
    async def _granted(self) -> int:
        async with self._lease_lock:
            if not self._lease:
                self._lease = (await self.gateway.grant(self.ttl)).ID
            return self._lease

    async def _put_mine(self, uid: Uid, value: bytes) -> None:
        lease = await self._granted()
        try:
            await self.gateway.put(self._key(uid), value, lease)
        except EtcdError as err:
            if err.code != _NOT_FOUND:
                raise
            # the lease expired (etcd was away longer than the TTL): a new one
            async with self._lease_lock:
                if self._lease == lease:
                    self._lease = 0
            await self.gateway.put(self._key(uid), value, await self._granted())

    async def _regrant(self) -> None:
        async with self._lease_lock:
            self._lease = 0
        for uid, value in list(self._mine.items()):
            await self._put_mine(uid, value)
        self.reregistered += 1
        log.warning('etcd: the lease had expired; registered %s again at %s',
                    ', '.join(u[0] for u in self._mine), self.addr)

    async def keep_alive(self) -> None:
        """Refresh the lease every third of its TTL; when it has expired
        (etcd was unreachable for longer, or lost its data), take a new
        one and put every entry of this actor back. Never raises."""
        interval = max(self.ttl / 3, 0.2)
        down = False
        while True:
            await trio.sleep(interval)  # a timer: the lease wants a beat, not a condition
            if not self._mine:
                continue
            try:
                if not self._lease:
                    await self._regrant()
                elif await self.gateway.keepalive(self._lease) <= 0:
                    await self._regrant()
                if down:
                    log.warning('etcd: %s answers again', self.addr)
                    down = False
            except (EtcdUnreachable, EtcdError) as err:
                (log.debug if down else log.warning)(
                    'etcd: cannot keep the registration alive (will retry): %s', err)
                down = True

    async def aclose(self) -> None:
        """Revoke the lease (every entry on it goes at once), bounded, then
        close the connections."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True), trio.move_on_after(REVOKE_TIMEOUT):
            if self._lease:
                try:
                    await self.gateway.revoke(self._lease)
                except EtcdUnreachable as err:
                    log.debug('etcd: could not revoke the lease: %s', err)
            self._lease = 0
        await self.gateway.aclose()

    # -- RegistryBackend --------------------------------------------------------
    async def register(self, uid: Uid, addrs: list[WireAddr]) -> None:
        uid = check_uid(uid)
        wire = [check_wire(a) for a in addrs]
        value = _enc.encode(Registration(
            uid=uid, addrs=wire, host=self.host,
            host_only=[i for i, a in enumerate(wire) if host_only(a)],
        ))
        self._mine[uid] = value  # kept even if etcd is away: keep_alive puts it
        await self._put_mine(uid, value)

    async def unregister(self, uid: Uid) -> bool:
        uid = check_uid(uid)
        self._mine.pop(uid, None)
        return (await self.gateway.delete(self._key(uid))).deleted > 0

    async def find(self, name: str) -> list[Entry]:
        key = self._name_key(name)
        return self._entries((await self.gateway.range(key, range_end(key))).kvs)

    async def wait_for(self, name: str) -> Entry:
        key = self._name_key(name)
        end = range_end(key)
        while True:
            reply = await self.gateway.range(key, end)
            found = self._entries(reply.kvs)
            if found:
                return found[0]
            # block on a watch from just after that read: no poll, no gap
            await self.gateway.next_put(key, end, reply.header.revision + 1)

    async def delete_addr(self, uid: Uid, addr: WireAddr) -> bool:
        uid = check_uid(uid)
        wire = check_wire(addr)
        key = self._key(uid)
        kvs = (await self.gateway.range(key)).kvs
        if not kvs:
            return False
        kv = kvs[0]
        try:
            reg = _dec.decode(kv.value)
        except msgspec.DecodeError:
            return False
        addrs = [check_wire(a) for a in reg.addrs]
        if wire not in addrs:
            return False
        idx = addrs.index(wire)
        # only if nobody changed the entry since we read it
        same = [{'key': key, 'target': 'MOD', 'result': 'EQUAL', 'mod_revision': kv.mod_revision}]
        if len(addrs) == 1:
            op = {'request_delete_range': {'key': key}}
        else:
            del addrs[idx]
            reg.addrs = addrs
            reg.host_only = [i - (i > idx) for i in reg.host_only if i != idx]
            op = {'request_put': {'key': key, 'value': _enc.encode(reg), 'lease': kv.lease}}
        return (await self.gateway.txn(same, [op])).succeeded

    async def snapshot(self) -> dict[Uid, list[WireAddr]]:
        reply = await self.gateway.range(self.root, range_end(self.root))
        return dict(self._entries(reply.kvs))

    def stats(self) -> dict[str, Any]:
        return {
            'store': str(self.addr),
            'member': self.gateway.urls[self.gateway.current],
            'lease': self._lease,
            'ttl': self.ttl,
            'registered': len(self._mine),
            'reregistered': self.reregistered,
        }

