"""A cluster program as its user runs it: output while it runs, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import sys

import pytest
import trio

pytestmark = pytest.mark.slow

PROGRAM = """
import trio
import tractor


async def announce() -> None:
    print(f'worker up: {tractor.current_actor().name}')
    await trio.sleep_forever()


async def main():
    async with (
        tractor.open_actor_cluster(modules=[__name__], count=2) as portal_map,
        tractor.trionics.collapse_eg(),
        trio.open_nursery() as tn,
    ):
        for portal in portal_map.values():
            tn.start_soon(portal.run, announce)


if __name__ == '__main__':
    try:
        trio.run(main)
    except KeyboardInterrupt:
        print('stopped by Ctrl-C')
"""


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


async def test_worker_output_while_running_and_ctrl_c(tmp_path):
    """Workers' prints reach a piped stdout while the cluster runs (not only
    when it exits), and Ctrl-C (SIGINT to the program) tears the fleet down
    and ends the program through its KeyboardInterrupt handler."""
    script = tmp_path / 'cluster_prog.py'
    script.write_text(PROGRAM)
    env = {**os.environ, 'TRACTOR_TCP_REGISTRY': f'127.0.0.1:{free_tcp_port()}'}
    env.pop('PYTHONUNBUFFERED', None)  # stdout is a pipe: block-buffered by default
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(script)], stdout=-1, stderr=-1, env=env, cwd=str(tmp_path)
    )
    out = b''
    err = b''
    try:
        with trio.fail_after(60):
            while out.count(b'worker up: ') < 2:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, f'program ended early: {out!r}'
                out += chunk
            proc.send_signal(signal.SIGINT)
            async with trio.open_nursery() as tn:

                async def drain_err() -> None:
                    nonlocal err
                    while chunk := await proc.stderr.receive_some(4096):
                        err += chunk

                tn.start_soon(drain_err)
                while chunk := await proc.stdout.receive_some(4096):
                    out += chunk
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
    lines = out.decode().splitlines()
    assert sorted(line for line in lines if line.startswith('worker up')) == [
        'worker up: root.worker_0',
        'worker up: root.worker_1',
    ]
    assert lines[-1] == 'stopped by Ctrl-C', (out, err)
    assert proc.returncode == 0, err.decode()
