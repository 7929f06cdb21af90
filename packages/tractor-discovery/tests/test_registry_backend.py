"""The registry backend seam: the ``RegistryBackend`` contract, checked
against the embedded ``MemoryRegistry`` and against a minimal third-party
style implementation, plus the registrar's RPC face over any backend."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tractor.discovery import MemoryRegistry, Registrar, RegistryBackend
from tractor.discovery._registrar import local_registrar

TCP = ('tcp', ['127.0.0.1', 4000])
UDS = ('uds', ['/run/x', 'a.sock'])


class ListRegistry(RegistryBackend):
    """The simplest honest backend: a list of entries, newest last; waiters
    park on one event per name. Stands in for an external-store backend."""

    def __init__(self) -> None:
        self.entries: list[tuple[tuple, list]] = []
        self.events: dict[str, trio.Event] = {}

    async def register(self, uid, addrs):
        uid = tuple(uid)
        self.entries = [e for e in self.entries if e[0] != uid]
        self.entries.append((uid, [(p, list(f)) for p, f in addrs]))
        self.events.pop(uid[0], trio.Event()).set()

    async def unregister(self, uid):
        before = len(self.entries)
        self.entries = [e for e in self.entries if e[0] != tuple(uid)]
        return len(self.entries) != before

    async def find(self, name):
        return [(u, list(a)) for u, a in reversed(self.entries) if u[0] == name]

    async def wait_for(self, name):
        while not (found := await self.find(name)):
            await self.events.setdefault(name, trio.Event()).wait()
        return found[0]

    async def delete_addr(self, uid, addr):
        for u, addrs in self.entries:
            if u == tuple(uid) and (addr[0], list(addr[1])) in addrs:
                addrs.remove((addr[0], list(addr[1])))
                if not addrs:
                    await self.unregister(uid)
                return True
        return False


@pytest.fixture(params=[MemoryRegistry, ListRegistry])
def backend(request) -> RegistryBackend:
    return request.param()


def test_registry_backend_is_an_interface():
    """The seam is abstract: a backend must implement the five operations."""
    with pytest.raises(TypeError):
        RegistryBackend()  # type: ignore[abstract]  # the refusal is the test

    class Partial(RegistryBackend):
        async def register(self, uid, addrs): ...

    with pytest.raises(TypeError):
        Partial()  # type: ignore[abstract]  # the refusal is the test
    assert {'register', 'unregister', 'find', 'wait_for', 'delete_addr'} <= (
        RegistryBackend.__abstractmethods__
    )


async def test_backend_register_and_find(backend):
    await backend.register(('bob', 'u1'), [TCP])
    assert await backend.find('bob') == [(('bob', 'u1'), [TCP])]
    assert await backend.find_newest('bob') == (('bob', 'u1'), [TCP])
    assert await backend.find('alice') == []
    assert await backend.find_newest('alice') is None


async def test_backend_names_are_not_unique_newest_first(backend):
    """Several actors may share a name; lookups give the newest first."""
    for i in range(5):
        await backend.register(('bob', f'u{i}'), [('tcp', ['127.0.0.1', 4000 + i])])
    found = await backend.find('bob')
    assert [uid for uid, _ in found] == [('bob', f'u{i}') for i in reversed(range(5))]
    newest = await backend.find_newest('bob')
    assert newest is not None and newest[0] == ('bob', 'u4')


async def test_backend_reregistering_makes_an_entry_newest(backend):
    await backend.register(('bob', 'u1'), [TCP])
    await backend.register(('bob', 'u2'), [TCP])
    await backend.register(('bob', 'u1'), [UDS])
    assert await backend.find_newest('bob') == (('bob', 'u1'), [UDS])
    assert len(await backend.find('bob')) == 2


async def test_backend_unregister(backend):
    await backend.register(('bob', 'u1'), [TCP])
    await backend.register(('bob', 'u2'), [TCP])
    assert await backend.unregister(('bob', 'u2')) is True
    assert await backend.unregister(('bob', 'u2')) is False
    assert [u for u, _ in await backend.find('bob')] == [('bob', 'u1')]
    assert await backend.unregister(('bob', 'u1')) is True
    assert await backend.find('bob') == []


async def test_backend_delete_stale_addr(backend):
    """Deleting one address keeps the entry while it has others; deleting
    the last one drops the entry."""
    await backend.register(('bob', 'u1'), [UDS, TCP])
    assert await backend.delete_addr(('bob', 'u1'), UDS) is True
    assert await backend.delete_addr(('bob', 'u1'), UDS) is False
    assert await backend.find('bob') == [(('bob', 'u1'), [TCP])]
    assert await backend.delete_addr(('bob', 'u1'), TCP) is True
    assert await backend.find('bob') == []
    assert await backend.delete_addr(('nobody', 'u0'), TCP) is False


async def test_backend_wait_for_returns_at_once_when_registered(backend):
    await backend.register(('bob', 'u1'), [TCP])
    with trio.fail_after(5):
        assert await backend.wait_for('bob') == (('bob', 'u1'), [TCP])


async def test_backend_wait_for_wakes_on_registration(backend):
    got = []

    async def waiter():
        got.append(await backend.wait_for('late'))

    with trio.fail_after(5):
        async with trio.open_nursery() as tn:
            tn.start_soon(waiter)
            tn.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            await backend.register(('other', 'u0'), [TCP])  # wakes nobody
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            await backend.register(('late', 'u9'), [TCP])
    assert got == [(('late', 'u9'), [TCP])] * 2


async def test_memory_registry_wait_does_not_poll(autojump_clock):
    """A blocked waiter costs nothing while it waits: an hour of (virtual)
    time passes without a single extra look at the table."""
    reg = MemoryRegistry()
    looks = 0
    newest = reg.newest

    def counting(name):
        nonlocal looks
        looks += 1
        return newest(name)

    reg.newest = counting  # type: ignore[method-assign]  # a spy on the method
    async with trio.open_nursery() as tn:
        tn.start_soon(reg.wait_for, 'svc')
        await trio.testing.wait_all_tasks_blocked()
        assert reg.waiting('svc') == 1
        before = looks
        await trio.sleep(3600)
        assert looks == before
        await reg.register(('svc', 'u1'), [TCP])
    assert reg.waiting('svc') == 0


async def test_memory_registry_cancelled_waiters_leave_nothing_behind():
    reg = MemoryRegistry()
    with trio.fail_after(5):
        async with trio.open_nursery() as tn:
            for _ in range(3):
                tn.start_soon(reg.wait_for, 'never')
            await trio.testing.wait_all_tasks_blocked()
            assert reg.waiting('never') == 3 and reg.waiting() == 3
            tn.cancel_scope.cancel()
    assert reg.waiting() == 0
    assert reg._waiters == {}


class _NoScan(dict):
    """A table that fails any whole-table walk."""

    def _scan(self, *a, **kw):
        raise AssertionError('the whole registry table was scanned')

    __iter__ = items = keys = values = __reversed__ = _scan  # type: ignore[assignment]  # tripwires


async def test_memory_registry_lookups_are_o1_per_name():
    """With 10,000 entries, every per-name operation touches only that
    name's slot: none of them walks the table (it would raise here)."""
    reg = MemoryRegistry()
    for i in range(10_000):
        await reg.register((f'actor-{i}', f'uuid-{i}'), [('tcp', ['10.1.0.1', i + 1])])
    assert len(reg) == 10_000
    reg._by_name = _NoScan(reg._by_name)
    for i in (0, 4_999, 9_999):
        name = f'actor-{i}'
        assert await reg.find(name) == [((name, f'uuid-{i}'), [('tcp', ['10.1.0.1', i + 1])])]
        assert (await reg.find_newest(name))[0] == (name, f'uuid-{i}')
        with trio.fail_after(5):
            assert (await reg.wait_for(name))[0] == (name, f'uuid-{i}')
    assert await reg.find('missing') == []
    await reg.register(('fresh', 'u'), [TCP])
    assert await reg.delete_addr(('actor-1', 'uuid-1'), ('tcp', ['10.1.0.1', 2]))
    assert await reg.unregister(('actor-2', 'uuid-2'))
    assert len(reg) == 10_000 - 2 + 1


