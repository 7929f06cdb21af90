"""The standalone registrar: ``tractor registrar [--listen ADDR ...]``.

A root actor that only serves the registry. It belongs to no tree: trees
point at it with ``registry_addrs`` (or ``$TRACTOR_REGISTRY``) and boot as
plain roots that join it, so discovery outlives any one of them. SIGTERM
and SIGINT stop it gracefully; every registration change is one INFO line.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import trio

import tractor
from tractor.log import get_console_log, get_logger
from tractor.plugin import wrap_address

from ._events import MAX_BUFFER, Registered, Unregistered, WatchOverflow
from ._registrar import local_registrar

log = get_logger('registrar')


def describe(ev: Registered | Unregistered) -> str:
    """One log line's worth of a registry change."""
    if isinstance(ev, Registered):
        where = ', '.join(_maddr(a) for a in ev.addrs)
        pid = f' pid {ev.pid}' if ev.pid else ''
        host = f' on {ev.host}' if ev.host else ''
        return f'registered {ev.uid[0]} ({ev.uid[1][:8]}){pid}{host} at {where}'
    why = f' ({ev.reason})' if ev.reason else ''
    return f'unregistered {ev.uid[0]} ({ev.uid[1][:8]}){why}'


def _maddr(wire: Any) -> str:
    try:
        return str(wrap_address(wire))
    except (ValueError, TypeError, LookupError, tractor.NoTransportInstalled):
        return repr(wire)


async def _log_changes(backend: Any) -> None:
    while True:
        try:
            async with backend.subscribe(None, False, MAX_BUFFER) as (_current, sub):
                async for ev in sub.events:
                    log.info('%s', describe(ev))
                sub.check()
        except WatchOverflow:
            # (cannot fall behind its own log in practice; never block on it)
            log.warning('registrar: the change log fell behind; some lines were skipped')


async def serve(
    listen: list[Any] | None = None,
    *,
    name: str = 'registrar',
    loglevel: str = 'info',
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a registrar at ``listen`` (default: the per-transport default
    registry addresses) until SIGTERM or SIGINT (or until cancelled).
    ``task_status.started()`` gets the addresses it listens on; the program
    also prints them to stdout, one line, once it serves."""
    addrs_in = [wrap_address(a) for a in listen or ()]
    kinds = sorted({a.proto_key for a in addrs_in})
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with tractor.open_root_actor(
            # as text: open_root_actor reads a list of two address objects as one
            name=name,
            registry_addrs=[str(a) for a in addrs_in] or None,
            ensure_registry=True,
            loglevel=loglevel,
            enable_transports=kinds or None,
        ) as actor:
            reg = local_registrar(actor)
            assert reg is not None
            addrs = [str(a) for a in actor.listen_addrs]
            async with trio.open_nursery() as tn:
                tn.start_soon(_log_changes, reg.backend)
                log.info('registrar serving at %s (pid %d)', ', '.join(addrs), os.getpid())
                task_status.started(addrs)
                async for signum in signals:
                    log.info('registrar: %s, stopping', signal.Signals(signum).name)
                    break
                tn.cancel_scope.cancel()


def main(listen: list[Any] | None, loglevel: str = 'info') -> int:
    """The ``tractor registrar`` command: serve until a signal; exit code."""
    get_console_log(loglevel)

    async def run() -> None:
        async with trio.open_nursery() as tn:
            addrs = await tn.start(serve, listen)
            print('registrar listening on ' + ' '.join(addrs), flush=True)

    try:
        trio.run(run)
    except (RuntimeError, OSError, ValueError) as err:
        print(f'tractor registrar: {err}', file=sys.stderr)
        return 1
    return 0
