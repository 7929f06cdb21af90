"""tractor's benchmark suite: every figure next to its floor, in one run.

    uv run python scripts/bench/run.py [--quick] [--json out.json] [--only rpc,stream]
                                      [--start-method trio|forkserver]

Prints the machine and a markdown table (figure, value, floor, ratio, the
speed issue's target) and optionally writes everything as JSON. ``--quick``
runs few iterations and small clusters (a smoke run: it asserts nothing
about timings). Each family lives in its own module next to this one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

import aio
import boot
import cluster
import discovery
import imports
import memory
import rpc
import spawn
import stream
import tls
from common import machine

#: family -> runner(quick, tmpdir); run in this order
FAMILIES = {
    'import': lambda quick, tmp: imports.run(quick, tmp),
    'spawn': lambda quick, tmp: spawn.run(quick),
    'boot': lambda quick, tmp: boot.run(quick),
    'memory': lambda quick, tmp: memory.run(quick),
    'cluster': lambda quick, tmp: cluster.run(quick),
    'rpc': lambda quick, tmp: rpc.run(quick, tmp),
    'stream': lambda quick, tmp: stream.run(quick, tmp),
    'discovery': lambda quick, tmp: discovery.run(quick),
    'aio': lambda quick, tmp: aio.run(quick),
    'tls': lambda quick, tmp: tls.run(quick, tmp),
}

FORK = 'floor.fork_waitpid.p50_ms'
PINGPONG_TCP = 'floor.raw_pingpong.tcp.noop.p50_us'
FORK_BOOT = 'floor.fork_waitpid.boot.p50_ms'
FLOOR_NAMES = {
    FORK: 'fork+waitpid p50',
    FORK_BOOT: 'fork+waitpid p50',
    'floor.memory.uss_mib': 'USS of a process forked from a warmed template, in trio.run',
    'floor.memory.rss_mib': 'RSS of that process',
    'floor.memory.faults_pages': 'that process, since its fork',
    'floor.python_c_pass.p50_ms': '`python -c pass` p50',
    'floor.raw_oneway_batched.tcp.per_s': 'raw batched one-way',
    'floor.raw_oneway_batched.tls.per_s': 'raw batched one-way over trio.SSLStream',
    'floor.import_trio_msgspec_ms': '`import trio, msgspec`',
    'aio.trio_portal_run.p50_us': 'the same call into a trio actor',
    'aio.trio_portal_run.p99_us': 'the same call into a trio actor, p99',
    'aio.trio_portal_run.per_s': 'the same call into a trio actor',
    'floor.aio_guest_hop.p50_us': 'bare asyncio-host + trio-guest hop',
    'floor.aio_guest_hop.p99_us': 'bare asyncio-host + trio-guest hop, p99',
    'floor.raw_pingpong_one_process.tcp.noop.p50_us': 'raw tcp ping-pong p50, both ends in one process',
    'floor.raw_pingpong_one_process.tcp.noop.py_calls': 'raw tcp ping-pong, both ends in one process',
    f'floor.raw_pipelined{rpc.CALLERS}.tcp.per_s': (
        f'raw tcp, {rpc.CALLERS} requests outstanding on one connection'
    ),
    'cluster.8.ready_per_worker_ms': 'cluster of 8: ready time per worker',
    'discovery.query_actor.p50_us': 'query_actor p50, a registry of a few entries',
    'discovery.find_actor.p50_us': 'find_actor p50, a registry of a few entries',
    'rpc.tcp.noop.p50_us': 'the same call over plain TCP',
    'rpc.tcp.noop.per_s': 'the same calls over plain TCP',
    'stream.tcp.oneway_per_s': 'the same stream over plain TCP',
    'stream.tcp.echo.p50_us': 'the same echo over plain TCP',
}


def floor_name(key: str) -> str:
    if key in FLOOR_NAMES:
        return FLOOR_NAMES[key]
    if key.startswith('floor.raw_pingpong.'):  # floor.raw_pingpong.<tpt>.<case>.<stat>
        _, _, tpt, case, stat = key.split('.')
        what = {'noop': '', '10k': ' (10 KiB)', 'yield': ' (Yield)'}.get(case, f' ({case})')
        over = {'tls': 'trio.SSLStream', 'tls_own': "the TLS plugin's stream"}.get(tpt, tpt)
        return f'raw {over} ping-pong{what}' + ('' if stat == 'per_s' else f' {stat[:3]}')
    return key


def _rows() -> list[tuple[str, str, str | None, tuple | None]]:
    """(figure, key, floor key, target); a target is ('<=', ratio),
    ('>=', ratio) or ('abs<=', value in the figure's unit)."""
    rows = [
        ('spawn p50', 'spawn.p50_ms', FORK, ('<=', 5)),
        ('spawn p90', 'spawn.p90_ms', FORK, None),
        ('spawn p50 vs a bare interpreter', 'spawn.p50_ms', 'floor.python_c_pass.p50_ms', None),
        ('teardown p50', 'teardown.p50_ms', FORK, ('<=', 8)),
        ('teardown p90', 'teardown.p90_ms', FORK, None),
        ('spawn: CPU time of the actor until it answered', 'spawn.child_cpu_ms', None, None),
        (
            'spawn: page faults of the actor until it answered',
            'spawn.child_faults_pages',
            None,
            None,
        ),
        ('root boot (registrar) p50', 'boot.registrar.p50_ms', FORK_BOOT, ('<=', 3)),
        ('root exit (registrar) p50', 'boot.registrar.exit_p50_ms', FORK_BOOT, None),
        ('root boot (joiner) p50', 'boot.joiner.p50_ms', FORK_BOOT, ('<=', 3)),
        ('root exit (joiner) p50', 'boot.joiner.exit_p50_ms', FORK_BOOT, None),
        ('idle actor USS', 'memory.actor.uss_mib', 'floor.memory.uss_mib', ('<=', 1.5)),
        ('idle actor RSS', 'memory.actor.rss_mib', 'floor.memory.rss_mib', None),
        (
            'idle actor: page faults since its fork',
            'memory.actor.faults_pages',
            'floor.memory.faults_pages',
            None,
        ),
        (
            'one copy-on-write page fault (a forked child writing a page of its parent)',
            'floor.cow_fault_us',
            None,
            None,
        ),
    ]
    for n in (2, 4, 8, 16, 64):
        rows.append(
            (
                f'cluster of {n} ready',
                f'cluster.{n}.ready_ms',
                None,
                ('abs<=', 300) if n == 16 else None,
            )
        )
        rows.append((f'cluster of {n} teardown', f'cluster.{n}.teardown_ms', None, None))
        rows.append(
            (
                f'cluster of {n}: CPU time per worker until ready',
                f'cluster.{n}.cpu_per_worker_ms',
                None,
                None,
            )
        )
    rows.append(
        (
            'cluster of 64: ready time per worker',
            'cluster.64.ready_per_worker_ms',
            'cluster.8.ready_per_worker_ms',
            ('<=', 1),
        )
    )
    for key in ('tcp', 'uds'):
        for case in ('noop', '10k'):
            what = 'portal.run(noop)' if case == 'noop' else 'portal.run(noop, 10 KiB)'
            rpc_key, floor = f'rpc.{key}.{case}', f'floor.raw_pingpong.{key}.{case}'
            rows += [
                (
                    f'{what} {key} p50',
                    f'{rpc_key}.p50_us',
                    f'{floor}.p50_us',
                    ('<=', 1.4) if case == 'noop' else None,
                ),
                (f'{what} {key} p99', f'{rpc_key}.p99_us', f'{floor}.p99_us', None),
                (f'{what} {key} calls/s', f'{rpc_key}.per_s', f'{floor}.per_s', None),
            ]
    rows.append(
        (
            f'portal.run(noop) tcp calls/s, {rpc.CALLERS} callers on one portal',
            f'rpc.tcp.concurrent{rpc.CALLERS}.per_s',
            f'floor.raw_pipelined{rpc.CALLERS}.tcp.per_s',
            ('>=', 0.6),
        )
    )
    rows.append(
        (
            'portal.run(noop) tcp p50, both ends in one process',
            'rpc.one_process.tcp.noop.p50_us',
            'floor.raw_pingpong_one_process.tcp.noop.p50_us',
            None,
        )
    )
    rows.append(
        (
            'portal.run(noop) tcp: Python calls per round trip, both ends in one process',
            'rpc.one_process.tcp.noop.py_calls',
            'floor.raw_pingpong_one_process.tcp.noop.py_calls',
            None,
        )
    )
    rows += [
        (
            'stream one-way tcp',
            'stream.tcp.oneway_per_s',
            'floor.raw_oneway_batched.tcp.per_s',
            ('>=', 0.5),
        ),
        (
            'stream echo tcp p50',
            'stream.tcp.echo.p50_us',
            'floor.raw_pingpong.tcp.yield.p50_us',
            ('<=', 1.25),
        ),
        ('find_actor (not connected) p50', 'discovery.find_actor.p50_us', PINGPONG_TCP, ('<=', 6)),
        ('query_actor p50', 'discovery.query_actor.p50_us', PINGPONG_TCP, None),
        ('wait_for_actor (registered) p50', 'discovery.wait_for_actor.p50_us', PINGPONG_TCP, None),
        (
            'query_actor p50, 10,000 more entries (--quick: 200)',
            'discovery.big_registry.query_actor.p50_us',
            'discovery.query_actor.p50_us',
            ('<=', 1.1),
        ),
        (
            'find_actor p50, 10,000 more entries (--quick: 200)',
            'discovery.big_registry.find_actor.p50_us',
            'discovery.find_actor.p50_us',
            ('<=', 1.1),
        ),
        ('import tractor', 'import.tractor_ms', 'floor.import_trio_msgspec_ms', ('<=', 1.15)),
    ]
    for case in ('noop', '10k'):
        what = 'portal.run(noop)' if case == 'noop' else 'portal.run(noop, 10 KiB)'
        rpc_key, floor = f'rpc.tls.{case}', f'floor.raw_pingpong.tls.{case}'
        rows += [
            (f'{what} tls p50', f'{rpc_key}.p50_us', f'{floor}.p50_us', ('<=', 1.5)),
            (f'{what} tls p99', f'{rpc_key}.p99_us', f'{floor}.p99_us', None),
            (f'{what} tls calls/s', f'{rpc_key}.per_s', f'{floor}.per_s', None),
            # the stricter reference: the raw stream the channel itself runs on
            (
                f'{what} tls p50, own stream',
                f'{rpc_key}.p50_us',
                f'floor.raw_pingpong.tls_own.{case}.p50_us',
                None,
            ),
        ]
    rows += [
        (
            'stream one-way tls',
            'stream.tls.oneway_per_s',
            'floor.raw_oneway_batched.tls.per_s',
            None,
        ),
        (
            'stream echo tls p50',
            'stream.tls.echo.p50_us',
            'floor.raw_pingpong.tls.yield.p50_us',
            ('<=', 1.5),
        ),
        # the cost of TLS: the same figure over plain TCP as the "floor"
        (
            'TLS cost: portal.run(noop) tls vs tcp p50',
            'rpc.tls.noop.p50_us',
            'rpc.tcp.noop.p50_us',
            None,
        ),
        (
            'TLS cost: portal.run(noop) tls vs tcp calls/s',
            'rpc.tls.noop.per_s',
            'rpc.tcp.noop.per_s',
            None,
        ),
        (
            'TLS cost: stream one-way tls vs tcp',
            'stream.tls.oneway_per_s',
            'stream.tcp.oneway_per_s',
            None,
        ),
        (
            'TLS cost: stream echo tls vs tcp p50',
            'stream.tls.echo.p50_us',
            'stream.tcp.echo.p50_us',
            None,
        ),
        (
            'portal.run(noop) into an infected actor tcp p50',
            'aio.portal_run.p50_us',
            'aio.trio_portal_run.p50_us',
            ('<=', 1.5),
        ),
        (
            'portal.run(noop) into an infected actor tcp p99',
            'aio.portal_run.p99_us',
            'aio.trio_portal_run.p99_us',
            None,
        ),
        (
            'portal.run(noop) into an infected actor tcp calls/s',
            'aio.portal_run.per_s',
            'aio.trio_portal_run.per_s',
            None,
        ),
        (
            'portal.run(noop) into an infected actor vs the bare hop',
            'aio.portal_run.p50_us',
            'floor.aio_guest_hop.p50_us',
            None,
        ),
        (
            'to_asyncio.run_task(noop) round trip p50',
            'aio.run_task.p50_us',
            'floor.aio_guest_hop.p50_us',
            None,
        ),
        (
            'to_asyncio.run_task(noop) round trip p99',
            'aio.run_task.p99_us',
            'floor.aio_guest_hop.p99_us',
            None,
        ),
    ]
    return rows


def _fmt(key: str, value: float) -> str:
    if key.endswith('per_s'):
        return f'{value:,.0f}/s'
    if key.endswith('_pages'):
        return f'{value:,.0f} pages'
    if key.endswith('py_calls'):
        return f'{value:,.1f} calls'
    unit = {'_ms': 'ms', '_mib': 'MiB'}.get(key[key.rfind('_') :], 'µs')
    return f'{value:#.3g} {unit}' if value < 100 else f'{value:,.0f} {unit}'


def build_rows(figures: dict[str, float]) -> list[dict]:
    out = []
    for label, key, floor_key, target in _rows():
        if key not in figures:
            continue
        value = figures[key]
        floor = figures.get(floor_key) if floor_key else None
        ratio = value / floor if floor else None
        met = None
        target_text = ''
        if target is not None:
            op, bound = target
            if op == 'abs<=':
                target_text, met = f'≤ {_fmt(key, bound)}', value <= bound
            elif ratio is not None:
                target_text = f'{"≤" if op == "<=" else "≥"} {bound}×'
                met = ratio <= bound if op == '<=' else ratio >= bound
        out.append(
            {
                'figure': label,
                'key': key,
                'value': value,
                'value_text': _fmt(key, value),
                'floor_key': floor_key,
                'floor': floor,
                'floor_text': f'{_fmt(floor_key, floor)} ({floor_name(floor_key)})'
                if floor is not None
                else '',
                'ratio': ratio,
                'target': target_text,
                'met': met,
            }
        )
    return out


def table(rows: list[dict]) -> str:
    lines = ['| figure | value | floor | ratio | target | met |', '|---|---:|---|---:|---|:-:|']
    for r in rows:
        ratio = f'{r["ratio"]:.3g}×' if r['ratio'] is not None else ''
        met = {True: 'yes', False: '**no**', None: ''}[r['met']]
        lines.append(
            f'| {r["figure"]} | {r["value_text"]} | {r["floor_text"]} | {ratio} | {r["target"]} | {met} |'
        )
    return '\n'.join(lines)


def describe(mach: dict) -> str:
    load = ', '.join(f'{x:.2f}' for x in mach['loadavg_start'])
    load_end = ', '.join(f'{x:.2f}' for x in mach.get('loadavg_end', []))
    return (
        f'- machine: {mach["cpu"]}, {mach["cores"]} cores, {mach["kernel"]}\n'
        f'- python {mach["python"]} ({mach["implementation"]}), trio {mach["trio"]}, '
        f'msgspec {mach["msgspec"]}, tractor at {mach["git"] or "?"}, '
        f'start method {mach.get("start_method", "?")!r}\n'
        f'- load average at start: {load}; at end: {load_end}; run {mach["date"]}'
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='few iterations, small clusters')
    parser.add_argument('--json', metavar='PATH', help='also write the results as JSON')
    parser.add_argument(
        '--only', metavar='FAMILIES', help=f'comma-separated subset of: {",".join(FAMILIES)}'
    )
    parser.add_argument(
        '--start-method',
        metavar='METHOD',
        help='spawn backend of every tree (sets TRACTOR_START_METHOD; '
        "default: the runtime's default)",
    )
    args = parser.parse_args(argv)
    # every process of the run (fork server, actors, boot programs) runs as
    # an installed program does, with bytecode caches: an environment that
    # forbids writing them would make each child compile the modules it
    # imports (the benchmark's own included) on every spawn
    os.environ.pop('PYTHONDONTWRITEBYTECODE', None)
    sys.dont_write_bytecode = False
    if args.start_method:
        from tractor._spawn import resolve_start_method

        try:
            resolve_start_method(args.start_method)
        except ValueError as err:
            parser.error(str(err))
        os.environ['TRACTOR_START_METHOD'] = args.start_method
    chosen = args.only.split(',') if args.only else list(FAMILIES)
    unknown = set(chosen) - set(FAMILIES)
    if unknown:
        parser.error(f'unknown families: {sorted(unknown)}')

    tmpdir = tempfile.mkdtemp(prefix='trbench-')
    # UDS sockets (and the UDS registry) of every tree go here
    os.environ['TRACTOR_RUNTIME_DIR'] = tmpdir
    mach = machine()
    from tractor._spawn import resolve_start_method

    mach['start_method'] = resolve_start_method(None)
    figures: dict[str, float] = {}
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        for name in chosen:
            t0 = time.perf_counter()
            print(f'# {name} ...', file=sys.stderr, flush=True)
            try:
                figures.update(FAMILIES[name](args.quick, tmpdir))
            except BaseException as err:
                if isinstance(err, KeyboardInterrupt):
                    raise
                errors[name] = traceback.format_exc()
                print(errors[name], file=sys.stderr)
            timings[name] = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    mach['loadavg_end'] = list(os.getloadavg())
    rows = build_rows(figures)
    print(
        f'\n## tractor benchmarks ({"quick" if args.quick else "full"} run, '
        f'{time.perf_counter() - started:.1f} s)\n'
    )
    print(describe(mach) + '\n')
    print(table(rows))
    if errors:
        print(f'\nfailed families: {", ".join(errors)}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                {
                    'mode': 'quick' if args.quick else 'full',
                    'machine': mach,
                    'figures': figures,
                    'rows': rows,
                    'family_seconds': timings,
                    'errors': errors,
                },
                f,
                indent=2,
            )
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
