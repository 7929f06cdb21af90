"""A root that joins a registrar keeps the connection its boot-time probe
made (over TCP and UDS): registering, holding the registration and the
lookups that follow ride it, so the registrar accepts one connection per
joining program, not two; the registrar learns where the joiner listens
when it registers; and a boot that fails after the probe closes that
connection instead of leaving it open."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

import tractor
from tractor.discovery import mk_maddr
from tractor_testsupport.polling import wait_until

pytestmark = pytest.mark.slow

#: a joining program: boots a root at the registry address it is given,
#: looks the registrar up, prints its uid, and leaves when stdin closes
JOINER = """
import json, sys, trio, tractor
async def main(reg, proto, bind):
    if bind == 'ensure_registry':
        kw = {'ensure_registry': True}
    else:
        kw = {'tpt_bind_addrs': [bind]} if bind else {}
    async with tractor.open_root_actor(
        name='joiner', registry_addrs=[reg], enable_transports=[proto], **kw
    ) as actor:
        async with tractor.find_actor('registrar') as portal:
            assert portal is not None
        print(json.dumps(list(actor.uid)), flush=True)
        await trio.lowlevel.wait_readable(sys.stdin.fileno())
trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
"""


@asynccontextmanager
async def program(code: str, *args: str) -> AsyncIterator[tuple[trio.Process, bytes]]:
    """Run ``python -c code *args``; yields it with its first line of
    output. Leaving closes its stdin and reaps it (killed if it lingers)."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, '-c', code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        line = b''
        while not line.endswith(b'\n'):
            chunk = await proc.stdout.receive_some()
            assert chunk, f'the program exited ({await proc.wait()}) before printing a line'
            line += chunk
        yield proc, line
    finally:
        with trio.CancelScope(shield=True):
            await proc.stdin.aclose()
            with trio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def accepted_by_uid(root: tractor.Actor, monkeypatch) -> Counter:
    """Count, by peer uid, the connections ``root`` accepts and handshakes."""
    seen: Counter = Counter()
    add = root._add_peer

    def counting(chan):
        seen[chan.uid] += 1
        return add(chan)

    monkeypatch.setattr(root, '_add_peer', counting)
    return seen


async def test_joiner_registers_over_its_probe_connection(runtime_kwargs, reg_addr, monkeypatch):
    proto = runtime_kwargs['enable_transports'][0]
    with trio.fail_after(30):
        async with tractor.open_root_actor(name='registrar', **runtime_kwargs) as root:
            seen = accepted_by_uid(root, monkeypatch)
            async with program(JOINER, str(mk_maddr(reg_addr)), proto) as (proc, line):
                uid = tuple(json.loads(line))
                assert seen[uid] == 1, seen  # the probe's connection, kept
                (chan,) = root.get_peer_channels(uid=uid)
                # it registered over it, so the registrar knows where it listens
                assert chan.raddr is not None and chan.raddr.proto_key == proto
            assert proc.returncode == 0


async def test_failed_boot_closes_the_probe_connection(runtime_kwargs, reg_addr, monkeypatch):
    """A second registrar for a served address (``ensure_registry=True``,
    e.g. ``tractor registrar`` started twice) fails its boot after its probe
    found the first; the probe's connection goes with that boot, closed by
    the program itself (the registrar sees it end while the program lives
    on); likewise a joiner whose listener cannot bind (its address taken)."""
    failing = JOINER.replace('trio.run(main,', 'try:\n    trio.run(main,').rstrip() + (
        '\nexcept BaseException as err:\n'
        "    print('failed', type(err).__name__, flush=True)\n"
        '    sys.stdin.read()\n'
    )
    with trio.fail_after(30):
        async with tractor.open_root_actor(name='registrar', **runtime_kwargs) as root:
            seen = accepted_by_uid(root, monkeypatch)
            taken = root.listen_addrs[0]  # an address already bound: ours
            reg, proto = str(mk_maddr(reg_addr)), taken.proto_key
            for args in ((reg, proto, 'ensure_registry'), (reg, proto, str(taken))):
                seen.clear()
                async with program(failing, *args) as (proc, line):
                    assert line.startswith(b'failed'), line
                    joiner = [uid for uid in seen if uid[0] == 'joiner']
                    assert len(joiner) == 1 and seen[joiner[0]] == 1, seen
                    await wait_until(
                        lambda uid=joiner[0]: not root.get_peer_channels(uid=uid),
                        'the probe connection closed',
                    )
                    assert proc.poll() is None  # closed by the boot, not by an exit
