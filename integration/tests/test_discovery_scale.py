"""The registrar at scale (over TCP and UDS): 10,000 registrations and
1,000 concurrent lookups, served without error. The registrations are
lightweight: register_actor requests with made-up identities and addresses,
sent by one subactor (not 10,000 processes). That lookups do not get slower
with the table's size is checked structurally in the backend's unit tests."""

from __future__ import annotations

import pytest
import trio

import tractor
from tractor.discovery._registrar import local_registrar

pytestmark = pytest.mark.slow

ENTRIES = 10_000
LOOKUPS = 1_000
#: concurrent registering tasks
WRITERS = 50


def fake(i: int) -> tuple[list, list]:
    return [f'fake-{i}', f'uuid-{i}'], [['tcp', ['10.9.0.1', 1024 + i]]]


async def load_registry(entries: int, lookups: int) -> dict:
    """Run in one subactor: register ``entries`` fake actors, then look up
    ``lookups`` of them (and as many missing names) all at once."""
    errors: list[str] = []
    async with tractor.get_registry() as reg:

        async def write(start: int) -> None:
            for i in range(start, entries, WRITERS):
                uid, addrs = fake(i)
                await reg.run_from_ns('self', 'register_actor', uid=uid, addrs=addrs)

        async with trio.open_nursery() as tn:
            for w in range(WRITERS):
                tn.start_soon(write, w)

        async def look(i: int) -> None:
            uid, addrs = fake((i * 7919) % entries)
            try:
                entry = await reg.run_from_ns('self', 'find_actor', name=uid[0])
                if entry is None or list(entry[0]) != uid or entry[1] != addrs:
                    errors.append(f'{uid[0]}: got {entry!r}')
                miss = await reg.run_from_ns('self', 'find_actor', name=f'missing-{i}')
                if miss is not None:
                    errors.append(f'missing-{i}: got {miss!r}')
            except Exception as err:  # report every failure, not just the first
                errors.append(f'{uid[0]}: {err!r}')

        async with trio.open_nursery() as tn:
            for i in range(lookups):
                tn.start_soon(look, i)
        info = await reg.run_from_ns('self', 'registrar_info')
    return {'errors': errors[:20], 'n_errors': len(errors), 'info': info}


async def test_registrar_serves_10000_entries_and_1000_concurrent_lookups(runtime_kwargs):
    with trio.fail_after(120):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            registrar = local_registrar(tractor.current_actor())
            loader = await an.start_actor('loader', enable_modules=[__name__])
            out = await loader.run(load_registry, entries=ENTRIES, lookups=LOOKUPS)
            assert out['n_errors'] == 0, out['errors']
            info = out['info']
            assert info['entries'] == ENTRIES + 2  # plus the root and the loader
            assert info['served']['register'] == ENTRIES + 2
            assert info['served']['lookup'] == 2 * LOOKUPS
            assert len(registrar.backend) == ENTRIES + 2
            # the real actors still resolve among all the fakes
            async with tractor.find_actor('loader') as portal:
                assert portal.channel.uid == loader.channel.uid
            async with tractor.query_actor(f'fake-{ENTRIES - 1}') as (addr, _):
                assert addr == ('10.9.0.1', 1024 + ENTRIES - 1)
            await an.cancel()
