"""Certificates: where they come from, the TLS contexts built from them,
and the typed errors that say which certificate failed and why.

Three PEM files make one actor's identity: the CA that signs every member
of the tree (``TRACTOR_TLS_CA``), this host's certificate
(``TRACTOR_TLS_CERT``) and its private key (``TRACTOR_TLS_KEY``). Both
ends present theirs and verify the other's against the CA (mutual TLS),
TLS 1.3 only. :func:`configure` sets the same three in this process's
environment, which every subactor inherits.

The contexts are rebuilt when a file changes (its inode, size or mtime):
replacing the files rotates the certificates for every new connection
without a restart; connections already open keep the session they have.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from tractor import TractorError

ENV_CA = 'TRACTOR_TLS_CA'
ENV_CERT = 'TRACTOR_TLS_CERT'
ENV_KEY = 'TRACTOR_TLS_KEY'
#: '0' (or 'no', 'false'): accept any certificate the CA signed, whatever
#: address it names (default: the dialed host must be in its subjectAltName)
ENV_VERIFY_HOST = 'TRACTOR_TLS_VERIFY_HOST'

_FALSE = ('0', 'no', 'false', 'off')


class TLSError(TractorError):
    """Base of the TLS transport's own errors."""


class TLSConfigError(TLSError, ValueError):
    """A certificate, key or CA is not configured, missing, unreadable or
    not what it should be; the message names the file and the variable."""


class TLSHandshakeError(TLSError):
    """A TLS dial failed: the peer's certificate was refused here, the peer
    refused ours, or the peer does not speak TLS 1.3.

    ``peer`` is the address dialed, ``which`` the certificate at fault
    (``'peer'``: the peer's; ``'ours'``: this actor's ``TRACTOR_TLS_CERT``;
    ``None``: no certificate got that far) and ``reason`` why, in words.
    Not an ``OSError``: discovery must not take a refused certificate for
    a stale address and quietly dial the next (unencrypted) one.
    """

    def __init__(self, message: str, *, peer: str, which: str | None, reason: str) -> None:
        super().__init__(message)
        self.peer = peer
        self.which = which
        self.reason = reason


@dataclass(frozen=True)
class Files:
    ca: str
    cert: str
    key: str
    verify_host: bool


def configure(
    *,
    ca: str | os.PathLike | None = None,
    cert: str | os.PathLike | None = None,
    key: str | os.PathLike | None = None,
    verify_host: bool | None = None,
) -> None:
    """Use these files for TLS in this process and in every subactor it
    spawns from now on: they are written (as absolute paths) to
    ``TRACTOR_TLS_CA``/``_CERT``/``_KEY`` (and ``TRACTOR_TLS_VERIFY_HOST``),
    which children inherit. Arguments left ``None`` keep what the
    environment says. The files are checked at once:
    :class:`TLSConfigError` names any that is missing or malformed.
    Call it before ``open_root_actor``/``open_nursery``."""
    updates = {}
    for var, value in ((ENV_CA, ca), (ENV_CERT, cert), (ENV_KEY, key)):
        if value is not None:
            updates[var] = os.path.abspath(os.fspath(value))
    if verify_host is not None:
        updates[ENV_VERIFY_HOST] = '1' if verify_host else '0'
    old = {var: os.environ.get(var) for var in updates}
    os.environ.update(updates)
    try:
        build_contexts(current_files())
    except BaseException:
        for var, value in old.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        raise


def current_files() -> Files:
    """The configured files (from the environment); :class:`TLSConfigError`
    naming the first variable that is not set."""
    paths = []
    for var, what in (
        (ENV_CA, 'CA certificate'),
        (ENV_CERT, 'certificate'),
        (ENV_KEY, 'private key'),
    ):
        value = os.environ.get(var, '').strip()
        if not value:
            raise TLSConfigError(
                f'the TLS transport needs a CA, a certificate and its key: {var} '
                f'(the {what}) is not set; set it to a PEM file, or call '
                f'tractor_tls.configure({var.rsplit("_", 1)[1].lower()}=...)'
            )
        paths.append(value)
    verify = os.environ.get(ENV_VERIFY_HOST, '').strip().lower() not in _FALSE
    ca, cert, key = paths
    return Files(ca, cert, key, verify_host=verify)


def _stamp(path: str, var: str, what: str) -> tuple:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise TLSConfigError(f'the {what} {path!r} ({var}) does not exist') from None
    except OSError as err:
        raise TLSConfigError(
            f'the {what} {path!r} ({var}) cannot be read: {err.strerror}'
        ) from None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def stamps(files: Files) -> tuple:
    """What identifies this version of the files (a change rebuilds)."""
    return (
        files,
        _stamp(files.ca, ENV_CA, 'CA certificate'),
        _stamp(files.cert, ENV_CERT, 'certificate'),
        _stamp(files.key, ENV_KEY, 'private key'),
    )


def _pem_has(path: str, marker: bytes) -> bool:
    try:
        with open(path, 'rb') as f:
            return marker in f.read(1 << 20)
    except OSError:
        return False


