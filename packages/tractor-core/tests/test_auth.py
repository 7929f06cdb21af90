"""Peer authentication: every connection proves the tree's shared secret
before anything it sends is decoded (``tractor._auth``).

Cross-program cases (two roots, zero-config joining, mismatched secrets)
live in ``integration/tests/test_auth_programs.py``.
"""

from __future__ import annotations

import logging
import os
import stat

import msgspec
import pytest
import trio
import trio.testing

import tractor
import tractor_core_testfns as fns
from tractor import _auth, _msg, _paths, _secret
from tractor._dial import handshake
from tractor._ipc import Channel
from tractor_core_testfns import hold_tree, ping

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


def frame(msg) -> bytes:
    body = msgspec.msgpack.encode(msg)
    return len(body).to_bytes(4, 'big') + body


async def raw_connect(addr: tuple, proto: str) -> trio.SocketStream:
    if proto == 'tcp':
        return await trio.open_tcp_stream(*addr)
    return await trio.open_unix_socket(os.path.join(*addr))


async def read_all(stream: trio.SocketStream) -> bytes:
    """Everything the peer sends until it closes the connection."""
    data = b''
    try:
        while chunk := await stream.receive_some():
            data += chunk
    except trio.BrokenResourceError:  # reset: it closed with our bytes unread
        pass
    return data


def forged_proof(secret: bytes, listener_hello: bytes, our_nonce: bytes) -> bytes:
    """The proof frame a dialer holding ``secret`` sends."""
    return _auth.dialer_step(secret, our_nonce, listener_hello)[0]


def valid_start_frames(path: str) -> bytes:
    """A well-formed Hello and a Start that would create ``path``: what an
    actor that decoded them would act on."""
    aid = _msg.Aid(name='intruder', uuid='u-1', pid=1)
    return frame(_msg.Hello(aid=aid)) + frame(
        _msg.Start(cid=2, ns=fns.__name__, func='touch', kwargs={'path': path})
    )


def refusals(caplog) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith('tractor')
        and r.levelno == logging.WARNING
        and 'refused connection from' in r.getMessage()
    ]


# -- the secret and where it lives -----------------------------------------


def test_cookie_created_private_and_stable(tmp_path, monkeypatch):
    rundir = tmp_path / 'run'
    monkeypatch.setenv('TRACTOR_RUNTIME_DIR', str(rundir))
    monkeypatch.delenv('TRACTOR_SECRET', raising=False)
    first = _secret.resolve_secret()
    assert stat.S_IMODE(os.stat(rundir).st_mode) == 0o700
    cookie = rundir / _secret.COOKIE_NAME
    st = os.lstat(cookie)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()
    assert len(first) >= 32
    # the same for every later use, and no temporary file is left behind
    assert _secret.resolve_secret() == first
    assert sorted(os.listdir(rundir)) == [_secret.COOKIE_NAME]


def test_cookie_refused_when_others_can_read_it(tmp_path, monkeypatch):
    monkeypatch.setenv('TRACTOR_RUNTIME_DIR', str(tmp_path / 'run'))
    monkeypatch.delenv('TRACTOR_SECRET', raising=False)
    _secret.resolve_secret()
    os.chmod(tmp_path / 'run' / _secret.COOKIE_NAME, 0o644)
    with pytest.raises(PermissionError, match='readable by others'):
        _secret.resolve_secret()


def test_cookie_symlink_refused(tmp_path, monkeypatch):
    rundir = tmp_path / 'run'
    rundir.mkdir(mode=0o700)
    (tmp_path / 'elsewhere').write_text('attacker-chosen\n')
    os.symlink(tmp_path / 'elsewhere', rundir / _secret.COOKIE_NAME)
    monkeypatch.setenv('TRACTOR_RUNTIME_DIR', str(rundir))
    monkeypatch.delenv('TRACTOR_SECRET', raising=False)
    with pytest.raises(PermissionError, match='symlink'):
        _secret.resolve_secret()


