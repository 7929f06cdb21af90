"""A thin, typed client of etcd's v3 JSON gateway (``/v3/...`` over HTTP).

Requests are JSON documents whose byte fields (keys, values) are base64;
msgspec encodes ``bytes`` that way and decodes the replies into the structs
below (``strict=False``: the gateway writes 64-bit integers as strings).

The client holds every endpoint of one etcd cluster and fails over: a
request that cannot reach a member (refused, timed out, the member has no
leader) is retried on the next one, and that member stays the current one.
Only when no member answers does a request raise :class:`EtcdUnreachable`.
"""

from __future__ import annotations

import ssl
from typing import Any, TypeVar

import httpx
import msgspec
import trio

from tractor.discovery import RegistrarUnreachable
from tractor.log import get_logger

log = get_logger('etcd')

#: bound on one request to one member (connect and answer)
REQUEST_TIMEOUT = 2.0
#: a watch is re-established this often even when nothing happens, so a
#: watch on a member that lost its cluster (a partition) cannot go stale
WATCH_REFRESH = 30.0
# gRPC status codes that mean "this member cannot serve now, try another"
_UNAVAILABLE, _DEADLINE, _UNAUTHENTICATED = 14, 4, 16


class EtcdUnreachable(RegistrarUnreachable):
    """No member of the etcd cluster answered (all down, or cut off)."""


class EtcdError(RuntimeError):
    """etcd answered with an error (``code`` is the gRPC status code)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


# -- replies -----------------------------------------------------------------
class Header(msgspec.Struct):
    revision: int = 0


class KV(msgspec.Struct):
    key: bytes
    value: bytes = b''
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0


class RangeReply(msgspec.Struct):
    header: Header
    kvs: list[KV] = []
    count: int = 0


class PutReply(msgspec.Struct):
    header: Header


class DeleteReply(msgspec.Struct):
    header: Header
    deleted: int = 0


class TxnReply(msgspec.Struct):
    header: Header
    succeeded: bool = False


class LeaseGrantReply(msgspec.Struct):
    ID: int = 0
    TTL: int = 0
    error: str = ''


class LeaseKeepAlive(msgspec.Struct):
    ID: int = 0
    #: 0 when the lease is gone (expired or revoked)
    TTL: int = 0


class KeepAliveReply(msgspec.Struct):
    result: LeaseKeepAlive | None = None


class AuthReply(msgspec.Struct):
    token: str = ''


class ErrorReply(msgspec.Struct):
    error: str = ''
    message: str = ''
    code: int = 0


class WatchEvent(msgspec.Struct):
    kv: KV
    type: str = 'PUT'


class WatchResponse(msgspec.Struct):
    header: Header | None = None
    created: bool = False
    canceled: bool = False
    cancel_reason: str = ''
    compact_revision: int = 0
    events: list[WatchEvent] = []


class WatchChunk(msgspec.Struct):
    result: WatchResponse | None = None
    error: ErrorReply | None = None


R = TypeVar('R')
_decoders: dict[type, msgspec.json.Decoder] = {}
_encoder = msgspec.json.Encoder()


def _decode(data: bytes, type_: type[R]) -> R:
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_, strict=False)
    return dec.decode(data)


def range_end(prefix: bytes) -> bytes:
    """The end of the key range holding every key that starts with ``prefix``."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b'\0'  # every key


class _Failover(Exception):
    """This member cannot serve: try the next one."""