async def test_memory_registry_counts_entries():
    reg = MemoryRegistry()
    await reg.register(('a', '1'), [TCP])
    await reg.register(('a', '1'), [UDS])  # refresh, not a new entry
    await reg.register(('a', '2'), [TCP])
    assert len(reg) == 2 and reg.stats() == {'entries': 2, 'waiters': 0, 'watchers': 0}
    await reg.delete_addr(('a', '2'), TCP)
    assert len(reg) == 1
    assert await reg.snapshot() == {('a', '1'): [UDS]}


@pytest.mark.parametrize(
    'uid, addrs',
    [
        ('bob', [TCP]),
        (('bob',), [TCP]),
        (('bob', 7), [TCP]),
        (('', 'u'), [TCP]),
        (('bob', 'u'), ['tcp']),
        (('bob', 'u'), [('tcp', '127.0.0.1:1616')]),
        (('bob', 'u'), [(None, ['x'])]),
    ],
)
async def test_memory_registry_rejects_malformed_entries(uid, addrs):
    reg = MemoryRegistry()
    with pytest.raises(ValueError):
        await reg.register(uid, addrs)
    assert len(reg) == 0


# -- the registrar's RPC face over any backend ------------------------------
class _StubActor:
    """Just what a Registrar needs from its actor."""

    def __init__(self) -> None:
        self.uid = ('reg', 'uuid-reg')
        self.is_registrar = False
        self.extensions: dict = {}
        self.methods: dict = {}

    def expose(self, name, fn):
        self.methods[name] = fn


