"""Watching the registry: ``tractor.discovery.watch()``.

The registrar serves ``watch_registry``, a streaming context: it sends the
matching entries, then every change as the backend emits it (no polling),
through a bounded per-watcher queue (:mod:`._events`). With a registry
store (etcd) the watch runs in this process, on the store's own watch.
Several registry addresses are followed at once, their events merged and
duplicates dropped; a registry that goes away is followed again once it is
back, and until then the others answer (a log line, no error).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from tractor import (
    ContextCancelled,
    MsgTypeError,
    Portal,
    RemoteActorError,
    TransportClosed,
    context,
    current_actor,
)
from tractor.log import get_logger
from tractor.plugin import StoreAddress
from tractor.trionics import collapse_eg

from ._client import RegistrarUnreachable, client
from ._events import (
    DEFAULT_BUFFER,
    MAX_BUFFER,
    Event,
    Registered,
    Unregistered,
    WatchOverflow,
    check_filter,
    from_wire,
    to_wire,
)
from ._registrar import local_registrar

if TYPE_CHECKING:
    from tractor.plugin import Address

    from ._registrar import Registrar

log = get_logger('discovery')

#: re-subscribe backoff after losing a registry: first delay, and its cap
RETRY_MIN = 0.1
RETRY_MAX = 2.0


def watch_endpoint(registrar: Registrar) -> Callable[..., Awaitable[None]]:
    """The registrar's ``watch_registry`` context function over its backend."""

    @context
    async def watch_registry(
        ctx: Any, name: str | None = None, prefix: bool = False, buffer: int = DEFAULT_BUFFER
    ) -> None:
        registrar.served['watch'] += 1
        async with registrar.backend.subscribe(name, prefix, buffer) as (current, sub):
            await ctx.started(len(current))
            async with ctx.open_stream() as stream:
                for rec in current:
                    await stream.send(to_wire(rec))
                async for ev in sub.events:
                    await stream.send(to_wire(ev))
                sub.check()  # dropped for falling behind: WatchOverflow
                raise RuntimeError('the registry ended the watch')

    return watch_registry


#: ``emit(source_key, item)``: an event, or a marker (:class:`_Synced`, :class:`_Lost`)
Emit = Callable[[Any, Any], Awaitable[None]]


class _Reset:
    """A source (re)subscribed: its snapshot follows, then :class:`_Synced`."""


class _Synced:
    """A source's snapshot is complete."""


class _Lost:
    """A source was lost (it is followed again once it is back)."""


async def _follow_local(backend: Any, key: Any, kw: dict, emit: Emit, up: Callable) -> None:
    async with backend.subscribe(kw['name'], kw['prefix'], kw['buffer']) as (current, sub):
        up()
        await emit(key, _Reset())
        for rec in current:
            await emit(key, rec)
        await emit(key, _Synced())
        async for ev in sub.events:
            await emit(key, ev)
        sub.check()
    raise RegistrarUnreachable(f'the registry at {key} ended the watch')


async def _follow_remote(actor: Any, reg: Address, kw: dict, emit: Emit, up: Callable) -> None:
    chan = await client(actor).channel(reg)
    try:
        async with Portal(chan).open_context_from_ns('self', 'watch_registry', **kw) as (
            ctx,
            count,
        ):
            async with ctx.open_stream() as stream:
                up()
                await emit(reg, _Reset())
                if not count:
                    await emit(reg, _Synced())
                seen = 0
                async for raw in stream:
                    await emit(reg, from_wire(raw))
                    seen += 1
                    if seen == count:  # the registrar sends its snapshot first
                        await emit(reg, _Synced())
    except RemoteActorError as err:
        if err.type_name == 'WatchOverflow':
            raise WatchOverflow(err.msg) from None
        if err.type_name == 'ModuleNotExposed':
            raise RuntimeError(
                f'the registrar at {reg} cannot be watched (an older release): {err.msg}'
            ) from None
        raise
    raise RegistrarUnreachable(f'the registrar at {reg} ended the watch')


class Watch:
    """What ``watch()`` yields: ``async for event in w`` gives
    :class:`Registered` and :class:`Unregistered` events, the current
    entries first. Raises :class:`WatchOverflow` when this reader fell too
    far behind, :class:`RegistrarUnreachable` when no registry answers.

    Merging: an entry is told once, when the first registry has it (again
    only if its addresses change), and told gone when no registry that is
    answering has it any more. A registry that comes back is re-read: an
    entry it had before but not any more, that no other registry has, is
    told gone then (``reason=None``: it went while nobody was looking)."""

    def __init__(self, recv: trio.MemoryReceiveChannel) -> None:
        self._recv = recv
        #: uid -> addresses, as told so far (to drop duplicates)
        self.known: dict[tuple[str, str], list] = {}
        #: source -> the uids it has; and the sources answering now
        self._has: dict[Any, set] = {}
        self._live: set[Any] = set()
        #: a re-read source's uids from before it was lost
        self._before: dict[Any, set] = {}
        self._out: deque[Event] = deque()

    def __aiter__(self) -> Watch:
        return self

    def _elsewhere(self, uid: Any) -> bool:
        return any(uid in self._has.get(k, ()) for k in self._live)

    def _take(self, key: Any, item: Any) -> None:
        if isinstance(item, _Reset):
            self._before[key] = self._has.get(key, set())
            self._has[key] = set()
            self._live.add(key)
        elif isinstance(item, _Synced):
            for uid in self._before.pop(key, set()) - self._has[key]:
                if uid in self.known and not self._elsewhere(uid):
                    del self.known[uid]
                    self._out.append(Unregistered(uid=uid, reason=None))
        elif isinstance(item, _Lost):
            self._live.discard(key)
        elif isinstance(item, Registered):
            self._has.setdefault(key, set()).add(item.uid)
            if self.known.get(item.uid) != item.addrs:
                self.known[item.uid] = item.addrs
                self._out.append(item)
        elif isinstance(item, Unregistered):
            self._has.setdefault(key, set()).discard(item.uid)
            if item.uid in self.known and not self._elsewhere(item.uid):
                del self.known[item.uid]
                self._out.append(item)

    async def __anext__(self) -> Event:
        while not self._out:
            try:
                item = await self._recv.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            if isinstance(item, BaseException):
                raise item
            self._take(*item)
        return self._out.popleft()


