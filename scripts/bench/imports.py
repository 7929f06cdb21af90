"""import: ``import tractor`` in a fresh interpreter vs ``import trio,
msgspec`` (the import statement alone, timed inside the child; median)."""

from __future__ import annotations

import subprocess
import sys

from common import median

PROG = 'import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)'
CASES = {'tractor': 'tractor', 'trio_msgspec': 'trio, msgspec'}


def _time_import(what: str, cwd: str) -> float:
    out = subprocess.run(
        [sys.executable, '-c', PROG.format(what)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout)


def run(quick: bool, tmpdir: str) -> dict[str, float]:
    runs = 3 if quick else 15
    samples: dict[str, list[float]] = {case: [] for case in CASES}
    for what in CASES.values():
        _time_import(what, tmpdir)  # bytecode caches written, page cache warm
    for _ in range(runs):  # interleaved, so background load hits both alike
        for case, what in CASES.items():
            samples[case].append(_time_import(what, tmpdir))
    return {
        'import.tractor_ms': median(samples['tractor']) * 1e3,
        'floor.import_trio_msgspec_ms': median(samples['trio_msgspec']) * 1e3,
    }
