"""Watching and operating the registry, over real processes: the watch API
(TCP and UDS; registering, exiting and SIGKILLed actors; a slow watcher),
the standalone registrar daemon, failover across two registrars, and the
``tractor`` command run as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

import tractor
from tractor.discovery import (
    Registered,
    Unregistered,
    WatchOverflow,
    find_actor,
    observer,
    wait_for_actor,
    watch,
)
from tractor.discovery._client import client
from tractor.plugin import wrap_address

pytestmark = pytest.mark.slow

TIMEOUT = 40

#: a root actor registering as argv[1] at the registry argv[3] over argv[2];
#: it exits gracefully when its stdin closes
ACTOR = textwrap.dedent("""
    import sys, trio, tractor
    async def main():
        regs = [tractor.plugin.wrap_address(a).unwrap() for a in sys.argv[3:]]
        async with tractor.open_root_actor(
            name=sys.argv[1], enable_transports=[sys.argv[2]], registry_addrs=regs,
        ):
            print('ready', flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)
    if __name__ == '__main__':
        trio.run(main)
""")

#: a tree: root argv[1] with child argv[2]; exits gracefully on stdin close
TREE = textwrap.dedent("""
    import sys, trio, tractor
    async def main():
        regs = [tractor.plugin.wrap_address(a).unwrap() for a in sys.argv[3:]]
        async with tractor.open_nursery(name=sys.argv[1], registry_addrs=regs) as an:
            await an.start_actor(sys.argv[2])
            async with tractor.find_actor(sys.argv[2], only_first=False) as found:
                assert found, 'the child is not registered'
            print('ready', flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)
            await an.cancel()
    if __name__ == '__main__':
        trio.run(main)