@asynccontextmanager
async def watch(
    name: str | None = None,
    *,
    prefix: bool = False,
    registry_addrs: list[Any] | None = None,
    buffer: int = DEFAULT_BUFFER,
) -> AsyncIterator[Watch]:
    """Watch the registry: ``async with watch('worker', prefix=True) as w:
    async for ev in w: ...``.

    Yields every matching entry as :class:`Registered` first, then each
    registration and unregistration as it happens, pushed by the registrar
    (or by the store's watch, for etcd). ``name=None`` watches every entry;
    ``prefix=True`` every name starting with ``name``. ``registry_addrs``:
    default this tree's. ``buffer`` bounds the events queued for this
    watcher on the registrar: a reader that falls that far behind gets
    :class:`WatchOverflow`. Leaving the block ends the subscription on the
    registrar too.

    With several registries the events are merged, each told once. Losing
    one is logged and it is followed again when it is back; the others
    answer meanwhile. :class:`RegistrarUnreachable` when none answers (on
    entry, or later when every one of them is lost).
    """
    check_filter(name, prefix)
    if not isinstance(buffer, int) or isinstance(buffer, bool) or not 1 <= buffer <= MAX_BUFFER:
        raise ValueError(f'a watch buffer holds 1..{MAX_BUFFER} events, got {buffer!r}')
    from ._api import _registry_targets

    actor = current_actor()
    targets = _registry_targets(actor, registry_addrs)
    kw = {'name': name, 'prefix': bool(prefix), 'buffer': buffer}
    # unbuffered: a slow reader holds the followers back, so events queue
    # on the registrar, where each watcher's queue is bounded
    send, recv = trio.open_memory_channel[Any](0)
    live: set[Any] = set()
    first_round = trio.Event()
    tried: set[Any] = set()
    errors: dict[Any, str] = {}

    def settle(key: Any) -> None:
        tried.add(key)
        if len(tried) == len(targets):
            first_round.set()

    async def emit(key: Any, item: Any) -> None:
        await send.send((key, item))

    async def follow(target: Any) -> None:
        key = target if target is not None else 'self'
        delay = RETRY_MIN
        lost_before = False

        def up() -> None:
            nonlocal delay, lost_before
            live.add(key)
            if lost_before:
                log.warning('watch: following the registry at %s again', key)
            delay = RETRY_MIN
            settle(key)

        while True:
            try:
                if target is None:
                    reg = local_registrar(actor)
                    assert reg is not None
                    await _follow_local(reg.backend, key, kw, emit, up)
                elif isinstance(target, StoreAddress):
                    await _follow_local(client(actor).store(target).backend, key, kw, emit, up)
                else:
                    await _follow_remote(actor, target, kw, emit, up)
            except WatchOverflow as err:
                await send.send(err)
                return
            except (
                RegistrarUnreachable,
                TransportClosed,
                ContextCancelled,
                MsgTypeError,
                trio.BrokenResourceError,
                RemoteActorError,
                RuntimeError,
            ) as err:
                errors[key] = str(err)
                was_live = key in live
                live.discard(key)
                if was_live:
                    await send.send((key, _Lost()))
                settle(key)
                if not live and first_round.is_set():
                    await send.send(
                        RegistrarUnreachable(
                            'watch: no registry answers any more: ' + '; '.join(errors.values())
                        )
                    )
                    return
                if was_live:
                    log.warning(
                        'watch: lost the registry at %s (%s); the others answer until it is back',
                        key,
                        err,
                    )
                lost_before = True
            await trio.sleep(delay)  # a backoff between re-dials, not a poll
            delay = min(delay * 2, RETRY_MAX)

    async with collapse_eg(), trio.open_nursery() as tn:
        for target in targets:
            tn.start_soon(follow, target)
        await first_round.wait()
        opened = bool(live)
        if opened:
            try:
                yield Watch(recv)
            finally:
                tn.cancel_scope.cancel()
        tn.cancel_scope.cancel()
    if not opened:
        raise RegistrarUnreachable('cannot watch the registry: ' + '; '.join(errors.values()))