def test_runtime_dir_checks(tmp_path, monkeypatch):
    loose = tmp_path / 'loose'
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    monkeypatch.setenv('TRACTOR_RUNTIME_DIR', str(loose))
    assert _paths.runtime_dir() == str(loose)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o700  # tightened
    link = tmp_path / 'link'
    os.symlink(loose, link)
    monkeypatch.setenv('TRACTOR_RUNTIME_DIR', str(link))
    with pytest.raises(PermissionError, match='not a plain directory'):
        _paths.runtime_dir()


def test_uds_transport_uses_core_runtime_dir():
    import tractor_uds

    assert tractor_uds.runtime_dir is _paths.runtime_dir


def test_secret_precedence(monkeypatch):
    """``secret=`` beats ``$TRACTOR_SECRET``, which beats the cookie."""
    monkeypatch.setenv('TRACTOR_SECRET', 'from-env')
    assert _secret.resolve_secret('from-arg') == b'from-arg'
    assert _secret.resolve_secret(b'\x00raw') == b'\x00raw'
    assert _secret.resolve_secret() == b'from-env'
    monkeypatch.delenv('TRACTOR_SECRET')
    assert _secret.resolve_secret() == _secret.load_cookie()
    for bad in (b'', ''):
        with pytest.raises(ValueError):
            _secret.resolve_secret(bad)
    with pytest.raises(TypeError):
        _secret.resolve_secret(1234)


async def test_bad_secret_argument_fails_before_boot(runtime_kwargs):
    with pytest.raises(ValueError, match='empty secret'):
        async with tractor.open_root_actor(secret='', **runtime_kwargs):
            pass
    assert tractor.current_actor(err_on_no_runtime=False) is None


# -- the preamble on its own -----------------------------------------------


@pytest.mark.parametrize('listener_secret', [b'same', b'different'])
async def test_preamble_pair(listener_secret):
    """Both sides succeed with one secret; with two, the dialer gets
    AuthenticationError and the listener refuses."""
    a, b = trio.testing.memory_stream_pair()
    results = {}

    async def side(name, stream, secret, initiator):
        try:
            await _auth.authenticate(stream, secret, initiator=initiator, peer=name)
            results[name] = 'ok'
        except tractor.AuthenticationError as err:
            results[name] = err

    with trio.fail_after(5):
        async with trio.open_nursery() as tn:
            tn.start_soon(side, 'dialer', a, b'same', True)
            tn.start_soon(side, 'listener', b, listener_secret, False)
    if listener_secret == b'same':
        assert results == {'dialer': 'ok', 'listener': 'ok'}
    else:
        assert 'authentication failed' in str(results['dialer'])
        assert 'refused our proof' in str(results['dialer'])
        assert 'authentication failed' in str(results['listener'])


async def test_reflected_proof_fails():
    """A listener that answers with the dialer's own proof (reflection)
    does not pass: proofs are bound to the sender's role."""
    dialer, attacker = trio.testing.memory_stream_pair()
    secret = b'shared'

    async def reflector():
        hello = await attacker.receive_some(_auth.HELLO_SIZE)
        nonce = os.urandom(_auth.NONCE_SIZE)
        await attacker.send_all(_auth._hello(nonce))
        proof = b''
        while len(proof) < 2 + _auth.PROOF_SIZE:  # empty binding: 2 + 32 bytes
            proof += await attacker.receive_some()
        assert len(hello) == _auth.HELLO_SIZE and len(proof) == 2 + _auth.PROOF_SIZE
        await attacker.send_all(b'\x01' + proof[2:])  # "accepted", with its own proof

    with trio.fail_after(5):
        async with trio.open_nursery() as tn:
            tn.start_soon(reflector)
            with pytest.raises(tractor.AuthenticationError, match='could not prove'):
                await _auth.authenticate(dialer, secret, initiator=True, peer='reflector')


# -- a live actor refuses strangers before decoding anything ----------------


