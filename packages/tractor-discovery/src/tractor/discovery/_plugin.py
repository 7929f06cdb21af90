"""Discovery's hooks into the runtime: registry bootstrap and registration."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import trio

from tractor import ModuleNotExposed, Portal, RemoteActorError, TransportClosed
from tractor.log import get_logger
from tractor.plugin import StoreAddress, get_transport, hookimpl, wrap_address

from ._client import RegistrarUnreachable, client, probe
from ._registrar import PARENT_REGISTERS, Registrar, local_registrar

if TYPE_CHECKING:
    from tractor import Actor
    from tractor.plugin import Address

log = get_logger('discovery')

#: bound on unregistering at teardown (the registrar may be gone)
UNREGISTER_TIMEOUT = 5.0
#: how often an actor checks that its registrar connection is still up
WATCH_INTERVAL = 1.0
#: re-dial backoff after losing the registrar: first delay, and its cap
REDIAL_MIN = 0.1
REDIAL_MAX = 2.0


#: set by :func:`observer`: the root being opened only looks at the registry
_observing: ContextVar[bool] = ContextVar('tractor_discovery_observer', default=False)


@contextmanager
def observer() -> Iterator[None]:
    """Open a root actor in this block as an *observer* of the registry (what
    the ``tractor`` command does): it joins the registrar at its registry
    addresses but never becomes one (:class:`RegistrarUnreachable` when none
    answers) and never registers itself, so it is not seen in listings and
    watches."""
    token = _observing.set(True)
    try:
        yield
    finally:
        _observing.reset(token)


def registration_meta(actor: Actor) -> dict[str, Any]:
    """What an entry says about its actor besides its addresses."""
    parent = getattr(actor, 'parent_uid', None) or (
        actor.parent_channel.uid if actor.parent_channel is not None else None
    )
    return entry_meta(os.getpid(), parent)


def entry_meta(pid: int, parent: Any) -> dict[str, Any]:
    """An entry's metadata for the actor of ``pid`` (on this host), child of
    ``parent`` (a uid, or ``None`` for a root)."""
    return {'pid': pid, 'host': socket.gethostname(), 'parent': list(parent) if parent else None}


def served_here(actor: Actor, regs: list[Address]) -> list[Address]:
    """Those of the registry addresses ``regs`` that ``actor`` serves as
    the registrar."""
    if local_registrar(actor) is None:
        return []
    return [reg for reg in regs if reg in actor.listen_addrs]


@hookimpl
def tractor_spawn_spec_ext(actor, spec):
    # a registrar registers its own children (tractor_child_ready): each
    # spawn saves the child a connection, a handshake and two round trips
    served = served_here(actor, [wrap_address(wire) for wire in spec.reg_addrs])
    return {PARENT_REGISTERS: [reg.to_wire() for reg in served]} if served else None


@hookimpl
def tractor_spawn_spec_ext_received(actor, ext):
    served = ext.get(PARENT_REGISTERS)
    if served:
        actor.extensions[PARENT_REGISTERS] = [wrap_address(wire) for wire in served]


@hookimpl
def tractor_child_ready(actor, chan, accept_addrs):
    if chan.aid is None or not served_here(actor, actor.registry_addrs):
        return None
    registrar = local_registrar(actor)
    assert registrar is not None
    return registrar.register_child(
        chan, chan.aid.uid, list(accept_addrs), entry_meta(chan.aid.pid, actor.uid)
    )


async def bootstrap(actor: Actor, regs: list[Address], ensure_registry: bool) -> list[Address]:
    """Join the registrar at ``regs`` or become it; returns what to bind.

    Registry stores (``etcd://...``) need no registrar actor: they are
    joined, never become one, and nothing binds their address."""
    if _observing.get():
        return await observe(actor, regs)
    stores = [addr for addr in regs if isinstance(addr, StoreAddress)]
    if stores and ensure_registry:
        raise ValueError(
            f'ensure_registry=True does not apply to the registry store '
            f'{", ".join(map(str, stores))}: no actor is the registrar there (every actor '
            f'registers itself in the store), so there is no registry address to hold'
        )
    actors = [addr for addr in regs if not isinstance(addr, StoreAddress)]
    serving = [addr for addr in actors if await probe(actor, addr)]
    near = {addr.proto_key: addr for addr in actors}
    for store in stores:
        for key in actor.enable_transports:
            if key not in near and (close := store.near(key)) is not None:
                near[key] = close
    if serving or not actors:
        if ensure_registry:
            raise RuntimeError(
                f'ensure_registry=True but a registrar already serves '
                f'{", ".join(map(str, serving))}'
            )
        if serving:
            log.info('joining the registrar at %s', ', '.join(map(str, serving)))
        return [
            get_transport(key).random_addr(actor.name, near=near.get(key))
            for key in actor.enable_transports
        ]
    log.info(
        'nobody serves the registry at %s: %r becomes the registrar',
        ', '.join(map(str, actors)),
        actor.name,
    )
    Registrar(actor).install()
    covered = {addr.proto_key for addr in actors}
    return list(actors) + [
        get_transport(key).random_addr(actor.name)
        for key in actor.enable_transports
        if key not in covered
    ]


async def observe(actor: Actor, regs: list[Address]) -> list[Address]:
    """An observer's bootstrap: some registry must answer; bind nothing."""
    actor.extensions['discovery.observer'] = True
    if any(isinstance(addr, StoreAddress) for addr in regs):
        return []
    for addr in regs:
        if await probe(actor, addr):
            return []
    raise RegistrarUnreachable(f'no registrar answers at {", ".join(map(str, regs))}')


@hookimpl
def tractor_root_bind_addrs(actor, registry_addrs, ensure_registry):
    return bootstrap(actor, registry_addrs, ensure_registry)


async def keep_registered(
    actor: Actor,
    reg: Address,
    addrs: list,
    registered: set,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Watch the connection this actor registered over; when it is lost
    (the registrar died or restarted), re-dial ``reg`` with a capped
    exponential backoff and register again. Runs for the actor's lifetime
    in its service nursery (so teardown cancels it first); never raises.
    If booting could not register at all, this keeps trying too.
    ``task_status.started()`` once the registration hold is in place (or
    the first try failed): booting waits for it, so an actor that has booted
    is one whose loss its registrar notices."""
    cli = client(actor)
    delay = REDIAL_MIN
    meta = registration_meta(actor)
    booting = True

    def booted() -> None:
        nonlocal booting
        if booting:
            booting = False
            task_status.started()

    while True:
        chan = cli._chans.get(reg)
        if chan is not None and chan.connected():
            await hold(actor, chan, booted)
            booted()
            parent = actor.parent_channel
            # a registrar that was our parent: we normally go down with it
            # (and this task with us), so no warning for that
            quiet = parent is not None and chan.uid is not None and parent.uid == chan.uid
            (log.debug if quiet else log.warning)(
                '%s lost its registrar at %s: re-registering once it is back', actor.name, reg
            )
            delay = REDIAL_MIN
        try:
            await register_at(cli, reg, actor.uid, addrs, meta)
        except Exception as err:  # unreachable, refused, not a registrar, ...
            log.debug(
                '%s: registering at %s failed (%s); retrying in %.1fs', actor.name, reg, err, delay
            )
            booted()
            await trio.sleep(delay)
            delay = min(delay * 2, REDIAL_MAX)
            continue
        if reg in registered:
            log.warning('%s registered again at %s', actor.name, reg)
        registered.add(reg)
        delay = REDIAL_MIN


async def register_at(cli: Any, reg: Address, uid: Any, addrs: list, meta: dict) -> None:
    """Register at ``reg`` with ``meta``; again without it for a registrar
    of an older release, whose ``register_actor`` takes no ``meta``."""
    try:
        await cli.call(reg, 'register_actor', uid=list(uid), addrs=addrs, meta=meta)
    except RemoteActorError as err:
        if err.type_name != 'TypeError' or 'meta' not in err.msg:
            raise
        await cli.call(reg, 'register_actor', uid=list(uid), addrs=addrs)


async def hold(actor: Actor, chan: Any, opened: Any = lambda: None) -> None:
    """Return once ``chan`` (to a registrar) is lost. Holds the registrar's
    ``hold_registration`` context open meanwhile, so the registrar learns of
    the loss too and drops the entry if this actor is gone; against an older
    registrar without it (or one that ended the hold: refused it, or is
    shutting down), checks the connection every :data:`WATCH_INTERVAL`
    instead, so this never spins."""
    try:
        async with Portal(chan).open_context_from_ns(
            'self', 'hold_registration', uid=list(actor.uid)
        ):
            opened()
            await trio.sleep_forever()
    except RemoteActorError as err:  # ContextCancelled included
        if err.boxed_type is not ModuleNotExposed and err.type_name != 'ModuleNotExposed':
            log.debug('hold_registration ended: %r', err)
        opened()
        while chan.connected():
            await trio.sleep(WATCH_INTERVAL)
    except (TransportClosed, trio.BrokenResourceError, trio.ClosedResourceError) as err:
        log.debug('hold_registration ended: %r', err)


@asynccontextmanager
async def registration(actor: Actor) -> AsyncIterator[None]:
    """Register on boot, keep registered (see :func:`keep_registered`),
    unregister on graceful teardown."""
    if actor.extensions.get('discovery.observer'):
        yield  # an observer (the tractor command) is not listed
        return
    addrs = [a.to_wire() for a in actor.listen_addrs]
    meta = registration_meta(actor)
    local = local_registrar(actor)
    cli = client(actor)
    registered: set = set()
    stores = [reg for reg in actor.registry_addrs if isinstance(reg, StoreAddress)]
    regs = [reg for reg in actor.registry_addrs if not isinstance(reg, StoreAddress)]
    try:
        for store in stores:
            # the store's backend keeps the entry alive (a lease) and puts it
            # back after an outage; a failed first try is its job too
            try:
                await register_at(cli, store, actor.uid, addrs, meta)
            except RegistrarUnreachable as err:
                log.warning('%s could not register (will keep trying): %s', actor.name, err)
            actor.start_service_task(
                cli.store(store).backend.keep_alive, name=f'keep registered at {store}'
            )
    except BaseException:  # refused (bad credentials...): the boot fails, tidily
        with trio.CancelScope(shield=True):
            for store in stores:
                await cli.store(store).backend.aclose()
        raise
    if local is not None:
        await local.register_actor(actor.uid, addrs, meta)
        log.info('%r registered itself (it is the registrar)', actor.name)
    else:
        # the parent registers this actor where it is the registrar, once
        # this actor is Ready, and holds the entry over their connection
        # (losing which ends this actor: nothing to keep registered there)
        by_parent = actor.extensions.get(PARENT_REGISTERS, ())
        registered.update(reg for reg in regs if reg in by_parent)
        regs = [reg for reg in regs if reg not in by_parent]
        for reg in regs:
            try:
                await register_at(cli, reg, actor.uid, addrs, meta)
                registered.add(reg)
            except RegistrarUnreachable as err:
                log.warning('%s could not register (will keep trying): %s', actor.name, err)
        if registered:
            log.info('%r registered at %s', actor.name, ', '.join(map(str, registered)))
        for reg in regs:
            await actor.start_service(
                keep_registered, actor, reg, addrs, registered, name=f'keep registered at {reg}'
            )
    if stores:
        log.info('%r registered in %s', actor.name, ', '.join(map(str, stores)))
    try:
        yield
    finally:
        log.info('%r unregisters', actor.name)
        with trio.CancelScope(shield=True):
            with trio.move_on_after(UNREGISTER_TIMEOUT):
                if local is not None:
                    await local.unregister_actor(actor.uid)
                for reg in list(registered):
                    try:
                        await cli.call(reg, 'unregister_actor', uid=list(actor.uid))
                    except RegistrarUnreachable as err:
                        log.debug('could not unregister from %s: %s', reg, err)
                for store in stores:
                    backend = cli.store(store).backend
                    try:
                        await backend.unregister(actor.uid)
                    except Exception as err:  # unreachable, refused: the lease ends it anyway
                        log.debug('could not unregister from %s: %s', store, err)
            for store in stores:  # bounded by the backend itself
                await cli.store(store).backend.aclose()


@hookimpl
def tractor_actor_serving(actor):
    return registration(actor)
