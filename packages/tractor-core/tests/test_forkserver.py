"""The 'forkserver' spawn backend: children forked from a warm template
process keep every guarantee of the 'trio' backend (fresh trio run, clean fds
and signal state, the requester's environment, parent-death shutdown, no
zombies, exit statuses), one server serves a whole tree and dies with its
owner. The first tests run over both backends, so 'trio' stays covered
whichever is the default."""

import array
import glob
import json
import os
import random
import signal
import socket
import subprocess
import sys
import uuid

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor._forkserver.owner import path_for_children
from tractor._forkserver.plugin import supported
from tractor._forkserver.process import UNKNOWN_EXIT, ForkedProcess
from tractor._paths import runtime_dir_path
from tractor_core_testfns import get_state, hold_tree, spawn_grandchildren, whoami
from tractor_testsupport.polling import wait_until
from tractor_testsupport.procs import children_of, cmdline, descendants, pids_with_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not supported(), reason='needs Linux 5.3+ (pidfds)'),
]

FNS = [fns.__name__]
HERE = os.path.dirname(__file__)


# -- helpers ------------------------------------------------------------------


def proc_state() -> dict:
    """What a child inherited from its spawner, and its random state."""
    import trio._core._run as trio_run

    with open('/proc/self/status') as f:
        status = dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)
    return {
        'pid': os.getpid(),
        'ppid': os.getppid(),
        'cwd': os.getcwd(),
        'var': os.environ.get('FORKSERVER_TEST_VAR'),
        'umask': status['Umask'].strip(),
        'rand': random.getrandbits(64),
        'trio_rand': trio_run._r.getrandbits(64),
        'main': sys.modules['__main__'].__spec__.name,
        'argv': sys.argv[1:3],
    }


_STATE: dict = {}


async def hold_forked_leaf() -> None:
    """Spawn a leaf with the fork server from here (this actor starts and
    owns one), record the pids, hold."""
    async with tractor.open_nursery(start_method='forkserver') as an:
        leaf = await an.start_actor('leaf', enable_modules=FNS)
        _STATE['pids'] = {'leaf': leaf.channel.aid.pid, 'servers': sorted(fork_servers())}
        await trio.sleep_forever()


def held_pids() -> dict | None:
    return _STATE.get('pids')


def fork_servers() -> set[int]:
    """Fork servers anywhere below this process."""
    return {p for p in descendants() if b'tractor._forkserver' in cmdline(p)}


def fd_table(pid: int) -> dict[int, str]:
    out = {}
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            out[int(fd)] = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            pass
    return out


def signal_state(pid: int) -> dict[str, int]:
    with open(f'/proc/{pid}/status') as f:
        return {
            key: int(value, 16)
            for key, value in (line.split(':\t', 1) for line in f if line.startswith('Sig'))
            if key in ('SigIgn', 'SigCgt', 'SigBlk')
        }


def child_proc(an: tractor.ActorNursery, portal: tractor.Portal):
    """The process object the nursery supervises ``portal``'s actor with."""
    return an._children[portal.channel.aid.uid].proc


# -- both backends ------------------------------------------------------------


@pytest.fixture(params=['trio', 'forkserver'])
def start_method(request) -> str:
    return request.param


async def test_spawn_run_cancel(runtime_kwargs, tpt_proto, start_method, pids_gone):
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method=start_method, **runtime_kwargs) as an:
            portal = await an.start_actor('daemon', enable_modules=FNS)
            info = await portal.run(whoami)
            assert info['name'] == 'daemon' and info['start_method'] == start_method
            assert info['parent_pid'] == os.getpid()
            assert portal.channel.raddr.proto_key == tpt_proto
            proc = child_proc(an, portal)
            assert isinstance(proc, ForkedProcess) == (start_method == 'forkserver')
            assert proc.pid == info['pid']
            oneshot = await an.run_in_actor(whoami, name='oneshot')
            assert (await oneshot.wait_for_result())['name'] == 'oneshot'
            assert await portal.cancel_actor()
            await proc.wait()
            assert proc.returncode == 0
        assert await pids_gone([info['pid']]) == []
        assert fork_servers() == set()  # the owner shut its server down
        runtime_dir = os.environ['TRACTOR_RUNTIME_DIR']
        assert [
            f for f in os.listdir(runtime_dir) if f.startswith(f'forkserver-{os.getpid()}-')
        ] == []


