"""What a user's type checker sees: the seed APIs, the lazily resolved
names included, carry their real signatures (mypy on a small program)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip('mypy', reason='the typing test needs mypy (the dev dependency group)')

HERE = Path(__file__).parent / 'typecheck_programs'
TIMEOUT = 300


def _mypy(program: str) -> subprocess.CompletedProcess:
    # --follow-imports=silent: judge the user's program, not our internals;
    # --config-file '': as a user runs it, without the workspace's own mypy
    # settings (mypy would find the root pyproject.toml above the program)
    return subprocess.run(
        [
            sys.executable,
            '-m',
            'mypy',
            '--config-file',
            '',
            '--follow-imports=silent',
            '--python-version',
            '3.11',
            '--no-incremental',
            '--no-error-summary',
            '--show-error-codes',
            str(HERE / program),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=HERE,
    )


@pytest.mark.slow
def test_a_user_program_of_the_seed_apis_type_checks_clean():
    res = _mypy('seed_user_program.py')
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == '', res.stdout


@pytest.mark.slow
def test_wrong_calls_are_refused_by_the_type_checker():
    """The signatures are real, not ``Any``: every wrong call is reported."""
    res = _mypy('misuse_program.py')
    assert res.returncode == 1, res.stdout + res.stderr
    source = (HERE / 'misuse_program.py').read_text().splitlines()
    wanted = {i + 1 for i, line in enumerate(source) if line.endswith('# error')}
    reported = {int(line.split(':')[1]) for line in res.stdout.splitlines() if ': error:' in line}
    assert wanted <= reported, res.stdout
