"""open_actor_cluster(): sizing, naming, argument checks, runtime options,
concurrent spawning, composition styles and discovery of the workers.

Teardown, errors and cancellation are in ``test_cluster_teardown.py``; the
seed's example program in ``test_quick_cluster_example.py``.
"""

from __future__ import annotations

import inspect
import os
import socket
from functools import partial
from multiprocessing import cpu_count

import pytest
import trio

import tractor
from tractor import Portal

pytestmark = pytest.mark.slow

# -- functions the workers serve (this module is their RPC allowlist) --------


async def whoami() -> dict:
    actor = tractor.current_actor()
    return {
        'name': actor.name,
        'uid': list(actor.uid),
        'pid': os.getpid(),
        'ppid': os.getppid(),
        # the actor that spawned this one (the OS parent is the fork server
        # with start_method='forkserver')
        'parent_pid': parent.channel.aid.pid if (parent := actor.parent_portal) else None,
        'is_root': tractor.is_root_process(),
        'loglevel': actor.loglevel,
        'debug_mode': actor.debug_mode,
        'start_method': actor.start_method,
        'enable_transports': list(actor.enable_transports),
        'reg_addrs': [list(a) for a in actor.reg_addrs],
    }


async def square(x: int) -> list:
    return [tractor.current_actor().name, x * x]


async def cluster_from_here(count: int) -> dict:
    """Open a cluster from inside this (non-root) actor; report its keys and
    the names its workers see for themselves."""
    async with tractor.open_actor_cluster(modules=[__name__], count=count) as portal_map:
        seen = {key: (await portal.run(whoami))['name'] for key, portal in portal_map.items()}
    return {'spawner': tractor.current_actor().name, 'keys': list(portal_map), 'seen': seen}


async def cluster_with_root_options(registry_addrs: list) -> str:
    """Try a root-only option from inside a running (non-root) actor."""
    try:
        async with tractor.open_actor_cluster(
            modules=[__name__], count=1, registry_addrs=registry_addrs
        ):
            pass
    except TypeError as err:
        return str(err)
    return 'accepted'


async def find_sibling(name: str) -> dict:
    """From inside one worker, look another one up by name and ask it who it is."""
    async with tractor.find_actor(name) as portal:
        if portal is None:
            return {}
        return await portal.run(whoami)


@tractor.context
async def doubler(ctx: tractor.Context, offset: int) -> str:
    """Stream: reply to each number with ``2 * n + offset``, tagged by worker."""
    me = tractor.current_actor().name
    await ctx.started(me)
    async with ctx.open_stream() as stream:
        async for n in stream:
            await stream.send([me, 2 * n + offset])
    return f'{me} done'


# -- boot barrier: proves the workers boot at the same time ------------------

BARRIER_ENV = 'TRACTOR_CLUSTER_TEST_BOOT_BARRIER'


def _boot_barrier() -> None:
    """Runs while a worker boots (its enabled modules are imported before it
    reports ready to its parent): check in with the test's barrier server and
    block until every worker of the cluster has checked in.

    Spawning the workers one after another would deadlock here (the first one
    could never finish booting), so a cluster that opens proves all its
    workers were booting at the same time.
    """
    where = os.environ.get(BARRIER_ENV)
    actor = tractor.current_actor(err_on_no_runtime=False)
    if not where or actor is None or actor.is_root:
        return
    host, port = where.rsplit(':', 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.settimeout(30)
        sock.sendall(actor.name.encode() + b'\n')
        if sock.recv(1) != b'g':
            raise RuntimeError('boot barrier closed without releasing this worker')


_boot_barrier()


# -- signature and sizing -----------------------------------------------------


def test_signature_matches_seed():
    params = inspect.signature(tractor.open_actor_cluster).parameters
    # the seed's parameters, in its order; then the supervision options
    # (issue #14), keyword-only, which change nothing when left out
    assert list(params) == [
        'modules',
        'count',
        'names',
        'hard_kill',
        'strategy',
        'max_restarts',
        'within',
        'runtime_kwargs',
    ]
    for name in ('strategy', 'max_restarts', 'within'):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[name].default is None
    assert params['count'].default == cpu_count()
    assert params['names'].default is None
    assert params['hard_kill'].default is False
    assert params['runtime_kwargs'].kind is inspect.Parameter.VAR_KEYWORD
    assert tractor.open_actor_cluster is tractor.cluster.open_actor_cluster


async def test_yields_dict_of_portals(runtime_kwargs):
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=2, **runtime_kwargs
        ) as portal_map:
            assert type(portal_map) is dict
            assert all(isinstance(k, str) for k in portal_map)
            assert all(isinstance(p, Portal) for p in portal_map.values())
            infos = [await p.run(whoami) for p in portal_map.values()]
            # a flat fleet: distinct processes, each a direct child of the spawner
            assert len({i['pid'] for i in infos}) == 2
            assert all(i['parent_pid'] == os.getpid() for i in infos)
            assert not any(i['is_root'] for i in infos)


