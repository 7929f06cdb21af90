"""Real etcd servers for tests: free ports, temporary data dirs, reaped after.

The etcd binary is Debian's ``etcd-server`` package (``/usr/bin/etcd``);
:func:`etcd_binary` says what is missing when it is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

#: bound on a member becoming healthy
START_TIMEOUT = 20.0


def etcd_binary() -> str | None:
    return shutil.which('etcd')


def _env() -> dict[str, str]:
    # etcd is no actor: it does not carry the suite's process token, so the
    # leak check does not count it; the fixture reaps it by pid instead
    env = dict(os.environ)
    env.pop('TRACTOR_TEST_SESSION', None)
    return env


@dataclass
class EtcdMember:
    """One etcd member process (``prefix`` runs it inside a network
    namespace: ``['ip', 'netns', 'exec', NAME]``)."""

    name: str
    host: str
    client_port: int
    peer_port: int
    prefix: list[str] = field(default_factory=list)
    data_dir: str = ''
    proc: subprocess.Popen | None = None
    log_path: str = ''
    #: client TLS and more: extra etcd flags; ``tls`` makes the client URL https
    extra_args: list[str] = field(default_factory=list)
    tls: ssl.SSLContext | None = None

    @property
    def endpoint(self) -> str:
        return f'{self.host}:{self.client_port}'

    @property
    def peer_url(self) -> str:
        return f'http://{self.host}:{self.peer_port}'

    def start(self, initial_cluster: str, state: str = 'new', token: str = 'tractor-test') -> None:
        assert self.proc is None, 'already running'
        if not self.data_dir:
            self.data_dir = tempfile.mkdtemp(prefix=f'etcd-{self.name}-')
        self.log_path = os.path.join(self.data_dir, 'etcd.log')
        client = f'{"https" if self.tls else "http"}://{self.host}:{self.client_port}'
        cmd = [
            *self.prefix,
            etcd_binary() or 'etcd',
            '--name',
            self.name,
            '--data-dir',
            os.path.join(self.data_dir, 'data'),
            '--listen-client-urls',
            client,
            '--advertise-client-urls',
            client,
            '--listen-peer-urls',
            self.peer_url,
            '--initial-advertise-peer-urls',
            self.peer_url,
            '--initial-cluster',
            initial_cluster,
            '--initial-cluster-state',
            state,
            '--initial-cluster-token',
            token,
            # fast elections: tests stop and partition members
            '--heartbeat-interval',
            '100',
            '--election-timeout',
            '1000',
            *self.extra_args,
        ]
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env()
            )
        finally:
            log.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the member (only the process we started) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def wipe(self) -> None:
        """Forget the data (a restart then starts an empty store)."""
        assert self.proc is None
        shutil.rmtree(os.path.join(self.data_dir, 'data'), ignore_errors=True)

    def remove(self) -> None:
        self.stop(signal.SIGKILL)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                return f.read()[-n:].decode(errors='replace')
        except OSError:
            return ''


def healthy(endpoint: str, timeout: float = 1.0, tls: ssl.SSLContext | None = None) -> bool:
    """Whether the member at ``endpoint`` (``host:port``) answers through the
    JSON gateway (an authentication error is an answer too)."""
    req = urllib.request.Request(
        f'{"https" if tls else "http"}://{endpoint}/v3/kv/range',
        data=json.dumps({'key': 'aGVhbHRo'}).encode(),
        method='POST',
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(members: list[EtcdMember], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    for m in members:
        while not healthy(m.endpoint, tls=m.tls):
            if m.proc is not None and m.proc.poll() is not None:
                raise RuntimeError(f'etcd {m.name} exited ({m.proc.returncode}):\n{m.log_tail()}')
            if time.monotonic() > deadline:
                raise TimeoutError(f'etcd {m.name} not healthy within {timeout}s:\n{m.log_tail()}')
            time.sleep(0.05)


def cluster_string(members: list[EtcdMember]) -> str:
    return ','.join(f'{m.name}={m.peer_url}' for m in members)


def start_cluster(members: list[EtcdMember]) -> None:
    """Start ``members`` as one new cluster and wait until each serves."""
    initial = cluster_string(members)
    for m in members:
        m.start(initial)
    wait_healthy(members)


def etcd_range(endpoint: str, key: bytes, end: bytes | None = None) -> list[dict]:
    """The raw key-values under ``[key, end)`` (values decoded from base64)."""
    import base64

    body = {'key': base64.b64encode(key).decode()}
    if end is not None:
        body['range_end'] = base64.b64encode(end).decode()
    req = urllib.request.Request(
        f'http://{endpoint}/v3/kv/range', data=json.dumps(body).encode(), method='POST'
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        kvs = json.load(resp).get('kvs', [])
    for kv in kvs:
        kv['key'] = base64.b64decode(kv['key'])
        kv['value'] = base64.b64decode(kv.get('value', ''))
    return kvs


def stored_names(endpoint: str, prefix: str) -> dict[str, dict]:
    """The tractor registry entries in etcd under ``prefix``: ``'name/uuid'``
    -> the stored record (``uid``, ``addrs``, ``host``, ``host_only``)."""
    root = prefix.encode() + b'/actors/'
    out = {}
    for kv in etcd_range(endpoint, root, root[:-1] + b'0'):
        rec = json.loads(kv['value'])
        rec['lease'] = int(kv.get('lease', 0))
        out['/'.join(rec['uid'])] = rec
    return out


def names_in(entries: dict[str, dict]) -> list[str]:
    return sorted(rec['uid'][0] for rec in entries.values())


async def until_stored(endpoint: str, prefix: str, predicate, timeout: float = 15.0) -> dict:
    """Re-read the registry in etcd until ``predicate(entries)`` holds
    (bounded by ``timeout``) and return those entries. For changes that
    only etcd makes (a lease running out) and so nobody can signal."""
    import trio

    with trio.fail_after(timeout):
        while True:
            try:
                entries = await trio.to_thread.run_sync(stored_names, endpoint, prefix)
            except (urllib.error.URLError, OSError):
                entries = None  # that member is not serving (yet)
            if entries is not None and predicate(entries):
                return entries
            await trio.sleep(0.1)


def lease_ttl(endpoint: str, lease: int) -> int:
    """The remaining TTL of ``lease`` (-1 when it does not exist)."""
    req = urllib.request.Request(
        f'http://{endpoint}/v3/lease/timetolive',
        data=json.dumps({'ID': lease}).encode(),
        method='POST',
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return int(json.load(resp).get('TTL', -1))


def make_certs(directory: str, host: str = '127.0.0.1') -> dict[str, str]:
    """A throwaway CA, a server certificate for ``host`` and a client
    certificate, with the ``openssl`` command line: paths by role
    (``ca``, ``server_cert``, ``server_key``, ``client_cert``, ``client_key``)."""

    def run(*args: str) -> None:
        subprocess.run(
            ['openssl', *args], cwd=directory, check=True, capture_output=True, timeout=60
        )

    run(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=tractor-test-ca',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
    )
    for role, extra in (
        ('server', f'subjectAltName=IP:{host}'),
        ('client', 'extendedKeyUsage=clientAuth'),
    ):
        run(
            'req',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-subj',
            f'/CN={role}',
            '-keyout',
            f'{role}.key',
            '-out',
            f'{role}.csr',
        )
        with open(os.path.join(directory, f'{role}.ext'), 'w') as f:
            f.write(extra + '\n')
        run(
            'x509',
            '-req',
            '-in',
            f'{role}.csr',
            '-CA',
            'ca.pem',
            '-CAkey',
            'ca.key',
            '-CAcreateserial',
            '-days',
            '2',
            '-extfile',
            f'{role}.ext',
            '-out',
            f'{role}.pem',
        )
    path = lambda name: os.path.join(directory, name)  # noqa: E731
    return {
        'ca': path('ca.pem'),
        'server_cert': path('server.pem'),
        'server_key': path('server.key'),
        'client_cert': path('client.pem'),
        'client_key': path('client.key'),
    }


def gateway_post(endpoint: str, path: str, body: dict, token: str | None = None) -> dict:
    """One plain JSON gateway request (test set-up: users, roles, auth)."""
    req = urllib.request.Request(
        f'http://{endpoint}{path}',
        data=json.dumps(body).encode(),
        method='POST',
        headers={'Authorization': token} if token else {},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def loopback_member(name: str = 'solo') -> Iterator[EtcdMember]:
    """A started single-member etcd on free loopback ports, removed on exit
    (``pytest.skip`` first when etcd is not installed)."""
    if etcd_binary() is None:
        import pytest

        pytest.skip('etcd is not installed (Debian: apt-get install etcd-server)')
    member = EtcdMember(name, '127.0.0.1', _free_port(), _free_port())
    try:
        start_cluster([member])
        yield member
    finally:
        member.remove()