""")


def maddr(addr) -> str:
    return str(wrap_address(addr))


def _reap(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=TIMEOUT)


@contextmanager
def registrar(addr, tmp_path: Path):
    """A ``tractor registrar`` daemon at ``addr``; stopped by SIGTERM after,
    and it must exit 0."""
    err = open(tmp_path / f'registrar-{uuid.uuid4().hex[:6]}.log', 'w+')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'tractor', 'registrar', '--listen', maddr(addr)],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith('registrar listening on'), (line, _tail(err))
        proc.log = err  # type: ignore[attr-defined]  # the fixture keeps the log with its process
        yield proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=TIMEOUT) == 0, _tail(err)
    finally:
        _reap(proc)
        err.close()


def _tail(f) -> str:
    f.flush()
    f.seek(0)
    return f.read()[-3000:]


@contextmanager
def program(script: str, *args: str, tmp_path: Path):
    path = tmp_path / f'prog_{uuid.uuid4().hex[:6]}.py'
    path.write_text(script)
    proc = subprocess.Popen(
        [sys.executable, str(path), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == 'ready'
        yield proc
    finally:
        if proc.poll() is None and proc.stdin:
            proc.stdin.close()
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        _reap(proc)


async def start(script: str, *args: str, tmp_path: Path, stack) -> subprocess.Popen:
    # the readline blocks: in a thread, so the watch keeps running
    return await trio.to_thread.run_sync(
        lambda: stack.enter_context(program(script, *args, tmp_path=tmp_path))
    )


async def next_event(events, kind, name: str):
    async for ev in events:
        if isinstance(ev, kind) and ev.name == name:
            return ev
    raise AssertionError(f'the watch ended before {kind.__name__} {name}')


async def held(reg) -> int:
    """How many registration holds the registrar at ``reg`` has served."""
    info = await client(tractor.current_actor()).call(wrap_address(reg), 'registrar_info')
    return info['served'].get('hold', 0)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'tractor', *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
    )


# -- the watch API ------------------------------------------------------------
async def test_watch_sees_registering_exiting_and_killed_actors(tpt_proto, reg_addr, tmp_path):
    """Registered with the entry's pid when an actor boots; Unregistered
    'graceful' when it exits, 'stale' when it is SIGKILLed (the registrar
    notices its connection going and finds it dead); over TCP and UDS."""
    from contextlib import ExitStack

    with registrar(reg_addr, tmp_path), ExitStack() as stack:
        with trio.fail_after(TIMEOUT), observer():
            async with tractor.open_root_actor(
                registry_addrs=[reg_addr], enable_transports=[tpt_proto]
            ):
                async with watch('wt_', prefix=True) as events:
                    a = await start(
                        ACTOR, 'wt_a', tpt_proto, maddr(reg_addr), tmp_path=tmp_path, stack=stack
                    )
                    ev = await next_event(events, Registered, 'wt_a')
                    assert ev.pid == a.pid and ev.host and ev.registered and ev.parent is None
                    a.stdin.close()
                    ev = await next_event(events, Unregistered, 'wt_a')
                    assert ev.reason == 'graceful'
                    holds = await held(reg_addr)
                    b = await start(
                        ACTOR, 'wt_b', tpt_proto, maddr(reg_addr), tmp_path=tmp_path, stack=stack
                    )
                    await next_event(events, Registered, 'wt_b')
                    # a booted actor holds its registration open on the
                    # registrar: the kill is noticed through that hold
                    assert await held(reg_addr) == holds + 1
                    b.kill()
                    ev = await next_event(events, Unregistered, 'wt_b')
                    assert ev.reason == 'stale'
                # a new watch starts with the current entries (the daemon's own)
                async with watch() as events:
                    first = await events.__anext__()
                    assert isinstance(first, Registered) and first.name == 'registrar'


async def test_slow_watcher_is_bounded_and_closing_ends_the_subscription(free_port_addr, tmp_path):
    """A watcher that does not read while the registry changes is dropped
    on the registrar (its queue is bounded) and gets WatchOverflow; leaving
    a watch block ends its subscription on the registrar."""
    reg = free_port_addr
    with registrar(reg, tmp_path):
        with trio.fail_after(TIMEOUT), observer():
            async with tractor.open_root_actor(registry_addrs=[reg]) as actor:
                cli_ = client(actor)

                async def watchers() -> int:
                    # (less the daemon's own change log)
                    return (await cli_.call(wrap_address(reg), 'registrar_info'))['watchers'] - 1

                async with watch('flood', buffer=4) as events:
                    assert await watchers() == 1
                    for i in range(400):  # far more than a window and the buffer
                        await cli_.call(
                            wrap_address(reg),
                            'register_actor',
                            uid=['flood', f'u{i}'],
                            addrs=[('tcp', ['127.0.0.1', 9])],
                        )
                    with pytest.raises(WatchOverflow, match='fell more than 4 events'):
                        async for _ in events:
                            pass
                    assert await watchers() == 0  # dropped on the registrar
                async with watch('flood') as events:
                    assert await watchers() == 1
                assert await watchers() == 0


def free_tcp_addr() -> tuple[str, int]:
    # (the root conftest's helper is not importable under every rootdir)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return ('127.0.0.1', s.getsockname()[1])


@pytest.fixture
def free_port_addr() -> tuple[str, int]:
    return free_tcp_addr()


# -- the daemon ------------------------------------------------------------------
@pytest.mark.slow
def test_daemon_outlives_two_trees(free_port_addr, tmp_path):
    """Two trees in a row use one standalone registrar; each registers
    and unregisters there (one INFO line per change), and the daemon keeps
    serving lookups after both."""
    reg = maddr(free_port_addr)
    with registrar(free_port_addr, tmp_path) as daemon:
        for n in range(2):
            with program(TREE, f'tree{n}', f'svc{n}', reg, tmp_path=tmp_path):
                out = cli('ls', f'svc{n}', '--registry', reg, '--json')
                assert out.returncode == 0, out.stderr
                [entry] = json.loads(out.stdout)
                assert entry['parent'][0] == f'tree{n}'
        out = cli('ls', '--registry', reg, '--json')
        assert [e['name'] for e in json.loads(out.stdout)] == ['registrar']
        log = _tail(daemon.log)
        for n in range(2):
            assert f'registered svc{n}' in log and f'unregistered svc{n}' in log
            assert f'registered tree{n}' in log and f'unregistered tree{n}' in log


# -- failover ------------------------------------------------------------------------
@pytest.mark.slow
async def test_failover_lookups_never_fail(tmp_path, caplog):
    """Two registrars; a service registers with both. Registrar ``a`` is
    SIGKILLed while this program keeps looking the service up: not one
    lookup fails; waits and watches are answered by ``b``; ``a`` restarted
    is repopulated by the service re-registering."""
    from contextlib import ExitStack

    a, b = free_tcp_addr(), free_tcp_addr()
    with ExitStack() as stack:
        da = stack.enter_context(registrar(a, tmp_path))
        stack.enter_context(registrar(b, tmp_path))
        with trio.fail_after(TIMEOUT * 2), observer():
            async with tractor.open_root_actor(registry_addrs=[a, b]):
                await start(ACTOR, 'svc', 'tcp', maddr(a), maddr(b), tmp_path=tmp_path, stack=stack)
                async with watch('svc', prefix=True) as events:
                    await next_event(events, Registered, 'svc')
                    for i in range(60):
                        if i == 20:
                            da.kill()
                            da.wait(timeout=TIMEOUT)
                        async with find_actor('svc', only_first=False) as found:
                            assert found, f'lookup {i} missed'
                    # what the user sees of it: log lines, no error
                    lost = [r for r in caplog.records if r.levelname == 'WARNING']
                    assert any('skipping registrar' in r.getMessage() for r in lost), lost
                    async with wait_for_actor('svc') as portal:
                        assert portal.channel.uid[0] == 'svc'
                    await start(
                        ACTOR, 'svc2', 'tcp', maddr(a), maddr(b), tmp_path=tmp_path, stack=stack
                    )
                    await next_event(events, Registered, 'svc2')  # from b
                # a comes back empty; the live actors register there again
                stack.enter_context(registrar(a, tmp_path))
                async with watch('svc', registry_addrs=[a]) as events:
                    await next_event(events, Registered, 'svc')


# -- the tractor command -------------------------------------------------------------
@pytest.mark.slow
def test_cli_against_a_live_tree(free_port_addr, tmp_path):
    reg = maddr(free_port_addr)
    with (
        registrar(free_port_addr, tmp_path),
        program(TREE, 'cli_root', 'cli_child', reg, tmp_path=tmp_path) as tree,
    ):
        out = cli('ls', '--registry', reg)
        assert out.returncode == 0, out.stderr
        names = [line.split('\t')[0] for line in out.stdout.splitlines()]
        assert sorted(names) == ['cli_child', 'cli_root', 'registrar']
        out = cli('ls', 'cli_', '--prefix', '--json', '--registry', reg)
        entries = {e['name']: e for e in json.loads(out.stdout)}
        assert set(entries) == {'cli_child', 'cli_root'}
        assert entries['cli_root']['pid'] == tree.pid
        assert entries['cli_child']['parent'] == entries['cli_root']['uid']

        out = cli('tree', '--json', '--registry', reg)
        roots = {n['name']: n for n in json.loads(out.stdout)}
        assert [c['name'] for c in roots['cli_root']['children']] == ['cli_child']
        out = cli('tree', '--registry', reg)
        assert '└─ cli_child' in out.stdout, out.stdout

        out = cli('ping', 'cli_child', '--registry', reg)
        assert out.returncode == 0 and out.stdout.startswith('pong from cli_child'), out
        out = cli('ping', 'cli_child', '--json', '--registry', reg)
        assert json.loads(out.stdout)['rtt_ms'] >= 0

        out = cli('watch', 'cli_child', '--count', '1', '--json', '--registry', reg)
        assert out.returncode == 0, out.stderr
        ev = json.loads(out.stdout)
        assert ev['event'] == 'registered' and ev['uid'][0] == 'cli_child'

        # a miss
        for args in (['ping', 'nobody'], ['ls', 'nobody']):
            out = cli(*args, '--registry', reg)
            assert out.returncode == 1 and "no actor named 'nobody'" in out.stderr
        # usage errors
        assert cli('ls', '--prefix', '--registry', reg).returncode == 2
        assert cli('frobnicate').returncode == 2
        assert cli('ls', '--registry', 'not an address').returncode == 2
        # without the tree's secret: refused, saying so
        out = cli('ls', '--registry', reg, env={'TRACTOR_SECRET': 'not-the-secret'})
        assert out.returncode == 1 and 'refused' in out.stderr, out.stderr
        assert 'secret' in out.stderr
    # no registrar at all
    out = cli('ls', '--registry', reg)
    assert out.returncode == 1 and 'no registrar answers' in out.stderr, out.stderr


async def test_watch_in_the_registrar_itself(runtime_kwargs):
    """The tree's root is the registrar: its own watch() reads its table
    in-process and sees a child register and leave."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            async with watch('kid') as events:
                portal = await an.start_actor('kid')
                ev = await next_event(events, Registered, 'kid')
                assert ev.parent == tractor.current_actor().uid
                await portal.cancel_actor()
                ev = await next_event(events, Unregistered, 'kid')
                assert ev.reason == 'graceful'


def test_daemon_listens_on_tcp_and_uds_at_once(free_port_addr, tmp_path):
    """`tractor registrar --listen A --listen B` over two transports; the
    command reads it over either address, or both (each entry once)."""
    uds = maddr((os.environ['TRACTOR_RUNTIME_DIR'], f'reg-{uuid.uuid4().hex[:6]}.sock'))
    tcp = maddr(free_port_addr)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'tractor', 'registrar', '--listen', tcp, '--listen', uds],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().split()[3:] == [tcp, uds]
        for regs in ([tcp], [uds], [tcp, uds]):
            out = cli('ls', '--json', *[a for r in regs for a in ('--registry', r)])
            assert out.returncode == 0, out.stderr
            [entry] = json.loads(out.stdout)
            assert entry['name'] == 'registrar' and entry['addrs'] == [tcp, uds]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        _reap(proc)


def test_second_daemon_at_a_served_address_says_so(free_port_addr, tmp_path):
    with registrar(free_port_addr, tmp_path):
        out = cli('registrar', '--listen', maddr(free_port_addr))
        assert out.returncode == 1 and 'already serves' in out.stderr, out.stderr
