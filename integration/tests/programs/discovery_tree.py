"""A separate tractor program for the multi-program discovery tests.

Two modes; every address on the command line is multiaddr text:

``tree``
    Boot a root actor (``--registry``/``--transport``/``--ensure-registry``
    go to ``open_nursery()``), start one subactor per ``--service NAME``,
    print ``READY <json>`` (root and service facts) and serve until stdin
    closes; then cancel the services, print ``BYE {}`` and exit 0.

``join``
    Boot a root named ``--name`` against ``--registry``, look ``--find``
    up with ``tractor.find_actor()``, call ``--call NS:FN`` in it when
    found, print ``RESULT <json>`` and exit 0 (the joining code of the
    discovery docs, with the answers printed).

Either mode prints ``AUTHFAIL {"error": ...}`` and exits 3 when it meets a
tree with another secret (``TRACTOR_SECRET``, else the cookie).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import trio

import tractor
from tractor.discovery import parse_maddr


def _facts() -> dict:
    actor = tractor.current_actor()
    return {
        'name': actor.name,
        'uid': list(actor.uid),
        'pid': os.getpid(),
        'is_registrar': actor.is_registrar,
        'accept_addrs': [list(a) for a in actor.accept_addrs],
        'reg_addrs': [list(a) for a in actor.reg_addrs],
        'transports': list(actor.enable_transports),
    }


async def whoami() -> dict:
    """Served by every service of a tree (RPC-able as ``__main__:whoami``)."""
    return _facts()


def emit(tag: str, payload: dict) -> None:
    print(tag, json.dumps(payload), flush=True)


async def stdin_closed() -> None:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        while await stream.receive_some(4096):
            pass


def _registries(args) -> list[tuple] | None:
    # the wire form keeps the transport: a TLS address unwraps to the same
    # (host, port) a TCP one does
    return [parse_maddr(text).to_wire() for text in args.registry] or None


async def tree(args) -> None:
    async with tractor.open_nursery(
        registry_addrs=_registries(args),
        enable_transports=args.transport or None,
        ensure_registry=args.ensure_registry,
    ) as an:
        services = {}
        for spec in args.service:
            name, _, tpts = spec.partition(':')
            portal = await an.start_actor(
                name, enable_modules=[__name__], enable_transports=tpts.split(',') if tpts else None
            )
            services[name] = await portal.run(whoami)
        emit('READY', {'root': _facts(), 'services': services})
        await stdin_closed()
        await an.cancel()
    emit('BYE', {})


async def join(args) -> None:
    async with tractor.open_root_actor(
        name=args.name, registry_addrs=_registries(args), enable_transports=args.transport or None
    ):
        result: dict = {'me': _facts(), 'found': None}
        async with tractor.find_actor(args.find) as portal:
            if portal is not None:
                result['found'] = {
                    'uid': list(portal.channel.uid),
                    'proto': portal.channel.raddr.proto_key,
                }
                result['found_addr'] = list(portal.channel.raddr.unwrap())
                if args.call:
                    ns, _, fn = args.call.partition(':')
                    result['called'] = await portal.run_from_ns(ns, fn)
        emit('RESULT', result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=['tree', 'join'])
    parser.add_argument('--registry', action='append', default=[])
    parser.add_argument('--transport', action='append', default=[])
    parser.add_argument(
        '--service',
        action='append',
        default=[],
        help='NAME or NAME:tpt1,tpt2 (its enable_transports)',
    )
    parser.add_argument('--ensure-registry', action='store_true')
    parser.add_argument('--name', default='joiner')
    parser.add_argument('--find', default='data_feed')
    parser.add_argument('--call', default='')
    args = parser.parse_args()
    try:
        trio.run(tree if args.mode == 'tree' else join, args)
    except tractor.AuthenticationError as err:  # another tree's secret
        emit('AUTHFAIL', {'error': str(err)})
        sys.exit(3)


if __name__ == '__main__':
    main()
