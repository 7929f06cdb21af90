"""The TLS stream and listener: ``trio.SSLStream`` over a TCP stream, with
failures turned into one typed error (dialing) or one warning line
(listening).

The listener hands out streams whose handshake has not run yet: it runs
in the connection's own task on first use, so a slow or hostile peer never
holds up ``accept()`` for the others (the runtime bounds that task's
handshake in time). Once the handshake is done the stream's ``send_all``
and ``receive_some`` *are* the ``SSLStream``'s: no extra layer per call.
"""

from __future__ import annotations

import ssl

import trio

from tractor.log import get_logger

from . import _certs
from ._certs import TLSHandshakeError

log = get_logger('tls')

#: bound on sending our ``close_notify`` at close: a peer that stopped
#: reading must not keep a closing channel waiting (the socket closes anyway)
CLOSE_TIMEOUT = 1.0


def _peer_name(tcp: trio.SocketStream) -> str:
    try:
        name = tcp.socket.getpeername()
    except OSError:
        return 'an unknown peer'
    return f'{name[0]}:{name[1]}' if isinstance(name, tuple) else repr(name)


class TLSStream(trio.abc.Stream):
    """One TLS connection over TCP.

    ``socket`` is the TCP socket under it (log lines name the peer from it;
    the runtime's raw-socket fast path is for ``trio.SocketStream`` only, so
    a channel over this stream takes the generic path, through TLS).
    ``ssl_stream`` answers ``version()``, ``cipher()`` and ``getpeercert()``.
    """

    def __init__(
        self,
        tcp: trio.SocketStream,
        ctx: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        where: str = '',
        files: _certs.Files | None = None,
    ) -> None:
        self.transport_stream = tcp
        self.ssl_stream = trio.SSLStream(
            tcp, ctx, server_side=server_side, server_hostname=server_hostname
        )
        self._server_side = server_side
        self._where = where
        self._files = files
        #: a dialer learns whether the listener accepted *its* certificate
        #: only with the first bytes it receives (TLS 1.3 sends the verdict
        #: after the handshake): until then, receives are checked
        self._confirmed = server_side
        self._broken = False
        self._handshaken = False

    @property
    def socket(self) -> trio.socket.SocketType:
        return self.transport_stream.socket

    def _fast(self) -> None:
        # from now on the SSLStream's own methods answer directly
        self.send_all = self.ssl_stream.send_all  # type: ignore[method-assign]  # the SSLStream's, once confirmed
        self.receive_some = self.ssl_stream.receive_some  # type: ignore[method-assign]  # the SSLStream's, once confirmed

    async def do_handshake(self) -> None:
        """Run the handshake (once); a failure is a
        :class:`TLSHandshakeError` when dialing, and a warning line plus
        ``trio.BrokenResourceError`` when listening."""
        if self._broken:
            raise trio.BrokenResourceError('the TLS handshake failed earlier')
        try:
            await self.ssl_stream.do_handshake()
        except (trio.BrokenResourceError, OSError) as err:
            await self._send_alert()
            self._failed(err)
        self._handshaken = True
        if self._confirmed:
            self._fast()

    async def _send_alert(self) -> None:
        """Send the alert OpenSSL wrote when it refused the peer (trio
        leaves it unsent once the stream is broken), so the other end learns
        why (an expired certificate, an unknown CA) and can say so. Best
        effort, bounded."""
        pending = getattr(self.ssl_stream, '_outgoing', None)  # trio's outgoing BIO
        data = pending.read() if isinstance(pending, ssl.MemoryBIO) else b''
        if not data:
            return
        with trio.move_on_after(CLOSE_TIMEOUT):
            try:
                await self.transport_stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass

    def _failed(self, err: BaseException) -> None:
        self._broken = True
        which, reason = _certs.explain(err, self._files)
        peer = _peer_name(self.transport_stream)
        if self._server_side:
            if _certs.is_quiet_close(err):
                log.debug(
                    'TLS connection from %s on %s closed during the handshake', peer, self._where
                )
            else:
                # the one line a refused connection costs; the actor keeps serving
                log.warning('refused TLS connection from %s on %s: %s', peer, self._where, reason)
            raise trio.BrokenResourceError(f'TLS handshake with {peer} failed: {reason}') from err
        raise TLSHandshakeError(
            f'TLS dial to {self._where} failed: {reason}',
            peer=self._where,
            which=which,
            reason=reason,
        ) from err

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.do_handshake()
        await self.ssl_stream.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._confirmed or self._server_side:
            await self.do_handshake()
            return await self.ssl_stream.receive_some(max_bytes)
        try:
            data = await self.ssl_stream.receive_some(max_bytes)
        except trio.BrokenResourceError as err:
            cause = _certs.ssl_cause(err)
            if isinstance(cause, ssl.SSLError) and not _certs.is_quiet_close(err):
                self._failed(err)  # the listener's alert says why
            self._closed_unconfirmed(err)
            raise
        if not data:
            self._closed_unconfirmed(None)
        self._confirmed = True
        self._fast()
        return data

    def _closed_unconfirmed(self, err: BaseException | None) -> None:
        """The listener hung up after the handshake before sending a byte
        (and without an alert): in TLS 1.3 that is how a refused client
        certificate looks when the alert did not make it."""
        self._broken = True
        files = self._files
        ours = f'our certificate {files.cert!r} ({_certs.ENV_CERT})' if files else 'our certificate'
        reason = (
            f'the listener closed the connection right after the handshake: it most likely '
            f'refused {ours} (expired, or from a CA it does not trust; its log says which)'
        )
        raise TLSHandshakeError(
            f'TLS dial to {self._where} failed: {reason}',
            peer=self._where,
            which='ours',
            reason=reason,
        ) from err

    async def wait_send_all_might_not_block(self) -> None:
        await self.ssl_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Send ``close_notify`` (bounded by :data:`CLOSE_TIMEOUT`) and close
        the socket. A stream whose handshake never completed just closes:
        ``SSLStream.aclose`` would first try to finish the handshake."""
        try:
            if self._handshaken and not self._broken:
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await self.ssl_stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await self.transport_stream.aclose()


class TLSListener(trio.abc.Listener[TLSStream]):
    """Accepts TCP connections and wraps each in a server-side
    :class:`TLSStream` (handshake deferred to the connection's task). The
    contexts are re-read from the files on every accept (see
    :mod:`tractor_tls._certs`: rotation); a rotation that leaves the files
    unusable keeps the previous ones, with a warning."""

    def __init__(self, tcp: trio.SocketListener, where: str) -> None:
        self.transport_listener = tcp
        self.where = where
        self._ctx, self._files = self._load()

    @property
    def socket(self) -> trio.socket.SocketType:
        return self.transport_listener.socket

    @staticmethod
    def _load() -> tuple[ssl.SSLContext, _certs.Files]:
        files = _certs.current_files()
        return _certs.contexts()[0], files

    async def accept(self) -> TLSStream:
        tcp = await self.transport_listener.accept()
        try:
            self._ctx, self._files = self._load()
        except _certs.TLSConfigError as err:
            log.warning(
                'TLS certificates on %s unusable (%s): serving with the previous ones',
                self.where,
                err,
            )
        return TLSStream(tcp, self._ctx, server_side=True, where=self.where, files=self._files)

    async def aclose(self) -> None:
        await self.transport_listener.aclose()


def client_stream(tcp: trio.SocketStream, host: str, where: str) -> TLSStream:
    files = _certs.current_files()
    ctx = _certs.contexts()[1]
    return TLSStream(tcp, ctx, server_side=False, server_hostname=host, where=where, files=files)