class Gateway:
    """Requests to one etcd cluster through its JSON gateway, with failover.

    ``endpoints`` are ``(host, port)`` pairs of the cluster's members;
    ``tls`` an :class:`ssl.SSLContext` (``https``) or ``None`` (``http``);
    ``user``/``password`` etcd's own authentication (a token is fetched
    from the member in use, again after a failover).
    """

    def __init__(
        self,
        endpoints: list[tuple[str, int]],
        *,
        tls: ssl.SSLContext | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        scheme = 'https' if tls is not None else 'http'
        self.urls = [
            f'{scheme}://[{h}]:{p}' if ':' in h else f'{scheme}://{h}:{p}' for h, p in endpoints
        ]
        self.current = 0
        self.timeout = timeout
        self._user = user
        self._password = password
        self._token: str | None = None
        self._http = httpx.AsyncClient(
            verify=tls if tls is not None else True,
            timeout=httpx.Timeout(timeout),
            # one connection per member is plenty: requests are small
            limits=httpx.Limits(max_keepalive_connections=len(endpoints) + 4),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        return {'Authorization': self._token} if self._token else {}

    async def _authenticate(self, url: str) -> None:
        resp = await self._http.post(
            url + '/v3/auth/authenticate',
            content=_encoder.encode({'name': self._user, 'password': self._password or ''}),
        )
        if resp.status_code != 200:
            err = _decode(resp.content, ErrorReply)
            raise EtcdError(
                f'etcd refused the user {self._user!r}: {err.message or err.error}', err.code
            )
        self._token = _decode(resp.content, AuthReply).token

    async def _post_one(self, url: str, path: str, body: bytes) -> bytes:
        for attempt in range(2):
            if self._user and self._token is None:
                await self._authenticate(url)
            try:
                resp = await self._http.post(url + path, content=body, headers=self._headers())
            except httpx.TransportError as err:
                raise _Failover(f'{url}: {type(err).__name__}: {err}') from err
            if resp.status_code == 200:
                return resp.content
            try:
                refusal = _decode(resp.content, ErrorReply)
            except msgspec.DecodeError:
                raise _Failover(f'{url}: HTTP {resp.status_code}') from None
            text = refusal.message or refusal.error
            unauthenticated = refusal.code == _UNAUTHENTICATED or 'invalid auth token' in text
            if unauthenticated and self._user and attempt == 0:
                self._token = None  # tokens are per member: fetch a fresh one
                continue
            if refusal.code in (_UNAVAILABLE, _DEADLINE) or resp.status_code == 503:
                raise _Failover(f'{url}: {text}')
            raise EtcdError(f'etcd: {text}', refusal.code)
        raise AssertionError('unreachable')

    async def post(self, path: str, body: dict[str, Any], reply: type[R]) -> R:
        """POST ``body`` to ``path`` on the current member (the next ones if it
        cannot serve) and decode the reply as ``reply``."""
        data = _encoder.encode(body)
        errors = []
        n = len(self.urls)
        for i in range(n):
            idx = (self.current + i) % n
            try:
                # one bound on the whole exchange (httpx's bounds are per phase)
                with trio.fail_after(self.timeout):
                    out = await self._post_one(self.urls[idx], path, data)
            except (_Failover, trio.TooSlowError) as err:
                errors.append(
                    str(err)
                    if isinstance(err, _Failover)
                    else (f'{self.urls[idx]}: no answer within {self.timeout}s')
                )
                self._token = None
                continue
            if idx != self.current:
                log.info('etcd: failed over to %s', self.urls[idx])
                self.current = idx
            return _decode(out, reply)
        raise EtcdUnreachable(f'no etcd member answers ({"; ".join(errors)})')

    # -- the operations the registry uses -------------------------------------
    async def range(self, key: bytes, end: bytes | None = None, limit: int = 0) -> RangeReply:
        body: dict[str, Any] = {'key': key}
        if end is not None:
            body['range_end'] = end
        if limit:
            body['limit'] = limit
        return await self.post('/v3/kv/range', body, RangeReply)

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> PutReply:
        body: dict[str, Any] = {'key': key, 'value': value}
        if lease:
            body['lease'] = lease
        return await self.post('/v3/kv/put', body, PutReply)

    async def delete(self, key: bytes) -> DeleteReply:
        return await self.post('/v3/kv/deleterange', {'key': key}, DeleteReply)

    async def txn(self, compare: list[dict], success: list[dict]) -> TxnReply:
        return await self.post('/v3/kv/txn', {'compare': compare, 'success': success}, TxnReply)

    async def grant(self, ttl: int) -> LeaseGrantReply:
        reply = await self.post('/v3/lease/grant', {'TTL': ttl}, LeaseGrantReply)
        if reply.error or not reply.ID:
            raise EtcdError(f'etcd did not grant a lease: {reply.error or "no lease id"}')
        return reply

    async def keepalive(self, lease: int) -> int:
        """Refresh ``lease``; its remaining TTL, 0 when it no longer exists."""
        reply = await self.post('/v3/lease/keepalive', {'ID': lease}, KeepAliveReply)
        return reply.result.TTL if reply.result is not None else 0

    async def revoke(self, lease: int) -> None:
        try:
            await self.post('/v3/lease/revoke', {'ID': lease}, ErrorReply)
        except EtcdError as err:
            log.debug('etcd: revoking lease %x: %s', lease, err)

    async def next_put(self, key: bytes, end: bytes, start_revision: int) -> KV | None:
        """Block until a key under ``[key, end)`` is put (at ``start_revision``
        or later) and return it; ``None`` when the watch ended without one
        (see :meth:`watch`): the caller reads afresh and watches again."""
        send, recv = trio.open_memory_channel[tuple[str, KV]](1)
        async with trio.open_nursery() as tn:

            async def run() -> None:
                async with send:
                    await self.watch(key, end, start_revision, send, deletes=False)

            tn.start_soon(run)
            async for _kind, kv in recv:
                tn.cancel_scope.cancel()
                return kv
        return None

    async def watch(
        self,
        key: bytes,
        end: bytes,
        start_revision: int,
        send: trio.MemorySendChannel,
        *,
        deletes: bool = True,
    ) -> int:
        """Send ``('PUT' | 'DELETE', kv)`` into ``send`` for every change
        under ``[key, end)`` from ``start_revision`` on, until the watch ends:
        after :data:`WATCH_REFRESH` seconds without news, or when the member
        ends it (compaction, a lost leader). Returns the revision to watch
        from next (``-1``: compacted past it, read afresh). One watch stream
        on the current member, failing over like a request when it cannot
        be opened; :class:`EtcdUnreachable` when no member can."""
        request: dict[str, Any] = {'key': key, 'range_end': end, 'start_revision': start_revision}
        if not deletes:
            request['filters'] = ['NODELETE']
        body = _encoder.encode({'create_request': request})
        errors = []
        n = len(self.urls)
        next_rev = start_revision
        for i in range(n):
            idx = (self.current + i) % n
            url = self.urls[idx]
            try:
                if self._user and self._token is None:
                    await self._authenticate(url)
                timeout = httpx.Timeout(self.timeout, read=WATCH_REFRESH)
                async with self._http.stream(
                    'POST',
                    url + '/v3/watch',
                    content=body,
                    headers=self._headers(),
                    timeout=timeout,
                ) as resp:
                    if resp.status_code != 200:
                        raise _Failover(f'{url}: HTTP {resp.status_code} on /v3/watch')
                    self.current = idx
                    async for line in resp.aiter_lines():
                        if not line.strip():
                            continue
                        chunk = _decode(line.encode(), WatchChunk)
                        if chunk.error is not None:
                            raise _Failover(f'{url}: watch: {chunk.error.message}')
                        res = chunk.result
                        if res is None:
                            continue
                        if res.canceled:
                            # compacted past our revision, or the member lost
                            # its leader: the caller reads afresh
                            return -1 if res.compact_revision else next_rev
                        for ev in res.events:
                            next_rev = max(next_rev, ev.kv.mod_revision + 1)
                            await send.send((ev.type, ev.kv))
                return next_rev
            except httpx.ReadTimeout:
                return next_rev  # a quiet watch: watch again
            except (httpx.TransportError, _Failover) as err:
                if next_rev != start_revision:
                    return next_rev  # it served a while: let the caller resume
                errors.append(f'{url}: {err}')
                self._token = None
                continue
        raise EtcdUnreachable(f'no etcd member answers a watch ({"; ".join(errors)})')