@pytest.mark.parametrize('target', ['child', 'root'])
async def test_stranger_refused_before_decoding(
    target, tpt_proto, runtime_kwargs, tmp_path, caplog
):
    """Wrong secret, no preamble at all (an unauthenticated tractor frame),
    and garbage: each is refused with one warning naming the peer, and the
    valid ``Start`` that followed is never run. A peer with the secret
    runs the same request (the control)."""
    caplog.set_level(logging.WARNING, logger='tractor')
    with trio.fail_after(60):
        async with tractor.open_nursery(enable_modules=FNS, **runtime_kwargs) as an:
            portal = await an.start_actor('guarded', enable_modules=FNS)
            addr = (
                portal.channel.raddr.unwrap()
                if target == 'child'
                else tractor.current_actor().accept_addrs[0]
            )
            marks = {}

            async def attempt(kind: str) -> bytes:
                path = str(tmp_path / f'ran-{kind}')
                marks[kind] = path
                stream = await raw_connect(addr, tpt_proto)
                async with stream:
                    if kind == 'wrong-secret':
                        nonce = os.urandom(_auth.NONCE_SIZE)
                        await stream.send_all(_auth._hello(nonce))
                        hello = b''
                        while len(hello) < _auth.HELLO_SIZE:
                            hello += await stream.receive_some(_auth.HELLO_SIZE - len(hello))
                        await stream.send_all(
                            forged_proof(b'not-the-secret', hello, nonce) + valid_start_frames(path)
                        )
                        return hello + await read_all(stream)
                    if kind == 'no-preamble':
                        await stream.send_all(valid_start_frames(path))
                    elif kind == 'garbage':
                        await stream.send_all(b'GET / HTTP/1.1\r\n\r\n' + valid_start_frames(path))
                    elif kind == 'bad-version':
                        await stream.send_all(
                            _auth.MAGIC + b'\x09\0\0\0' + os.urandom(32) + valid_start_frames(path)
                        )
                    return await read_all(stream)

            before = len(refusals(caplog))
            got = {
                kind: await attempt(kind)
                for kind in ('wrong-secret', 'no-preamble', 'garbage', 'bad-version')
            }
            # the actor said its hello, then at most "refused", then hung up
            # (a TCP reset over our unread bytes may swallow the tail)
            assert got['wrong-secret'][:4] == _auth.MAGIC
            verdict = got['wrong-secret'][_auth.HELLO_SIZE :]
            assert (b'\x00' + bytes(_auth.PROOF_SIZE)).startswith(verdict)
            for kind in ('no-preamble', 'garbage', 'bad-version'):
                assert _auth._hello(got[kind][8:])[: len(got[kind])] == got[kind], kind
                assert len(got[kind]) <= _auth.HELLO_SIZE, kind
            # nothing that followed a failed preamble was run
            assert not any(os.path.exists(p) for p in marks.values()), marks
            # the actor serves on, and the same request from a peer holding
            # the secret does run
            assert await portal.run(ping) == 'pong'
            chan = await tractor.current_actor().connect(addr)
            try:
                control = str(tmp_path / 'ran-authenticated')
                assert await tractor.Portal(chan).run(fns.touch, path=control) == control
                assert os.path.exists(control)
            finally:
                await chan.aclose()
            if target == 'root':  # the child logs to its own stderr
                lines = refusals(caplog)[before:]
                assert len(lines) == 4, [r.getMessage() for r in lines]
                me = f'pid={os.getpid()}' if tpt_proto == 'uds' else '127.0.0.1:'
                assert all(me in r.getMessage() for r in lines), [r.getMessage() for r in lines]
                assert sum('does not know the shared secret' in r.getMessage() for r in lines) == 1
            await an.cancel()