async def test_default_count_is_cpu_count(runtime_kwargs):
    with trio.fail_after(90):
        async with tractor.open_actor_cluster(modules=[__name__], **runtime_kwargs) as portal_map:
            assert len(portal_map) == cpu_count()
            infos = [await p.run(whoami) for p in portal_map.values()]
            assert len({i['pid'] for i in infos}) == cpu_count()


async def test_worker_actor_is_named_by_its_key(runtime_kwargs):
    """Each worker's actor name is its key in the map: what it sees as
    ``current_actor().name`` and ``.uid[0]``, and what its portal reports."""
    keys = ['root.worker_0', 'root.worker_1', 'root.worker_2']
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=3, **runtime_kwargs
        ) as portal_map:
            assert list(portal_map) == keys
            infos = [await p.run(whoami) for p in portal_map.values()]
            assert [i['name'] for i in infos] == keys
            assert [i['uid'][0] for i in infos] == keys
            assert [p.channel.aid.name for p in portal_map.values()] == keys


async def test_keys_prefixed_with_root_name(runtime_kwargs):
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=2, **runtime_kwargs
        ) as portal_map:
            assert tractor.current_actor().name == 'root'
            assert list(portal_map) == ['root.worker_0', 'root.worker_1']


async def test_keys_prefixed_with_custom_root_name(runtime_kwargs):
    """``name`` is an open_root_actor() option: passed through, it renames
    the root, and the keys (the workers' names) follow."""
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=2, name='boss', **runtime_kwargs
        ) as portal_map:
            assert list(portal_map) == ['boss.worker_0', 'boss.worker_1']
            seen = [(await p.run(whoami))['name'] for p in portal_map.values()]
            assert seen == ['boss.worker_0', 'boss.worker_1']


async def test_nested_spawner_names_its_workers_after_itself(runtime_kwargs):
    """A cluster opened by a (non-root) subactor is keyed, and its workers
    named, by that actor's name."""
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('spawner', enable_modules=[__name__])
            out = await portal.run(cluster_from_here, count=2)
            await portal.cancel_actor()
    assert out['spawner'] == 'spawner'
    assert out['keys'] == ['spawner.worker_0', 'spawner.worker_1']
    assert out['seen'] == {
        'spawner.worker_0': 'spawner.worker_0',
        'spawner.worker_1': 'spawner.worker_1',
    }


async def test_custom_names_are_keys_and_actor_names_under_the_spawner(runtime_kwargs):
    names = ['scout', 'miner', 'smelter', 'smith']
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=4, names=names, **runtime_kwargs
        ) as portal_map:
            assert list(portal_map) == [f'root.{n}' for n in names]
            seen = [(await p.run(whoami))['name'] for p in portal_map.values()]
            assert seen == [f'root.{n}' for n in names]


MYLIB_WORKERS = """
import tractor


async def report() -> list:
    actor = tractor.current_actor()
    return [actor.name, actor.debug_mode]
"""


