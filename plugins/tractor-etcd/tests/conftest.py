"""A real single-member etcd on free loopback ports, per test."""

from __future__ import annotations

import socket
import uuid

import pytest

from tractor_testsupport.etcd import loopback_member


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def etcd():
    """A started etcd member (``.endpoint`` is ``127.0.0.1:PORT``), stopped
    and its data dir removed afterwards."""
    with loopback_member() as member:
        yield member


@pytest.fixture
def etcd_url(etcd) -> str:
    """A registry address on ``etcd`` with a prefix of this test's own and a
    2 s lease TTL (tests wait for expiry)."""
    return f'etcd://{etcd.endpoint}/t{uuid.uuid4().hex[:8]}?ttl=2'


@pytest.fixture
def free_port() -> int:
    """A loopback TCP port nobody listens on."""
    return _free_port()


@pytest.fixture
def free_ports():
    """``free_ports()``: another loopback TCP port nobody listens on."""
    return _free_port
