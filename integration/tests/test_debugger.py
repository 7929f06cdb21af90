"""debug_mode, driven like a developer would: the programs under
``examples/debugging/`` run in a real pseudo-terminal (pexpect), and the
test reads the prompts and types pdb commands.

Every program must end (exit status checked), and the suite's leak check
proves no actor process is left behind in any case.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip('pexpect')

EXAMPLES = Path(__file__).resolve().parents[2] / 'examples' / 'debugging'
#: bound on any one expected output
TIMEOUT = 30
#: ``(Pdb <actor name> <pid>) ``
PROMPT = r'\(Pdb (?P<name>[\w.-]+) (?P<pid>\d+)\) '


def _have_pty() -> bool:
    try:
        master, slave = os.openpty()
    except OSError:
        return False
    os.close(master)
    os.close(slave)
    return True


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _have_pty(), reason='no pseudo-terminal on this machine'),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Session:
    """One example program in a pseudo-terminal."""

    def __init__(self, script: str, *args: str, env: dict | None = None) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            [str(EXAMPLES / script), *args],
            cwd=str(EXAMPLES),
            encoding='utf-8',
            codec_errors='replace',
            timeout=TIMEOUT,
            dimensions=(50, 250),
            env={**os.environ, 'TRACTOR_TCP_REGISTRY': f'127.0.0.1:{_free_port()}', **(env or {})},
        )
        self.transcript: list[str] = []

    def _seen(self) -> None:
        self.transcript.append(self.child.before or '')
        if isinstance(self.child.after, str):
            self.transcript.append(self.child.after)

    def prompt(self) -> tuple[str, int]:
        """Wait for the next debugger prompt: ``(actor name, pid)``."""
        self.child.expect(PROMPT)
        self._seen()
        return self.child.match.group('name'), int(self.child.match.group('pid'))

    def do(self, command: str) -> str:
        """Type a pdb command; what it printed before the next prompt."""
        self.child.sendline(command)
        self.prompt()
        return self.transcript[-2]

    def send(self, command: str) -> None:
        self.child.sendline(command)

    def expect(self, pattern: str) -> None:
        self.child.expect(pattern)
        self._seen()

    def finish(self) -> tuple[int | None, str]:
        """Wait for the program to end: ``(exit status, output since)``."""
        self.child.expect(pexpect.EOF)
        self._seen()
        self.child.close()
        return self.child.exitstatus, self.transcript[-1]

    def text(self) -> str:
        return ''.join(self.transcript)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def session():
    started: list[Session] = []

    def start(script: str, *args: str, env: dict | None = None) -> Session:
        s = Session(script, *args, env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def test_crash_in_root(session):
    """The root's own crash: a session in the root at the raising line, with
    its locals; continuing lets the error propagate as without debug mode."""
    s = session('root_crash.py')
    name, pid = s.prompt()
    assert (name, pid) == ('root', s.child.pid)
    header = s.text()
    assert f"actor 'root' (pid {pid}) crashed: ValueError: the root got answer=41" in header
    assert "-> raise ValueError(f'the root got answer={answer}')" in header
    assert s.do('p answer').strip().endswith('41')
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert 'ValueError: the root got answer=41' in rest
    assert '(Pdb' not in rest  # one session, not one per level


def test_crash_in_child_then_continue(session):
    s = session('child_crash.py')
    name, pid = s.prompt()
    assert name == 'divider' and pid != s.child.pid
    header = s.text()
    assert f"actor 'divider' (pid {pid}) crashed: ZeroDivisionError: division by zero" in header
    assert '-> return total / count' in header
    crashed = header.split('crashed:', 1)[1]
    assert (
        '_invoke.py' not in crashed and '_runtime.py' not in crashed
    )  # the runtime's frames are trimmed
    assert '(6, 0)' in s.do('p total, count')
    where = s.do('w')  # the stack is the user's code, not the runtime running it
    frames = [ln for ln in where.splitlines() if ln.startswith(('> ', '  ')) and '(' in ln]
    assert frames and all('child_crash.py(' in ln for ln in frames), where
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert "RemoteActorError: ZeroDivisionError raised in 'divider'" in rest
    assert '(Pdb' not in rest  # the root does not debug a relayed error again


def test_quitting_propagates_the_original_error(session):
    s = session('child_crash.py')
    assert s.prompt()[0] == 'divider'
    s.send('q')
    status, rest = s.finish()
    assert status == 1
    assert "RemoteActorError: ZeroDivisionError raised in 'divider': division by zero" in rest
    assert 'BdbQuit' not in rest


def test_crash_in_grandchild(session):
    s = session('grandchild_crash.py')
    assert s.prompt()[0] == 'grandchild'
    assert 'RuntimeError: failed at depth 2 (secret 14)' in s.text()
    assert s.do('p secret').strip().endswith('14')
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert "RuntimeError raised in 'grandchild'" in rest
    assert '(Pdb' not in rest  # neither 'middle' nor the root opens another


def test_two_children_crash_at_once(session):
    """Two crashes, two sessions, one after the other: the second child waits
    for the terminal with its error (it is neither killed by the cancel
    ladder meanwhile nor loses its error), and both errors reach the root."""
    # a short cancel grace, so that the second child's wait outlasts it
    s = session('two_children_crash.py', env={'TRACTOR_CANCEL_GRACE': '0.2'})
    first, _ = s.prompt()
    assert first in ('alpha', 'beta')
    assert repr(first) in s.do('p tag')
    s.send('c')
    second, _ = s.prompt()
    assert {first, second} == {'alpha', 'beta'}
    assert f'actor {second!r}' in s.transcript[-2]
    # several cancel graces pass while the developer reads the prompt
    assert s.child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=1.5) == 1
    assert repr(second) in s.do('p tag')
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert 'several actors failed' in rest
    assert "KeyError: 'alpha failed'" in rest and "KeyError: 'beta failed'" in rest


def test_pause_in_child_then_continue(session):
    s = session('child_pause.py')
    name, pid = s.prompt()
    assert name == 'worker'
    assert f"actor 'worker' (pid {pid}) paused" in s.text()
    assert '-> return doubled + 1' in s.text()
    assert s.do('p doubled').strip().endswith('20')
    s.send('c')
    status, rest = s.finish()
    assert status == 0, rest
    assert 'result: 21' in rest


def test_breakpoint_in_child(session):
    """The builtin breakpoint(), in synchronous code of a child; the hook is
    restored once the tree is gone."""
    s = session('child_breakpoint.py')
    name, _ = s.prompt()
    assert name == 'scaler'
    assert '-> return scaled' in s.text()
    assert '[3, 6, 9]' in s.do('p scaled')
    s.send('c')
    status, rest = s.finish()
    assert status == 0, rest
    assert 'scaled: [3, 6, 9]' in rest
    assert 'hook restored: True' in rest


def test_ctrl_c_during_a_child_session_then_after_it(session):
    """Ctrl-C at a child's prompt only interrupts the line being typed: the
    tree stays up. Once the session is over Ctrl-C cancels the tree as usual."""
    s = session('child_pause.py', '--then-wait')
    assert s.prompt()[0] == 'worker'
    s.child.sendintr()
    s.expect('--KeyboardInterrupt--')
    s.prompt()
    assert s.do('p x').strip().endswith('10')  # the worker is alive and well
    s.send('c')
    s.expect('result: 21')
    s.expect('waiting for Ctrl-C')
    s.child.sendintr()
    status, rest = s.finish()
    assert status != 0
    assert 'KeyboardInterrupt' in rest


def test_root_crashes_while_a_child_holds_the_terminal(session):
    """No deadlock: the root's session waits for the child's, then opens."""
    s = session('root_crash_during_session.py')
    assert s.prompt()[0] == 'worker'
    os.kill(s.child.pid, signal.SIGUSR1)  # the root fails now
    # the root's session waits for the terminal: nothing else appears
    assert s.child.expect([PROMPT, pexpect.EOF, pexpect.TIMEOUT], timeout=1.0) == 2
    assert s.do('p square').strip().endswith('49')
    s.send('c')
    name, _ = s.prompt()
    assert name == 'root'
    assert 'RuntimeError: the root failed during the worker session' in s.transcript[-2]
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert 'RuntimeError: the root failed during the worker session' in rest


def test_no_terminal_no_session():
    """Without a terminal on stdin (CI, a pipe) debug mode does not wait for
    input that cannot come: it says so and the error propagates at once."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / 'child_crash.py')],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, 'TRACTOR_TCP_REGISTRY': f'127.0.0.1:{_free_port()}'},
    )
    assert proc.returncode == 1
    assert "RemoteActorError: ZeroDivisionError raised in 'divider'" in proc.stderr
    assert 'not a terminal' in proc.stderr
    assert '(Pdb' not in proc.stdout


