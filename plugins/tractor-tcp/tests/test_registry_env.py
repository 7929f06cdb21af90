"""``TRACTOR_TCP_REGISTRY`` overrides the default TCP registry address."""

import pytest

import tractor_tcp
from tractor_tcp import TCPTransport


def test_default_registry_without_env(monkeypatch):
    monkeypatch.delenv('TRACTOR_TCP_REGISTRY', raising=False)
    assert TCPTransport().default_registry_addr().unwrap() == ('127.0.0.1', 1616)


@pytest.mark.parametrize(
    'raw, want',
    [
        ('127.0.0.1:4242', ('127.0.0.1', 4242)),
        (' 10.0.0.5:1616 ', ('10.0.0.5', 1616)),
        ('localhost:9000', ('localhost', 9000)),
        ('[::1]:1617', ('::1', 1617)),
    ],
)
def test_registry_env_overrides_default(monkeypatch, raw, want):
    monkeypatch.setenv('TRACTOR_TCP_REGISTRY', raw)
    assert TCPTransport().default_registry_addr().unwrap() == want
    assert tractor_tcp.DEFAULT_REGISTRY == ('127.0.0.1', 1616)


@pytest.mark.parametrize('raw', ['1616', '127.0.0.1', ':1616', 'host:port', 'h:0', 'h:70000'])
def test_malformed_registry_env_is_an_error(monkeypatch, raw):
    monkeypatch.setenv('TRACTOR_TCP_REGISTRY', raw)
    with pytest.raises(ValueError, match='TRACTOR_TCP_REGISTRY'):
        TCPTransport().default_registry_addr()
