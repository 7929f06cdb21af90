"""The two example programs of the discovery docs, run unchanged.

They use the default registry address. So that they never meet another
tree (a concurrent test session, a developer's program on 1616), each run
gets its own default: ``TRACTOR_TCP_REGISTRY`` moves the TCP plugin's
default registry address to a free port, ``TRACTOR_RUNTIME_DIR`` (set
for the session by the root conftest) keeps UDS files private.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / 'examples'
TIMEOUT = 60


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_example(name: str) -> tuple[subprocess.CompletedProcess, int]:
    port = free_tcp_port()
    env = {
        **os.environ,
        'TRACTOR_TCP_REGISTRY': f'127.0.0.1:{port}',
        # the subactor prints too: unbuffered output keeps the causal order
        'PYTHONUNBUFFERED': '1',
    }
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name)],
        cwd=EXAMPLES.parent,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()  # our own child; its actors exit once their parent is gone
        out, err = proc.communicate()
        pytest.fail(f'{name} did not finish within {TIMEOUT}s\n{out}\n{err}')
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), port


def test_service_discovery_example():
    """Start a subactor, print the registrar's channel (the root is the
    registrar, so a local shim listening on the registry address), wait
    for the subactor's registration and get a portal to it."""
    res, port = run_example('service_discovery.py')
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 2, res.stdout
    assert lines[0].startswith('Registrar is listening on ')
    assert f'/ip4/127.0.0.1/tcp/{port}' in lines[0]
    assert lines[1] == "my_service is found at <Portal to 'some_actor_name'>"
    # get_console_log("INFO") shows a short trace of what the runtime did,
    # in order: the bootstrap decision, the spawn, the registration, the
    # cancel ladder, the exit
    trace = [line.split('] ', 1)[-1] for line in res.stderr.splitlines() if '] tractor.' in line]
    wanted = [
        'tractor.discovery: nobody serves the registry at',
        "tractor.discovery: 'some_actor_name' registered at",
        "tractor.supervise: spawned 'some_actor_name'",
        "tractor.supervise: cancelling 'some_actor_name'",
        "tractor.runtime: 'some_actor_name' cancel requested by root",
        "tractor.supervise: actor 'some_actor_name'",
        "tractor.discovery: 'root' unregisters",
    ]
    found = [next((i for i, line in enumerate(trace) if line.startswith(w)), None) for w in wanted]
    assert None not in found, '\n'.join(trace)
    assert found == sorted(found), '\n'.join(trace)
    assert len(trace) < 20, '\n'.join(trace)  # short: no per-message chatter at INFO


def test_service_daemon_discovery_example():
    """The daemon pattern: a miss yields None, wait_for_actor finds the
    daemon by name, the RPC returns the quote, and the daemon is cancelled
    gracefully before the root exits cleanly."""
    res, _ = run_example('service_daemon_discovery.py')
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        'client: "no_such_svc" is not registered',
        "quote_svc: serving quote for 'btcusdt'",
        'client: got btcusdt quote 66000.5',
        'root: cancelling quote_svc',
        'root: service shut down cleanly',
    ]
    assert 'Traceback' not in res.stderr
