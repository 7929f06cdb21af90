"""What one connection can do to the registry: a bounded number of
entries, which go when that connection ends for good (issue #21)."""

from __future__ import annotations

import pytest
import trio

import tractor
from tractor.discovery import _registrar

pytestmark = pytest.mark.slow


async def register_fakes(names: list[str]) -> dict:
    """(in a subactor) Register made-up entries over one registry
    connection: how many were accepted, and the refusal that stopped us."""
    done, refused = 0, None
    async with tractor.get_registry() as reg:
        for name in names:
            try:
                await reg.run_from_ns(
                    'self',
                    'register_actor',
                    uid=[name, f'{name}-uuid'],
                    addrs=[['tcp', ['10.9.0.1', 1000 + done]]],
                )
            except tractor.RemoteActorError as err:
                refused = str(err)
                break
            done += 1
    return {'done': done, 'refused': refused}


async def register_and_hold(names: list[str]) -> None:
    """(in a subactor) Register made-up entries over one registry
    connection, and keep that connection open (in a task of the actor's
    own) after returning."""
    done = trio.Event()

    async def hold() -> None:
        async with tractor.get_registry() as reg:
            for name in names:
                await reg.run_from_ns(
                    'self',
                    'register_actor',
                    uid=[name, f'{name}-uuid'],
                    addrs=[['tcp', ['10.9.0.1', 1000]]],
                )
            done.set()
            await trio.sleep_forever()

    tractor.current_actor()._service_tn.start_soon(hold)
    await done.wait()


def names_in(registry: dict) -> set[str]:
    """The names in the registrar's ``get_registry`` table (``{uid: addrs}``)."""
    return {uid[0] for uid in registry}


async def test_entries_per_connection_capped(runtime_kwargs, monkeypatch):
    monkeypatch.setattr(_registrar, 'MAX_ENTRIES_PER_CONNECTION', 5)
    with trio.fail_after(30):
        async with tractor.open_nursery(enable_modules=[__name__], **runtime_kwargs) as an:
            portal = await an.start_actor('filler', enable_modules=[__name__])
            got = await portal.run(register_fakes, names=[f'fake-{i}' for i in range(10)])
            # five per connection (four if the child registered itself over
            # the same one), then refused, naming the cap
            assert got['done'] in (4, 5), got
            assert 'at most 5 entries' in got['refused']
            async with tractor.get_registry() as reg:
                names = names_in(await reg.run_from_ns('self', 'get_registry'))
            assert sum(n.startswith('fake-') for n in names) == got['done']
            await an.cancel()


async def test_entries_go_with_their_connection(runtime_kwargs, monkeypatch):
    """Entries registered over a connection are dropped once it has ended
    and a grace passed, unless re-registered over another meanwhile."""
    monkeypatch.setattr(_registrar, 'REREGISTER_GRACE', 0.5)
    with trio.fail_after(30):
        async with tractor.open_nursery(enable_modules=[__name__], **runtime_kwargs) as an:
            first = await an.start_actor('first', enable_modules=[__name__])
            await first.run(register_and_hold, names=['gone-a', 'gone-b', 'kept'])
            second = await an.start_actor('second', enable_modules=[__name__])
            await second.run(register_and_hold, names=['kept'])
            async with tractor.get_registry() as reg:

                async def names() -> set[str]:
                    return names_in(await reg.run_from_ns('self', 'get_registry'))

                assert {'gone-a', 'gone-b', 'kept'} <= await names()
                await first.cancel_actor()  # its connections end
                while {'gone-a', 'gone-b'} & await names():
                    await trio.sleep(0.05)
                assert 'kept' in await names()
            await an.cancel()