async def test_nested_tree(runtime_kwargs, start_method, pids_gone):
    """Grandchildren spawned with the same method: one fork server serves
    the whole tree (the grandchildren are its children too)."""
    with trio.fail_after(45):
        async with tractor.open_nursery(start_method=start_method, **runtime_kwargs) as an:
            portal = await an.start_actor('parent', enable_modules=FNS)
            tree = await portal.run(spawn_grandchildren, n=3)
            servers = fork_servers()
            await an.cancel()
        me, kids = tree['me'], tree['kids']
        assert me['parent_pid'] == os.getpid()
        assert all(k['parent_pid'] == me['pid'] for k in kids)
        assert {k['start_method'] for k in kids} == {start_method}
        if start_method == 'forkserver':
            assert len(servers) == 1
            (server,) = servers
            assert me['ppid'] == server
            assert [k['ppid'] for k in kids] == [server] * 3
        else:
            assert servers == set()
            assert me['ppid'] == os.getpid()
            assert all(k['ppid'] == me['pid'] for k in kids)
        assert await pids_gone([me['pid'], *(k['pid'] for k in kids), *servers]) == []


async def test_sigkill_middle(runtime_kwargs, start_method, pids_gone):
    """SIGKILL a middle actor: its orphaned child shuts itself down."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method=start_method, **runtime_kwargs) as an:
            middle = await an.start_actor('middle', enable_modules=FNS)
            errors = []

            async def hold() -> None:
                try:
                    await middle.run(hold_tree)
                except (tractor.TransportClosed, tractor.RemoteActorError) as err:
                    errors.append(err)

            async with trio.open_nursery() as tn:
                tn.start_soon(hold)
                while (leaf := await middle.run(get_state, key='leaf_pid')) is None:
                    await trio.sleep(0.02)
                proc = child_proc(an, middle)
                proc.kill()
                assert await proc.wait() == -signal.SIGKILL
            assert len(errors) == 1
            assert await pids_gone([leaf]) == []
            again = await an.start_actor('again', enable_modules=FNS)
            assert await again.run(get_state, key='x') is None
            await an.cancel()


# -- forkserver specifics -----------------------------------------------------


async def test_exit_codes(runtime_kwargs):
    """The server reports each child's exit status: a code, a kill, a
    clean exit."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            dies = await an.start_actor('dies', enable_modules=FNS)
            killed = await an.start_actor('killed', enable_modules=FNS)
            clean = await an.start_actor('clean', enable_modules=FNS)
            procs = {p.channel.aid.name: child_proc(an, p) for p in (dies, killed, clean)}
            assert all(isinstance(p, ForkedProcess) for p in procs.values())
            with pytest.raises(tractor.TransportClosed):
                await dies.run(fns.die, code=3)
            assert await procs['dies'].wait() == 3
            procs['killed'].kill()
            assert await procs['killed'].wait() == -signal.SIGKILL
            assert await clean.cancel_actor()
            assert await procs['clean'].wait() == 0
            # signalling an exited child is a no-op, never another process
            procs['killed'].kill()
            procs['killed'].terminate()
    assert {n: p.returncode for n, p in procs.items()} == {
        'dies': 3,
        'killed': -signal.SIGKILL,
        'clean': 0,
    }