async def test_seed_sizing_sample_runs(tmp_path, monkeypatch):
    """The seed's sizing/naming sample, as written: an importable worker
    module, four named workers and the fleet-wide ``debug_mode`` option.

    It relies on the default transport (TCP) and registry address, which
    ``TRACTOR_TCP_REGISTRY`` moves to a private port for this test.
    """
    pkg = tmp_path / 'mylib'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'workers.py').write_text(MYLIB_WORKERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        monkeypatch.setenv('TRACTOR_TCP_REGISTRY', f'127.0.0.1:{s.getsockname()[1]}')

    with trio.fail_after(60):
        # -- the sample, verbatim --
        async with tractor.open_actor_cluster(
            modules=['mylib.workers'],
            count=4,
            names=['scout', 'miner', 'smelter', 'smith'],
            debug_mode=True,  # whole-fleet crash-to-REPL
        ) as portal_map:
            # -- end of the sample --
            assert list(portal_map) == ['root.scout', 'root.miner', 'root.smelter', 'root.smith']
            reports = [await p.run_from_ns('mylib.workers', 'report') for p in portal_map.values()]
    assert reports == [
        ['root.scout', True],
        ['root.miner', True],
        ['root.smelter', True],
        ['root.smith', True],
    ]


async def test_modules_is_the_rpc_allowlist(runtime_kwargs):
    """Workers run functions from ``modules`` and nothing else."""
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=1, **runtime_kwargs
        ) as portal_map:
            (portal,) = portal_map.values()
            assert await portal.run(square, x=7) == ['root.worker_0', 49]
            with pytest.raises(tractor.RemoteActorError) as err:
                await portal.run_from_ns('os', 'getcwd')
            assert err.value.boxed_type is tractor.ModuleNotExposed


# -- argument checks: rejected before anything is spawned --------------------


@pytest.fixture
def spawn_spy(monkeypatch):
    """Record every attempt to spawn: through the actor nursery API and at
    the OS level (the spawn backend's process creation)."""
    calls: list[str] = []
    real_start = tractor.ActorNursery.start_actor
    real_open_process = trio.lowlevel.open_process

    async def start_actor(self, name, **kw):
        calls.append(f'start_actor({name!r})')
        return await real_start(self, name, **kw)

    async def open_process(cmd, **kw):
        calls.append(f'open_process({cmd!r})')
        return await real_open_process(cmd, **kw)

    monkeypatch.setattr(tractor.ActorNursery, 'start_actor', start_actor)
    monkeypatch.setattr(trio.lowlevel, 'open_process', open_process)
    return calls


def child_pids() -> set[int]:
    """Live child processes of this process (all threads)."""
    pids: set[int] = set()
    for tid in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{tid}/children') as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


@pytest.fixture(params=['no-runtime', 'running-actor'])
def rejected_before_spawning(request, spawn_spy, runtime_kwargs):
    """``await rejected_before_spawning(**cluster_kwargs)``: opening the
    cluster raises ValueError, with no runtime booted and no process
    started; tried both with no runtime and inside a running root actor."""

    async def check(**kwargs) -> ValueError:
        with trio.fail_after(30):
            if request.param == 'no-runtime':
                with pytest.raises(ValueError) as err:
                    async with tractor.open_actor_cluster(
                        modules=[__name__], **kwargs, **runtime_kwargs
                    ):
                        pytest.fail('the cluster opened')
                assert tractor.current_actor(err_on_no_runtime=False) is None
            else:
                async with tractor.open_root_actor(**runtime_kwargs):
                    before = child_pids()
                    with pytest.raises(ValueError) as err:
                        async with tractor.open_actor_cluster(modules=[__name__], **kwargs):
                            pytest.fail('the cluster opened')
                    assert child_pids() == before
        assert spawn_spy == []
        return err.value

    return check


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(count=2, names=['a', 'b', 'c']),
        dict(count=3, names=['a', 'b']),
        dict(names=[f'n{i}' for i in range(cpu_count() + 1)]),  # count defaults to cpu_count()
    ],
    ids=['longer', 'shorter', 'default-count'],
)
async def test_mismatched_names_raise_value_error_before_spawning(kwargs, rejected_before_spawning):
    err = await rejected_before_spawning(**kwargs)
    assert f'{len(kwargs["names"])} names for count=' in str(err)


