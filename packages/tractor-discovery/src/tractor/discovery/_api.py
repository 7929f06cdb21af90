"""The lookup APIs: async context managers delivering portals by name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Literal, overload

import trio

from tractor import Portal, TransportClosed, current_actor
from tractor.log import get_logger
from tractor.plugin import Address, StoreAddress, check_actor_name, is_one_address, wrap_address

from ._client import RegistrarUnreachable, client, dial_entry, rank_addrs
from ._local import LocalPortal, StorePortal
from ._registrar import local_registrar

log = get_logger('discovery')


def _addr_list(addrs: Any) -> list[Address] | None:
    """Accept one address or a list of them (tuples, multiaddrs, objects)."""
    if addrs is None:
        return None
    if is_one_address(addrs):
        # one address; as a list too, the form a tuple takes through RPC
        return [wrap_address(addrs)]
    out = [wrap_address(a) for a in addrs]
    if not out:
        raise ValueError('an empty list of registry addresses')
    return out


def _registries(actor, registry_addrs: Any) -> list[Address]:
    regs = _addr_list(registry_addrs) or actor.registry_addrs
    if not regs:
        raise RuntimeError(f'{actor.name!r} knows no registry address')
    return regs


def _peer_portal(actor, name: str) -> Portal | None:
    """Fast path: a live channel to an actor named ``name``, no registrar hop."""
    chans = actor.get_peer_channels(name)
    return Portal(chans[0]) if chans else None


@overload
def find_actor(
    name: str,
    registry_addrs: list[Any] | None = None,
    only_first: Literal[True] = True,
    raise_on_none: bool = False,
) -> AbstractAsyncContextManager[Portal | None]: ...
@overload
def find_actor(
    name: str,
    registry_addrs: list[Any] | None = None,
    *,
    only_first: Literal[False],
    raise_on_none: bool = False,
) -> AbstractAsyncContextManager[list[Portal] | None]: ...
@overload
def find_actor(
    name: str,
    registry_addrs: list[Any] | None = None,
    only_first: bool = True,
    raise_on_none: bool = False,
) -> AbstractAsyncContextManager[Portal | list[Portal] | None]: ...
def find_actor(
    name: str,
    registry_addrs: list[Any] | None = None,
    only_first: bool = True,
    raise_on_none: bool = False,
) -> AbstractAsyncContextManager[Portal | list[Portal] | None]:
    """Deliver a portal to the (newest) actor registered as ``name``.

    Yields ``None`` when nobody is registered under that name (or raises
    ``RuntimeError`` with ``raise_on_none=True``). ``only_first=False``
    yields a list of portals to every match across the queried registrars
    (each actor once, however many registrars know it), or ``None`` when
    there is none.
    Portals dialed here are closed when the block exits.
    """
    return _find_actor(name, registry_addrs, only_first, raise_on_none)


@asynccontextmanager
async def _find_actor(
    name: str, registry_addrs: list[Any] | None, only_first: bool, raise_on_none: bool
) -> AsyncIterator[Portal | list[Portal] | None]:
    check_actor_name(name)
    actor = current_actor()
    if only_first:
        fast = _peer_portal(actor, name)
        if fast is not None:
            yield fast
            return
    regs = _registries(actor, registry_addrs)
    cli = client(actor)
    portals: list[Portal] = []
    seen: set[tuple] = set()
    reachable = 0
    errors: list[str] = []
    async with AsyncExitStack() as stack:
        for reg in regs:
            try:
                entries = await cli.call(reg, 'find_actors', name=name)
            except RegistrarUnreachable as err:
                log.warning('skipping registrar %s: %s', reg, err)
                errors.append(str(err))
                continue
            reachable += 1
            for uid, addrs in entries:
                uid = tuple(uid)
                if uid in seen:
                    continue
                dialed = await dial_entry(actor, reg, uid, addrs)
                if dialed is None:
                    continue
                chan, owned = dialed
                seen.add(uid)
                if owned:
                    stack.push_async_callback(chan.aclose)
                portals.append(Portal(chan))
                if only_first:
                    break
            if only_first and portals:
                break
        if not reachable:
            raise RegistrarUnreachable(f'cannot look up {name!r}: {"; ".join(errors)}')
        if not portals and raise_on_none:
            raise RuntimeError(
                f'no actor named {name!r} is registered at {", ".join(map(str, regs))}'
            )
        if only_first:
            yield portals[0] if portals else None
        else:
            yield portals or None


@asynccontextmanager
async def wait_for_actor(
    name: str, registry_addr: Any = None, registry_addrs: list[Any] | None = None
) -> AsyncIterator[Portal]:
    """Block until an actor registers as ``name``, then deliver a portal to it.

    The registrar notifies the waiter when the name registers (no polling).
    """
    check_actor_name(name)
    actor = current_actor()
    fast = _peer_portal(actor, name)
    if fast is not None:
        yield fast
        return
    regs = _addr_list(registry_addrs) or _addr_list(registry_addr) or _registries(actor, None)
    cli = client(actor)
    while True:
        found: list[tuple[Address, list]] = []
        async with trio.open_nursery() as tn:

            async def wait_one(reg: Address) -> None:
                try:
                    entry = await cli.call(reg, 'wait_for_actor', name=name)
                except RegistrarUnreachable as err:
                    log.warning('skipping registrar %s: %s', reg, err)
                    return
                # (each task ends inside this iteration's nursery)
                found.append((reg, entry))  # noqa: B023
                tn.cancel_scope.cancel()

            for reg in regs:
                tn.start_soon(wait_one, reg)
        if not found:
            raise RegistrarUnreachable(
                f'cannot wait for {name!r}: no registrar answers at {", ".join(map(str, regs))}'
            )
        reg, (uid, addrs) = found[0]
        dialed = await dial_entry(actor, reg, uid, addrs)
        if dialed is None:
            continue  # that entry was stale and is gone now: wait again
        chan, owned = dialed
        try:
            yield Portal(chan)
        finally:
            if owned:
                await chan.aclose()
        return


def _registry_targets(actor, addrs: Any) -> list[Address | None]:
    """Registrars to try, in order; ``None`` stands for this very actor."""
    regs = _addr_list(addrs)
    if local_registrar(actor) is not None:
        if regs is None:
            return [None]
        return [None if r in actor.listen_addrs else r for r in regs]
    return list(regs or _registries(actor, None))


async def _open_registry(actor, target: Address | None) -> Portal | LocalPortal | StorePortal:
    """A portal to the registrar at ``target`` (``None``: ourselves)."""
    if target is None:
        return LocalPortal(actor)
    if isinstance(target, StoreAddress):
        return StorePortal(client(actor).store(target), target)
    # the actor's one connection to that registrar (what its lookups and
    # registration use): no connect and handshake per query
    return _RegistrarPortal(await client(actor).channel(target))


class _RegistrarPortal(Portal):
    """A portal over the actor's shared connection to a registrar: closing
    it leaves that connection up (the actor's registration and lookups run
    over it)."""

    async def aclose(self) -> None:
        pass


@asynccontextmanager
async def get_registry(
    addrs: Any = None, *, addr: Any = None
) -> AsyncIterator[Portal | LocalPortal | StorePortal]:
    """Deliver a portal to the registrar (one address or a list of them,
    the first that answers wins; default: this tree's registrar).
    ``addr=`` is the keyword users of the established project pass for one
    address; giving both it and ``addrs`` is a ``TypeError``.

    The registrar itself gets a :class:`LocalPortal` (no IPC). Another
    actor's portal runs over this actor's shared connection to that
    registrar (dialed on first use, kept open for its lookups and
    registration), so asking costs no connect.
    """
    if addr is not None:
        if addrs is not None:
            raise TypeError('get_registry() takes addrs or addr=, not both')
        addrs = addr
    actor = current_actor()
    errors = []
    for target in _registry_targets(actor, addrs):
        try:
            portal = await _open_registry(actor, target)
        except RegistrarUnreachable as err:
            errors.append(str(err))
            continue
        yield portal
        return
    raise RegistrarUnreachable('; '.join(errors))


@asynccontextmanager
async def query_actor(
    name: str, regaddr: Any = None, registry_addrs: list[Any] | None = None
) -> AsyncIterator[tuple[tuple | None, Portal | LocalPortal | StorePortal]]:
    """Ask the registrar(s) where ``name`` lives, without dialing it.

    Yields ``(addr, reg_portal)``: ``addr`` is the plain address tuple this
    actor would dial for the newest match (its best-ranked address), or
    ``None`` on a miss; ``reg_portal`` is a portal to the registrar that
    answered (a :class:`LocalPortal` inside the registrar itself).
    """
    check_actor_name(name)
    actor = current_actor()
    first: Portal | LocalPortal | StorePortal | None = None
    errors = []
    for target in _registry_targets(actor, registry_addrs or regaddr):
        try:
            reg_portal = await _open_registry(actor, target)
            entry = await reg_portal.run_from_ns('self', 'find_actor', name=name)
        except (RegistrarUnreachable, TransportClosed) as err:
            errors.append(str(err))
            continue
        first = first or reg_portal
        if entry is None:
            continue
        _uid, addrs = entry
        ranked = rank_addrs(actor, addrs, usable_only=False)
        yield (ranked[0].unwrap() if ranked else None), reg_portal
        return
    if first is None:
        raise RegistrarUnreachable('; '.join(errors))
    yield None, first