async def test_hard_kill_status(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            portals = [await an.start_actor(f'doomed-{i}', enable_modules=FNS) for i in range(2)]
            procs = [child_proc(an, p) for p in portals]
            await an.cancel(hard_kill=True)
    assert [p.returncode for p in procs] == [-signal.SIGKILL] * 2


async def test_child_fds_clean(runtime_kwargs):
    """A forked child holds only its stdio (the requester's) and what its
    own runtime opened: nothing of the server's (listener, control
    connection, other requests, pidfds); the same kinds of fds as a child
    started from a fresh interpreter."""

    def kinds(table: dict[int, str]) -> list[str]:
        return sorted(
            v.split('[')[0] if v.startswith(('socket:', 'pipe:')) else v for v in table.values()
        )

    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            forked = await an.start_actor('forked', enable_modules=FNS, start_method='forkserver')
            execd = await an.start_actor('execd', enable_modules=FNS, start_method='trio')
            fpid, tpid = forked.channel.aid.pid, execd.channel.aid.pid
            for portal in (forked, execd):  # both served a call: same state
                await portal.run(whoami)
            (server,) = fork_servers()
            child, server_fds, trio_child = fd_table(fpid), fd_table(server), fd_table(tpid)
            mine = fd_table(os.getpid())
            await an.cancel()
    for fd in (0, 1, 2):
        assert child.get(fd) == mine.get(fd) == trio_child.get(fd)
    # inodes name sockets/pipes uniquely: none may be the server's
    server_objs = {v for v in server_fds.values() if v.startswith(('socket:', 'pipe:'))}
    assert not server_objs & {v for fd, v in child.items() if fd > 2}
    assert 'anon_inode:[pidfd]' not in child.values()
    assert kinds(child) == kinds(trio_child)
    assert sorted(child) == sorted(trio_child)


async def test_signal_state_like_exec(runtime_kwargs):
    """Signal dispositions as an exec'd child gets them: defaults, what the
    spawner ignores stays ignored (SIGUSR1 here), SIGINT ignored by the
    child runtime, nothing caught, nothing blocked."""
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        with trio.fail_after(30):
            async with tractor.open_nursery(**runtime_kwargs) as an:
                forked = await an.start_actor(
                    'forked', enable_modules=FNS, start_method='forkserver'
                )
                execd = await an.start_actor('execd', enable_modules=FNS, start_method='trio')
                fstate = signal_state(forked.channel.aid.pid)
                tstate = signal_state(execd.channel.aid.pid)
                (server,) = fork_servers()
                sstate = signal_state(server)
                await an.cancel()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert fstate == tstate
    bit = lambda sig: 1 << (sig - 1)  # noqa: E731
    assert fstate['SigIgn'] & bit(signal.SIGINT)
    assert fstate['SigIgn'] & bit(signal.SIGUSR1)
    assert not fstate['SigIgn'] & bit(signal.SIGTERM)
    # glibc's own real-time signals (32, 33) are its business
    standard = (1 << 31) - 1
    assert fstate['SigCgt'] & standard == 0 and fstate['SigBlk'] & standard == 0
    assert sstate['SigIgn'] & bit(signal.SIGINT)  # Ctrl-C is the root's to handle


async def test_requester_state_restored(runtime_kwargs, tmp_path, monkeypatch):
    """A forked child gets the environment, working directory and umask its
    spawner has at spawn time (not the server's), fresh random state, and
    runs tractor._child as __main__ like `python -m` does."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            first = await an.start_actor('first', enable_modules=[__name__])
            before = await first.run(proc_state)
            monkeypatch.chdir(tmp_path)
            monkeypatch.setenv('FORKSERVER_TEST_VAR', 'set-later')
            old_umask = os.umask(0o027)
            try:
                second = await an.start_actor('second', enable_modules=[__name__])
            finally:
                os.umask(old_umask)
            after = await second.run(proc_state)
            await an.cancel()
    assert before['ppid'] == after['ppid'] != os.getpid()  # both forked by the one server
    assert before['var'] is None and after['var'] == 'set-later'
    assert after['cwd'] == str(tmp_path) and before['cwd'] != str(tmp_path)
    assert after['umask'] == '0027'
    assert before['rand'] != after['rand']
    assert before['trio_rand'] != after['trio_rand']
    assert after['main'] == 'tractor._child'
    assert after['argv'] == ['--name', 'second']


async def test_startup_env_change_execs(runtime_kwargs, monkeypatch):
    """A variable read at interpreter start or import (TRACTOR_*, PYTHON*)
    changed after the server started: a fork could not honour it, so that
    child starts from a fresh interpreter (its OS parent is the spawner)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            forked = await an.start_actor('forked', enable_modules=[__name__])
            assert (await forked.run(proc_state))['ppid'] != os.getpid()
            monkeypatch.setenv('TRACTOR_FORKSERVER_TEST_KNOB', '1')
            execd = await an.start_actor('execd', enable_modules=[__name__])
            assert not isinstance(child_proc(an, execd), ForkedProcess)
            assert (await execd.run(proc_state))['ppid'] == os.getpid()
            await an.cancel()


async def test_server_titles(runtime_kwargs):
    """ps shows the fork server and its spare for what they are (the
    actors' own titles: test_spawning.test_process_title)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            portal = await an.start_actor('titled', enable_modules=FNS)
            (server,) = fork_servers()
            spare_title = b'tractor: fork server spare'
            await wait_until(
                lambda: any(cmdline(p).startswith(spare_title) for p in children_of(server)),
                'a titled spare',
                poll=0.02,
            )
            server_words = cmdline(server).replace(b'\0', b' ').split()
            assert portal.channel.aid.pid in children_of(server)
            await an.cancel()
    assert server_words[:6] == [
        b'tractor:',
        b'fork',
        b'server',
        b'-m',
        b'tractor._forkserver',
        b'--listen-fd',
    ]
    assert not [w for w in server_words if w.startswith(b'--title-room')]


async def test_server_killed(runtime_kwargs, pids_gone):
    """A fork server killed outright: its children carry on and are still
    supervised (their exit status is then unknown); the next spawn starts a
    new server."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            orphan = await an.start_actor('orphan', enable_modules=FNS)
            proc = child_proc(an, orphan)
            (server,) = fork_servers()
            os.kill(server, signal.SIGKILL)
            assert await pids_gone([server]) == []
            assert (await orphan.run(whoami))['name'] == 'orphan'
            assert await orphan.cancel_actor()
            assert await proc.wait() == UNKNOWN_EXIT
            assert await pids_gone([proc.pid]) == []
            fresh = await an.start_actor('fresh', enable_modules=FNS)
            assert (await fresh.run(whoami))['name'] == 'fresh'
            assert fork_servers() - {server}
            await an.cancel()
    assert fork_servers() == set()


async def test_sigkill_non_root_owner(runtime_kwargs, pids_gone):
    """An actor spawned with 'trio' that spawns with 'forkserver' starts and
    owns its own server; SIGKILL it: its server and its child exit too."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='trio', **runtime_kwargs) as an:
            owner = await an.start_actor('owner', enable_modules=[__name__])
            errors = []

            async def hold() -> None:
                try:
                    await owner.run(hold_forked_leaf)
                except (tractor.TransportClosed, tractor.RemoteActorError) as err:
                    errors.append(err)

            async with trio.open_nursery() as tn:
                tn.start_soon(hold)
                while (pids := await owner.run(held_pids)) is None:
                    await trio.sleep(0.02)
                assert len(pids['servers']) == 1
                (server,) = pids['servers']
                assert server in descendants(owner.channel.aid.pid)
                child_proc(an, owner).kill()
            assert len(errors) == 1
            assert await pids_gone([pids['leaf'], server]) == []
            await an.cancel()


async def _run_root(tpt_proto, reg_addr, mode: str, token: str, own_group: bool = False):
    """Start forkserver_root.py (``own_group``: in a process group of its
    own, as a shell runs a program); its process and the pids it printed."""
    script = os.path.join(HERE, 'scripts', 'forkserver_root.py')
    proc = await trio.lowlevel.open_process(
        [sys.executable, script, tpt_proto, json.dumps(reg_addr), mode],
        stdout=subprocess.PIPE,
        env={**os.environ, 'FORKSERVER_TEST_TOKEN': token},
        start_new_session=own_group,
    )
    buf = b''
    while b'\n' not in buf:
        chunk = await proc.stdout.receive_some()
        assert chunk, f'forkserver_root.py exited early with {await proc.wait()}'
        buf += chunk
    return proc, json.loads(buf.split(b'\n', 1)[0])


async def _wait_unmarked(token: str) -> None:
    await wait_until(
        lambda: not pids_with_env('FORKSERVER_TEST_TOKEN', token),
        f'no process marked {token!r} left',
        poll=0.05,
    )


@pytest.mark.parametrize('mode', ['tree', 'idle'])
async def test_sigkill_root_leaves_nothing(tpt_proto, reg_addr, mode, alive):
    """SIGKILL the root program: its fork server, children and grandchildren
    all exit (the server once its owner is gone and its children reaped)."""
    token = uuid.uuid4().hex
    with trio.fail_after(45):
        proc, pids = await _run_root(tpt_proto, reg_addr, mode, token)
        try:
            assert len(pids['servers']) == 1
            server = pids['servers'][0]
            assert server in pids_with_env('FORKSERVER_TEST_TOKEN', token)
            if mode == 'tree':
                assert alive(pids['child']) and alive(pids['grandchild'])
            proc.kill()  # SIGKILL: no chance to cancel anything
            assert await proc.wait() == -signal.SIGKILL
            await _wait_unmarked(token)
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
            await proc.stdout.aclose()


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
async def test_signal_to_the_group_leaves_nothing(tpt_proto, reg_addr, sig):
    """SIGTERM or SIGHUP to a program's process group (its root, fork server
    and every actor get it, as from a terminal closing or a service manager
    stopping it): no process is left, and the server removes its socket."""
    token = uuid.uuid4().hex
    with trio.fail_after(45):
        proc, pids = await _run_root(tpt_proto, reg_addr, 'tree', token, own_group=True)
        try:
            assert len(pids['servers']) == 1
            sockets = os.path.join(runtime_dir_path(), f'forkserver-{pids["root"]}-*.sock')
            assert len(glob.glob(sockets)) == 1
            os.killpg(proc.pid, sig)  # the group is the one we just made
            assert await proc.wait() == -sig
            await _wait_unmarked(token)
            assert glob.glob(sockets) == []
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
            await proc.stdout.aclose()


async def test_default_is_forkserver(runtime_kwargs, monkeypatch):
    monkeypatch.delenv('TRACTOR_START_METHOD', raising=False)
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            assert tractor.current_actor().start_method == 'forkserver'
            portal = await an.start_actor('default', enable_modules=FNS)
            assert isinstance(child_proc(an, portal), ForkedProcess)
            assert (await portal.run(whoami))['start_method'] == 'forkserver'
            await an.cancel()


async def test_import_tractor_loads_no_backend():
    """`import tractor` imports neither backend module: they load with the
    plugins (lean import), and `python -m tractor._forkserver` must not find
    its own module already imported by the package (runpy warns then)."""
    with trio.fail_after(30):
        result = await trio.run_process(
            [
                sys.executable,
                '-W',
                'error',
                '-c',
                'import sys, tractor; print(sorted(m for m in sys.modules if "forkserver" in m))',
            ],
            capture_stdout=True,
        )
    assert result.stdout.decode().strip() == '[]'


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
async def test_stop_signal_to_the_server(runtime_kwargs, sig, pids_gone):
    """SIGTERM or SIGHUP to the fork server alone: it stops as when its owner
    goes (no new children, its socket file removed, its spare dismissed, an
    exit once its children are reaped); the next spawn starts a new one."""
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            first = await an.start_actor('first', enable_modules=FNS)
            path = path_for_children(tractor.current_actor())
            (server,) = fork_servers()
            await first.cancel_actor()
            kids = children_of(server)  # the spare, and first while it exits
            os.kill(server, sig)  # ours: this root started it
            assert await pids_gone([server, *kids]) == []
            assert not os.path.exists(path)
            second = await an.start_actor('second', enable_modules=FNS)
            assert (await second.run(whoami))['name'] == 'second'
            assert path_for_children(tractor.current_actor()) != path
            await an.cancel()


async def test_pending_requests_bounded(runtime_kwargs, monkeypatch):
    """Connections to the fork server that never finish their request are
    bounded in number (the oldest dropped past the cap) and in time."""
    monkeypatch.setenv('TRACTOR_FORKSERVER_MAX_PENDING', '4')
    monkeypatch.setenv('TRACTOR_FORKSERVER_PENDING_TIMEOUT', '1.0')
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            first = await an.start_actor('first', enable_modules=FNS)  # starts the server
            path = path_for_children(tractor.current_actor())
            socks = []
            for _ in range(6):
                sock = trio.socket.socket(trio.socket.AF_UNIX)
                await sock.connect(path)
                socks.append(sock)
            try:
                # the two oldest are dropped at once (cap 4), the rest when
                # their second runs out; none is answered
                for sock in socks:
                    assert await sock.recv(1) == b''
                # and the server still forks
                second = await an.start_actor('second', enable_modules=FNS)
                assert (await second.run(whoami))['name'] == 'second'
                assert (await first.run(whoami))['name'] == 'first'
            finally:
                for sock in socks:
                    sock.close()
            await an.cancel()


async def test_spare_drops_fds_of_requests_still_arriving(runtime_kwargs, monkeypatch):
    """A spare forked while a request is still arriving holds none of the
    fds that request brought (among them, in a real spawn, the child's end
    of its parent socket: a copy in the spare would keep that channel open
    past the child's death). The server itself holds them until the
    request completes or is dropped."""
    monkeypatch.setenv('TRACTOR_FORKSERVER_PENDING_TIMEOUT', '60')
    spare_title = b'tractor: fork server spare'

    def spares(server: int) -> set[int]:
        return {p for p in children_of(server) if cmdline(p).startswith(spare_title)}

    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='forkserver', **runtime_kwargs) as an:
            await an.start_actor('first', enable_modules=FNS)  # starts the server
            (server,) = fork_servers()
            mine, passed = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            request = trio.socket.socket(trio.socket.AF_UNIX)
            try:
                await request.connect(path_for_children(tractor.current_actor()))
                inode = f'socket:[{os.fstat(passed.fileno()).st_ino}]'
                # half a frame (its length says 100 bytes), with the fd
                await request.sendmsg(
                    [(100).to_bytes(4, 'big') + b'\x80'],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [passed.fileno()]))],
                )
                passed.close()
                await wait_until(
                    lambda: inode in fd_table(server).values(), 'the server holding the fd'
                )
                before = spares(server)
                # the spare waiting now takes this spawn; the server forks the next
                second = await an.start_actor('second', enable_modules=FNS)
                await second.run(whoami)
                await wait_until(lambda: spares(server) - before, 'a new spare', poll=0.02)
                (spare,) = spares(server) - before
                assert inode in fd_table(server).values()  # still pending
                assert inode not in fd_table(spare).values()
                assert inode not in fd_table(second.channel.aid.pid).values()
            finally:
                request.close()
                mine.close()
            await an.cancel()