@pytest.mark.parametrize('count', [0, -1])
async def test_count_below_one_raises_value_error_before_spawning(count, rejected_before_spawning):
    err = await rejected_before_spawning(count=count)
    assert 'count' in str(err)


async def test_duplicate_names_raise_value_error_before_spawning(rejected_before_spawning):
    err = await rejected_before_spawning(count=3, names=['a', 'b', 'a'])
    assert 'unique' in str(err) and "['a']" in str(err)


async def test_empty_name_raises_value_error_before_spawning(rejected_before_spawning):
    await rejected_before_spawning(count=2, names=['a', ''])


@pytest.mark.parametrize('modules', ['just_one_module', None, 42])
def test_modules_must_be_a_list(modules):
    cm = tractor.open_actor_cluster(modules=modules, count=1)
    with pytest.raises(TypeError, match='list of module names'):
        trio.run(cm.__aenter__)


# -- runtime options ------------------------------------------------------------


async def test_runtime_kwargs_forwarded_to_open_root_actor(
    runtime_kwargs, tpt_proto, reg_addr, recording_spawner, restore_tractor_loglevel
):
    """Fleet-wide options reach open_root_actor() verbatim, so the root and
    every worker run with them."""
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__],
            count=2,
            loglevel='error',
            start_method=recording_spawner.key,
            **runtime_kwargs,
        ) as portal_map:
            root = tractor.current_actor()
            assert root.reg_addrs == [reg_addr]
            assert root.enable_transports == [tpt_proto]
            assert root.loglevel == 'error'
            for portal in portal_map.values():
                info = await portal.run(whoami)
                assert info['reg_addrs'] == [list(reg_addr)]
                assert info['enable_transports'] == [tpt_proto]
                assert info['loglevel'] == 'error'
                assert info['start_method'] == recording_spawner.key
                assert portal.channel.raddr.proto_key == tpt_proto
    # the workers really were started by the backend named in the kwargs
    assert sorted(recording_spawner.procs) == ['root.worker_0', 'root.worker_1']


async def test_unknown_runtime_kwarg_reaches_open_root_actor(spawn_spy, runtime_kwargs):
    """Nothing is filtered on the way: a typo fails in open_root_actor()."""
    with trio.fail_after(30):
        with pytest.raises(
            TypeError,
            match=r'open_(root_actor|nursery)\(\) got an unexpected keyword argument .bogus_option.',
        ):
            async with tractor.open_actor_cluster(
                modules=[__name__], count=1, bogus_option=True, **runtime_kwargs
            ):
                pytest.fail('the cluster opened')
    assert spawn_spy == []


async def test_inside_running_actor_uses_existing_runtime(runtime_kwargs, restore_tractor_loglevel):
    """Within a running actor, the cluster spawns from that actor and accepts
    the per-child options (``loglevel``, ``debug_mode``, ``start_method``)."""
    with trio.fail_after(60):
        async with tractor.open_root_actor(name='host', **runtime_kwargs) as root:
            async with tractor.open_actor_cluster(
                modules=[__name__], count=2, loglevel='error', debug_mode=True
            ) as portal_map:
                assert tractor.current_actor() is root
                assert list(portal_map) == ['host.worker_0', 'host.worker_1']
                for key, portal in portal_map.items():
                    info = await portal.run(whoami)
                    assert info['name'] == key
                    assert info['loglevel'] == 'error'
                    assert info['debug_mode'] is True
            # the runtime outlives the cluster
            assert tractor.current_actor() is root


@pytest.mark.parametrize(
    'option', ['registry_addrs', 'enable_transports', 'name', 'ensure_registry']
)
async def test_root_only_kwargs_rejected_inside_running_actor(option, runtime_kwargs, spawn_spy):
    values = {
        'registry_addrs': runtime_kwargs['registry_addrs'],
        'enable_transports': runtime_kwargs['enable_transports'],
        'name': 'other',
        'ensure_registry': True,
    }
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs):
            with pytest.raises(TypeError) as err:
                async with tractor.open_actor_cluster(
                    modules=[__name__], count=1, **{option: values[option]}
                ):
                    pytest.fail('the cluster opened')
    msg = str(err.value)
    assert option in msg
    assert 'open_root_actor' in msg and 'running' in msg
    assert spawn_spy == []