def test_post_mortem_in_an_except_block(session):
    """An explicit post-mortem on a handled error (no debug_mode needed); the
    code then carries on."""
    s = session('post_mortem_in_except.py')
    assert s.prompt()[0] == 'parser'
    assert "ValueError: invalid literal for int() with base 10: '80a'" in s.text()
    assert '-> return int(text)' in s.text()
    assert "'80a'" in s.do('p text')
    s.send('c')
    status, rest = s.finish()
    assert status == 0, rest
    assert 'port: 8080' in rest


def test_debug_mode_for_one_child(session):
    s = session('per_child_debug_mode.py')
    assert s.prompt()[0] == 'sqrt'
    assert s.do('p x').strip().endswith('-4.0')
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert "ValueError raised in 'sqrt': cannot take the square root of -4.0" in rest


def test_crash_in_asyncio_task_of_infected_child(session):
    """An infected child (trio as a guest of asyncio): the asyncio task's
    crash opens the session at the asyncio line that raised, with its
    locals, and continuing propagates it like a trio task's error."""
    s = session('asyncio_child_crash.py')
    name, pid = s.prompt()
    assert name == 'aio_avg' and pid != s.child.pid
    header = s.text()
    assert f"actor 'aio_avg' (pid {pid}) crashed: ZeroDivisionError: division by zero" in header
    assert '-> return sum(window) / len(window)' in header
    assert s.do('p window').strip().endswith('[]')
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert "RemoteActorError: ZeroDivisionError raised in 'aio_avg'" in rest
    assert '(Pdb' not in rest


