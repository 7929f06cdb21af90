"""``examples/asyncio_echo.py`` (the README's "Using asyncio libraries"
example), run unchanged as a program."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tractor_testsupport.programs import run_program

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def test_asyncio_echo_example(monkeypatch) -> None:
    with socket.socket() as s:  # a registry of its own, never another tree's
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    monkeypatch.setenv('TRACTOR_TCP_REGISTRY', f'127.0.0.1:{port}')
    monkeypatch.setenv('PYTHONUNBUFFERED', '1')
    code, out, err = run_program(
        [sys.executable, str(ROOT / 'examples' / 'asyncio_echo.py')], cwd=ROOT, timeout=TIMEOUT
    )
    assert code == 0, f'{out}\n{err}'
    lines = out.splitlines()
    assert lines[0] == 'asyncio says: slept 0.1s in _UnixSelectorEventLoop'
    assert lines[1].startswith('shouter: connected to port ')
    assert lines[2:] == ['hello -> HELLO', 'from -> FROM', 'trio -> TRIO']
    assert 'Task was destroyed' not in err and 'Traceback' not in err, err