async def test_root_only_kwargs_rejected_in_subactor(runtime_kwargs, reg_addr):
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('spawner', enable_modules=[__name__])
            msg = await portal.run(cluster_with_root_options, registry_addrs=[reg_addr])
            await portal.cancel_actor()
    assert 'registry_addrs' in msg and 'open_root_actor' in msg


async def test_debug_mode_reaches_every_worker(runtime_kwargs):
    """``debug_mode=True`` (the seed's whole-fleet option) reaches every
    worker, and the cluster works as usual. (Crash-to-REPL itself is driven
    through a terminal in integration/tests/test_debugger.py.)"""
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=2, debug_mode=True, **runtime_kwargs
        ) as portal_map:
            assert tractor.current_actor().debug_mode is True
            for portal in portal_map.values():
                info = await portal.run(whoami)
                assert info['debug_mode'] is True
                assert await portal.run(square, x=3) == [info['name'], 9]


# -- concurrency ------------------------------------------------------------------


async def test_workers_spawn_concurrently(runtime_kwargs, monkeypatch):
    """Every worker is still booting when the last one starts: each blocks
    its boot on a barrier that opens only once all of them checked in (a
    one-after-another spawn could never get past the first worker)."""
    count = 4
    checked_in: list[str] = []
    all_in = trio.Event()

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            data = b''
            while not data.endswith(b'\n'):
                chunk = await stream.receive_some(64)
                if not chunk:
                    return
                data += chunk
            checked_in.append(data.decode().strip())
            if len(checked_in) == count:
                all_in.set()
            await all_in.wait()
            await stream.send_all(b'g')

    with trio.fail_after(60):
        async with trio.open_nursery() as tn:
            listeners = await tn.start(partial(trio.serve_tcp, handle, 0, host='127.0.0.1'))
            port = listeners[0].socket.getsockname()[1]
            monkeypatch.setenv(BARRIER_ENV, f'127.0.0.1:{port}')
            async with tractor.open_actor_cluster(
                modules=[__name__], count=count, **runtime_kwargs
            ) as portal_map:
                assert len(portal_map) == count
                names = [(await p.run(whoami))['name'] for p in portal_map.values()]
            tn.cancel_scope.cancel()
    assert sorted(checked_in) == sorted(names) == [f'root.worker_{i}' for i in range(count)]


# -- composition styles ---------------------------------------------------------------


async def test_portal_run_fan_out(runtime_kwargs):
    """Style 1: one ``portal.run()`` per worker from a plain trio nursery."""
    results: dict[str, tuple[str, int]] = {}

    async def call(key: str, portal: Portal, x: int) -> None:
        results[key] = tuple(await portal.run(square, x=x))

    with trio.fail_after(60):
        async with (
            tractor.open_actor_cluster(modules=[__name__], count=3, **runtime_kwargs) as portal_map,
            tractor.trionics.collapse_eg(),
            trio.open_nursery() as tn,
        ):
            for i, (key, portal) in enumerate(portal_map.items()):
                tn.start_soon(call, key, portal, i + 2)
    assert results == {
        'root.worker_0': ('root.worker_0', 4),
        'root.worker_1': ('root.worker_1', 9),
        'root.worker_2': ('root.worker_2', 16),
    }


async def test_gather_contexts_streaming_to_every_worker(runtime_kwargs):
    """Style 2: N concurrent ``portal.open_context()`` blocks entered through
    ``trionics.gather_contexts``, each with a bidirectional stream."""
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=3, **runtime_kwargs
        ) as portal_map:
            portals = list(portal_map.values())
            async with tractor.trionics.gather_contexts(
                [p.open_context(doubler, offset=i) for i, p in enumerate(portals)]
            ) as opened:
                assert [first for _, first in opened] == [
                    'root.worker_0',
                    'root.worker_1',
                    'root.worker_2',
                ]
                async with tractor.trionics.gather_contexts(
                    [ctx.open_stream() for ctx, _ in opened]
                ) as streams:
                    replies: dict[str, list[int]] = {}

                    async def talk(stream: tractor.MsgStream) -> None:
                        for n in range(5):
                            await stream.send(n)
                            who, got = await stream.receive()
                            replies.setdefault(who, []).append(got)

                    async with trio.open_nursery() as tn:
                        for stream in streams:
                            tn.start_soon(talk, stream)
                results = [await ctx.wait_for_result() for ctx, _ in opened]
    assert replies == {f'root.worker_{i}': [2 * n + i for n in range(5)] for i in range(3)}
    assert results == ['root.worker_0 done', 'root.worker_1 done', 'root.worker_2 done']


