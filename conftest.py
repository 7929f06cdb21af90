"""Suite-wide fixtures: per-session sandboxing and the no-leftover-actor check.

Every process started during the session (actors, example programs) inherits
``TRACTOR_TEST_SESSION``; after each test, and once more at the end, no
process carrying that token may remain.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid

import pytest

from tractor_testsupport.polling import ConditionTimeout, wait_until_sync
from tractor_testsupport.procs import pids_with_env

SESSION_TOKEN = uuid.uuid4().hex
os.environ['TRACTOR_TEST_SESSION'] = SESSION_TOKEN
# UDS sockets (and the default registry file) go to a private, short dir
_RUNTIME_DIR = tempfile.mkdtemp(prefix='trt-')
os.environ['TRACTOR_RUNTIME_DIR'] = _RUNTIME_DIR
# no actor of the suite reads a terminal: with debug_mode a crash would
# otherwise wait at a pdb prompt of whoever runs the suite (the debugger tests
# give their programs a pseudo-terminal of their own)
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
os.close(_devnull)
# keep the cancel ladder snappy in tests; the default is for real programs
os.environ.setdefault('TRACTOR_CANCEL_GRACE', '2.0')

LEAK_WAIT = 10.0


def session_pids() -> list[int]:
    """Pids of live processes (other than us) that carry this session's token
    (zombies excluded: they exited and wait for their parent to reap them)."""
    return pids_with_env('TRACTOR_TEST_SESSION', SESSION_TOKEN)


def wait_no_leftovers(timeout: float = LEAK_WAIT) -> list[int]:
    """The session's processes still running after a bounded wait."""
    try:
        wait_until_sync(
            lambda: not session_pids(),
            'no process of this session left',
            timeout=timeout,
            poll=0.05,
        )
    except ConditionTimeout:
        return session_pids()
    return []


def _describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
            out.append(f'{pid}: {cmd}')
        except OSError:
            out.append(str(pid))
    return '\n'.join(out)


@pytest.fixture(autouse=True)
def no_leftover_actors():
    """Each test must leave no actor process behind."""
    yield
    left = wait_no_leftovers()
    if left:
        import signal

        desc = _describe(left)
        for pid in left:  # ours by token: clean up so later tests are judged alone
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        pytest.fail(f'actor processes left behind by this test:\n{desc}')


@pytest.fixture(scope='session', autouse=True)
def _session_leak_check():
    yield
    left = wait_no_leftovers()
    shutil.rmtree(_RUNTIME_DIR, ignore_errors=True)
    if left:
        pytest.fail(f'actor processes survived the test session:\n{_describe(left)}')


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(params=['tcp', 'uds'])
def tpt_proto(request) -> str:
    """Run the test once over each built-in transport."""
    return request.param


@pytest.fixture
def reg_addr(tpt_proto: str, tmp_path_factory) -> tuple:
    """A fresh registry address on ``tpt_proto`` so tests never collide."""
    if tpt_proto == 'tcp':
        return ('127.0.0.1', free_tcp_port())
    return (_RUNTIME_DIR, f'registry@{uuid.uuid4().hex[:8]}.sock')


@pytest.fixture
def runtime_kwargs(tpt_proto: str, reg_addr: tuple) -> dict:
    """kwargs for open_nursery()/open_root_actor() isolating this test."""
    return {'enable_transports': [tpt_proto], 'registry_addrs': [reg_addr]}
