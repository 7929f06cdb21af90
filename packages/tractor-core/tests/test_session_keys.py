"""The session's key schedule (``tractor._session``) against published test
vectors, so a faster implementation of a primitive cannot change the wire
protocol unnoticed."""

from __future__ import annotations

import pytest

from tractor import _session
from tractor._session import Session


def test_hmac_sha256_rfc4231_case_2() -> None:
    mac = _session._mac(b'Jefe', b'what do ya want for nothing?')
    assert mac.hex() == '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'


def test_hkdf_rfc5869_case_1() -> None:
    okm = _session._hkdf(bytes([0x0B] * 22), bytes(range(0x0D)), bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == (
        '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865'
    )


def test_both_sides_derive_matching_keys() -> None:
    """What one side seals the other verifies; the two directions and the
    two proofs differ."""
    args = (b's' * 32, b'd' * 32, b'l' * 32, b'inet:127.0.0.1:1616')
    dialer, proof_d, proof_l = Session.derive(*args, True)
    listener, proof_d2, proof_l2 = Session.derive(*args, False)
    assert (proof_d, proof_l) == (proof_d2, proof_l2)
    assert proof_d != proof_l
    assert dialer.id == listener.id
    for data in (b'abc', b'z' * 2048):  # both tag kinds (short and long batches)
        frame = bytearray(len(data).to_bytes(4, 'big') + data)
        dialer.seal(frame, 0, 0)
        bodies, rest = listener.open_batches(bytes(frame))
        assert (bodies, rest) == ([data], b'')
    # the other direction uses the other key: a dialer's batch replayed at
    # the dialer does not verify
    frame = bytearray(b'\x00\x00\x00\x01x')
    listener.seal(frame, 0, 0)
    dialer.open_batches(bytes(frame))
    frame = bytearray(b'\x00\x00\x00\x01y')
    dialer.seal(frame, 0, 0)
    with pytest.raises(_session.IntegrityError):
        dialer.open_batches(bytes(frame))
