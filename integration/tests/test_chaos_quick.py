"""The chaos run (``scripts/chaos.py``) in a short bounded form: workers
SIGKILLed and respawned under RPC and streaming load; every call returns
or raises a typed error, none is lost, no process is left behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHAOS = ROOT / 'scripts' / 'chaos.py'
#: the run itself is 8 s; spawning, draining and teardown come on top
TIMEOUT = 180


@pytest.mark.parametrize('transport', ['tcp', 'uds'])
def test_chaos_quick(transport: str) -> None:
    cmd = [sys.executable, str(CHAOS), '--seconds', '8', '--transport', transport]
    # its own session: on a hang, kill exactly the group it started
    proc = subprocess.Popen(
        cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f'the chaos run took over {TIMEOUT}s\n{stdout}\n{stderr[-4000:]}')
    lines = [line for line in stdout.splitlines() if line.startswith('CHAOS ')]
    assert lines, f'no report (exit {proc.returncode})\n{stdout}\n{stderr[-4000:]}'
    report = json.loads(lines[-1][len('CHAOS '):])
    assert report['calls_lost'] == 0, report
    assert report['leftover_processes'] == 0, report
    assert report['calls_failed_untyped'] == 0, report
    assert proc.returncode == 0, f'exit {proc.returncode}\n{stdout}\n{stderr[-4000:]}'
    # it did what it says: calls of every kind, kills, respawns, failures seen
    assert set(report['made_by_kind']) == {'rpc', 'stream', 'relay'}
    assert report['kills'] >= 1 and report['respawns'] >= 1
    assert report['calls_ok'] > 0 and report['calls_failed_typed'] > 0
    assert report['calls_made'] == (
        report['calls_ok'] + report['calls_failed_typed'] + report['calls_failed_untyped']
        + report['calls_lost']
    )