async def test_registrar_serves_any_backend(backend):
    actor = _StubActor()
    registrar = Registrar(actor, backend=backend)  # type: ignore[arg-type]  # a stub actor
    assert registrar.backend is backend
    registrar.install()
    assert actor.is_registrar and local_registrar(actor) is registrar  # type: ignore[arg-type]  # a stub actor
    rpc = actor.methods
    assert set(Registrar.METHODS) <= set(rpc)
    await rpc['register_actor'](uid=['bob', 'u1'], addrs=[list(TCP)])
    await rpc['register_actor'](uid=['bob', 'u2'], addrs=[list(UDS)])
    assert (await rpc['find_actor'](name='bob'))[0] == ('bob', 'u2')
    assert [u for u, _ in await rpc['find_actors'](name='bob')] == [('bob', 'u2'), ('bob', 'u1')]
    assert await rpc['find_actor'](name='nobody') is None
    with trio.fail_after(5):
        assert (await rpc['wait_for_actor'](name='bob'))[0] == ('bob', 'u2')
    assert await rpc['delete_addr'](uid=['bob', 'u2'], addr=list(UDS)) is True
    assert await rpc['unregister_actor'](uid=['bob', 'u1']) is True
    assert await rpc['find_actor'](name='bob') is None
    info = await rpc['registrar_info']()
    assert info['uid'] == ['reg', 'uuid-reg']
    assert info['backend'] == type(backend).__name__
    assert info['served'] == {
        'register': 2,
        'unregister': 1,
        'lookup': 4,
        'wait': 1,
        'delete': 1,
        'watch': 0,
        'hold': 0,
    }


async def test_registrar_rejects_bad_requests():
    actor = _StubActor()
    registrar = Registrar(actor)  # type: ignore[arg-type]  # a stub actor
    assert isinstance(registrar.backend, MemoryRegistry)
    with pytest.raises(ValueError):
        await registrar.find_actor(name='')
    with pytest.raises(ValueError):
        await registrar.register_actor(uid=['only-a-name'], addrs=[])
    # what `tractor ls` prints stays printable
    with pytest.raises(ValueError, match='control characters'):
        await registrar.register_actor(uid=['red\x1b[31m', 'u1'], addrs=[])
    with pytest.raises(ValueError, match='control characters'):
        await registrar.register_actor(uid=['fine', 'u\n1'], addrs=[])
    with pytest.raises(ValueError):
        await registrar.wait_for_actor(name=None)  # type: ignore[arg-type]  # refused: the test


def test_registrar_with_an_empty_memory_backend_keeps_it():
    """An empty backend is falsy (len 0) but still the one to use."""
    empty = MemoryRegistry()
    assert Registrar(_StubActor(), backend=empty).backend is empty  # type: ignore[arg-type]  # a stub actor


def test_arbiter_is_registrar_alias():
    import tractor

    assert tractor.Arbiter is tractor.Registrar is Registrar
