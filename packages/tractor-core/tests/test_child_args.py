"""A subactor's command line (``python -m tractor._child ...``): what the
spawn backends build parses back to the same values, and a bad one exits 2
naming what is wrong, as an argparse program would."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tractor._child import ChildArgs, parse_args
from tractor._proctitle import room_arg
from tractor._spawn_trio import CHILD_MODULE

BASE = ['--name', 'worker', '--uuid', 'u-1', '--parent', '/tmp/x.sock']


def test_what_the_spawn_backends_build_parses_back():
    argv = [*BASE, '--secret-fd', '7', '--asyncio', '--plugin', 'a.b', '--plugin', 'c:d']
    assert parse_args([*argv, room_arg(40)]) == ChildArgs(
        name='worker',
        uuid='u-1',
        parent='/tmp/x.sock',
        secret_fd=7,
        asyncio=True,
        plugin=('a.b', 'c:d'),
    )
    assert parse_args(BASE) == ChildArgs('worker', 'u-1', '/tmp/x.sock')


def test_values_may_be_inline_and_may_contain_equals_signs():
    got = parse_args(['--name=w', '--uuid=u', '--parent=tcp/127.0.0.1/tcp/1?x=y', '--secret-fd=3'])
    assert (got.name, got.uuid, got.parent, got.secret_fd) == (
        'w',
        'u',
        'tcp/127.0.0.1/tcp/1?x=y',
        3,
    )


@pytest.mark.parametrize(
    'argv, problem',
    [
        (BASE[:4], 'the following arguments are required: --parent'),
        ([], 'required: --name, --uuid, --parent'),
        ([*BASE, '--bogus'], 'unrecognized argument: --bogus'),
        ([*BASE, '--asyncio=yes'], 'unrecognized argument: --asyncio=yes'),
        ([*BASE, '--secret-fd'], 'argument --secret-fd: expected one value'),
        ([*BASE, '--secret-fd', 'three'], "not a file descriptor number: 'three'"),
    ],
)
def test_a_bad_command_line_exits_2_saying_why(argv, problem, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('usage: python -m tractor._child --name NAME')
    assert problem in err


@pytest.mark.slow  # starts an interpreter
def test_running_the_module_with_a_bad_command_line():
    proc = subprocess.run(
        [sys.executable, '-m', CHILD_MODULE, '--name', 'x'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert 'required: --uuid, --parent' in proc.stderr
