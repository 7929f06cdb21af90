"""The chaos run (``scripts/chaos.py``) in a short bounded form: workers
SIGKILLed and respawned under RPC and streaming load; every call returns
or raises a typed error, none is lost, no process is left behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tractor_testsupport.programs import run_program

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHAOS = ROOT / 'scripts' / 'chaos.py'
#: the run itself is 8 s; spawning, draining and teardown come on top
TIMEOUT = 180


@pytest.mark.parametrize(
    'transport, supervised',
    [('tcp', False), ('uds', False), ('tcp', True)],
    ids=['tcp', 'uds', 'tcp-supervised'],
)
def test_chaos_quick(transport: str, supervised: bool) -> None:
    """With ``supervised`` nobody respawns by hand: the supervisor heals the
    pool, the callers keep their portals, and still no call is lost."""
    cmd = [sys.executable, str(CHAOS), '--seconds', '8', '--transport', transport]
    if supervised:
        cmd.append('--supervised')
    # its own session: on a hang, exactly the group it started is killed
    returncode, stdout, stderr = run_program(cmd, cwd=ROOT, timeout=TIMEOUT)
    lines = [line for line in stdout.splitlines() if line.startswith('CHAOS ')]
    assert lines, f'no report (exit {returncode})\n{stdout}\n{stderr[-4000:]}'
    report = json.loads(lines[-1][len('CHAOS ') :])
    assert report['calls_lost'] == 0, report
    assert report['leftover_processes'] == 0, report
    assert report['calls_failed_untyped'] == 0, report
    assert returncode == 0, f'exit {returncode}\n{stdout}\n{stderr[-4000:]}'
    # it did what it says: calls of every kind, kills, respawns, failures seen
    assert set(report['made_by_kind']) == {'rpc', 'stream', 'relay'}
    assert report['kills'] >= 1 and report['respawns'] >= 1
    assert report['supervised'] is supervised
    assert report['calls_ok'] > 0 and report['calls_failed_typed'] > 0
    assert report['calls_made'] == (
        report['calls_ok']
        + report['calls_failed_typed']
        + report['calls_failed_untyped']
        + report['calls_lost']
    )
