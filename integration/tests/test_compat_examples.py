"""Our own programs for what the established project's examples of typed
payloads and of a dedicated registrar (``run_daemon``) show, run unchanged.

Each run gets a private TCP registry address (``TRACTOR_TCP_REGISTRY``) so
it never meets another tree.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from tractor_testsupport.programs import run_program

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / 'examples'
TIMEOUT = 60


def run_example(name: str) -> tuple[int, str, str]:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    os.environ['TRACTOR_TCP_REGISTRY'] = f'127.0.0.1:{port}'
    try:
        return run_program(
            [sys.executable, str(EXAMPLES / name)], cwd=EXAMPLES.parent, timeout=TIMEOUT
        )
    finally:
        del os.environ['TRACTOR_TCP_REGISTRY']


def test_typed_payloads_example():
    rc, out, err = run_example('typed_payloads.py')
    assert rc == 0, err
    lines = out.splitlines()
    assert any(line.startswith('callee: refused before sending:') for line in lines), out
    assert 'caller: started with Point(x=0, y=0)' in lines
    assert [line for line in lines if 'mirrored' in line] == [
        f'caller: mirrored Point(x={-i}, y={-2 * i})' for i in range(1, 4)
    ]
    assert lines[-1] == 'caller: a tuple is no Point, refused here'


def test_dedicated_registrar_example():
    rc, out, err = run_example('dedicated_registrar.py')
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith('registrar up, pid ')
    assert lines[1] == 'hello from greeter'
    assert lines[-1] == 'registrar stopped'


def test_feeds_example():
    """open_stream_from, MsgStream.subscribe and maybe_open_context, as
    examples/feeds.py uses them."""
    rc, out, err = run_example('feeds.py')
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:3] == [f"tick {{'sym': 'btc', 'px': {100 + i}}}" for i in range(3)]
    assert lines[3:6] == [f'reader {i} got [0, 1, 2]' for i in range(3)]
    users = sorted(lines[6:])
    assert len(users) == 3 and all(u.startswith('user ') for u in users), out
    assert [u.rsplit(' ', 1)[1] for u in users].count('(opened)') == 1, out
