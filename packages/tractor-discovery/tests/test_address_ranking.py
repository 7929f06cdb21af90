"""Choosing among a multihomed actor's addresses: UDS, then local TCP
(loopback or this host's own interface addresses), then remote TCP; within
a tier the most recently registered (later in the entry) wins; addresses of
transports the caller has not enabled are not dialed."""

from __future__ import annotations

import pytest

from tractor.discovery._client import rank_addrs

UDS_A = ('uds', ['/run/t', 'a.sock'])
UDS_B = ('uds', ['/run/t', 'b.sock'])
LOOPBACK = ('tcp', ['127.0.0.1', 5000])
LOOPBACK_2 = ('tcp', ['127.0.0.1', 5001])
REMOTE = ('tcp', ['203.0.113.5', 5000])  # TEST-NET-3: never this host
REMOTE_2 = ('tcp', ['198.51.100.9', 5000])


class _Caller:
    def __init__(self, *transports: str) -> None:
        self.enable_transports = list(transports)


def _ranked(caller, wire, **kw):
    return [a.to_wire() for a in rank_addrs(caller, wire, **kw)]


def _w(addr):
    return (addr[0], list(addr[1]))


def test_uds_beats_local_tcp_beats_remote_tcp():
    caller = _Caller('uds', 'tcp')
    for wire in ([REMOTE, LOOPBACK, UDS_A], [UDS_A, REMOTE, LOOPBACK], [LOOPBACK, UDS_A, REMOTE]):
        assert _ranked(caller, wire) == [_w(UDS_A), _w(LOOPBACK), _w(REMOTE)]


def test_within_a_tier_the_most_recently_registered_wins():
    caller = _Caller('uds', 'tcp')
    assert _ranked(caller, [UDS_A, UDS_B]) == [_w(UDS_B), _w(UDS_A)]
    assert _ranked(caller, [LOOPBACK, REMOTE, LOOPBACK_2]) == [
        _w(LOOPBACK_2),
        _w(LOOPBACK),
        _w(REMOTE),
    ]
    assert _ranked(caller, [REMOTE, REMOTE_2]) == [_w(REMOTE_2), _w(REMOTE)]


def test_this_hosts_own_interface_address_ranks_local():
    from tractor_tcp._local import host_addresses

    own = sorted(a for a in host_addresses() if '.' in a and not a.startswith('127.'))
    if not own:
        pytest.skip('this host has no non-loopback IPv4 address')
    mine = ('tcp', [own[0], 5000])
    assert _ranked(_Caller('tcp'), [mine, REMOTE]) == [_w(mine), _w(REMOTE)]
    assert _ranked(_Caller('tcp'), [REMOTE, mine]) == [_w(mine), _w(REMOTE)]


def test_every_installed_transport_is_dialed_whatever_the_caller_serves():
    """``enable_transports`` is what a caller serves, not what it dials: a
    TCP-only or a UDS-only caller ranks the same way, UDS first."""
    wire = [UDS_A, LOOPBACK]
    assert _ranked(_Caller('tcp'), wire) == [_w(UDS_A), _w(LOOPBACK)]
    assert _ranked(_Caller('uds'), wire) == [_w(UDS_A), _w(LOOPBACK)]
    assert _ranked(_Caller('tcp'), wire, usable_only=False) == [_w(UDS_A), _w(LOOPBACK)]


def test_unknown_or_malformed_addresses_are_skipped():
    caller = _Caller('uds', 'tcp')
    wire = [('carrier-pigeon', ['coop']), ('tcp', ['127.0.0.1']), LOOPBACK]
    assert _ranked(caller, wire) == [_w(LOOPBACK)]
    assert _ranked(caller, []) == []
