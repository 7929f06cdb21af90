"""Certificates for the TLS tests, made per test with ``trustme``: a CA,
host certificates for loopback, and on demand ones from another CA, an
expired one, or none. ``pki`` points ``TRACTOR_TLS_*`` at the good set
(subactors inherit the environment)."""

from __future__ import annotations

import datetime
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

LOOPBACK = ('localhost', '127.0.0.1', '::1')


@dataclass
class CertSet:
    ca: Path
    cert: Path
    key: Path

    def env(self) -> dict[str, str]:
        return {
            'TRACTOR_TLS_CA': str(self.ca),
            'TRACTOR_TLS_CERT': str(self.cert),
            'TRACTOR_TLS_KEY': str(self.key),
        }


class PKI:
    """A CA of the test and the files it issues (under ``tmp_path``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = trustme.CA(organization_name='tractor tests')
        self.ca_path = root / 'ca.pem'
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.good = self.issue('good')
        self._n = 0

    def issue(
        self,
        name: str,
        ca: trustme.CA | None = None,
        *,
        not_before=None,
        not_after=None,
        identities: tuple[str, ...] = LOOPBACK,
    ) -> CertSet:
        """A certificate (with its key) for ``identities``, from ``ca``
        (default: ours); the CA file is always ours, the one peers trust."""
        leaf = (ca or self.ca).issue_cert(*identities, not_before=not_before, not_after=not_after)
        cert, key = self.root / f'{name}.pem', self.root / f'{name}.key'
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return CertSet(self.ca_path, cert, key)

    def other_ca_set(self, name: str) -> CertSet:
        """A certificate and CA file both from another CA (a stranger's tree)."""
        other = trustme.CA(organization_name='someone else')
        made = self.issue(name, other)
        ca_path = self.root / f'{name}-ca.pem'
        other.cert_pem.write_to_path(str(ca_path))
        return CertSet(ca_path, made.cert, made.key)

    def expired(self, name: str) -> CertSet:
        now = datetime.datetime.now(datetime.UTC)
        return self.issue(
            name,
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )


@pytest.fixture
def pki(tmp_path, monkeypatch) -> PKI:
    made = PKI(tmp_path)
    for var, value in made.good.env().items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv('TRACTOR_TLS_VERIFY_HOST', raising=False)
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def tls_reg(pki) -> tuple:
    """A fresh TLS registry address (wire form: a plain tuple would be TCP)."""
    return ('tls', ['127.0.0.1', free_port()])
