"""A relay between two actors, holding no secret, can only forward.

The attack from issue #21: a process squats on an address a tree member
dials (a crashed actor's stale registry entry, the dead registrar's port)
and forwards the member's connection to another actor's listener. The
handshake binds the dialer's proof to the address it meant to reach, so
the relayed handshake is refused. And once a session runs, every batch of
frames carries a tag under the session key: a relay on the path (here: a
member whose connection meant for the root physically goes through the
relay) can neither inject, replay nor reorder frames.

The relay is a real process (``scripts/relay.py``) with an empty runtime
directory and no ``TRACTOR_SECRET``: it holds no secret.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import call_back, call_via, ping

pytestmark = pytest.mark.slow

FNS = [fns.__name__]
RELAY = Path(__file__).parent / 'scripts' / 'relay.py'


class Relay:
    def __init__(self, proc: trio.Process, addr: list) -> None:
        self.proc = proc
        self.addr = addr


async def start_relay(nursery, proto: str, mode: str, target, path: str) -> Relay:
    rundir = tempfile.mkdtemp(prefix='rly-')  # empty: no cookie, no secret
    env = {k: v for k, v in os.environ.items() if k != 'TRACTOR_SECRET'}
    env['TRACTOR_RUNTIME_DIR'] = rundir
    send, recv = trio.open_memory_channel(1)

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        try:
            proc = await trio.lowlevel.open_process(
                [sys.executable, str(RELAY), proto, mode, json.dumps(list(target)), path],
                stdout=-1,
                env=env,
            )
            try:
                line = b''
                while not line.endswith(b'\n'):
                    chunk = await proc.stdout.receive_some()
                    assert chunk, 'the relay exited before it listened'
                    line += chunk
                task_status.started(Relay(proc, json.loads(line)))
                await proc.wait()
            finally:
                proc.kill()  # our own child
                with trio.CancelScope(shield=True):
                    await proc.wait()
        finally:
            shutil.rmtree(rundir, ignore_errors=True)

    return await nursery.start(run)


def integrity_drops(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and 'failed its integrity check' in r.getMessage()
    ]


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_relayed_handshake_refused(tpt_proto, runtime_kwargs, tmp_path, caplog):
    """A member that dials the relay's address, which forwards to the root's
    listener, is refused by the root: its proof names the relay's address.
    One warning; nothing runs; the root and the member serve on."""
    caplog.set_level(logging.WARNING, logger='tractor')
    with trio.fail_after(60):
        async with tractor.open_nursery(enable_modules=FNS, **runtime_kwargs) as an:
            root = tractor.current_actor().accept_addrs[0]
            member = await an.start_actor('member', enable_modules=FNS)
            async with trio.open_nursery() as tn:
                relay = await start_relay(tn, tpt_proto, 'forward', root, str(tmp_path / 'r'))
                with pytest.raises(tractor.RemoteActorError) as info:
                    await member.run(call_back, addr=relay.addr)
                assert info.value.boxed_type is tractor.AuthenticationError
                refused = [
                    r.getMessage()
                    for r in caplog.records
                    if 'refused connection' in r.getMessage() and 'meant to reach' in r.getMessage()
                ]
                assert len(refused) == 1, refused
                # direct connections still work both ways
                assert await member.run(call_back, addr=list(root)) == 'pong'
                assert await member.run(ping) == 'pong'
                tn.cancel_scope.cancel()
            await an.cancel()


@pytest.mark.parametrize('mode', ['forward', 'inject', 'replay', 'reorder'])
async def test_relay_can_only_forward(mode, tpt_proto, runtime_kwargs, tmp_path, caplog):
    """Through a relay on the path of an authenticated session: forwarding
    works (the control); an injected, a replayed or a reordered batch
    fails its tag at the root, which drops that connection with one
    warning before running anything it did not already run legitimately."""
    caplog.set_level(logging.WARNING, logger='tractor')
    path = tmp_path / 'ran'
    tokens = ['a', 'b'] if mode == 'reorder' else ['legit']
    with trio.fail_after(60):
        async with tractor.open_nursery(enable_modules=FNS, **runtime_kwargs) as an:
            root = tractor.current_actor().accept_addrs[0]
            member = await an.start_actor('member', enable_modules=FNS)
            async with trio.open_nursery() as tn:
                relay = await start_relay(tn, tpt_proto, mode, root, str(path))
                got = await member.run(
                    call_via, relay=relay.addr, target=list(root), path=str(path), tokens=tokens
                )
                if mode == 'forward':
                    assert got == {'legit': 'ok'}
                    assert lines(path) == ['legit']
                    assert integrity_drops(caplog) == []
                else:
                    with trio.fail_after(10):  # the root logs as it drops it
                        while not integrity_drops(caplog):
                            await trio.sleep(0.02)
                    assert len(integrity_drops(caplog)) == 1, integrity_drops(caplog)
                    assert 'forged' not in lines(path)
                    if mode == 'replay':
                        # answered once, and run once
                        assert got == {'legit': 'ok'}
                        assert lines(path) == ['legit']
                    else:
                        # the bad batch came first: nothing ran at all
                        assert set(got.values()) == {'TransportClosed'}, got
                        assert lines(path) == []
                # the root serves the member on as before
                assert await member.run(call_back, addr=list(root)) == 'pong'
                tn.cancel_scope.cancel()
            await an.cancel()
