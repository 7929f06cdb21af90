"""TLS addresses: their forms, how they differ from TCP's, locality, the
default registry, and how discovery ranks them."""

from __future__ import annotations

import pytest

from tractor.discovery._client import rank_addrs
from tractor.plugin import LOCAL, REMOTE, is_one_address, wrap_address
from tractor_tcp import TCPAddress
from tractor_tls import DEFAULT_REGISTRY, TLSAddress, TLSTransport


@pytest.mark.parametrize(
    'text, want',
    [
        ('/ip4/127.0.0.1/tcp/1617/tls', ('127.0.0.1', 1617)),
        ('/ip6/::1/tcp/9/tls', ('::1', 9)),
        ('/dns/node1/tcp/4000/tls', ('node1', 4000)),
    ],
)
def test_multiaddr_round_trip(text, want):
    addr = wrap_address(text)
    assert isinstance(addr, TLSAddress) and addr.unwrap() == want
    assert str(addr) == text
    assert wrap_address(addr.to_wire()) == addr
    assert addr.to_wire() == ('tls', list(want))
    assert is_one_address(addr.to_wire())


def test_a_plain_tuple_is_tcp():
    """A plain (host, port) is TCP's, never guessed to be TLS; the same
    host and port as TLS is a different address."""
    tcp = wrap_address(('127.0.0.1', 1617))
    assert isinstance(tcp, TCPAddress)
    assert not TLSTransport().claims(('127.0.0.1', 1617))
    assert tcp != TLSAddress('127.0.0.1', 1617)
    assert str(wrap_address('/ip4/127.0.0.1/tcp/1617')) == '/ip4/127.0.0.1/tcp/1617'


@pytest.mark.parametrize(
    'bad, words',
    [
        ('/ip4/127.0.0.1/tcp/x/tls', "bad TCP port 'x'"),
        ('/ip4/::1/tcp/1/tls', 'is not an ip4 address'),
        ('/ip4/127.0.0.1/tcp/1/ssl', 'does not end in /tls'),
        ('/ip4/127.0.0.1/tcp/1/tls/x', 'does not end in /tls'),
        ('/ip4/127.0.0.1/tls', 'incomplete TCP multiaddr'),
    ],
)
def test_bad_multiaddr(bad, words):
    with pytest.raises(ValueError, match=words.replace('(', r'\(')):
        wrap_address(bad)


@pytest.mark.parametrize(
    'bad', [('tls', ['h']), ('tls', ['', 1]), ('tls', ['h', 70000]), ('tls', [1, 2])]
)
def test_bad_wire_form(bad):
    with pytest.raises(ValueError):
        wrap_address(bad)


def test_default_registry(monkeypatch):
    monkeypatch.delenv('TRACTOR_TLS_REGISTRY', raising=False)
    assert DEFAULT_REGISTRY == ('127.0.0.1', 1617)
    assert TLSTransport().default_registry_addr() == TLSAddress('127.0.0.1', 1617)
    monkeypatch.setenv('TRACTOR_TLS_REGISTRY', '[::1]:7000')
    assert TLSTransport().default_registry_addr() == TLSAddress('::1', 7000)
    monkeypatch.setenv('TRACTOR_TLS_REGISTRY', '7000')
    with pytest.raises(ValueError, match='TRACTOR_TLS_REGISTRY'):
        TLSTransport().default_registry_addr()


def test_locality_and_random_addr(monkeypatch):
    monkeypatch.delenv('TRACTOR_TCP_BIND_HOST', raising=False)
    tpt = TLSTransport()
    assert tpt.locality(TLSAddress('127.0.0.1', 1)) == LOCAL
    assert tpt.locality(TLSAddress('192.0.2.1', 1)) == REMOTE
    assert tpt.random_addr('x') == TLSAddress('127.0.0.1', 0)
    assert tpt.random_addr('x', near=TLSAddress('127.0.0.5', 1617)) == TLSAddress('127.0.0.5', 0)


def test_ranking_prefers_encrypted_among_remote(tmp_path):
    """Same host first (UDS, then loopback of any kind, in registration
    order), then remote: TLS before plain TCP; plain remote TCP only when
    no TLS address is served."""
    uds = ('uds', [str(tmp_path), 'a.sock'])
    remote_tcp, remote_tls = ('tcp', ['192.0.2.1', 1616]), ('tls', ['192.0.2.1', 1617])
    local_tcp, local_tls = ('tcp', ['127.0.0.1', 1616]), ('tls', ['127.0.0.1', 1617])

    def ranked(*wires):
        return [a.to_wire() for a in rank_addrs(None, list(wires))]

    assert ranked(remote_tcp, remote_tls) == [remote_tls, remote_tcp]
    assert ranked(remote_tls, remote_tcp) == [remote_tls, remote_tcp]
    assert ranked(remote_tcp) == [remote_tcp]
    assert ranked(remote_tls, uds, remote_tcp, local_tcp) == [
        uds,
        local_tcp,
        remote_tls,
        remote_tcp,
    ]
    # locally encryption buys nothing: registration order decides, as before
    assert ranked(local_tls, local_tcp) == [local_tcp, local_tls]