def test_crash_handler_without_a_runtime(session):
    """``maybe_open_crash_handler(pdb=True)`` in plain sync code: a
    post-mortem at the raising line, then the error propagates."""
    s = session('crash_handler.py', 'sync')
    s.expect(r'\(Pdb\) ')
    assert 'crashed: ValueError' in s.text()
    s.send('p text')
    s.expect(r'\(Pdb\) ')
    assert "'80a'" in s.transcript[-2]
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert 'ValueError: invalid literal' in rest


def test_crash_handler_in_a_child(session):
    """``async with maybe_open_crash_handler()`` in a debug-mode child: one
    session (the runtime's crash hook does not open a second one), then the
    error reaches the root boxed."""
    s = session('crash_handler.py', 'child')
    name, _ = s.prompt()
    assert name == 'loader'
    assert 'crashed: ValueError' in s.text()
    stack = s.do('where')
    assert 'parse_port' in stack and 'load_config' in stack
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert 'RemoteActorError' in rest and 'ValueError' in rest
    assert s.text().count('crashed: ValueError') == 1


def test_crash_handler_in_sync_code_of_the_root(session):
    """``with maybe_open_crash_handler()`` in sync code of a debug-mode
    root: the session waits for the tree's terminal like ``breakpoint()``."""
    s = session('crash_handler.py', 'root-sync')
    name, _ = s.prompt()
    assert name == 'root'
    assert "'80a'" in s.do('p text')
    s.send('c')
    status, rest = s.finish()
    assert status == 1
    assert 'ValueError: invalid literal' in rest
    assert s.text().count('crashed: ValueError') == 1


@pytest.mark.parametrize('all_frames', [False, True], ids=['hide_tb', 'all-frames'])
def test_post_mortem_hide_tb(session, all_frames):
    """``post_mortem(hide_tb=False)`` keeps the runtime's frames (here
    ``tractor/msg.py``, between the caller and importlib) in the traceback
    and the stack ``where`` walks; by default they are left out."""
    s = session('post_mortem_hide_tb.py', *(['--all-frames'] if all_frames else []))
    name, _ = s.prompt()
    assert name == 'root'
    stack = s.do('where')
    assert 'load()' in stack and '_bootstrap' in stack, stack
    assert (('tractor' + os.sep + 'msg.py') in stack) is all_frames, stack
    s.send('c')
    status, rest = s.finish()
    assert status == 0, rest
    assert 'loaded: None' in rest
