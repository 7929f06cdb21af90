"""The benchmark suite's ``--quick`` form runs end to end (so it cannot rot).

It checks that every figure is produced and positive, never how fast it is:
timings on a shared CI machine prove nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tractor_testsupport.programs import run_program

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / 'scripts' / 'bench' / 'run.py'
TIMEOUT = 240

#: every figure a quick run reports (a full run adds clusters of 8 and 16)
QUICK_KEYS = [
    'import.tractor_ms',
    'floor.import_trio_msgspec_ms',
    'spawn.p50_ms',
    'spawn.p90_ms',
    'teardown.p50_ms',
    'teardown.p90_ms',
    'spawn.child_cpu_ms',
    'floor.fork_waitpid.p50_ms',
    'floor.python_c_pass.p50_ms',
    *(
        f'boot.{case}.{what}'
        for case in ('registrar', 'joiner')
        for what in ('p50_ms', 'exit_p50_ms')
    ),
    'floor.fork_waitpid.boot.p50_ms',
    *(f'{who}.{what}_mib' for who in ('memory.actor', 'floor.memory') for what in ('uss', 'rss')),
    *(
        f'cluster.{n}.{what}'
        for n in (2, 4)
        for what in ('ready_ms', 'ready_per_worker_ms', 'teardown_ms', 'cpu_per_worker_ms')
    ),
    *(
        f'{prefix}.{tpt}.{case}.{stat}'
        for prefix in ('rpc', 'floor.raw_pingpong')
        for tpt in ('tcp', 'uds')
        for case in ('noop', '10k')
        for stat in ('p50_us', 'p99_us', 'per_s')
    ),
    'rpc.one_process.tcp.noop.p50_us',
    'rpc.tcp.concurrent64.per_s',
    'floor.raw_pipelined64.tcp.per_s',
    'floor.raw_pingpong_one_process.tcp.noop.p50_us',
    'rpc.one_process.tcp.noop.py_calls',
    'floor.raw_pingpong_one_process.tcp.noop.py_calls',
    'stream.tcp.oneway_per_s',
    'floor.raw_oneway_batched.tcp.per_s',
    'stream.tcp.echo.p50_us',
    'floor.raw_pingpong.tcp.yield.p50_us',
    'discovery.find_actor.p50_us',
    'discovery.query_actor.p50_us',
    'discovery.wait_for_actor.p50_us',
    'discovery.big_registry.find_actor.p50_us',
    'discovery.big_registry.query_actor.p50_us',
    *(
        f'aio.{what}.{stat}'
        for what in ('portal_run', 'trio_portal_run', 'run_task')
        for stat in ('p50_us', 'p99_us', 'per_s')
    ),
    'floor.aio_guest_hop.p50_us',
    'floor.aio_guest_hop.p99_us',
    *(
        f'{prefix}.{case}.{stat}'
        for prefix in ('rpc.tls', 'floor.raw_pingpong.tls', 'floor.raw_pingpong.tls_own')
        for case in ('noop', '10k')
        for stat in ('p50_us', 'p99_us', 'per_s')
    ),
    'stream.tls.oneway_per_s',
    'floor.raw_oneway_batched.tls.per_s',
    'stream.tls.echo.p50_us',
    'floor.raw_pingpong.tls.yield.p50_us',
]


def test_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / 'bench.json'
    cmd = [sys.executable, str(RUN), '--quick', '--json', str(out)]
    # its own session: on a hang, exactly the group it started is killed
    returncode, stdout, stderr = run_program(cmd, cwd=ROOT, timeout=TIMEOUT)
    assert returncode == 0, f'exited {returncode}\n{stdout}\n{stderr}'
    assert '| figure | value | floor | ratio | target |' in stdout

    report = json.loads(out.read_text())
    assert report['mode'] == 'quick'
    assert not report['errors']
    for field in ('cpu', 'cores', 'python', 'kernel'):
        assert report['machine'][field], field
    figures = report['figures']
    missing = [k for k in QUICK_KEYS if k not in figures]
    assert not missing, f'figures missing from the report: {missing}'
    bad = {
        k: figures[k]
        for k in QUICK_KEYS
        if not (isinstance(figures[k], (int, float)) and figures[k] > 0)
    }
    assert not bad, f'figures that are not positive numbers: {bad}'
    assert {r['key'] for r in report['rows']} <= set(figures)
