"""Helpers shared by the core runtime tests, as fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio

from tractor_testsupport.polling import ConditionTimeout, wait_until
from tractor_testsupport.procs import pid_alive

HERE = Path(__file__).parent
SCRIPTS = HERE / 'scripts'

# the functions subactors run live in `tractor_core_testfns` (see its
# docstring); subactors inherit this path
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))


async def wait_pids_gone(pids, timeout: float = 15.0) -> list[int]:
    """Poll until none of ``pids`` runs; returns those still running at the
    deadline (so an assertion can name them)."""
    try:
        await wait_until(
            lambda: not any(pid_alive(p) for p in pids),
            f'pids {pids} gone',
            timeout=timeout,
            poll=0.05,
        )
    except ConditionTimeout:
        pass
    return [p for p in pids if pid_alive(p)]


@pytest.fixture
def pids_gone():
    """``await pids_gone(pids)`` -> the pids still alive after a bounded wait."""
    return wait_pids_gone


@pytest.fixture
def alive():
    return pid_alive


@pytest.fixture
def run_script():
    """Run ``tests/scripts/<name>`` with this venv's interpreter; returns the
    completed process (stdout/stderr as text). Bounded by ``timeout``."""

    async def run(name: str, *args: str, timeout: float = 60.0, env: dict | None = None):
        full_env = {**os.environ, **(env or {})}
        with trio.fail_after(timeout):
            return await trio.run_process(
                [sys.executable, str(SCRIPTS / name), *args],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=full_env,
            )

    return run


@pytest.fixture
def fresh_inproc_fns():
    """The in-process tier's shared state (``tractor_core_inproc_fns``),
    reset before and after the test."""
    import tractor_core_inproc_fns as fns

    fns.reset()
    yield
    fns.reset()
