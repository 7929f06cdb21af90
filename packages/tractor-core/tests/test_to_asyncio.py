"""Infected asyncio actors (``infect_asyncio=True``) and ``tractor.to_asyncio``,
over real processes: asyncio libraries in a child, the trio <-> asyncio
bridges, errors and cancellation crossing both ways, both spawn backends."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import trio

import tractor
from tractor import to_asyncio
from tractor.trionics import collapse_eg
from tractor_testsupport.procs import cmdline, descendants

pytestmark = [pytest.mark.slow, pytest.mark.parametrize('start_method', ['forkserver', 'trio'])]


@pytest.fixture
def tpt_proto() -> str:
    """The transport plays no part in asyncio interop: TCP only."""
    return 'tcp'


TIMEOUT = 40
#: what asyncio prints for a task garbage-collected while pending, and for
#: an error nobody read: neither may appear
ASYNCIO_WARNINGS = ('Task was destroyed but it is pending', 'exception was never retrieved')


# -- asyncio code the children run ------------------------------------------


async def aio_echo_server_roundtrip(payloads: list[str]) -> dict:
    """An asyncio "library": a start_server echo on a random loopback port
    and an open_connection client talking to it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    echoed = []
    async with server:
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        for p in payloads:
            writer.write(p.encode() + b'\n')
            await writer.drain()
            echoed.append((await reader.readline()).decode().rstrip('\n'))
        await asyncio.sleep(0.01)
        writer.close()
        await writer.wait_closed()
    return {'port': port, 'echoed': echoed, 'loop': type(asyncio.get_running_loop()).__name__}


async def echo_via_asyncio(payloads: list[str]) -> dict:
    out = await to_asyncio.run_task(aio_echo_server_roundtrip, payloads=payloads)
    out['infected'] = tractor.current_actor().is_infected_aio()
    return out


async def aio_producer(chan: to_asyncio.LinkedTaskChannel, count: int) -> str:
    chan.started_nowait({'count': count})
    for i in range(count):
        await chan.put(i)
        if i % 7 == 0:
            await asyncio.sleep(0)
    return 'produced'


async def aio_doubler(to_trio, from_trio) -> None:
    """The to_trio/from_trio spelling: the first send is ``first``."""
    to_trio.send_nowait('doubler up')
    while True:
        to_trio.send_nowait(2 * await from_trio.get())


@tractor.context
async def bridge(ctx: tractor.Context, count: int) -> int:
    """asyncio producer -> this trio task -> the parent's MsgStream, then a
    two-way phase through an asyncio doubler."""
    async with to_asyncio.open_channel_from(aio_producer, count=count) as (first, chan):
        await ctx.started(first)
        async with ctx.open_stream() as stream:
            async for value in chan:
                await stream.send(value)
            await stream.send('end')
            async with to_asyncio.open_channel_from(aio_doubler) as (hello, dbl):
                await stream.send(hello)
                async for x in stream:
                    await dbl.send(x)
                    await stream.send(await dbl.receive())
    return count


# errors and cancellation


async def aio_raise(after: float) -> None:
    await asyncio.sleep(after)
    raise ValueError(f'asyncio failed after {after}')


async def raise_from_asyncio() -> None:
    await to_asyncio.run_task(aio_raise, after=0.01)


async def aio_fail_midstream(chan: to_asyncio.LinkedTaskChannel) -> None:
    chan.started_nowait('go')
    for i in range(3):
        chan.send_nowait(i)
    await asyncio.sleep(0.01)
    raise KeyError('midstream')


async def channel_error_cancels_block() -> dict:
    """The asyncio task fails while the trio block waits elsewhere: the
    block is cancelled and the error raised from it."""
    got = []
    try:
        async with to_asyncio.open_channel_from(aio_fail_midstream) as (first, chan):
            got.append(first)
            await trio.sleep_forever()
    except KeyError as err:
        return {'err': repr(err), 'got': got}
    return {'err': None, 'got': got}


_record: dict[str, list] = {'events': []}


async def aio_wait_forever(tag: str) -> None:
    _record['events'].append(f'{tag} started')
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        _record['events'].append(f'{tag} cancelled')
        raise


async def trio_error_cancels_asyncio() -> dict:
    """A trio error in the block cancels the asyncio task and waits for it."""
    try:
        async with to_asyncio.open_channel_from(aio_channel_forever) as (first, _chan):
            assert first == 'up'
            raise RuntimeError('trio side failed')
    except RuntimeError as err:
        return {'err': str(err), 'events': list(_record['events'])}
    return {'err': None, 'events': list(_record['events'])}


