"""Fixtures for the integration tests: running separate tractor programs.

Test modules are also loaded inside subactors, so shared helpers live here
as fixtures rather than in an importable module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

PROGRAMS = Path(__file__).parent / 'programs'
#: bound on a program getting ready, and on it exiting once asked to
PROGRAM_TIMEOUT = 30.0


class Program:
    """A started program: ``proc`` (ours to reap), ``info`` (the JSON of its
    first tagged line), and ``lines`` (every tagged line read so far)."""

    def __init__(self, proc: trio.Process, stderr_path: Path) -> None:
        self.proc = proc
        self.stderr_path = stderr_path
        self.info: dict = {}
        self.lines: list[tuple[str, dict]] = []
        self._buf = b''

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors='replace')[-6000:]
        except OSError:
            return ''

    async def read_tagged(self) -> tuple[str, dict] | None:
        """The next ``TAG {json}`` line of stdout (``None`` at EOF)."""
        assert self.proc.stdout is not None
        while b'\n' not in self._buf:
            chunk = await self.proc.stdout.receive_some(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b'\n')
        tag, _, payload = line.decode().partition(' ')
        try:
            item = (tag, json.loads(payload) if payload else {})
        except ValueError:
            item = (tag, {'raw': payload})
        self.lines.append(item)
        return item

    async def expect(self, tag: str) -> dict:
        while True:
            item = await self.read_tagged()
            if item is None:
                await self.proc.wait()
                raise AssertionError(
                    f'program exited ({self.proc.returncode}) before printing {tag}:\n'
                    f'{self.stderr()}'
                )
            if item[0] == tag:
                return item[1]


@pytest.fixture
def run_program(tmp_path):
    """``async with run_program(script, *args, ready='READY') as prog``:
    start ``programs/<script>`` with this interpreter, wait (bounded) for
    its ``READY`` line, and on exit close its stdin and wait for a clean
    exit (code 0); a program that does not exit in time is killed. With
    ``ready=None`` nothing is awaited: the body reads what it needs.
    ``prefix`` runs it through a wrapper, e.g. ``['ip', 'netns', 'exec', NS]``
    (which execs the program: the pid stays the program's)."""
    count = 0

    @asynccontextmanager
    async def run(
        script: str,
        *args: str,
        ready: str | None = 'READY',
        expect_rc: int | None = 0,
        env: dict | None = None,
        prefix: list[str] | None = None,
    ) -> AsyncIterator[Program]:
        nonlocal count
        count += 1
        errpath = tmp_path / f'{Path(script).stem}-{count}.stderr'
        with open(errpath, 'wb') as errf:
            proc = await trio.lowlevel.open_process(
                [*(prefix or ()), sys.executable, str(PROGRAMS / script), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errf,
                env={**os.environ, **(env or {})},
            )
        prog = Program(proc, errpath)
        clean = False
        try:
            if ready is not None:
                with trio.fail_after(PROGRAM_TIMEOUT):
                    prog.info = await prog.expect(ready)
            yield prog
            clean = True
        finally:
            with trio.CancelScope(shield=True):
                await _reap(prog, graceful=True)
        if clean and expect_rc is not None:
            assert proc.returncode == expect_rc, (
                f'{script} exited with {proc.returncode}:\n{prog.stderr()}'
            )

    return run


async def _reap(prog: Program, graceful: bool) -> None:
    """Close stdin, drain stdout until exit (bounded), else kill our pid."""
    proc = prog.proc
    if proc.stdin is not None:
        try:
            await proc.stdin.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    with trio.move_on_after(PROGRAM_TIMEOUT if graceful else 0.1):
        while await prog.read_tagged() is not None:
            pass
        await proc.wait()
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


@pytest.fixture
def net(request):
    """Hosts on one bridge (``tractor_testsupport.netns``; 2 unless
    ``@pytest.mark.parametrize('net', [N], indirect=True)``), torn down
    afterwards whatever happened; skips saying what is missing."""
    from tractor_testsupport import netns

    why = netns.unavailable()
    if why:
        pytest.skip(why)
    with netns.hosts(getattr(request, 'param', 2)) as made:
        yield made
