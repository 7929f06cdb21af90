"""Registry events and the bounded fan-out that delivers them to watchers.

A backend that can be watched (:class:`~tractor.discovery.MemoryRegistry`,
the etcd backend) hands every registration change to a :class:`Hub`; each
watcher holds a :class:`Subscription` with a buffer of its own, bounded: a
watcher that falls that far behind is dropped and told so with
:class:`WatchOverflow`, so a slow watcher never grows the registrar's memory.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import trio

from tractor import TractorError

Uid = tuple[str, str]

#: events a watcher may have queued on the registrar by default, and at most
DEFAULT_BUFFER = 256
MAX_BUFFER = 65536

#: why an entry went, where the registry knows it
Reason = Literal['graceful', 'stale', 'expired']


class WatchOverflow(TractorError):
    """This watcher fell more than its buffer behind the registry's changes
    and was dropped (events were lost): open a new watch to start afresh
    from the current entries."""


class Registered(msgspec.Struct, frozen=True, tag_field='event', tag='registered'):
    """An entry of the registry: the actor ``uid`` answers at ``addrs``.

    A watch yields one for every matching entry when it opens, and for each
    later registration (or re-registration with other addresses). The
    metadata is ``None`` for an entry registered by an older release:
    ``pid`` and ``host`` of the actor's process, its ``parent`` actor's uid
    (``None`` for a root), and ``registered``, when the registry first saw
    it (seconds since the epoch, the registry's clock).
    """

    uid: tuple[str, str]
    addrs: list[tuple[str, list]]
    pid: int | None = None
    host: str | None = None
    parent: tuple[str, str] | None = None
    registered: float | None = None

    @property
    def name(self) -> str:
        return self.uid[0]


class Unregistered(msgspec.Struct, frozen=True, tag_field='event', tag='unregistered'):
    """The entry of ``uid`` left the registry. ``reason``: ``'graceful'``
    (the actor unregistered on its way out), ``'stale'`` (its addresses stopped
    answering: killed, or lost), ``'expired'`` (an external store's lease ran
    out), or ``None`` where the backend cannot tell."""

    uid: tuple[str, str]
    reason: Reason | None = None

    @property
    def name(self) -> str:
        return self.uid[0]


Event = Registered | Unregistered


def to_wire(ev: Event) -> dict[str, Any]:
    """An event as plain msgpack-able values."""
    return msgspec.to_builtins(ev)


def from_wire(obj: Any) -> Event:
    """An event back from :func:`to_wire` form (``ValueError`` when malformed)."""
    try:
        return msgspec.convert(obj, Event)
    except msgspec.ValidationError as err:
        raise ValueError(f'not a registry event: {obj!r} ({err})') from None


def meta_fields(meta: Any) -> dict[str, Any]:
    """The known, well-typed metadata fields of a registration (others and
    malformed ones are dropped: metadata is informative, never required)."""
    if not isinstance(meta, dict):
        return {}
    out: dict[str, Any] = {}
    pid = meta.get('pid')
    if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
        out['pid'] = pid
    host = meta.get('host')
    if isinstance(host, str) and 0 < len(host) <= 255:
        out['host'] = host
    parent = meta.get('parent')
    if (
        isinstance(parent, (list, tuple))
        and len(parent) == 2
        and all(isinstance(p, str) and p for p in parent)
    ):
        out['parent'] = (parent[0], parent[1])
    return out


def check_filter(name: str | None, prefix: bool) -> None:
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f'watch() takes a non-empty actor name or None, got {name!r}')
    if prefix and name is None:
        raise ValueError('watch(prefix=True) needs a name prefix to match')


def matches(name: str | None, prefix: bool, uid_name: str) -> bool:
    if name is None:
        return True
    return uid_name.startswith(name) if prefix else uid_name == name


class Subscription:
    """One watcher's bounded queue of events (see :class:`Hub`)."""

    def __init__(self, hub: Hub, name: str | None, prefix: bool, size: int) -> None:
        self.hub = hub
        self.name = name
        self.prefix = prefix
        self.size = size
        self._send, self.events = trio.open_memory_channel[Event](size)
        #: set when the watcher fell behind and was dropped
        self.overflowed = False

    def offer(self, ev: Event) -> None:
        if not matches(self.name, self.prefix, ev.uid[0]):
            return
        try:
            self._send.send_nowait(ev)
        except trio.WouldBlock:
            # never wait for a slow watcher and never queue more for it:
            # drop it; its reader gets WatchOverflow after what is queued
            self.overflowed = True
            self.close()
        except trio.ClosedResourceError:
            self.close()

    def close(self) -> None:
        self.hub._subs.discard(self)
        self._send.close()

    def check(self) -> None:
        """Raise :class:`WatchOverflow` if this watcher was dropped."""
        if self.overflowed:
            raise WatchOverflow(
                f'the watcher fell more than {self.size} events behind the registry '
                'and was dropped; open a new watch to start afresh'
            )


class Hub:
    """Fans registry events out to subscriptions, never blocking the
    registry: each subscription is bounded (:class:`Subscription`)."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, name: str | None, prefix: bool, size: int = DEFAULT_BUFFER) -> Subscription:
        check_filter(name, prefix)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_BUFFER:
            raise ValueError(f'a watch buffer holds 1..{MAX_BUFFER} events, got {size!r}')
        sub = Subscription(self, name, prefix, size)
        self._subs.add(sub)
        return sub

    def emit(self, ev: Event) -> None:
        for sub in list(self._subs):
            sub.offer(ev)
