"""boot: ``open_root_actor()`` entered until its body runs, for the two
kinds of root a short program is:

- the *registrar* case: nothing listens on the registry address, so the
  root binds it and serves the registry itself;
- the *joiner* case: a registrar (another process) already serves it, so
  the root binds a random address and registers there.

Each sample is a fresh interpreter that has imported tractor (the import
is the import family's figure) and boots one root, as a script or the CLI
does, with bytecode caches written (as for an installed program); the
block's exit is reported too. Floor: ``os.fork()`` +
``waitpid()`` of this process, measured here (``--only boot`` has it
without the spawn family).
"""

from __future__ import annotations

import subprocess
import sys

from common import helper_process, median, pct, tcp_registry
from spawn import fork_floor

#: one program's life: prints "<boot seconds> <exit seconds>"
PROGRAM = """
import sys, time, trio, tractor
async def main(port):
    t0 = time.perf_counter()
    async with tractor.open_root_actor(registry_addrs=[('127.0.0.1', port)]):
        t1 = time.perf_counter()
    print(t1 - t0, time.perf_counter() - t1)
trio.run(main, int(sys.argv[1]))
"""
#: the registrar the joiner case joins: a root that serves until stdin closes
REGISTRAR = """
import sys, trio, tractor
async def main(port):
    async with tractor.open_root_actor(registry_addrs=[('127.0.0.1', port)]):
        print('up', flush=True)
        await trio.lowlevel.wait_readable(sys.stdin.fileno())  # until stdin closes
trio.run(main, int(sys.argv[1]))
"""


def _boot_once(port: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, '-c', PROGRAM, str(port)], capture_output=True, text=True, timeout=60
    )
    if out.returncode:
        raise RuntimeError(f'a boot program exited {out.returncode}:\n{out.stderr}')
    boot, exit_ = out.stdout.split()
    return float(boot), float(exit_)


def _samples(n: int, port: int | None = None) -> tuple[list, list]:
    boots, exits = [], []
    _boot_once(port if port is not None else tcp_registry()[0][1])  # writes the caches
    for _ in range(n):
        boot, exit_ = _boot_once(port if port is not None else tcp_registry()[0][1])
        boots.append(boot)
        exits.append(exit_)
    return boots, exits


def run(quick: bool) -> dict[str, float]:
    n = 3 if quick else 20
    reg_boot, reg_exit = _samples(n)
    registry = tcp_registry()
    with helper_process(REGISTRAR, str(registry[0][1])) as ready:
        if ready != 'up':
            raise RuntimeError('the registrar for the joiner case did not start')
        join_boot, join_exit = _samples(n, registry[0][1])
    ms = 1e3
    fork = fork_floor(20 if quick else 200)
    return {
        'floor.fork_waitpid.boot.p50_ms': pct(fork, 0.5) * ms,
        'boot.registrar.p50_ms': median(reg_boot) * ms,
        'boot.registrar.exit_p50_ms': median(reg_exit) * ms,
        'boot.joiner.p50_ms': median(join_boot) * ms,
        'boot.joiner.exit_p50_ms': median(join_exit) * ms,
    }