async def test_connector_gets_authentication_error(tpt_proto, runtime_kwargs, caplog):
    """Dialing an actor with another secret raises AuthenticationError on
    the dialing side (Actor.connect and the bare handshake alike)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('guarded', enable_modules=FNS)
            addr = portal.channel.raddr
            actor = tractor.current_actor()
            stream = await addr.transport.connect(addr)
            chan = Channel(stream, raddr=addr, initiator=True)
            try:
                with pytest.raises(
                    tractor.AuthenticationError, match='authentication failed'
                ) as info:
                    await handshake(chan, actor.aid, 5, secret=b'some other secret')
                assert str(addr) in str(info.value)
            finally:
                await chan.aclose()
            # Actor.connect() with this process's secret swapped out
            real = _secret.current_secret()
            _secret.set_secret(b'some other secret')
            try:
                with pytest.raises(tractor.AuthenticationError, match='authentication failed'):
                    await actor.connect(addr)
            finally:
                _secret.set_secret(real)
            assert await portal.run(ping) == 'pong'
            await an.cancel()


# -- children get the secret without showing it ------------------------------


@pytest.mark.parametrize('how', ['argument', 'environment'])
async def test_children_inherit_secret_invisibly(how, runtime_kwargs, monkeypatch, pids_gone):
    """An explicit secret reaches children and grandchildren (they
    authenticate), yet appears in no descendant's /proc cmdline or
    environment."""
    secret = f'explicit-{how}-{os.urandom(8).hex()}'
    monkeypatch.setenv('TRACTOR_SECRET', secret if how == 'environment' else 'overridden-by-arg')
    kwargs = {'secret': secret} if how == 'argument' else {}
    with trio.fail_after(60):
        async with tractor.open_nursery(**kwargs, **runtime_kwargs) as an:
            assert _secret.current_secret() == secret.encode()
            middle = await an.start_actor('middle', enable_modules=FNS)
            async with trio.open_nursery() as tn:
                tn.start_soon(middle.run, hold_tree)
                while (leaf_pid := await middle.run(fns.get_state, key='leaf_pid')) is None:
                    await trio.sleep(0.02)
                pids = [middle.channel.aid.pid, leaf_pid]
                for pid in pids:
                    with open(f'/proc/{pid}/cmdline', 'rb') as f:
                        cmdline = f.read()
                    with open(f'/proc/{pid}/environ', 'rb') as f:
                        environ = f.read()
                    assert secret.encode() not in cmdline, pid
                    assert secret.encode() not in environ, pid
                    assert b'--secret-fd' in cmdline
                    assert not any(e.startswith(b'TRACTOR_SECRET=') for e in environ.split(b'\0'))
                    # and the pipe it came through is closed again (the
                    # number may be taken since, by a socket say)
                    args = cmdline.replace(b'\0', b' ').split()  # (the process title)
                    fd = args[args.index(b'--secret-fd') + 1].decode()
                    try:
                        now = os.readlink(f'/proc/{pid}/fd/{fd}')
                    except FileNotFoundError:
                        now = 'closed'
                    assert not now.startswith('pipe:'), (pid, fd, now)
                info = await middle.run(fns.secret_seen)
                assert (
                    info['secret_sha'] == __import__('hashlib').sha256(secret.encode()).hexdigest()
                )
                tn.cancel_scope.cancel()
            await an.cancel()
    assert await pids_gone(pids) == []


@pytest.mark.parametrize('start_method', ['trio', 'forkserver'])
async def test_spawnspec_only_to_the_spawned_child(start_method, runtime_kwargs, caplog):
    """A peer holding the secret that claims the uid of a child being
    spawned (its uuid is in the child's argv, for all to read) gets no
    SpawnSpec: only the process holding the spawn token from the secret
    pipe does. The real child boots as usual."""
    caplog.set_level(logging.WARNING, logger='tractor')
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            actor = tractor.current_actor()
            got: dict = {}

            async def claim() -> None:
                while not any(uid[0] == 'kid' for uid in actor._spawning):
                    await trio.sleep(0)
                name, uuid = next(uid for uid in actor._spawning if uid[0] == 'kid')
                addr = actor.listen_addrs[0]
                stream = await addr.transport.connect(addr)
                chan = Channel(stream, raddr=addr, initiator=True)
                async with chan:
                    await handshake(chan, _msg.Aid(name=name, uuid=uuid, pid=os.getpid()), 5)
                    try:
                        got['msg'] = await chan.recv()
                    except tractor.TransportClosed as err:
                        got['closed'] = err

            async with trio.open_nursery() as tn:
                tn.start_soon(claim)
                portal = await an.start_actor('kid', enable_modules=FNS, start_method=start_method)
            assert 'msg' not in got, got  # no SpawnSpec (nor anything else)
            assert 'closed' in got
            assert any('cannot prove its spawn token' in r.getMessage() for r in caplog.records), [
                r.getMessage() for r in caplog.records
            ]
            assert await portal.run(ping) == 'pong'
            await an.cancel()
