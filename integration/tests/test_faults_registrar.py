"""The registrar SIGKILLed under a running tree (over TCP and UDS).

The registrar is a separate program (``programs/discovery_tree.py tree
--ensure-registry`` with no services); this test's root joins it and
spawns a service and a client that found the service through it. With
the registrar dead:

- lookups fail at once with ``RegistrarUnreachable`` naming the refused
  address (not after a connect timeout);
- running actors and the portals they already hold keep working;
- a registrar restarted at the same address gets every live actor
  re-registered (each watches its registrar connection and re-dials with
  a capped backoff), so lookups from a new program work again.
"""

from __future__ import annotations

import pytest
import trio

import tractor
from tractor.discovery import RegistrarUnreachable, mk_maddr

pytestmark = pytest.mark.slow

BOUND = 60


async def ping() -> str:
    return 'pong'


@tractor.context
async def hold_portal(ctx: tractor.Context, name: str) -> None:
    """Find ``name`` through the registrar, keep that portal, and call it
    once per message the caller sends."""
    async with tractor.find_actor(name) as portal:
        assert portal is not None
        await ctx.started(list(portal.channel.uid))
        async with ctx.open_stream() as stream:
            async for _ in stream:
                await stream.send(await portal.run(ping))


def registrar_args(reg: tuple, tpt_proto: str) -> list[str]:
    return ['tree', '--registry', str(mk_maddr(reg)), '--transport', tpt_proto, '--ensure-registry']


async def test_registrar_killed_then_restarted(run_program, reg_addr, tpt_proto):
    async with run_program(
        'discovery_tree.py', *registrar_args(reg_addr, tpt_proto), expect_rc=None
    ) as first:
        assert first.info['root']['is_registrar']
        with trio.fail_after(BOUND):
            async with tractor.open_nursery(
                registry_addrs=[reg_addr], enable_transports=[tpt_proto]
            ) as an:
                assert not tractor.current_actor().is_registrar
                svc = await an.start_actor('svc', enable_modules=[__name__])
                client = await an.start_actor('client', enable_modules=[__name__])
                async with (
                    client.open_context(hold_portal, name='svc') as (ctx, found),
                    ctx.open_stream() as stream,
                ):
                    assert found == list(svc.channel.uid)
                    await stream.send(None)
                    assert await stream.receive() == 'pong'

                    first.proc.kill()  # SIGKILL the registrar program (ours)
                    await first.proc.wait()

                    # lookups fail, at once and clearly
                    with pytest.raises(RegistrarUnreachable) as info:
                        async with tractor.find_actor('nobody'):
                            pass
                    text = str(info.value)
                    assert str(mk_maddr(reg_addr)) in text
                    assert 'refused' in text.lower(), text  # refused, not a timeout

                    # what runs keeps running; held portals keep working
                    assert await svc.run(ping) == 'pong'
                    await stream.send(None)
                    assert await stream.receive() == 'pong'
                    async with tractor.find_actor(
                        'svc'
                    ) as portal:  # a live peer: no registrar needed
                        assert portal.channel.uid == svc.channel.uid

                    # a registrar back at the same address: everyone re-registers
                    async with run_program(
                        'discovery_tree.py', *registrar_args(reg_addr, tpt_proto)
                    ) as second:
                        assert second.info['root']['is_registrar']
                        async with tractor.get_registry(reg_addr) as reg:
                            for name in ('svc', 'client', tractor.current_actor().name):
                                uid, _addrs = await reg.run_from_ns(
                                    'self', 'wait_for_actor', name=name
                                )
                                assert uid[0] == name
                        # and a program that knows only the registry finds svc
                        async with run_program(
                            'discovery_tree.py',
                            'join',
                            '--registry',
                            str(mk_maddr(reg_addr)),
                            '--transport',
                            tpt_proto,
                            '--find',
                            'svc',
                            '--call',
                            f'{__name__}:ping',
                            ready='RESULT',
                        ) as joiner:
                            assert joiner.info['found']['uid'] == list(svc.channel.uid)
                            assert joiner.info['called'] == 'pong'
                        await stream.send(None)
                        assert await stream.receive() == 'pong'
                await an.cancel()


async def test_root_exits_cleanly_after_its_registrar_was_cancelled(
    run_program, reg_addr, tpt_proto
):
    """A joining root whose registrar (another tree) exited gracefully
    first still leaves its own block cleanly: unregistering from a gone
    registrar is not an error, nor is cancelling a child it had."""
    async with run_program('discovery_tree.py', *registrar_args(reg_addr, tpt_proto)) as reg:
        with trio.fail_after(BOUND):
            async with tractor.open_nursery(
                registry_addrs=[reg_addr], enable_transports=[tpt_proto]
            ) as an:
                assert not tractor.current_actor().is_registrar
                await an.start_actor('svc', enable_modules=[__name__])
                # the registrar's tree is cancelled (stdin closed: a graceful exit)
                await reg.proc.stdin.aclose()
                await reg.proc.wait()
                assert reg.proc.returncode == 0
                await an.cancel()