async def aio_channel_forever(chan: to_asyncio.LinkedTaskChannel) -> None:
    chan.started_nowait('up')
    await aio_wait_forever('chan')


async def wait_forever_in_asyncio(tag: str) -> None:
    await to_asyncio.run_task(aio_wait_forever, tag=tag)


async def events() -> list:
    return list(_record['events'])


async def trio_cancel_cancels_asyncio() -> list:
    """Cancel a scope around run_task once the asyncio task runs."""
    scope = trio.CancelScope()

    async def call() -> None:
        with scope:
            await to_asyncio.run_task(aio_wait_forever, tag='scoped')

    async with trio.open_nursery() as tn:
        tn.start_soon(call)
        while 'scoped started' not in _record['events']:
            await trio.sleep(0.01)
        scope.cancel()
    return list(_record['events'])


async def aio_cancels_itself() -> None:
    await asyncio.sleep(0)
    asyncio.current_task().cancel()
    await asyncio.sleep(1)


async def asyncio_side_cancel() -> None:
    await to_asyncio.run_task(aio_cancels_itself)


async def aio_stubborn() -> None:
    _record['events'].append('stubborn started')
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            _record['events'].append('stubborn ignored a cancel')


async def run_stubborn() -> None:
    await to_asyncio.run_task(aio_stubborn)


async def try_bridges() -> list[str]:
    """In a non-infected actor both bridges refuse with a typed error."""
    out = []
    try:
        await to_asyncio.run_task(aio_raise, after=0)
    except to_asyncio.NotInfectedError as err:
        out.append(type(err).__name__)
    try:
        async with to_asyncio.open_channel_from(aio_channel_forever):
            pass
    except to_asyncio.NotInfectedError as err:
        out.append(type(err).__name__)
    return out


async def pid() -> int:
    return os.getpid()


async def worker_info(x: int) -> dict:
    async def aio_square(x: int) -> int:
        await asyncio.sleep(0)
        return x * x

    return {
        'name': tractor.current_actor().name,
        'infected': tractor.current_actor().is_infected_aio(),
        'square': await to_asyncio.run_task(aio_square, x=x),
    }


# -- tests ------------------------------------------------------------------


def _no_asyncio_warnings(text: str) -> None:
    for w in ASYNCIO_WARNINGS:
        assert w not in text, text


