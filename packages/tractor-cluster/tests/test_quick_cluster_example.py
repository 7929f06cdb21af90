"""The seed's example, examples/quick_cluster.py, run unchanged as a program."""

from __future__ import annotations

import os
import re
import socket
import sys
from multiprocessing import cpu_count

import pytest
import trio

pytestmark = pytest.mark.slow


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('unbuffered', [False, True], ids=['buffered', 'PYTHONUNBUFFERED'])
async def test_quick_cluster_example_runs_unchanged(examples_dir, unbuffered):
    """One worker per core prints its uid, which names it by its key
    (``('root.worker_0', '<uuid>')``), the KeyboardInterrupt raised in the
    body tears the fleet down and reaches the script's handler, and the
    program exits 0 (the suite's leak check then finds no worker left).

    The example relies on the default TCP registry address; the
    ``TRACTOR_TCP_REGISTRY`` override points it at a private port so it can
    run beside other programs using the default. All the workers print to
    one pipe: each line must arrive whole, however Python buffers stdout.
    """
    env = {**os.environ, 'TRACTOR_TCP_REGISTRY': f'127.0.0.1:{free_tcp_port()}'}
    env.pop('PYTHONUNBUFFERED', None)
    if unbuffered:
        env['PYTHONUNBUFFERED'] = '1'
    with trio.fail_after(90):
        proc = await trio.run_process(
            [sys.executable, str(examples_dir / 'quick_cluster.py')],
            cwd=str(examples_dir),
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = proc.stdout.decode()
    err = proc.stderr.decode()
    assert proc.returncode == 0, f'exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}'
    lines = out.splitlines()
    # each worker's uid names it by its key in the portal map: 'root.worker_0', ...
    uids = re.findall(r"^Yo i am actor \('([\w.]+)', '([0-9a-f-]{36})'\)$", out, re.M)
    assert sorted(name for name, _ in uids) == sorted(
        f'root.worker_{i}' for i in range(cpu_count())
    ), out
    assert len({uuid for _, uuid in uids}) == cpu_count()
    assert lines[-1] == 'trio cancelled by KBI'
    assert lines.count('trio cancelled by KBI') == 1
    assert 'Traceback' not in err, err