def _base(purpose: ssl.Purpose, files: Files) -> ssl.SSLContext:
    ctx = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cafile=files.ca)
    except (ssl.SSLError, ValueError) as err:
        raise TLSConfigError(
            f'the CA certificate {files.ca!r} ({ENV_CA}) is not a PEM certificate: {err}'
        ) from None
    except OSError as err:
        raise TLSConfigError(
            f'the CA certificate {files.ca!r} ({ENV_CA}) cannot be read: {err.strerror or err}'
        ) from None
    try:
        ctx.load_cert_chain(files.cert, files.key)
    except OSError as err:  # ssl.SSLError is an OSError too
        reason = getattr(err, 'reason', None)
        if reason == 'KEY_VALUES_MISMATCH':
            why = (
                f'the private key {files.key!r} ({ENV_KEY}) does not belong to the '
                f'certificate {files.cert!r} ({ENV_CERT})'
            )
        elif not _pem_has(files.cert, b'-----BEGIN CERTIFICATE-----'):
            why = f'the certificate {files.cert!r} ({ENV_CERT}) is not a PEM certificate'
        elif not _pem_has(files.key, b'PRIVATE KEY-----'):
            why = f'the private key {files.key!r} ({ENV_KEY}) is not a PEM private key (or it is encrypted)'
        else:
            why = f'the certificate {files.cert!r} ({ENV_CERT}) and key {files.key!r} ({ENV_KEY}) cannot be loaded'
        raise TLSConfigError(f'{why}: {err}') from None
    return ctx


def build_contexts(files: Files) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """``(server, client)`` contexts: TLS 1.3 only, our certificate and key
    presented, the peer's verified against the CA (the dialer also checks
    the dialed host against the listener's subjectAltName unless
    ``verify_host`` is off)."""
    stamps(files)  # a missing file says which
    server = _base(ssl.Purpose.CLIENT_AUTH, files)
    client = _base(ssl.Purpose.SERVER_AUTH, files)
    client.check_hostname = files.verify_host
    return server, client


_cache: tuple[tuple, tuple[ssl.SSLContext, ssl.SSLContext]] | None = None


def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The contexts for the files configured now, rebuilt when they change
    (one ``stat`` per file per connection; a handshake costs far more)."""
    global _cache
    files = current_files()
    stamp = stamps(files)
    if _cache is None or _cache[0] != stamp:
        _cache = (stamp, build_contexts(files))
    return _cache[1]


# -- explaining failures ----------------------------------------------------

#: alerts a peer sends about *our* certificate (OpenSSL reason codes)
_ALERTS_ABOUT_OURS = {
    'SSLV3_ALERT_CERTIFICATE_EXPIRED': 'it is expired (or not yet valid), the peer says',
    'TLSV1_ALERT_UNKNOWN_CA': 'the peer does not trust the CA that signed it',
    'SSLV3_ALERT_BAD_CERTIFICATE': 'the peer found it bad',
    'SSLV3_ALERT_CERTIFICATE_UNKNOWN': 'the peer could not verify it',
    'SSLV3_ALERT_UNSUPPORTED_CERTIFICATE': 'the peer does not support it',
    'SSLV3_ALERT_CERTIFICATE_REVOKED': 'the peer says it is revoked',
    'TLSV1_ALERT_DECRYPT_ERROR': 'its signature did not verify at the peer',
    'TLSV13_ALERT_CERTIFICATE_REQUIRED': 'the peer got no certificate from us',
}
_NOT_TLS = {
    'WRONG_VERSION_NUMBER',
    'HTTP_REQUEST',
    'UNKNOWN_PROTOCOL',
    'RECORD_LAYER_FAILURE',
    'PACKET_LENGTH_TOO_LONG',
    'RECORD_TOO_LARGE',
    'WRONG_SSL_VERSION',
    'BAD_RECORD_TYPE',
}
_OLD_TLS = {'UNSUPPORTED_PROTOCOL', 'TLSV1_ALERT_PROTOCOL_VERSION', 'NO_PROTOCOLS_AVAILABLE'}


def ssl_cause(err: BaseException) -> BaseException | None:
    """The ``ssl`` (or OS) error under trio's ``BrokenResourceError``."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, (ssl.SSLError, ssl.CertificateError, OSError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_quiet_close(err: BaseException) -> bool:
    """The peer closed before finishing the handshake without saying why
    (a port probe, a liveness check): not worth a warning."""
    cause = ssl_cause(err)
    return cause is None or isinstance(
        cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)
    )


def explain(err: BaseException, files: Files | None) -> tuple[str | None, str]:
    """``(which, reason)`` for a failed handshake: ``which`` is ``'peer'``,
    ``'ours'`` or ``None`` (see :class:`TLSHandshakeError`)."""
    cause = ssl_cause(err)
    ours = f'our certificate {files.cert!r} ({ENV_CERT})' if files else 'our certificate'
    ca = f'the CA {files.ca!r} ({ENV_CA})' if files else 'our CA'
    if isinstance(cause, ssl.SSLCertVerificationError):
        msg = cause.verify_message or str(cause)
        return 'peer', f'its certificate failed verification against {ca}: {msg}'
    reason = getattr(cause, 'reason', None)
    if reason in _ALERTS_ABOUT_OURS:
        return 'ours', f'it refused {ours}: {_ALERTS_ABOUT_OURS[reason]}'
    if reason == 'PEER_DID_NOT_RETURN_A_CERTIFICATE':
        return 'peer', 'it sent no certificate (mutual TLS: both ends must present one)'
    if reason in _NOT_TLS:
        return None, f'it does not speak TLS (a plain TCP port or client?): {cause}'
    if reason in _OLD_TLS:
        return None, f'it does not speak TLS 1.3: {cause}'
    if isinstance(
        cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)
    ):
        return (
            None,
            'it closed the connection during the TLS handshake (not a TLS listener? it refused us?)',
        )
    if cause is None:
        return None, f'the connection broke during the TLS handshake: {err!r}'
    return None, f'TLS handshake failed: {cause}'
