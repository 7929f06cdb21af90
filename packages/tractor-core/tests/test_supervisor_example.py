"""examples/supervision.py (the README's Supervision example) runs as a
program and prints what the README says."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tractor_testsupport.programs import run_program

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / 'examples' / 'supervision.py'


def test_supervision_example_runs(monkeypatch):
    with socket.socket() as s:  # a private registry port, not the default
        s.bind(('127.0.0.1', 0))
        monkeypatch.setenv('TRACTOR_TCP_REGISTRY', f'127.0.0.1:{s.getsockname()[1]}')
    rc, out, err = run_program([sys.executable, str(EXAMPLE)], cwd=EXAMPLE.parent, timeout=60)
    assert rc == 0, f'exit {rc}\n{out}\n{err[-4000:]}'
    lines = out.splitlines()
    assert lines[0] == 'the call in flight when the worker died raised TransportClosed'
    assert lines[1].startswith('worker restarted: pid ') and lines[1].endswith('restarts: 1')
    assert lines[2].startswith("gave up on 'doomed' after 2 restarts (last failure: actor 'doomed'")
    assert 'exited with code 1' in lines[2]
    assert lines[3] == 'bystander: cancelled'
    assert 'Traceback' not in err, err[-4000:]
