"""Chaos run: a tree of worker actors doing RPC and streaming while a loop
SIGKILLs and respawns random workers.

    uv run python scripts/chaos.py [--seconds 30] [--workers 8] [--callers 12]
                                   [--transport tcp|uds] [--seed N] [--json PATH]
                                   [--supervised]

The root spawns ``--workers`` actors. ``--callers`` tasks in the root keep
making calls to random workers, each one of:

- ``rpc``: ``portal.run(square, x=...)``, checked;
- ``stream``: a context echoing 20 values over a bidirectional stream, checked;
- ``relay``: a worker looks another worker up by name (through the
  registrar) and calls it, so failures also cross two hops.

Meanwhile the chaos loop SIGKILLs a random worker every 0.2-0.8 s and
spawns a replacement under the same name. With ``--supervised`` nobody
respawns by hand: the workers run under ``tractor.open_supervisor()``,
which restarts each killed one, and the callers keep using the portals
they got at the start (they follow the restarts). Every call is booked when it
starts and when it ends: it returned (checked), or raised a typed tractor
error (``TransportClosed``, ``RemoteActorError``, ...), or raised anything
else (untyped: a bug). After ``--seconds`` no new calls start; calls still
running after a drain bound are *lost* (a hang). Finally the tree is torn
down and every process of this run (found by an environment token all of
them inherit) must be gone.

The report goes to stdout (and as JSON to ``--json``); the exit status is
non-zero if any call was lost or untyped, or any process was left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from functools import partial

import trio

import tractor

#: after the run, how long in-flight calls get to finish before they count as lost
DRAIN_BOUND = 30.0
#: how long processes get to exit after teardown before they count as left behind
LEFTOVER_BOUND = 15.0
STREAM_LEN = 20
TOKEN_VAR = 'TRACTOR_CHAOS_RUN'


# -- what the workers serve ---------------------------------------------------


async def square(x: int) -> int:
    await trio.sleep(random.random() * 0.01)
    return x * x


@tractor.context
async def echo_stream(ctx: tractor.Context) -> int:
    await ctx.started(os.getpid())
    n = 0
    async with ctx.open_stream() as stream:
        async for value in stream:
            await stream.send(value)
            n += 1
    return n


async def relay(target: str, x: int) -> int | None:
    """Find ``target`` through the registrar and call it (``None``: it is
    not registered right now, e.g. between a kill and its respawn)."""
    async with tractor.find_actor(target) as portal:
        if portal is None:
            return None
        return await portal.run(square, x=x)


# -- the run ----------------------------------------------------------------------


class Book:
    """Per-call outcome bookkeeping."""

    def __init__(self) -> None:
        self.next_id = 0
        self.inflight: dict[int, tuple[str, str]] = {}
        self.made = Counter()
        self.ok = Counter()
        self.typed = Counter()
        self.untyped: list[str] = []

    def start(self, kind: str, target: str) -> int:
        self.next_id += 1
        self.inflight[self.next_id] = (kind, target)
        self.made[kind] += 1
        return self.next_id

    def end(self, call_id: int, err: BaseException | None) -> None:
        kind, _ = self.inflight.pop(call_id)
        if err is None:
            self.ok[kind] += 1
        elif _typed(err):
            self.typed[_name(err)] += 1
        else:
            self.untyped.append(f'{kind}: {err!r}')


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for sub in err.exceptions for leaf in _leaves(sub)]
    return [err]


def _typed(err: BaseException) -> bool:
    return all(isinstance(leaf, tractor.TractorError) for leaf in _leaves(err))


def _name(err: BaseException) -> str:
    leaf = _leaves(err)[0]
    if isinstance(leaf, tractor.RemoteActorError):
        return f'RemoteActorError({leaf.type_name})'
    return type(leaf).__name__


async def one_call(book: Book, workers: dict, rng: random.Random) -> None:
    name = rng.choice(sorted(workers))
    portal = workers[name]
    kind = rng.choice(['rpc', 'rpc', 'stream', 'relay'])
    x = rng.randrange(1000)
    call_id = book.start(kind, name)
    err: BaseException | None = None
    try:
        if kind == 'rpc':
            got = await portal.run(square, x=x)
            assert got == x * x, f'square({x}) -> {got}'
        elif kind == 'relay':
            other = rng.choice(sorted(workers))
            got = await portal.run(relay, target=other, x=x)
            assert got in (None, x * x), f'relay square({x}) -> {got}'
        else:
            async with portal.open_context(echo_stream) as (ctx, _pid):
                async with ctx.open_stream() as stream:
                    for i in range(STREAM_LEN):
                        await stream.send(i)
                        got = await stream.receive()
                        assert got == i, f'echo {i} -> {got}'
                assert await ctx.wait_for_result() == STREAM_LEN
    except Exception as exc:
        err = exc
    except BaseExceptionGroup as exc:  # noqa: B036 (groups of Exceptions only)
        err = exc
    book.end(call_id, err)


async def caller(book: Book, workers: dict, rng: random.Random, stop: trio.Event) -> None:
    while not stop.is_set():
        await one_call(book, workers, rng)


async def chaos_loop(
    an, workers: dict, pids: set, rng: random.Random, stop: trio.Event, stats: Counter
) -> None:
    while not stop.is_set():
        await trio.sleep(rng.uniform(0.2, 0.8))
        if stop.is_set():
            return
        name = rng.choice(sorted(workers))
        if isinstance(an, tractor.Supervisor):
            # only a worker that is up (one being restarted has no process)
            info = an.children[name]
            if info.state != 'running' or info.pid is None:
                continue
            os.kill(info.pid, signal.SIGKILL)  # one of the workers this run spawned
            stats['kills'] += 1
            continue  # the supervisor restarts it
        pid = workers[name].channel.aid.pid
        os.kill(pid, signal.SIGKILL)  # one of the workers this run spawned
        stats['kills'] += 1
        try:
            portal = await an.start_actor(name, enable_modules=[__name__])
        except tractor.TractorError as err:
            stats['respawn_failures'] += 1
            print(f'respawn of {name} failed: {err!r}', file=sys.stderr)
            continue
        workers[name] = portal
        pids.add(portal.channel.aid.pid)
        stats['respawns'] += 1


def run_pids(token: str) -> list[int]:
    """Live (non-zombie) processes other than us carrying this run's token."""
    needle = f'{TOKEN_VAR}={token}'.encode()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f'/proc/{entry}/environ', 'rb') as f:
                env = f.read().split(b'\0')
            with open(f'/proc/{entry}/stat', 'rb') as f:
                state = f.read().rsplit(b')', 1)[1].split()[0]
        except OSError:
            continue
        if state != b'Z' and needle in env:
            found.append(int(entry))
    return found


