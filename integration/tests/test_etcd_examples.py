"""The seed examples, unchanged, with their default registry moved to a
real etcd by ``TRACTOR_REGISTRY``: they run as on the embedded registrar,
and every entry is gone once they exited."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from tractor_testsupport.etcd import loopback_member, stored_names
from tractor_testsupport.programs import run_program

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / 'examples'


@pytest.mark.parametrize(
    'example, expect',
    [
        ('service_discovery.py', 'my_service is found at'),
        ('service_daemon_discovery.py', 'got btcusdt quote'),
        ('quick_cluster.py', 'Yo i am actor'),
        ('streaming_context.py', 'worker handled 1000 messages'),
    ],
)
def test_seed_example_on_etcd(example, expect, monkeypatch):
    with loopback_member() as etcd:
        prefix = f'seed{uuid.uuid4().hex[:6]}'
        monkeypatch.setenv('TRACTOR_REGISTRY', f'etcd://{etcd.endpoint}/{prefix}?ttl=2')
        rc, out, err = run_program(
            [sys.executable, str(EXAMPLES / example)], cwd=EXAMPLES.parent, timeout=90
        )
        assert rc == 0, f'{example} exited {rc}\n{out}\n{err[-3000:]}'
        assert expect in out, out
        assert stored_names(etcd.endpoint, prefix) == {}  # every lease revoked


def test_etcd_bench_quick_runs(tmp_path):
    """``scripts/bench/etcd.py --quick`` produces every figure (never judged:
    timings on a shared machine prove nothing)."""
    import json

    from tractor_testsupport.etcd import etcd_binary

    if etcd_binary() is None:
        pytest.skip('etcd is not installed (Debian: apt-get install etcd-server)')
    out = tmp_path / 'etcd.json'
    bench = EXAMPLES.parent / 'scripts' / 'bench' / 'etcd.py'
    rc, stdout, err = run_program(
        [sys.executable, str(bench), '--quick', '--json', str(out)], cwd=bench.parent, timeout=180
    )
    assert rc == 0, f'{stdout}\n{err[-3000:]}'
    figures = json.loads(out.read_text())
    for key in (
        'find_actor',
        'query_actor',
        'wait_for_actor',
        'raw_range',
        'connect',
        'register',
        'find_actor_10k',
        'find_actors_10k',
    ):
        assert figures[f'etcd.{key}.p50_us'] > 0
    assert figures['etcd.find_actor_over_floor'] > 0