# -- discovery ---------------------------------------------------------------------


async def test_find_actor_by_key_reaches_that_worker(runtime_kwargs):
    """``find_actor('root.worker_1')`` reaches the worker the map calls
    ``'root.worker_1'``, from the root and from a sibling worker; the bare
    worker name is not registered."""
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=3, **runtime_kwargs
        ) as portal_map:
            want = list(portal_map['root.worker_1'].channel.aid.uid)
            async with tractor.find_actor('root.worker_1') as portal:
                assert portal is not None
                assert (await portal.run(whoami))['uid'] == want
            async with tractor.find_actor('worker_1') as portal:
                assert portal is None
            # from another worker, which has no connection to root.worker_1 yet
            via_sibling = await portal_map['root.worker_0'].run(find_sibling, name='root.worker_1')
            assert via_sibling['uid'] == want
            via_other = await portal_map['root.worker_2'].run(find_sibling, name='root.worker_0')
            assert via_other['uid'] == list(portal_map['root.worker_0'].channel.aid.uid)
            assert await portal_map['root.worker_2'].run(find_sibling, name='worker_0') == {}


async def test_find_actor_by_custom_name_key(runtime_kwargs):
    """Custom ``names`` follow the same rule: ``find_actor('root.scout')``
    reaches the worker keyed ``'root.scout'``, from the root and from a
    sibling."""
    with trio.fail_after(60):
        async with tractor.open_actor_cluster(
            modules=[__name__], count=2, names=['scout', 'miner'], **runtime_kwargs
        ) as portal_map:
            scout = list(portal_map['root.scout'].channel.aid.uid)
            async with tractor.find_actor('root.scout') as portal:
                assert portal is not None
                assert (await portal.run(whoami))['uid'] == scout
            found = await portal_map['root.scout'].run(find_sibling, name='root.miner')
            assert found['uid'] == list(portal_map['root.miner'].channel.aid.uid)
            assert found['name'] == 'root.miner'


@tractor.context
async def hold_cluster(ctx: tractor.Context, count: int) -> None:
    """Open a cluster from this (non-root) actor and hold it until the
    context is cancelled; start with each key's uid and what a sibling
    lookup by key finds."""
    async with tractor.open_actor_cluster(modules=[__name__], count=count) as portal_map:
        first = portal_map[f'{tractor.current_actor().name}.worker_0']
        await ctx.started(
            {
                'uids': {key: list(p.channel.aid.uid) for key, p in portal_map.items()},
                'via_sibling': {
                    key: (await first.run(find_sibling, name=key))['uid']
                    for key in list(portal_map)[1:]
                },
            }
        )
        await trio.sleep_forever()


async def test_find_actor_by_key_reaches_nested_spawners_worker(runtime_kwargs):
    """Workers of a cluster opened by the actor ``spawner`` register as
    ``'spawner.worker_i'``: ``find_actor('spawner.worker_1')`` reaches that
    worker from the root, and a sibling worker finds it the same way."""
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('spawner', enable_modules=[__name__])
            async with portal.open_context(hold_cluster, count=2) as (ctx, got):
                assert list(got['uids']) == ['spawner.worker_0', 'spawner.worker_1']
                want = got['uids']['spawner.worker_1']
                assert want[0] == 'spawner.worker_1'
                assert got['via_sibling'] == {'spawner.worker_1': want}
                async with tractor.find_actor('spawner.worker_1') as found:
                    assert found is not None
                    assert (await found.run(whoami))['uid'] == want
                await ctx.cancel()
            await portal.cancel_actor()