def registry_addr(transport: str) -> tuple:
    if transport == 'tcp':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()
    from tractor.plugin import runtime_dir

    return (runtime_dir(), f'chaos@{uuid.uuid4().hex[:8]}.sock')


async def run(args) -> dict:
    rng = random.Random(args.seed)
    book = Book()
    stats: Counter = Counter()
    pids: set[int] = set()
    workers: dict[str, tractor.Portal] = {}
    started = time.monotonic()
    opener = (
        # a restart budget no kill rate of this loop exhausts: the point is healing
        partial(tractor.open_supervisor, max_restarts=100_000, within=60.0)
        if args.supervised
        else tractor.open_nursery
    )
    async with opener(
        registry_addrs=[registry_addr(args.transport)], enable_transports=[args.transport]
    ) as an:
        start_method = tractor.current_actor().start_method
        async with trio.open_nursery() as tn:
            for i in range(args.workers):

                async def spawn(name: str) -> None:
                    workers[name] = await an.start_actor(name, enable_modules=[__name__])
                    pids.add(workers[name].channel.aid.pid)

                tn.start_soon(spawn, f'worker_{i}')
        print(
            f'{len(workers)} workers up in {time.monotonic() - started:.1f}s; '
            f'chaos for {args.seconds}s',
            file=sys.stderr,
        )
        stop = trio.Event()
        async with trio.open_nursery() as callers_tn:
            for _ in range(args.callers):
                callers_tn.start_soon(caller, book, workers, random.Random(rng.random()), stop)
            async with trio.open_nursery() as chaos_tn:
                chaos_tn.start_soon(chaos_loop, an, workers, pids, rng, stop, stats)
                await trio.sleep(args.seconds)
                stop.set()
            # no new calls now; give the in-flight ones a bound to finish
            with trio.move_on_after(DRAIN_BOUND):
                while book.inflight:
                    await trio.sleep(0.05)
            lost = dict(book.inflight)
            callers_tn.cancel_scope.cancel()
        if args.supervised:
            stats['respawns'] = sum(c.restarts for c in an.children.values())
            stats['spawned'] = len(workers) + stats['respawns']
        await an.cancel()
    return {
        'book': book,
        'stats': stats,
        'lost': lost,
        'pids': pids,
        'start_method': start_method,
        'seconds': round(time.monotonic() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--workers', type=int, default=8)
    parser.add_argument('--callers', type=int, default=12)
    parser.add_argument('--transport', choices=['tcp', 'uds'], default='tcp')
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--json', default=None, help='also write the report here')
    parser.add_argument(
        '--supervised',
        action='store_true',
        help='workers under a supervisor that restarts them (no manual respawn)',
    )
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(2**32)
    token = uuid.uuid4().hex
    os.environ[TOKEN_VAR] = token  # every actor of this run inherits it

    res = trio.run(run, args)
    book: Book = res['book']
    deadline = time.monotonic() + LEFTOVER_BOUND
    while (left := run_pids(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # ours by token: clean up, but count them
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    report = {
        'seconds': res['seconds'],
        'transport': args.transport,
        'start_method': res['start_method'],
        'seed': args.seed,
        'workers': args.workers,
        'kills': res['stats']['kills'],
        'respawns': res['stats']['respawns'],
        'respawn_failures': res['stats']['respawn_failures'],
        'supervised': args.supervised,
        'processes_spawned': res['stats']['spawned'] or len(res['pids']),
        'calls_made': sum(book.made.values()),
        'calls_ok': sum(book.ok.values()),
        'calls_failed_typed': sum(book.typed.values()),
        'calls_failed_untyped': len(book.untyped),
        'calls_lost': len(res['lost']),
        'leftover_processes': len(left),
        'made_by_kind': dict(book.made),
        'typed_errors': dict(book.typed.most_common()),
        'untyped_errors': book.untyped[:20],
        'lost_calls': [f'{kind} -> {target}' for kind, target in res['lost'].values()][:20],
    }
    print_report(report)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
    print('CHAOS ' + json.dumps(report), flush=True)
    bad = report['calls_lost'] or report['leftover_processes'] or report['calls_failed_untyped']
    return 1 if bad else 0


def print_report(r: dict) -> None:
    rows = [
        (
            'duration',
            f'{r["seconds"]} s ({r["transport"]}, {r["start_method"]} spawning, seed {r["seed"]})',
        ),
        ('workers', f'{r["workers"]}{" (supervised)" if r["supervised"] else ""}'),
        (
            'workers SIGKILLed / ' + ('restarted' if r['supervised'] else 'respawned'),
            f'{r["kills"]} / {r["respawns"]}'
            + (f' ({r["respawn_failures"]} respawns failed)' if r['respawn_failures'] else ''),
        ),
        ('processes spawned', r['processes_spawned']),
        (
            'calls made',
            f'{r["calls_made"]} ({", ".join(f"{k} {v}" for k, v in sorted(r["made_by_kind"].items()))})',
        ),
        ('calls returned', r['calls_ok']),
        ('calls failed with a typed error', r['calls_failed_typed']),
        ('calls failed untyped', r['calls_failed_untyped']),
        ('calls lost', r['calls_lost']),
        ('processes left behind', r['leftover_processes']),
    ]
    width = max(len(k) for k, _ in rows)
    print('chaos run')
    for key, value in rows:
        print(f'  {key:<{width}}  {value}')
    if r['typed_errors']:
        print('  typed errors:')
        for name, n in r['typed_errors'].items():
            print(f'    {n:6d}  {name}')
    for line in r['untyped_errors'] + r['lost_calls']:
        print(f'  !! {line}')


if __name__ == '__main__':
    sys.exit(main())
