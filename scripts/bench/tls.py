"""tls: ``portal.run(noop)`` round trips and stream figures over the TLS
transport (``tractor-tls``), each next to a raw ping-pong (or batched
one-way) of the same frames over the same ``SSLStream`` (the plugin's own
stream and TLS settings, between two processes), measured in the same run.

The certificates are made for the run with ``trustme`` (a CA and one
loopback certificate, in the run's temporary directory) and handed to
every process through ``TRACTOR_TLS_*``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

import rpc
import stream

ENV = ('TRACTOR_TLS_CA', 'TRACTOR_TLS_CERT', 'TRACTOR_TLS_KEY')


@contextmanager
def certificates(tmpdir: str) -> Iterator[None]:
    import trustme  # a dev dependency of the workspace

    ca = trustme.CA(organization_name='tractor bench')
    leaf = ca.issue_cert('127.0.0.1', 'localhost')
    root = Path(tmpdir)
    paths = dict(zip(ENV, (root / 'bench-ca.pem', root / 'bench-cert.pem', root / 'bench-key.pem')))
    ca.cert_pem.write_to_path(str(paths['TRACTOR_TLS_CA']))
    leaf.cert_chain_pems[0].write_to_path(str(paths['TRACTOR_TLS_CERT']))
    leaf.private_key_pem.write_to_path(str(paths['TRACTOR_TLS_KEY']))
    old = {var: os.environ.get(var) for var in ENV}
    os.environ.update({var: str(path) for var, path in paths.items()})
    try:
        yield
    finally:
        for var, value in old.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def run(quick: bool, tmpdir: str) -> dict[str, float]:
    n = 200 if quick else 4000
    with certificates(tmpdir):
        figures = trio.run(rpc._measure, 'tls', n, tmpdir)
        if quick:
            figures.update(trio.run(stream._measure, 2000, 300, tmpdir, 'tls'))
        else:
            figures.update(trio.run(stream._measure, 50_000, 3000, tmpdir, 'tls'))
    return figures
