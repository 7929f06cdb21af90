"""The ``tractor`` command: see and operate the registry.

    tractor ls [NAME] [--prefix]     the entries: name, uid, pid, host, addresses, age
    tractor watch [NAME] [--prefix]  stream registrations and unregistrations
    tractor tree                     the live actor tree, parent to children
    tractor ping NAME                a lookup plus an RPC round trip, timed
    tractor registrar [--listen A]   a standalone registrar (see _daemon.py)

Every command takes ``--registry ADDR`` (repeatable: ``HOST:PORT``, multiaddr
text such as ``/ip4/127.0.0.1/tcp/1616`` or ``/unix/PATH``, or an
``etcd://`` URL; default ``$TRACTOR_REGISTRY``, else the default registry)
and ``--json``. Exit codes: 0 done, 1 a miss or a failure (no registrar, a
refused secret), 2 a usage error. The command is an observer: it joins the
registry with this user's secret (``$TRACTOR_SECRET`` or the cookie file)
and is never listed itself. argparse (stdlib) does the parsing: nothing
here is imported by ``import tractor``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_MISS, EXIT_USAGE = 0, 1, 2


class Miss(Exception):
    """The command found nothing: exit code 1 with this message."""


def parse_registry(text: str) -> Any:
    """A ``--registry`` value as an address: ``HOST:PORT`` or
    ``[V6]:PORT`` for TCP, multiaddr text, or a store URL (``etcd://...``)."""
    from tractor import TractorError
    from tractor.plugin import wrap_address

    m = re.fullmatch(r'\[([0-9a-fA-F:.]+)\]:(\d+)|([^/:\[\]]+):(\d+)', text)
    try:
        if m:
            host = m.group(1) or m.group(3)
            return wrap_address((host, int(m.group(2) or m.group(4))))
        return wrap_address(text)
    except (ValueError, TypeError, LookupError) as err:
        raise argparse.ArgumentTypeError(f'{text!r} is not a registry address: {err}') from None
    except TractorError as err:  # NoTransportInstalled: the transport is missing here
        raise argparse.ArgumentTypeError(f'{text!r}: {err}') from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        '--registry',
        action='append',
        type=parse_registry,
        metavar='ADDR',
        help='a registry address (repeatable): HOST:PORT, /ip4/../tcp/.., /unix/PATH, etcd://..',
    )
    common.add_argument('--json', action='store_true', help='machine-readable output')
    common.add_argument('--loglevel', default=None, help='tractor log level (default: warning)')
    parser = argparse.ArgumentParser(
        prog='tractor',
        description="See and operate tractor's actor registry "
        '(each command takes --registry ADDR and --json).',
    )
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    p = sub.add_parser('ls', parents=[common], help='list the registry')
    p.add_argument('name', nargs='?', help='only entries of this name')
    p.add_argument('--prefix', action='store_true', help='names starting with NAME')
    p = sub.add_parser('watch', parents=[common], help='stream registry changes')
    p.add_argument('name', nargs='?', help='only entries of this name')
    p.add_argument('--prefix', action='store_true', help='names starting with NAME')
    p.add_argument('--count', type=int, default=None, metavar='N', help='stop after N events')
    sub.add_parser('tree', parents=[common], help='the live actor tree')
    p = sub.add_parser('ping', parents=[common], help='look an actor up and time a round trip')
    p.add_argument('name')
    p = sub.add_parser('registrar', parents=[common], help='run a standalone registrar')
    p.add_argument(
        '--listen',
        action='append',
        type=parse_registry,
        metavar='ADDR',
        help='where to serve (repeatable; default: the default registry address)',
    )
    return parser


# -- output -------------------------------------------------------------------
class Out:
    """Colour and alignment on a tty only."""

    def __init__(self, as_json: bool) -> None:
        self.json = as_json
        self.tty = sys.stdout.isatty() and not as_json and not os.environ.get('NO_COLOR')

    def c(self, text: str, code: str) -> str:
        return f'\x1b[{code}m{text}\x1b[0m' if self.tty else text

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        if not self.tty:
            for row in rows:
                print('\t'.join(row))
            return
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print(self.c('  '.join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), '1'))
        for row in rows:
            # aligned first, coloured after (escape codes have no width)
            cells = [v.ljust(w) for v, w in zip(row, widths)]
            cells[0] = self.c(cells[0], '36')
            print('  '.join(cells).rstrip())

    def emit(self, obj: Any) -> None:
        print(json.dumps(obj), flush=True)


