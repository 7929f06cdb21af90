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
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, unquote

import msgspec
import trio

from tractor.discovery.store import (
    DEFAULT_BUFFER,
    Entry,
    Hub,
    Registered,
    RegistryBackend,
    Subscription,
    Uid,
    Unregistered,
    WireAddr,
    check_filter,
    check_uid,
    check_wire,
    meta_fields,
)
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
    #: what the entry says about its actor (None from older releases)
    pid: int | None = None
    hostname: str | None = None
    parent: tuple[str, str] | None = None
    registered: float | None = None
    #: set just before a graceful unregister deletes the key, so watchers
    #: tell a graceful exit ('graceful') from a lease that ran out ('expired')
    gone: str = ''


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Registration)


class EtcdRegistry(RegistryBackend):
    """Registry entries in etcd, for one actor (it registers itself)."""

    def __init__(self, addr: EtcdAddress) -> None:
        self.addr = addr
        self.ttl = addr.lease_ttl()
        self.gateway = Gateway(
            addr.endpoints,
            tls=addr.ssl_context(),
            user=addr.user,
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
        #: this actor's own registrations, as stored
        self._regs: dict[Uid, Registration] = {}

    # -- keys and values ----------------------------------------------------
    def _name_key(self, name: str) -> bytes:
        return self.root + quote(name, safe='').encode() + b'/'

    def _key(self, uid: Uid) -> bytes:
        return self._name_key(uid[0]) + uid[1].encode()

    def _entry(self, kv: KV) -> Entry | None:
        """A stored entry as this host may dial it (``None``: unusable here)."""
        rec = self._record(kv)
        return (rec.uid, rec.addrs) if rec is not None else None

    def _record(self, kv: KV) -> Registered | None:
        """A stored entry with its metadata, as this host may dial it."""
        try:
            reg = _dec.decode(kv.value)
        except msgspec.DecodeError:
            log.debug('etcd: ignoring a foreign value at %r', kv.key)
            return None
        if reg.gone:
            return None
        addrs = [check_wire(a) for a in reg.addrs]
        if reg.host != self.host:
            skip = set(reg.host_only)
            addrs = [a for i, a in enumerate(addrs) if i not in skip]
        if not addrs:
            return None
        return Registered(
            uid=(reg.uid[0], reg.uid[1]),
            addrs=addrs,
            pid=reg.pid,
            host=reg.hostname,
            parent=reg.parent,
            registered=reg.registered,
        )

    def _uid_of(self, key: bytes) -> Uid | None:
        """The uid a key under the root stands for."""
        rest = key[len(self.root) :] if key.startswith(self.root) else b''
        name, sep, uuid = rest.rpartition(b'/')
        if not sep or not name or not uuid:
            return None
        return unquote(name.decode()), uuid.decode()

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
        log.warning(
            'etcd: the lease had expired; registered %s again at %s',
            ', '.join(u[0] for u in self._mine),
            self.addr,
        )

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
                if not self._lease or await self.gateway.keepalive(self._lease) <= 0:
                    await self._regrant()
                if down:
                    log.warning('etcd: %s answers again', self.addr)
                    down = False
            except (EtcdUnreachable, EtcdError) as err:
                (log.debug if down else log.warning)(
                    'etcd: cannot keep the registration alive (will retry): %s', err
                )
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
    async def register(
        self, uid: Uid, addrs: list[WireAddr], meta: dict[str, Any] | None = None
    ) -> None:
        uid = check_uid(uid)
        wire = [check_wire(a) for a in addrs]
        fields = meta_fields(meta)
        self._regs[uid] = reg = Registration(
            uid=uid,
            addrs=wire,
            host=self.host,
            host_only=[i for i, a in enumerate(wire) if host_only(a)],
            pid=fields.get('pid'),
            hostname=fields.get('host'),
            parent=fields.get('parent'),
            registered=self._regs[uid].registered if uid in self._regs else time.time(),
        )
        value = _enc.encode(reg)
        self._mine[uid] = value  # kept even if etcd is away: keep_alive puts it
        await self._put_mine(uid, value)

    async def unregister(self, uid: Uid, reason: str = 'graceful') -> bool:
        uid = check_uid(uid)
        self._mine.pop(uid, None)
        reg = self._regs.pop(uid, None)
        if reg is not None and self._lease:
            # mark it first, so watchers learn why it goes (one more request)
            try:
                reg.gone = reason
                await self.gateway.put(self._key(uid), _enc.encode(reg), self._lease)
            except EtcdError as err:
                log.debug('etcd: could not mark %r as leaving: %s', uid[0], err)
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
        op: dict[str, dict[str, Any]]
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

    def _range_of(self, name: str | None, prefix: bool) -> tuple[bytes, bytes]:
        if name is None:
            key = self.root
        elif prefix:
            # percent-quoting maps characters one by one: a name's quoted
            # prefix is the quoted name's prefix
            key = self.root + quote(name, safe='').encode()
        else:
            key = self._name_key(name)
        return key, range_end(key)

    async def entries(self, name: str | None = None, prefix: bool = False) -> list[Registered]:
        check_filter(name, prefix)
        key, end = self._range_of(name, prefix)
        kvs = (await self.gateway.range(key, end)).kvs
        out = []
        for kv in sorted(kvs, key=lambda kv: kv.mod_revision, reverse=True):
            rec = self._record(kv)
            if rec is not None:
                out.append(rec)
        return out

    @asynccontextmanager
    async def subscribe(
        self, name: str | None = None, prefix: bool = False, size: int = DEFAULT_BUFFER
    ) -> AsyncIterator[tuple[list[Registered], Subscription]]:
        """The matching entries, then etcd's watch on their key range from
        just after that read (no gap, no poll). A deleted key's reason:
        ``'graceful'`` when the actor marked it on its way out, else
        ``'expired'`` (its lease ran out)."""
        check_filter(name, prefix)
        hub = Hub()
        sub = hub.subscribe(name, prefix, size)
        key, end = self._range_of(name, prefix)
        reply = await self.gateway.range(key, end)
        current = [
            rec
            for kv in sorted(reply.kvs, key=lambda kv: kv.mod_revision, reverse=True)
            if (rec := self._record(kv)) is not None
        ]
        async with trio.open_nursery() as tn:
            tn.start_soon(self._pump, key, end, reply.header.revision + 1, hub, sub)
            try:
                yield current, sub
            finally:
                tn.cancel_scope.cancel()
                sub.close()

    async def _pump(self, key: bytes, end: bytes, rev: int, hub: Hub, sub: Subscription) -> None:
        """Turn etcd's watch events into registry events for ``hub``."""
        leaving: dict[Uid, str] = {}
        send, recv = trio.open_memory_channel[tuple[str, KV]](64)
        async with trio.open_nursery() as tn:

            async def run() -> None:
                nonlocal rev
                async with send:
                    while True:
                        try:
                            rev = await self.gateway.watch(key, end, rev, send)
                        except EtcdUnreachable as err:
                            # etcd is away: the watch ends; the watcher
                            # decides (it follows again when etcd is back)
                            log.warning('etcd: the watch ended: %s', err)
                            return
                        if rev < 0:
                            log.warning('etcd: the watch fell behind a compaction; ending it')
                            return

            tn.start_soon(run)
            async for kind, kv in recv:
                uid = self._uid_of(kv.key)
                if uid is None:
                    continue
                if kind == 'DELETE':
                    reason = leaving.pop(uid, 'expired')
                    hub.emit(Unregistered(uid=uid, reason=reason))  # type: ignore[arg-type]  # the base types it str
                    continue
                try:
                    reg = _dec.decode(kv.value)
                except msgspec.DecodeError:
                    continue
                if reg.gone:
                    leaving[uid] = reg.gone
                    continue
                rec = self._record(kv)
                if rec is not None:
                    hub.emit(rec)
        sub.close()  # the store's watch ended: so does the subscription

    def stats(self) -> dict[str, Any]:
        return {
            'store': str(self.addr),
            'member': self.gateway.urls[self.gateway.current],
            'lease': self._lease,
            'ttl': self.ttl,
            'registered': len(self._mine),
            'reregistered': self.reregistered,
        }
