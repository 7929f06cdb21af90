"""Discovery's hooks into the runtime: registry bootstrap and registration."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator

import trio

from tractor._plugins import get_transport, hookimpl
from tractor.log import get_logger

from ._client import RegistrarUnreachable, client, probe
from ._registrar import Registrar, local_registrar

if TYPE_CHECKING:
    from tractor import Actor
    from tractor._transport import Address

log = get_logger('discovery')

#: bound on unregistering at teardown (the registrar may be gone)
UNREGISTER_TIMEOUT = 5.0


async def bootstrap(actor: Actor, regs: list[Address], ensure_registry: bool) -> list[Address]:
    """Join the registrar at ``regs`` or become it; returns what to bind."""
    serving = [addr for addr in regs if await probe(actor, addr)]
    near = {addr.proto_key: addr for addr in regs}
    if serving:
        if ensure_registry:
            raise RuntimeError(
                f'ensure_registry=True but a registrar already serves '
                f'{", ".join(map(str, serving))}'
            )
        log.info('joining the registrar at %s', ', '.join(map(str, serving)))
        return [
            get_transport(key).random_addr(actor.name, near=near.get(key))
            for key in actor.enable_transports
        ]
    Registrar(actor).install()
    covered = {addr.proto_key for addr in regs}
    return list(regs) + [
        get_transport(key).random_addr(actor.name)
        for key in actor.enable_transports if key not in covered
    ]


@hookimpl
def tractor_root_bind_addrs(actor, registry_addrs, ensure_registry):
    return bootstrap(actor, registry_addrs, ensure_registry)


@asynccontextmanager
async def registration(actor: Actor) -> AsyncIterator[None]:
    """Register on boot, unregister on graceful teardown."""
    addrs = [a.to_wire() for a in actor.listen_addrs]
    local = local_registrar(actor)
    cli = client(actor)
    registered = []
    if local is not None:
        await local.register_actor(actor.uid, addrs)
    else:
        for reg in actor.registry_addrs:
            try:
                await cli.call(reg, 'register_actor', uid=list(actor.uid), addrs=addrs)
                registered.append(reg)
            except RegistrarUnreachable as err:
                log.warning('%s could not register: %s', actor.name, err)
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(UNREGISTER_TIMEOUT):
                if local is not None:
                    await local.unregister_actor(actor.uid)
                for reg in registered:
                    try:
                        await cli.call(reg, 'unregister_actor', uid=list(actor.uid))
                    except RegistrarUnreachable as err:
                        log.debug('could not unregister from %s: %s', reg, err)


@hookimpl
def tractor_actor_serving(actor):
    return registration(actor)