def maddr(wire: Any) -> str:
    from ._daemon import _maddr

    return _maddr(wire)


def age(since: float | None, now: float) -> str:
    if since is None:
        return '-'
    secs = max(0, int(now - since))
    if secs < 120:
        return f'{secs}s'
    if secs < 7200:
        return f'{secs // 60}m'
    if secs < 172800:
        return f'{secs // 3600}h'
    return f'{secs // 86400}d'


def record_json(rec: Any, now: float) -> dict[str, Any]:
    return {
        'name': rec.uid[0],
        'uid': list(rec.uid),
        'pid': rec.pid,
        'host': rec.host,
        'parent': list(rec.parent) if rec.parent else None,
        'addrs': [maddr(a) for a in rec.addrs],
        'registered': rec.registered,
        'age': None if rec.registered is None else max(0.0, now - rec.registered),
    }


# -- talking to the registry ---------------------------------------------------
async def entries(name: str | None = None, prefix: bool = False) -> list[Any]:
    """Every entry of every registry this observer knows, each uid once."""
    from tractor import RemoteActorError, current_actor

    from ._client import RegistrarUnreachable, client
    from ._events import Registered, from_wire

    actor = current_actor()
    cli = client(actor)
    seen: dict[tuple, Any] = {}
    errors = []
    for reg in actor.registry_addrs:
        try:
            try:
                raw = await cli.call(reg, 'list_entries', name=name, prefix=prefix)
                found = [from_wire(r) for r in raw]
            except RemoteActorError as err:
                if err.type_name != 'ModuleNotExposed':
                    raise
                # a registrar of an older release: no metadata
                table = await cli.call(reg, 'get_registry')
                from ._events import matches

                found = [
                    Registered(uid=tuple(uid), addrs=addrs)
                    for uid, addrs in table.items()
                    if matches(name, prefix, uid[0])
                ]
        except RegistrarUnreachable as err:
            errors.append(str(err))
            continue
        for rec in found:
            seen.setdefault(rec.uid, rec)
    if errors and len(errors) == len(actor.registry_addrs):
        raise RegistrarUnreachable('; '.join(errors))
    return sorted(seen.values(), key=lambda r: (r.uid[0], -(r.registered or 0)))


async def cmd_ls(args: argparse.Namespace, out: Out) -> int:
    recs = await entries(args.name, args.prefix)
    now = time.time()
    if out.json:
        out.emit([record_json(r, now) for r in recs])
    else:
        out.table(
            ['NAME', 'UID', 'PID', 'HOST', 'ADDRESSES', 'AGE'],
            [
                [
                    r.uid[0],
                    r.uid[1][:8],
                    str(r.pid or '-'),
                    r.host or '-',
                    ' '.join(maddr(a) for a in r.addrs),
                    age(r.registered, now),
                ]
                for r in recs
            ],
        )
    if not recs and args.name:
        raise Miss(
            f'no actor named {args.name!r}{" (prefix)" if args.prefix else ""} is registered'
        )
    return EXIT_OK


async def cmd_tree(args: argparse.Namespace, out: Out) -> int:
    recs = await entries()
    by_uid = {r.uid: r for r in recs}
    kids: dict[Any, list] = {}
    roots = []
    for r in recs:
        if r.parent is not None and r.parent in by_uid:
            kids.setdefault(r.parent, []).append(r)
        else:
            roots.append(r)

    def node(r: Any) -> dict[str, Any]:
        return {
            'name': r.uid[0],
            'uid': list(r.uid),
            'pid': r.pid,
            'host': r.host,
            'children': [node(k) for k in kids.get(r.uid, ())],
        }

    if out.json:
        out.emit([node(r) for r in roots])
        return EXIT_OK

    def show(r: Any, lead: str, last: bool, top: bool) -> None:
        branch = '' if top else ('└─ ' if last else '├─ ')
        pid = f' pid {r.pid}' if r.pid else ''
        host = f' on {r.host}' if r.host else ''
        print(f'{lead}{branch}{out.c(r.uid[0], "36")} ({r.uid[1][:8]}){pid}{host}')
        children = kids.get(r.uid, [])
        for i, k in enumerate(children):
            show(
                k, lead + ('' if top else ('   ' if last else '│  ')), i == len(children) - 1, False
            )

    for r in roots:
        show(r, '', True, True)
    return EXIT_OK


