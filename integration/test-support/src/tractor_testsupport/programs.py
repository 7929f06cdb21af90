"""Running a whole program from a test, with a hard bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


class ProgramTimeout(AssertionError):
    """The program ran past its bound (it was killed, with its group)."""


def run_program(cmd: list[str], *, cwd: Path, timeout: float) -> tuple[int, str, str]:
    """Run ``cmd`` in its own session and return ``(returncode, stdout,
    stderr)``. Past ``timeout`` seconds the whole process group it started
    (and only that) is killed and :class:`ProgramTimeout` raised, carrying
    what it printed."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise ProgramTimeout(
            f'{Path(cmd[1]).name if len(cmd) > 1 else cmd[0]} took over {timeout}s\n'
            f'{stdout}\n{stderr[-4000:]}'
        ) from None
    return proc.returncode, stdout, stderr


class TreeProgram:
    """A program started by :func:`tree_program`: it reports what a test
    needs as one JSON line on stdout, then waits for the test to act."""

    def __init__(self, proc: Any, name: str) -> None:
        self.proc = proc
        self.name = name

    async def report(self) -> Any:
        """The first stdout line, decoded as JSON (a program that exits
        before printing it fails the test, naming its exit code)."""
        buf = b''
        while b'\n' not in buf:
            chunk = await self.proc.stdout.receive_some()
            assert chunk, f'{self.name} exited early with {await self.proc.wait()}'
            buf += chunk
        return json.loads(buf.split(b'\n', 1)[0])

    async def finish(self) -> bytes:
        """Read stderr to its end and wait for the exit; returns stderr."""
        stderr = b''
        while chunk := await self.proc.stderr.receive_some():
            stderr += chunk
        await self.proc.wait()
        return stderr


@asynccontextmanager
async def tree_program(
    argv: list[str], env: dict[str, str] | None = None
) -> AsyncIterator[TreeProgram]:
    """Start ``argv`` with stdout and stderr piped (``env``: variables set
    on top of ours); on leaving the block a program still running is killed
    (our pid only) and reaped. The caller bounds the time (``trio.fail_after``)."""
    import trio

    proc = await trio.lowlevel.open_process(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
    )
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None  # both piped
    try:
        yield TreeProgram(proc, Path(argv[1]).name if len(argv) > 1 else argv[0])
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
        await stdout.aclose()
        await stderr.aclose()
