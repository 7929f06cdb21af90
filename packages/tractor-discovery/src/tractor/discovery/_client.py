"""Talking to registrars: probing, cached channels, stale-entry cleanup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from tractor import (
    MsgTypeError,
    NoTransportInstalled,
    RemoteActorError,
    TractorError,
    TransportClosed,
)
from tractor.log import get_logger
from tractor.plugin import (
    REMOTE,
    Channel,
    StoreAddress,
    dial,
    installed_transports,
    request,
    wrap_address,
)

from ._registrar import PARENT_REGISTERS, Registrar, local_registrar

if TYPE_CHECKING:
    from tractor import Actor
    from tractor.plugin import Address

log = get_logger('discovery')

#: bound on dialing a registrar or a registered peer
CONNECT_TIMEOUT = 3.0
#: bound on each step of the boot-time "is a registrar there?" probe
PROBE_TIMEOUT = 5.0
CLIENT_KEY = 'discovery.client'


class RegistrarUnreachable(TractorError, ConnectionError):
    """No registrar answers at the addresses a lookup was told to use."""


class RegistrarClient:
    """One cached channel per registrar address, dialed on first use."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self._chans: dict[Address, Channel] = {}
        self._locks: dict[Address, trio.Lock] = {}
        self._stores: dict[StoreAddress, Registrar] = {}

    def store(self, addr: StoreAddress) -> Registrar:
        """The registrar's methods over the external store at ``addr``, run
        in this actor (no registrar actor, no socket): its backend is the
        store plugin's (:meth:`StoreAddress.open_backend`), made once."""
        reg = self._stores.get(addr)
        if reg is None:
            reg = self._stores[addr] = Registrar(self.actor, backend=addr.open_backend(self.actor))
        return reg

    def keep(self, addr: Address, chan: Channel) -> bool:
        """Make ``chan`` (dialed to the registrar at ``addr`` by a probe, not
        served yet) this actor's channel to it; ``False`` (and nothing
        changed) when it has one already."""
        if addr in self._chans:
            return False
        self._chans[addr] = chan
        self.actor.adopt(chan)
        return True

    async def channel(self, addr: Address) -> Channel:
        parent = self.actor.parent_channel
        if (
            parent is not None
            and addr in self.actor.extensions.get(PARENT_REGISTERS, ())
            and parent.connected()
        ):
            return parent  # the parent is this registrar (see PARENT_REGISTERS)
        lock = self._locks.setdefault(addr, trio.Lock())
        async with lock:
            chan = self._chans.get(addr)
            if chan is not None and chan.connected():
                return chan
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    chan = await self.actor.connect(addr)
            except (OSError, trio.TooSlowError, TransportClosed, MsgTypeError) as err:
                raise RegistrarUnreachable(f'no registrar answers at {addr} ({why(err)})') from err
            self._chans[addr] = chan
            return chan

    async def call(self, reg: Address, method: str, /, **kwargs: Any) -> Any:
        """Run registrar method ``method(**kwargs)`` at ``reg`` (in-process
        when this actor is that registrar). Positional-only parameters: the
        RPC's own keywords (``addr=``, ``uid=``...) pass through untouched."""
        if isinstance(reg, StoreAddress):
            return await getattr(self.store(reg), method)(**kwargs)
        local = local_registrar(self.actor)
        if local is not None and reg in self.actor.listen_addrs:
            return await getattr(local, method)(**kwargs)
        chan = await self.channel(reg)
        try:
            return await self.actor.call(chan, 'self', method, kwargs)
        except TransportClosed as err:
            raise RegistrarUnreachable(f'lost the registrar at {reg}: {err}') from err


def why(err: BaseException) -> str:
    """``Type: message`` of ``err``, or of the OS error under it (trio's
    "all attempts to connect failed" wraps the refusal that says why)."""
    cause = err.__cause__
    if isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
        cause = cause.exceptions[0]
    if isinstance(err, OSError) and isinstance(cause, OSError):
        err = cause
    if isinstance(err, trio.TooSlowError):
        return f'no answer within {CONNECT_TIMEOUT}s'
    return f'{type(err).__name__}: {err}'


def client(actor: Actor) -> RegistrarClient:
    cli = actor.extensions.get(CLIENT_KEY)
    if cli is None:
        cli = actor.extensions[CLIENT_KEY] = RegistrarClient(actor)
    return cli


