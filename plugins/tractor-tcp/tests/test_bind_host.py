"""Where a random TCP listen address goes: next to a registry this host
owns, on the interface routing to one it does not, or TRACTOR_TCP_BIND_HOST.
(Across real interfaces: integration/tests/test_etcd_hosts.py.)"""

import pytest

from tractor_tcp import TCPAddress, TCPTransport, source_host
from tractor_tcp._local import host_addresses


@pytest.mark.parametrize('host', ['127.0.0.1', '127.0.0.5', '0.0.0.0', 'localhost'])
def test_a_host_of_ours_is_kept(host, monkeypatch):
    monkeypatch.delenv('TRACTOR_TCP_BIND_HOST', raising=False)
    assert source_host(host, 1616) == host
    assert TCPTransport().random_addr('x', near=TCPAddress(host, 1616)).unwrap() == (host, 0)


def test_a_remote_registry_gets_our_routing_address(monkeypatch):
    """192.0.2.1 (TEST-NET-1) is nobody's: when a route leads there, the
    address chosen is one of this host's own, never the registry's."""
    monkeypatch.delenv('TRACTOR_TCP_BIND_HOST', raising=False)
    picked = TCPTransport().random_addr('x', near=TCPAddress('192.0.2.1', 1616)).unwrap()
    assert picked[1] == 0
    assert picked[0] == '192.0.2.1' or picked[0] in host_addresses()
    if picked[0] == '192.0.2.1':
        pytest.skip('no route to 192.0.2.1 on this machine: the host is left for bind to refuse')


def test_bind_host_env_wins(monkeypatch):
    monkeypatch.setenv('TRACTOR_TCP_BIND_HOST', '0.0.0.0')
    assert TCPTransport().random_addr('x').unwrap() == ('0.0.0.0', 0)
    assert TCPTransport().random_addr('x', near=TCPAddress('127.0.0.1', 1)).unwrap() == (
        '0.0.0.0',
        0,
    )
