"""Running a whole program from a test, with a hard bound."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


class ProgramTimeout(AssertionError):
    """The program ran past its bound (it was killed, with its group)."""


def run_program(cmd: list[str], *, cwd: Path, timeout: float) -> tuple[int, str, str]:
    """Run ``cmd`` in its own session and return ``(returncode, stdout,
    stderr)``. Past ``timeout`` seconds the whole process group it started
    (and only that) is killed and :class:`ProgramTimeout` raised, carrying
    what it printed."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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
