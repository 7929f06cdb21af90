"""An infected root: ``tractor.to_asyncio.run_as_asyncio_guest(main)``, its
result, and Ctrl-C (SIGINT) taking the tree down as in a trio root."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest
import trio

import tractor
from tractor import _aio_task, to_asyncio

pytestmark = pytest.mark.slow

SCRIPT = os.path.join(os.path.dirname(__file__), 'scripts', 'aio_root.py')


@pytest.fixture
def tpt_proto() -> str:
    """The transport plays no part here (the script serves TCP)."""
    return 'tcp'


async def aio_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def test_run_as_asyncio_guest_returns_and_raises(runtime_kwargs):
    """A synchronous test: the root's trio runs as a guest of a fresh loop."""

    async def main(x: int) -> dict:
        with trio.fail_after(30):
            async with tractor.open_root_actor(**runtime_kwargs):
                return {
                    'sum': await to_asyncio.run_task(aio_add, a=x, b=1),
                    'infected': tractor.current_actor().is_infected_aio(),
                }

    assert to_asyncio.run_as_asyncio_guest(main, 41) == {'sum': 42, 'infected': True}
    assert not to_asyncio.is_infected()

    async def fails() -> None:
        await to_asyncio.run_task(aio_add, a=1, b='x')

    with pytest.raises(TypeError, match='unsupported operand'):
        to_asyncio.run_as_asyncio_guest(fails)


async def test_run_as_asyncio_guest_refuses_inside_a_loop():
    async def aio() -> None:
        to_asyncio.run_as_asyncio_guest(trio.sleep, 0)

    with pytest.raises(RuntimeError, match='from synchronous code'):
        # a plain asyncio loop in a worker thread: not allowed to nest
        await trio.to_thread.run_sync(asyncio.run, aio())


@pytest.mark.parametrize('start_method', ['forkserver', 'trio'])
async def test_ctrl_c_in_infected_root(reg_addr, pids_gone, start_method):
    """SIGINT to an infected root: KeyboardInterrupt in its trio main task,
    the tree's asyncio tasks (root's and child's) cancelled, nothing left,
    no asyncio warnings."""
    with trio.fail_after(45):
        proc = await trio.lowlevel.open_process(
            [sys.executable, SCRIPT, json.dumps(reg_addr), start_method],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            buf = b''
            while b'\n' not in buf:
                chunk = await proc.stdout.receive_some()
                assert chunk, f'aio_root.py exited early with {await proc.wait()}'
                buf += chunk
            pids = json.loads(buf.split(b'\n', 1)[0])
            proc.send_signal(signal.SIGINT)
            stdout = buf
            async with trio.open_nursery() as tn:

                async def drain(stream, into: list) -> None:
                    while chunk := await stream.receive_some():
                        into.append(chunk)

                out_chunks: list[bytes] = []
                err_chunks: list[bytes] = []
                tn.start_soon(drain, proc.stdout, out_chunks)
                tn.start_soon(drain, proc.stderr, err_chunks)
            stdout += b''.join(out_chunks)
            stderr = b''.join(err_chunks)
            await proc.wait()
            assert proc.returncode != 0
            text = stdout.decode()
            assert 'root: KeyboardInterrupt' in text, (text, stderr.decode())
            assert 'root: asyncio task cancelled' in text
            assert 'child: asyncio task cancelled' in text
            assert b'Task was destroyed' not in stderr, stderr.decode()
            assert await pids_gone([pids['child']]) == []
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
            await proc.stdout.aclose()
            await proc.stderr.aclose()


async def aio_stubborn(log: list) -> None:
    log.append('started')
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append('ignored a cancel')


def test_task_ignoring_cancel_without_parent(monkeypatch, caplog):
    """With nobody to kill the actor, the trio side waits a bounded grace for
    a cancelled asyncio task that ignores it, logs it and goes on; the loop
    closes without asyncio's pending-task warning."""
    import gc

    monkeypatch.setattr(_aio_task, 'AIO_CANCEL_GRACE', 0.3)  # read there
    ignored: list[str] = []

    async def main() -> str:
        scope = trio.CancelScope()

        async def call() -> None:
            with scope:
                await to_asyncio.run_task(aio_stubborn, log=ignored)

        with trio.fail_after(20):
            async with trio.open_nursery() as tn:
                tn.start_soon(call)
                while not ignored:  # until the asyncio task runs
                    await trio.sleep(0.01)
                scope.cancel()
        return 'went on'

    assert to_asyncio.run_as_asyncio_guest(main) == 'went on'
    gc.collect()
    messages = [r.getMessage() for r in caplog.records]
    assert 'ignored a cancel' in ignored  # it really was cancelled, and ignored it
    assert any(
        "'aio_stubborn' ignored its cancellation for 0.3s: the trio side stops" in m
        for m in messages
    ), messages
    assert any(
        "'aio_stubborn' ignored its cancellation for 0.3s: abandoned at exit" in m for m in messages
    ), messages
    assert not any('Task was destroyed' in m for m in messages), messages


async def aio_cancel_every_task() -> int:
    """asyncio code doing its own 'shutdown': cancel every other task."""
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    for t in others:
        t.cancel()
    return len(others)


def test_asyncio_code_cancelling_all_tasks_spares_the_guest():
    async def main() -> tuple[int, int]:
        with trio.fail_after(20):
            cancelled = await to_asyncio.run_task(aio_cancel_every_task)
            # trio (the guest) carries on, and so do the bridges
            return cancelled, await to_asyncio.run_task(aio_add, a=2, b=3)

    cancelled, total = to_asyncio.run_as_asyncio_guest(main)
    assert cancelled >= 1 and total == 5


async def aio_stubborn_channel(chan: to_asyncio.LinkedTaskChannel, log: list) -> None:
    chan.started_nowait('up')
    await aio_stubborn(log)


def test_channel_block_exit_with_task_ignoring_cancel(monkeypatch, caplog):
    """Leaving an open_channel_from block cancels its asyncio task; one that
    ignores it is waited for a bounded grace, logged, and the block exits."""
    monkeypatch.setattr(_aio_task, 'AIO_CANCEL_GRACE', 0.3)  # read there
    ignored: list[str] = []

    async def main() -> str:
        with trio.fail_after(20):
            async with to_asyncio.open_channel_from(aio_stubborn_channel, log=ignored) as (
                first,
                _,
            ):
                assert first == 'up'
        return 'exited'

    assert to_asyncio.run_as_asyncio_guest(main) == 'exited'
    assert 'ignored a cancel' in ignored
    assert any(
        "'aio_stubborn_channel' ignored its cancellation" in r.getMessage() for r in caplog.records
    )


def test_public_names():
    """``tractor.to_asyncio`` resolves without an explicit import (lazily:
    a trio-only program never imports asyncio through tractor)."""
    assert tractor.to_asyncio is to_asyncio
    assert set(to_asyncio.__all__) == {
        'AIO_CANCEL_GRACE',
        'AsyncioCancelled',
        'LinkedTaskChannel',
        'NotInfectedError',
        'is_infected',
        'open_channel_from',
        'run_as_asyncio_guest',
        'run_task',
    }
    assert issubclass(to_asyncio.NotInfectedError, RuntimeError)
    assert issubclass(to_asyncio.NotInfectedError, tractor.TractorError)
    assert not to_asyncio.is_infected()


def test_import_tractor_does_not_import_asyncio():
    code = 'import sys, tractor, tractor._child; print("asyncio" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == 'False', out.stderr
