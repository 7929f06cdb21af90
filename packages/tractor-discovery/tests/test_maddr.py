"""``tractor.discovery.mk_maddr`` / ``parse_maddr``: transport endpoints as
libp2p-style multiaddr text, the text form supplied by each transport."""

from __future__ import annotations

import pytest

import tractor
from tractor.discovery import mk_maddr, parse_maddr


@pytest.mark.parametrize(
    'addr, text',
    [
        (('127.0.0.1', 1616), '/ip4/127.0.0.1/tcp/1616'),
        (('10.0.0.7', 0), '/ip4/10.0.0.7/tcp/0'),
        (('::1', 6000), '/ip6/::1/tcp/6000'),
        (('localhost', 1616), '/dns/localhost/tcp/1616'),
    ],
)
def test_mk_maddr_parse_maddr_roundtrip_tcp(addr, text):
    maddr = mk_maddr(addr)
    assert maddr.proto_key == 'tcp'
    assert str(maddr) == text
    back = parse_maddr(text)
    assert back.proto_key == 'tcp'
    assert back.unwrap() == addr and type(back.unwrap()) is tuple
    assert back == maddr and hash(back) == hash(maddr)


@pytest.mark.parametrize(
    'addr, text',
    [
        (
            ('/run/user/1000/tractor', 'registry@1616.sock'),
            '/unix/run/user/1000/tractor/registry@1616.sock',
        ),
        (('/tmp', 'a.sock'), '/unix/tmp/a.sock'),
    ],
)
def test_mk_maddr_parse_maddr_roundtrip_uds(addr, text):
    maddr = mk_maddr(addr)
    assert maddr.proto_key == 'uds'
    assert str(maddr) == text
    back = parse_maddr(text)
    assert back.proto_key == 'uds'
    assert back.unwrap() == addr
    assert back == maddr


def test_mk_maddr_accepts_every_address_form():
    """A plain tuple, the wire form and an address object all work, and
    the public alias is the same function."""
    obj = mk_maddr(('127.0.0.1', 1616))
    assert mk_maddr(obj) is obj
    assert mk_maddr(('tcp', ['127.0.0.1', 1616])) == obj
    assert tractor.discovery.mk_maddr is mk_maddr


@pytest.mark.parametrize(
    'text, bad_part',
    [
        ('/ip4/127.0.0.1/tcp/notaport', 'notaport'),
        ('/ip4/999.1.1.1/tcp/1616', '999.1.1.1'),
        ('/ip4/::1/tcp/1616', '::1'),
        ('/ip4/127.0.0.1/udp/1616', 'udp'),
        ('/ip4/127.0.0.1/tcp/99999', '99999'),
        ('/ip4/127.0.0.1/tcp/1616/extra', '/extra'),
        ('/ip4/127.0.0.1', 'tcp/<port>'),
        ('/ip4/127.0.0.1/tcp/', "''"),
        ('/carrier-pigeon/coop/7', 'carrier-pigeon'),
        ('ip4/127.0.0.1/tcp/1616', 'ip4/127.0.0.1/tcp/1616'),
        ('/unix/', '/unix/'),
        ('/unix/tmp/dir/', '/unix/tmp/dir/'),
    ],
)
def test_malformed_maddr_raises_value_error_naming_the_part(text, bad_part):
    with pytest.raises(ValueError) as info:
        parse_maddr(text)
    assert bad_part in str(info.value)


def test_maddr_helpers_reject_the_wrong_kind_of_argument():
    with pytest.raises(TypeError, match='parse_maddr'):
        mk_maddr('/ip4/127.0.0.1/tcp/1616')
    with pytest.raises(TypeError):
        parse_maddr(('127.0.0.1', 1616))  # type: ignore[arg-type]  # refused: the test