async def probe(actor: Actor, addr: Address) -> bool:
    """Whether a registrar serves ``addr``: ``False`` when nothing listens
    there, ``RuntimeError`` when something that is not a registrar does
    (a plain server, a silent one, a tractor actor that is no registrar).
    Every step is bounded by :data:`PROBE_TIMEOUT`: never a hang. A
    registrar's connection is kept as ``actor``'s channel to it (see
    ``Actor.adopt``): registering and the lookups that follow need no
    connection and handshake of their own."""
    timeout = PROBE_TIMEOUT
    chan: Channel | None = None
    try:
        try:
            chan = await dial(addr, actor.aid, timeout=timeout, connect_timeout=timeout)
        except OSError:  # nothing listens there (or not within the bound)
            return False
        try:
            with trio.fail_after(timeout):
                await request(chan, 'self', 'registrar_info')
        except RemoteActorError as err:
            raise RuntimeError(
                f'registry address {addr} is served by tractor actor '
                f'{err.src_uid[0] if err.src_uid else "?"!r}, which is not a registrar'
            ) from None
        if client(actor).keep(addr, chan):
            chan = None  # the actor's now
        return True
    except (MsgTypeError, TransportClosed, trio.TooSlowError) as err:
        if isinstance(err, trio.TooSlowError):
            what = (
                f'tractor actor {chan.aid.name!r} did not answer a registry '
                f'request within {timeout}s'
                if chan is not None and chan.aid is not None
                else f'it did not answer the tractor handshake within {timeout}s'
            )
        elif isinstance(err, MsgTypeError):
            what = f'it speaks something other than the tractor protocol ({err})'
        else:
            what = f'it closed the connection without answering ({err})'
        raise RuntimeError(
            f'registry address {addr} is in use by something that is not a '
            f'tractor registrar: {what}'
        ) from None
    finally:
        if chan is not None:
            await chan.aclose()


def rank_addrs(actor: Actor, wire_addrs: list, usable_only: bool = True) -> list[Address]:
    """An entry's addresses best first: by locality (UDS, local TCP, remote
    TCP), among remote ones encrypted first (a transport whose
    ``encrypted`` is true, e.g. TLS: plain remote TCP only when no
    encrypted address is served), then the most recently registered (later
    in the list) first.

    Every installed transport can dial, whatever this actor *serves*
    (``enable_transports``): only addresses of transports missing here are
    unusable; they are dropped, unless ``usable_only=False`` (then they
    come last, in the same order).
    """
    usable = set(installed_transports())
    ranked = []
    for idx, wire in enumerate(wire_addrs):
        try:
            addr = wrap_address(wire)
        except (ValueError, TypeError, LookupError, NoTransportInstalled):
            continue  # malformed, or a transport this host does not have
        ok = addr.proto_key in usable
        if not ok and usable_only:
            continue
        tpt = addr.transport
        rank = tpt.locality(addr)
        plain = rank == REMOTE and not getattr(tpt, 'encrypted', False)
        ranked.append((not ok, rank, plain, -idx, addr))
    ranked.sort(key=lambda t: t[:4])
    return [t[4] for t in ranked]


async def dial_entry(
    actor: Actor, reg: Address | None, uid: tuple, wire_addrs: list
) -> tuple[Channel, bool] | None:
    """Connect to a registered actor, best address first.

    Returns ``(channel, owned)``: ``owned`` is False when an existing
    connection was reused (the caller must not close it). Addresses that
    refuse connections, or now belong to another actor, are deleted from
    the registrar at ``reg``; ``None`` when no address works.
    """
    uid = tuple(uid)
    chans = actor.get_peer_channels(uid=uid)  # newest first
    if chans:
        return chans[-1], False  # the oldest: usually the spawn channel
    for addr in rank_addrs(actor, wire_addrs):
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                chan = await actor.connect(addr)
        except trio.TooSlowError:
            log.warning('timed out dialing %r at %s', uid[0], addr)
            continue
        except (OSError, TransportClosed, MsgTypeError) as err:
            log.info('stale registry entry %r at %s (%s): deleting it', uid[0], addr, err)
            await _delete(actor, reg, uid, addr)
            continue
        if chan.uid != uid:
            log.info('%s now serves %r, not %r: deleting the stale entry', addr, chan.uid, uid)
            await chan.aclose()
            await _delete(actor, reg, uid, addr)
            continue
        return chan, True
    return None


async def _delete(actor: Actor, reg: Address | None, uid: tuple, addr: Address) -> None:
    if reg is None:
        return
    try:
        await client(actor).call(reg, 'delete_addr', uid=list(uid), addr=addr.to_wire())
    except (RegistrarUnreachable, RemoteActorError) as err:
        log.debug('could not delete stale %s: %s', addr, err)