async def cmd_watch(args: argparse.Namespace, out: Out) -> int:
    from ._events import Registered, to_wire
    from ._watch import watch

    seen = 0
    async with watch(args.name, prefix=args.prefix) as events:
        async for ev in events:
            if out.json:
                obj = to_wire(ev)
                if isinstance(ev, Registered):
                    obj['addrs'] = [maddr(a) for a in ev.addrs]
                out.emit(obj)
            else:
                from ._daemon import describe

                sign = out.c('+', '32') if isinstance(ev, Registered) else out.c('-', '31')
                print(f'{time.strftime("%H:%M:%S")} {sign} {describe(ev)}', flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                break
    return EXIT_OK


async def cmd_ping(args: argparse.Namespace, out: Out) -> int:
    import trio

    from ._api import find_actor

    t0 = trio.current_time()
    async with find_actor(args.name) as portal:
        t1 = trio.current_time()
        if portal is None:
            raise Miss(f'no actor named {args.name!r} is registered')
        uid = await portal.run_from_ns('self', 'ping')
        t2 = trio.current_time()
        addr = str(portal.channel.raddr)
    lookup_ms, rtt_ms = (t1 - t0) * 1000, (t2 - t1) * 1000
    if out.json:
        out.emit(
            {
                'name': args.name,
                'uid': list(uid),
                'addr': addr,
                'lookup_ms': round(lookup_ms, 3),
                'rtt_ms': round(rtt_ms, 3),
            }
        )
    else:
        print(
            f'pong from {out.c(uid[0], "36")} ({uid[1][:8]}) at {addr}: '
            f'lookup {lookup_ms:.2f} ms, round trip {rtt_ms:.2f} ms'
        )
    return EXIT_OK


COMMANDS = {'ls': cmd_ls, 'tree': cmd_tree, 'watch': cmd_watch, 'ping': cmd_ping}


async def run_observer(args: argparse.Namespace) -> int:
    import tractor
    from tractor.plugin import StoreAddress

    from ._plugin import observer

    regs = args.registry
    kinds = sorted({a.proto_key for a in regs or () if not isinstance(a, StoreAddress)})
    out = Out(args.json)
    with observer():
        async with tractor.open_root_actor(
            # as text: open_root_actor reads a list of two address objects as one
            name='tractor-cli',
            registry_addrs=[str(a) for a in regs] if regs else None,
            loglevel=args.loglevel,
            enable_transports=kinds or None,
        ):
            return await COMMANDS[args.command](args, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tractor`` console script (and ``python -m tractor``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'prefix', False) and not args.name:
        parser.error(f'{args.command} --prefix needs a NAME prefix')
    if getattr(args, 'count', None) is not None and args.count < 1:
        parser.error('--count takes a positive number')
    if args.command == 'registrar':
        from ._daemon import main as daemon_main

        return daemon_main(args.listen, args.loglevel or 'info')
    import trio

    from tractor import AuthenticationError

    from ._client import RegistrarUnreachable
    from ._events import WatchOverflow

    try:
        return trio.run(run_observer, args)
    except Miss as err:
        print(f'tractor: {err}', file=sys.stderr)
    except (RegistrarUnreachable, WatchOverflow) as err:
        print(f'tractor: {err}', file=sys.stderr)
    except AuthenticationError as err:
        print(
            f'tractor: refused: {err}\n'
            '  (this process does not hold the secret of that registry: run it as the '
            "tree's user, or set TRACTOR_SECRET to the tree's secret)",
            file=sys.stderr,
        )
    except KeyboardInterrupt:
        return 130
    return EXIT_MISS


if __name__ == '__main__':
    sys.exit(main())
