"""Authenticated sessions: the keys one preamble derives, and batch tags.

The keys come from HKDF-SHA256 (RFC 5869) over the tree's secret, salted
with both preamble nonces, with the dialer's binding (:mod:`tractor._auth`)
in the info::

    prk  = HMAC-SHA256(LABEL | nonce_d | nonce_l, secret)
    okm  = HKDF-Expand(prk, INFO | binding, 5 * 32)
         = proof key dialer | proof key listener | key d->l | key l->d | session id
    proof_d = HMAC-SHA256(proof key dialer, b'dialer'), proof_l likewise

After the preamble each direction is a :class:`Session` stream: frames are
written in batches (what one flush writes), and the last frame of a batch
has the top bit of its length prefix set and is followed by a 16-byte tag,
HMAC-SHA256(key of that direction, sequence number (8 bytes) | the batch's
bytes) truncated to 128 bits. The sequence number counts batches per
direction from 0. A peer without the key can therefore neither inject,
reorder, replay nor alter frames: the receiver checks each batch before it
decodes any of it and drops the connection at the first bad tag. Sessions
are authenticated, not encrypted: anyone on the path can read the traffic.

The session id also binds a spawned child's proof that it holds its spawn
token (:func:`spawn_proof`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from ._exceptions import MsgTypeError

#: bytes of the tag that closes each batch of frames
TAG_SIZE = 16
#: the top bit of a frame's length prefix: "the last frame of a batch, the
#: tag follows" (frames are far smaller than 2**31 bytes)
BATCH_END = 1 << 31
_LABEL = b'tractor-auth-v2\0'
_INFO = b'tractor session keys v2\0'
_ROLE_DIALER = b'dialer'
_ROLE_LISTENER = b'listener'
#: the binding of a spawn's inherited socket (Session.for_spawn)
_SPAWN_SOCKET = b'spawn-socketpair'


def _hkdf(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract, then expand to ``length`` bytes."""
    prk = _mac(salt, secret)
    out, block, counter = b'', b'', 1
    while len(out) < length:
        block = _mac(prk, block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


#: batches shorter than this are tagged with keyed BLAKE2b, longer ones
#: with HMAC-SHA256 (see Session._tag)
_SHORT_BATCH = 1024


def _macs(key: bytes) -> tuple:
    """The two keyed MACs of one direction, ready to be copied per batch:
    keyed BLAKE2b (RFC 7693) and HMAC-SHA256, each under a subkey of
    ``key``."""
    blake = hashlib.blake2b(
        key=_mac(key, b'blake2b'), digest_size=TAG_SIZE, person=b'tractor-batch'
    )
    sha = _hmac_new(_mac(key, b'hmac-sha256'))
    return blake, sha


_openssl_hmac: Callable[..., Any] | None
try:
    from _hashlib import hmac_new as _openssl_hmac
except ImportError:  # a Python built without OpenSSL
    _openssl_hmac = None


def _hmac_new(key: bytes, msg: bytes = b''):
    """An HMAC-SHA256 object whose ``copy()`` is cheap: OpenSSL's own when
    available (``hmac.HMAC`` wraps it in Python)."""
    if _openssl_hmac is not None:
        try:
            return _openssl_hmac(key, msg, digestmod='sha256')
        except ValueError:  # e.g. a FIPS build refusing the call
            pass
    return hmac.new(key, msg, digestmod=hashlib.sha256)


def _mac(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 of ``msg`` under ``key``. (Half the cost of
    ``hmac.digest`` for the short inputs of a handshake, which looks the
    digest up by name on every call; a handshake makes about a dozen.)"""
    return _hmac_new(key, msg).digest()


class IntegrityError(MsgTypeError):
    """A batch of frames failed its tag: data injected, altered, reordered
    or replayed by someone without the session key. The connection is
    dropped."""


class Session:
    """The keys of one authenticated connection, for one side.

    :meth:`seal` closes a batch of outgoing frames (sets the last frame's
    batch-end bit, appends the tag); :meth:`verify` checks an incoming
    batch. Each counts its direction's batches, so a batch is valid once,
    at its place in the stream.
    """

    __slots__ = ('_send', '_recv', 'send_seq', 'recv_seq', 'id')

    def __init__(self, send_key: bytes, recv_key: bytes, session_id: bytes) -> None:
        self._send = _macs(send_key)
        self._recv = _macs(recv_key)
        self.send_seq = 0
        self.recv_seq = 0
        #: a value both sides share and nobody else knows (spawn proofs)
        self.id = session_id

    @classmethod
    def derive(
        cls, secret: bytes, nonce_d: bytes, nonce_l: bytes, binding: bytes, initiator: bool
    ) -> tuple[Session, bytes, bytes]:
        """The session of one side, and the two proofs ``(dialer's,
        listener's)`` for this handshake."""
        okm = _hkdf(
            secret,
            _LABEL + nonce_d + nonce_l,
            _INFO + len(binding).to_bytes(2, 'big') + binding,
            5 * 32,
        )
        kpd, kpl, kdl, kld, sid = (okm[i : i + 32] for i in range(0, 160, 32))
        proof_d = _mac(kpd, _ROLE_DIALER)
        proof_l = _mac(kpl, _ROLE_LISTENER)
        session = cls(kdl, kld, sid) if initiator else cls(kld, kdl, sid)
        return session, proof_d, proof_l

    @classmethod
    def for_spawn(cls, secret: bytes, spawn_token: bytes, child: bool) -> Session:
        """The session of a spawn's inherited socket (one end of a
        ``socketpair`` the parent passes to the child it starts): nobody else
        holds either end, so no preamble runs; the keys come from the tree's
        secret and the spawn's fresh token, which only the parent and that
        child know. The child has the dialer's side."""
        session, _, _ = cls.derive(secret, spawn_token, b'', _SPAWN_SOCKET, child)
        return session

    @staticmethod
    def _tag(macs: tuple, seq: int, data) -> bytes:
        # keyed BLAKE2b for short batches (about twice as fast as HMAC in
        # CPython), HMAC-SHA256 from 1 KiB on (hardware SHA wins there);
        # each with its own subkey, chosen by the batch's length, which
        # both sides know
        h = (macs[0] if len(data) < _SHORT_BATCH else macs[1]).copy()
        h.update(seq.to_bytes(8, 'big'))
        h.update(data)
        return h.digest()[:TAG_SIZE]

    def seal(self, buf: bytearray, start: int, last: int) -> None:
        """Close the batch ``buf[start:]`` whose last frame's length prefix
        is at ``buf[last]``: mark that frame, append the tag."""
        buf[last] |= 0x80
        if start == 0:
            tag = self._tag(self._send, self.send_seq, buf)
        else:
            with memoryview(buf) as view, view[start:] as batch:
                tag = self._tag(self._send, self.send_seq, batch)
        self.send_seq += 1
        buf += tag

    def seal_frames(self, frames: list[bytes]) -> bytes:
        """``frames`` (each with its length prefix) as one sealed batch:
        what a raw peer (a tool, a test) writes."""
        buf = bytearray(b''.join(frames))
        self.seal(buf, 0, len(buf) - len(frames[-1]))
        return bytes(buf)

    def open_batches(self, data: bytes) -> tuple[list[bytes], bytes]:
        """The frame bodies of the whole, checked batches at the start of
        ``data``, and the bytes after them: what a raw peer reads.
        ``IntegrityError`` at a bad tag."""
        bodies: list[bytes] = []
        pos = 0
        while True:
            end, batch, closed = pos, [], False
            while len(data) >= end + 4:
                header = int.from_bytes(data[end : end + 4], 'big')
                size = header & (BATCH_END - 1)
                if len(data) < end + 4 + size:
                    break
                batch.append(data[end + 4 : end + 4 + size])
                end += 4 + size
                if header & BATCH_END:
                    closed = True
                    break
            if not closed or len(data) < end + TAG_SIZE:
                return bodies, data[pos:]
            self.verify(data[pos:end], data[end : end + TAG_SIZE])
            bodies.extend(batch)
            pos = end + TAG_SIZE

    def verify(self, batch, tag) -> None:
        """Check an incoming batch (its frames, length prefixes included)
        against its ``tag``; ``IntegrityError`` if it does not match."""
        if not hmac.compare_digest(self._tag(self._recv, self.recv_seq, batch), tag):
            raise IntegrityError(
                f'batch {self.recv_seq} of frames failed its integrity check: data '
                'injected, altered, reordered or replayed by someone without the '
                'session key (sessions are authenticated end to end)'
            )
        self.recv_seq += 1


def spawn_proof(spawn_token: bytes, session: Session) -> bytes:
    """What a child sends in its ``Hello`` to prove it holds the spawn token
    its parent gave it, bound to this session (the token never crosses)."""
    return _mac(spawn_token, b'tractor spawn\0' + session.id)


def check_spawn_proof(spawn_token: bytes, session: Session, proof: bytes) -> bool:
    return hmac.compare_digest(spawn_proof(spawn_token, session), proof)