async def test_asyncio_library_in_child(runtime_kwargs, start_method, capfd):
    """An infected child runs an asyncio.start_server echo and
    asyncio.sleep; the result reaches the trio parent."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('aio', enable_modules=[__name__], infect_asyncio=True)
            out = await portal.run(echo_via_asyncio, payloads=['a', 'bb', 'ccc'])
            assert out['echoed'] == ['a', 'bb', 'ccc']
            assert out['infected'] is True
            assert await portal.cancel_actor()
    _no_asyncio_warnings(capfd.readouterr().err)


async def test_run_in_actor_infected(runtime_kwargs, start_method):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.run_in_actor(
                echo_via_asyncio, payloads=['one-shot'], infect_asyncio=True
            )
            out = await portal.wait_for_result()
    assert out['echoed'] == ['one-shot'] and out['infected'] is True


async def test_streaming_bridge(runtime_kwargs, start_method, capfd):
    """An asyncio producer feeds a MsgStream to the parent (with the
    channel's backpressure), then values go both ways through asyncio."""
    count = 600  # more than a channel's default buffer
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('bridge', enable_modules=[__name__], infect_asyncio=True)
            async with portal.open_context(bridge, count=count) as (ctx, first):
                assert first == {'count': count}
                async with ctx.open_stream() as stream:
                    got = []
                    while (v := await stream.receive()) != 'end':
                        got.append(v)
                    assert got == list(range(count))
                    assert await stream.receive() == 'doubler up'
                    for x in (1, 5, 21):
                        await stream.send(x)
                        assert await stream.receive() == 2 * x
            assert await ctx.wait_for_result() == count
            await portal.cancel_actor()
    _no_asyncio_warnings(capfd.readouterr().err)


async def test_asyncio_error_reaches_parent(runtime_kwargs, start_method):
    """An asyncio task's exception propagates like a trio task's: the trio
    task raises it, the parent gets RemoteActorError boxing it."""
    with trio.fail_after(TIMEOUT):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
                await an.run_in_actor(raise_from_asyncio, infect_asyncio=True)
    assert info.value.boxed_type is ValueError
    assert 'asyncio failed after 0.01' in str(info.value)
    assert 'aio_raise' in info.value.tb_str  # the asyncio frame is in the remote traceback


async def test_asyncio_error_cancels_channel_block(runtime_kwargs, start_method):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('chan', enable_modules=[__name__], infect_asyncio=True)
            out = await portal.run(channel_error_cancels_block)
            await portal.cancel_actor()
    assert out == {'err': "KeyError('midstream')", 'got': ['go']}


async def test_trio_error_cancels_asyncio_task(runtime_kwargs, start_method):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('chan', enable_modules=[__name__], infect_asyncio=True)
            out = await portal.run(trio_error_cancels_asyncio)
            await portal.cancel_actor()
    # the asyncio task had finished its cancellation when the error came out
    assert out == {'err': 'trio side failed', 'events': ['chan started', 'chan cancelled']}


async def test_trio_cancel_cancels_asyncio_task(runtime_kwargs, start_method):
    """A trio cancel scope around run_task, and a cancel of the remote call
    from the parent, each cancel the asyncio task and wait for it."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('cancel', enable_modules=[__name__], infect_asyncio=True)
            assert await portal.run(trio_cancel_cancels_asyncio) == [
                'scoped started',
                'scoped cancelled',
            ]
            # the parent cancels its call: the child's asyncio task is cancelled
            scope = trio.CancelScope()

            async def call() -> None:
                with scope:
                    await portal.run(wait_forever_in_asyncio, tag='remote')

            async with trio.open_nursery() as tn:
                tn.start_soon(call)
                with trio.fail_after(10):
                    while 'remote started' not in await portal.run(events):
                        await trio.sleep(0.02)
                scope.cancel()
            assert scope.cancelled_caught
            with trio.fail_after(10):
                while 'remote cancelled' not in await portal.run(events):
                    await trio.sleep(0.02)
            assert await portal.cancel_actor()


async def test_actor_cancel_cancels_asyncio_tasks(runtime_kwargs, start_method, capfd, pids_gone):
    """Cancelling the actor cancels every asyncio task it started (and those
    asyncio code spawned itself); the process exits without warnings."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('busy', enable_modules=[__name__], infect_asyncio=True)
            child_pid = await portal.run(pid)

            async def call(tag: str) -> None:
                with pytest.raises(tractor.ContextCancelled):
                    await portal.run(wait_forever_in_asyncio, tag=tag)

            async with trio.open_nursery() as tn:
                for tag in ('a', 'b'):
                    tn.start_soon(call, tag)
                with trio.fail_after(10):
                    while len(await portal.run(events)) < 2:
                        await trio.sleep(0.02)
                assert await portal.cancel_actor()
    assert await pids_gone([child_pid]) == []
    _no_asyncio_warnings(capfd.readouterr().err)


async def test_asyncio_side_cancel_is_an_error(runtime_kwargs, start_method):
    """asyncio code cancelling its own task is not a trio cancel: the trio
    side raises AsyncioCancelled, which reaches the parent."""
    with trio.fail_after(TIMEOUT):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
                await an.run_in_actor(asyncio_side_cancel, infect_asyncio=True)
    assert info.value.boxed_type is to_asyncio.AsyncioCancelled


@pytest.mark.slow
async def test_asyncio_task_ignoring_cancel_is_killed(runtime_kwargs, start_method, pids_gone):
    """An asyncio task that swallows every cancel: the actor cannot finish
    its cancellation, so the parent's ladder kills it (SIGKILL) after the
    grace, before the actor's own, longer, asyncio grace runs out."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor(
                'stubborn', enable_modules=[__name__], infect_asyncio=True
            )
            child_pid = await portal.run(pid)
            # the process object the nursery supervises the child with
            proc = an._children[portal.channel.aid.uid].proc

            async def call() -> None:
                with pytest.raises((tractor.ContextCancelled, tractor.TransportClosed)):
                    await portal.run(run_stubborn)

            async with trio.open_nursery() as tn:
                tn.start_soon(call)
                with trio.fail_after(10):
                    while 'stubborn started' not in await portal.run(events):
                        await trio.sleep(0.02)
                await an.cancel()
    assert await pids_gone([child_pid]) == []
    assert proc.returncode == -signal.SIGKILL


async def test_bridges_refuse_outside_infected_actor(runtime_kwargs, start_method):
    with trio.fail_after(TIMEOUT):
        with pytest.raises(to_asyncio.NotInfectedError, match='infect_asyncio=True'):
            await to_asyncio.run_task(aio_raise, after=0)
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('plain', enable_modules=[__name__])
            assert await portal.run(try_bridges) == ['NotInfectedError'] * 2
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(raise_from_asyncio)
            assert info.value.boxed_type is to_asyncio.NotInfectedError
            await portal.cancel_actor()


async def test_cluster_of_infected_workers(runtime_kwargs, start_method):
    with trio.fail_after(TIMEOUT):
        async with (
            tractor.open_actor_cluster(
                modules=[__name__],
                count=3,
                infect_asyncio=True,
                start_method=start_method,
                **runtime_kwargs,
            ) as portals,
            collapse_eg(),
            trio.open_nursery() as tn,
        ):
            results: dict[str, dict] = {}

            async def one(key: str, portal: tractor.Portal, x: int) -> None:
                results[key] = await portal.run(worker_info, x=x)

            for i, (key, portal) in enumerate(portals.items()):
                tn.start_soon(one, key, portal, i)
    assert sorted(r['square'] for r in results.values()) == [0, 1, 4]
    assert all(r['infected'] for r in results.values())


async def test_bad_arguments(runtime_kwargs, start_method):
    """Typed errors naming the problem, raised in the infected child's trio
    task and boxed for the parent."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            portal = await an.start_actor('args', enable_modules=[__name__], infect_asyncio=True)
            errs = await portal.run(misuse)
            await portal.cancel_actor()
    assert errs == [
        'TypeError: run_task() takes an asyncio coroutine function; pid_sync returned int, '
        'not a coroutine',
        'TypeError: aio_raise must take a `chan` argument (the LinkedTaskChannel to the trio '
        'side), or `to_trio` and `from_trio`',
        "RuntimeError: asyncio task 'aio_returns_early' returned 1 before it called "
        'chan.started_nowait(): open_channel_from() needs a first value',
    ]


def _spares() -> list[int]:
    """The fork server's idle spare children below this process."""
    return [p for p in descendants() if cmdline(p).startswith(b'tractor\0fork\0server\0spare')]


def _has_asyncio(pid: int) -> bool:
    """Whether ``pid`` has asyncio's C extension mapped (it imported asyncio)."""
    try:
        with open(f'/proc/{pid}/maps') as f:
            return '_asyncio.' in f.read()
    except OSError:
        return False


async def _wait_spares(pred) -> list[int]:
    with trio.fail_after(10):
        while not (found := [p for p in _spares() if pred(p)]):
            await trio.sleep(0.02)
    return found


async def test_fork_server_warms_asyncio_for_infected_children(runtime_kwargs, start_method):
    """Spares start without asyncio; once a tree asked for an infected
    child, the server imports it and every later spare has it warm."""
    if start_method != 'forkserver':
        pytest.skip('a property of the fork server')
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            plain = await an.start_actor('plain', enable_modules=[__name__])
            assert await _wait_spares(lambda p: not _has_asyncio(p))
            assert not any(_has_asyncio(p) for p in _spares())
            first = await an.start_actor('aio1', enable_modules=[__name__], infect_asyncio=True)
            await _wait_spares(_has_asyncio)
            second = await an.start_actor('aio2', enable_modules=[__name__], infect_asyncio=True)
            assert (await second.run(worker_info, x=3))['square'] == 9
            for portal in (plain, first, second):
                await portal.cancel_actor()


async def test_infect_asyncio_must_be_a_bool(runtime_kwargs, start_method):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs, start_method=start_method) as an:
            with pytest.raises(TypeError, match="infect_asyncio must be a bool, got 'yes'"):
                await an.start_actor('x', infect_asyncio='yes')
            with pytest.raises(TypeError, match='infect_asyncio must be a bool'):
                async with tractor.open_actor_cluster(modules=[], count=1, infect_asyncio=1):
                    pass


def pid_sync() -> int:
    return os.getpid()


async def aio_returns_early(chan: to_asyncio.LinkedTaskChannel) -> int:
    return 1


async def misuse() -> list[str]:
    out = []
    for attempt in (
        lambda: to_asyncio.run_task(pid_sync),
        lambda: _enter(to_asyncio.open_channel_from(aio_raise, after=0)),
        lambda: _enter(to_asyncio.open_channel_from(aio_returns_early)),
    ):
        try:
            await attempt()
        except (TypeError, RuntimeError) as err:
            out.append(f'{type(err).__name__}: {err}')
    return out


async def _enter(cm) -> None:
    async with cm:
        pass
