"""Authentication between separate programs (``programs/discovery_tree.py``):
zero-config joining through the per-user cookie, explicit secrets shared
by two roots (as across hosts), and mismatched secrets failing with
``tractor.AuthenticationError``."""

from __future__ import annotations

import os
import socket
import sys
import uuid

import pytest
import trio

import tractor
from tractor import _secret
from tractor.discovery import mk_maddr

pytestmark = pytest.mark.slow


def fresh_addr(tpt_proto: str, rundir: str) -> tuple:
    if tpt_proto == 'tcp':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()
    os.makedirs(rundir, mode=0o700, exist_ok=True)
    return (rundir, f'registry@{uuid.uuid4().hex[:8]}.sock')


def env_for(rundir, secret: str | None = None) -> dict:
    """A program's environment: its own runtime dir (so its own cookie,
    as on another host), and ``TRACTOR_SECRET`` when given."""
    env = {**os.environ, 'TRACTOR_RUNTIME_DIR': str(rundir)}
    env.pop('TRACTOR_SECRET', None)
    if secret is not None:
        env['TRACTOR_SECRET'] = secret
    return env


def tree(reg: tuple, tpt_proto: str, *services: str) -> list[str]:
    args = ['tree', '--registry', str(mk_maddr(reg)), '--transport', tpt_proto]
    for name in services:
        args += ['--service', name]
    return args


def join(reg: tuple, tpt_proto: str, find: str) -> list[str]:
    return [
        'join',
        '--registry',
        str(mk_maddr(reg)),
        '--transport',
        tpt_proto,
        '--find',
        find,
        '--call',
        '__main__:whoami',
    ]


async def test_zero_config_join_with_a_fresh_cookie(run_program, tmp_path, tpt_proto):
    """Two programs of one user, no secret configured anywhere and no
    cookie yet: the first creates the cookie, the second reads it and
    joins the first's tree."""
    rundir = tmp_path / 'run'
    reg = fresh_addr(tpt_proto, str(rundir))
    env = env_for(rundir)
    async with run_program(
        'discovery_tree.py', *tree(reg, tpt_proto, 'data_feed'), env=env
    ) as prog:
        cookie = rundir / _secret.COOKIE_NAME
        assert oct(os.stat(cookie).st_mode & 0o777) == oct(0o600)
        assert oct(os.stat(rundir).st_mode & 0o777) == oct(0o700)
        feed = prog.info['services']['data_feed']
        async with run_program(
            'discovery_tree.py', *join(reg, tpt_proto, 'data_feed'), ready='RESULT', env=env
        ) as joiner:
            assert joiner.info['found']['uid'] == feed['uid']
            assert joiner.info['called']['uid'] == feed['uid']


async def test_cookie_created_once_by_racing_programs(tmp_path):
    """Many programs starting at once with no cookie all end up with the
    same one (atomic creation: one wins, the rest read it)."""
    rundir = tmp_path / 'run'
    code = 'from tractor import _secret; print(_secret.resolve_secret().hex())'
    outputs = []

    async def one() -> None:
        res = await trio.run_process(
            [sys.executable, '-c', code], capture_stdout=True, env=env_for(rundir)
        )
        outputs.append(res.stdout.strip())

    with trio.fail_after(60):
        async with trio.open_nursery() as tn:
            for _ in range(8):
                tn.start_soon(one)
    assert len(set(outputs)) == 1 and outputs[0]
    assert sorted(os.listdir(rundir)) == [_secret.COOKIE_NAME]


async def test_explicit_secret_across_two_roots(run_program, tmp_path, tpt_proto, monkeypatch):
    """Two roots that share no cookie (separate runtime dirs, as on two
    hosts) join when they share an explicit secret; a root with another
    secret, or with only its own cookie, fails with AuthenticationError,
    and the tree logs one refusal per attempt."""
    reg = fresh_addr(tpt_proto, str(tmp_path / 'a'))
    async with run_program(
        'discovery_tree.py',
        *tree(reg, tpt_proto, 'data_feed'),
        env=env_for(tmp_path / 'a', secret='alpha'),
    ) as prog:
        feed = prog.info['services']['data_feed']
        # the same secret in another "host"'s environment: joins
        async with run_program(
            'discovery_tree.py',
            *join(reg, tpt_proto, 'data_feed'),
            ready='RESULT',
            env=env_for(tmp_path / 'b', secret='alpha'),
        ) as ok:
            assert ok.info['found']['uid'] == feed['uid']
        # another secret, or none (its own fresh cookie): refused at boot
        for secret, rundir in (('beta', tmp_path / 'b'), (None, tmp_path / 'c')):
            async with run_program(
                'discovery_tree.py',
                *join(reg, tpt_proto, 'data_feed'),
                ready='AUTHFAIL',
                env=env_for(rundir, secret=secret),
                expect_rc=3,
            ) as bad:
                assert 'authentication failed' in bad.info['error']
        # this process as a root: the argument wins over the environment
        monkeypatch.setenv('TRACTOR_SECRET', 'beta')
        with trio.fail_after(30):
            async with (
                tractor.open_root_actor(
                    secret=b'alpha', registry_addrs=[reg], enable_transports=[tpt_proto]
                ),
                tractor.find_actor('data_feed') as portal,
            ):
                assert portal is not None
                assert list(portal.channel.uid) == feed['uid']
            with pytest.raises(tractor.AuthenticationError, match='authentication failed'):
                async with tractor.open_root_actor(
                    registry_addrs=[reg], enable_transports=[tpt_proto]
                ):
                    pass
    # one warning line per refused root on the tree's side, naming the peer
    refused = [line for line in prog.stderr().splitlines() if 'refused connection from' in line]
    assert len(refused) == 3, prog.stderr()
    assert all('authentication failed' in line for line in refused)
