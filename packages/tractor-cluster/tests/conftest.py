"""Fixtures for the cluster tests.

Test modules are also loaded inside worker processes (they serve their own
functions over RPC), so they must not import each other: shared helpers
live here, as fixtures.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest
import trio

from tractor._plugins import get_plugin_manager, hookimpl
from tractor_testsupport.polling import wait_until as poll_until
from tractor_testsupport.procs import pid_alive

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / 'examples'


@pytest.fixture
def alive():
    """``alive(pid)``: is that process still running?"""
    return pid_alive


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture
def wait_until():
    """``await wait_until(predicate)``: poll a (sync) condition until it holds
    (:func:`tractor_testsupport.polling.wait_until`; callers usually bound it
    tighter with their own ``trio.fail_after``)."""

    async def wait(predicate, poll: float = 0.02) -> None:
        await poll_until(predicate, poll=poll)

    return wait


class RecordingSpawner:
    """A spawn backend (registered as a plugin) that starts actors exactly
    like the built-in ``'trio'`` backend and keeps each ``trio.Process`` by
    actor name (a cluster worker's is its key, ``'root.worker_0'``), so a
    test can read the workers' exit statuses after they were reaped."""

    key = 'cluster-test-recording'

    def __init__(self) -> None:
        self.procs: dict[str, trio.Process] = {}

    @hookimpl
    def tractor_spawn_methods(self) -> dict:
        return {self.key: self.spawn}

    async def spawn(self, *, name: str, uuid: str, parent_addr: str) -> trio.Process:
        from tractor._spawn_trio import spawn_trio

        proc = await spawn_trio(name=name, uuid=uuid, parent_addr=parent_addr)
        self.procs[name] = proc
        return proc

    def returncodes(self) -> dict[str, int | None]:
        return {name: proc.returncode for name, proc in self.procs.items()}


@pytest.fixture
def recording_spawner():
    """A registered :class:`RecordingSpawner`; pass ``start_method=rec.key``."""
    rec = RecordingSpawner()
    pm = get_plugin_manager()
    pm.register(rec, name=f'{RecordingSpawner.key}-{id(rec)}')
    try:
        yield rec
    finally:
        pm.unregister(rec)
        for proc in rec.procs.values():  # belt and braces: never leave ours
            if proc.returncode is None:
                proc.kill()


@pytest.fixture
def restore_tractor_loglevel():
    """Undo a test's change of the ``tractor`` logger level."""
    logger = logging.getLogger('tractor')
    before = logger.level
    yield
    logger.setLevel(before)


@pytest.fixture
def sigkill() -> int:
    """The returncode of a process killed by SIGKILL, as trio reports it."""
    return -signal.SIGKILL
