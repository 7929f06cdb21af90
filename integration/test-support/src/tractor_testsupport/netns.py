"""Hosts for multi-host tests: Linux network namespaces on one bridge.

:func:`hosts` makes N namespaces, each with one veth link to a bridge in
this (the test's) namespace, addressed in a private /24 of 10.213.0.0/16
that only these namespaces use; the bridge holds ``.254`` so the test
itself reaches every host. Names carry a random suffix, and everything made
is removed afterwards, whatever happened. Needs root and iproute2's ``ip``;
:func:`unavailable` says what is missing instead.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_IP_TIMEOUT = 10


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ['ip', *args], capture_output=True, text=True, timeout=_IP_TIMEOUT, check=check
    )


def unavailable() -> str | None:
    """Why namespaces cannot be made here (``None``: they can)."""
    if shutil.which('ip') is None:
        return 'network namespaces need iproute2 (`ip`), which is not installed'
    if os.geteuid() != 0:
        return 'network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); not root'
    name = f'trprobe{secrets.token_hex(3)}'
    res = _ip('netns', 'add', name, check=False)
    if res.returncode != 0:
        return f'cannot create a network namespace (`ip netns add`): {res.stderr.strip()}'
    _ip('netns', 'del', name, check=False)
    return None


@dataclass
class Host:
    """One namespace: ``ip`` is its address, ``run`` the command prefix
    that runs a program inside it."""

    name: str
    ip: str
    link: str  # our end of its veth pair (down = the host is cut off)

    @property
    def run(self) -> list[str]:
        return ['ip', 'netns', 'exec', self.name]


@dataclass
class Net:
    hosts: list[Host]
    bridge: str
    bridge_ip: str

    def partition(self, host: Host) -> None:
        """Cut ``host`` off from every other host (and from the test)."""
        _ip('link', 'set', host.link, 'down')

    def heal(self, host: Host) -> None:
        _ip('link', 'set', host.link, 'up')


@contextmanager
def hosts(count: int) -> Iterator[Net]:
    """``count`` hosts on one bridge, removed on exit (even on failure)."""
    tag = secrets.token_hex(3)
    subnet = f'10.213.{random.randint(1, 253)}'
    bridge = f'trb{tag}'
    made_ns: list[str] = []
    made_links: list[str] = []
    try:
        _ip('link', 'add', bridge, 'type', 'bridge')
        made_links.append(bridge)
        _ip('addr', 'add', f'{subnet}.254/24', 'dev', bridge)
        _ip('link', 'set', bridge, 'up')
        out = []
        for i in range(count):
            ns, ours, theirs = f'trh{i}{tag}', f'trv{i}{tag}', f'tre{i}{tag}'
            _ip('netns', 'add', ns)
            made_ns.append(ns)
            _ip('link', 'add', ours, 'type', 'veth', 'peer', 'name', theirs)
            made_links.append(ours)
            _ip('link', 'set', theirs, 'netns', ns)
            _ip('-n', ns, 'addr', 'add', f'{subnet}.{i + 1}/24', 'dev', theirs)
            _ip('-n', ns, 'link', 'set', theirs, 'up')
            _ip('-n', ns, 'link', 'set', 'lo', 'up')
            _ip('link', 'set', ours, 'master', bridge)
            _ip('link', 'set', ours, 'up')
            out.append(Host(ns, f'{subnet}.{i + 1}', ours))
        yield Net(out, bridge, f'{subnet}.254')
    finally:
        for ns in made_ns:  # takes its end of the veth pair, and so ours
            _ip('netns', 'del', ns, check=False)
        for link in made_links:
            _ip('link', 'del', link, check=False)
