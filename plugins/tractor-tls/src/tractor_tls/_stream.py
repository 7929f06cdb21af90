"""The TLS stream and listener: TLS 1.3 over a TCP socket, driven by the
standard library's ``ssl.SSLObject`` over two ``ssl.MemoryBIO`` (the same
machinery ``trio.SSLStream`` uses), with failures turned into one typed
error (dialing) or one warning line (listening).

The listener hands out streams whose handshake has not run yet: it runs
in the connection's own task on first use, so a slow or hostile peer never
holds up ``accept()`` for the others (the runtime bounds that task's
handshake in time).

After the handshake the stream reads and writes the socket directly
(``tractor.plugin.sock_receive_some`` and ``sock_send_nowait``), and it is
a :class:`tractor.plugin.BufferedSendStream`: a channel's send encrypts
its batch and writes it without a trip through the scheduler when the
kernel takes it, as a channel over plain TCP does. ``trio.SSLStream``
would cost two schedule points and a lock per send, which is most of what
TLS added to a round trip.
"""

from __future__ import annotations

import ssl

import trio

from tractor.log import get_logger
from tractor.plugin import BufferedSendStream, sock_receive_some, sock_send_nowait

from . import _certs
from ._certs import TLSHandshakeError

log = get_logger('tls')

#: bound on sending our ``close_notify`` at close: a peer that stopped
#: reading must not keep a closing channel waiting (the socket closes anyway)
CLOSE_TIMEOUT = 1.0
#: how much one read from the socket asks for (a TLS record is at most 16 KiB
#: plus its overhead; several may be waiting)
_READ = 1 << 16
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _peer_name(tcp: trio.SocketStream) -> str:
    try:
        name = tcp.socket.getpeername()
    except OSError:
        return 'an unknown peer'
    return f'{name[0]}:{name[1]}' if isinstance(name, tuple) else repr(name)


class TLSStream(BufferedSendStream):
    """One TLS connection over TCP.

    ``socket`` is the TCP socket under it (log lines name the peer from
    it); ``ssl_object`` (an ``ssl.SSLObject``) answers ``version()``,
    ``cipher()`` and ``getpeercert()``. One reader and one writer at a
    time, as for any trio stream.
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
        self._sock = tcp.socket
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = ctx.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        #: records the kernel has not taken yet, in order
        self._unsent = bytearray()
        #: plaintext given to send_nowait before the handshake finished
        self._early = bytearray()
        self._handshake_lock = trio.Lock()
        self._server_side = server_side
        self._where = where
        self._files = files
        #: a dialer learns whether the listener accepted *its* certificate
        #: only with the first bytes it receives (TLS 1.3 sends the verdict
        #: after the handshake): until then, receives are checked
        self._confirmed = server_side
        self._broken = False
        #: the last socket read got less than it asked for: wait before the
        #: next one (``sock_receive_some(drained=...)``)
        self._drained = False
        self._handshaken = False
        self._closed = False

    @property
    def socket(self) -> trio.socket.SocketType:
        return self._sock

    # -- handshake ----------------------------------------------------------
    async def do_handshake(self) -> None:
        """Run the handshake (once); a failure is a
        :class:`TLSHandshakeError` when dialing, and a warning line plus
        ``trio.BrokenResourceError`` when listening."""
        if self._handshaken:
            return
        async with self._handshake_lock:
            if self._handshaken:
                return
            if self._broken:
                raise trio.BrokenResourceError('the TLS handshake failed earlier')
            try:
                await self._handshake()
            except ssl.SSLError as err:  # before OSError: it is one
                await self._send_alert()
                self._failed(err)
            except _BROKEN as err:
                self._failed(err)
            except BaseException:
                # cut short (cancelled): the TLS state is unusable now
                self._broken = True
                raise
            self._handshaken = True

    async def _handshake(self) -> None:
        obj = self.ssl_object
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._send_outgoing()
                data = await self.transport_stream.receive_some(_READ)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
        await self._send_outgoing()

    async def _send_outgoing(self) -> None:
        data = self._outgoing.read()
        if data:
            await self.transport_stream.send_all(data)

    async def _send_alert(self) -> None:
        """Send the alert OpenSSL wrote when it refused the peer, so the
        other end learns why (an expired certificate, an unknown CA) and
        can say so. Best effort, bounded."""
        with trio.move_on_after(CLOSE_TIMEOUT):
            try:
                await self._send_outgoing()
            except _BROKEN:
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

    # -- sending ------------------------------------------------------------
    def send_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        """Encrypt all of ``data`` and write what the kernel takes now;
        ``False`` when records wait for :meth:`drain` (or the handshake has
        not run yet)."""
        if self._closed:
            raise trio.ClosedResourceError('this TLS stream is closed')
        if not self._handshaken or self._early:
            self._early += data
            return False
        if not data:
            return not self._unsent
        try:
            self.ssl_object.write(data)  # all of it: the outgoing BIO grows
        except ssl.SSLError as err:
            self._broken = True
            raise trio.BrokenResourceError(f'TLS send to {self._where} failed: {err}') from err
        return self._write(self._outgoing.read())

    def _write(self, records: bytes) -> bool:
        """Write ``records`` behind what is unsent; whether nothing waits."""
        if self._unsent:
            self._unsent += records
            return False
        sent = sock_send_nowait(self._sock, records)
        if sent == len(records):
            return True
        self._unsent += memoryview(records)[sent:]
        return False

    async def drain(self) -> None:
        if not self._handshaken:
            await self.do_handshake()
        if self._early:
            early, self._early = self._early, bytearray()
            if self.send_nowait(early):
                await trio.lowlevel.checkpoint()
                return
        if not self._unsent:
            await trio.lowlevel.checkpoint()
            return
        unsent = self._unsent
        try:
            while unsent:
                await trio.lowlevel.wait_writable(self._sock)
                del unsent[: sock_send_nowait(self._sock, unsent)]
        except OSError as err:
            self._broken = True
            raise trio.BrokenResourceError(f'TLS send to {self._where} failed: {err}') from err

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            done = self.send_nowait(data)
        except OSError as err:
            self._broken = True
            raise trio.BrokenResourceError(f'TLS send to {self._where} failed: {err}') from err
        if done:
            await trio.lowlevel.cancel_shielded_checkpoint()
        else:
            await self.drain()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self._sock)

    # -- receiving ----------------------------------------------------------
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._handshaken:
            await self.do_handshake()
        if self._confirmed:
            return await self._receive(max_bytes or _READ)
        try:
            data = await self._receive(max_bytes or _READ)
        except trio.BrokenResourceError as err:
            cause = _certs.ssl_cause(err)
            if isinstance(cause, ssl.SSLError) and not _certs.is_quiet_close(err):
                self._failed(err)  # the listener's alert says why
            self._closed_unconfirmed(err)
            raise
        if not data:
            self._closed_unconfirmed(None)
        self._confirmed = True
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

    async def _receive(self, max_bytes: int) -> bytes:
        """Decrypted bytes, ``b''`` after the peer's ``close_notify``: a
        checkpoint, and a cancel never loses bytes read from the socket
        (they wait in the incoming BIO)."""
        obj = self.ssl_object
        await trio.lowlevel.checkpoint_if_cancelled()  # before taking anything
        try:
            try:
                data = obj.read(max_bytes)
            except ssl.SSLWantReadError:
                pass
            else:
                # bytes were already buffered: still give other tasks a turn
                self._answer()
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
            while True:
                raw = await sock_receive_some(self._sock, _READ, drained=self._drained)
                self._drained = len(raw) < _READ
                if raw:
                    self._incoming.write(raw)
                else:
                    self._incoming.write_eof()
                try:
                    data = obj.read(max_bytes)
                except ssl.SSLWantReadError:
                    continue  # part of a record
                self._answer()
                return data
        except ssl.SSLZeroReturnError:
            return b''
        except ssl.SSLError as err:
            self._broken = True
            raise trio.BrokenResourceError(f'TLS receive from {self._where} failed: {err}') from err
        except OSError as err:
            raise trio.BrokenResourceError(f'TLS receive from {self._where} failed: {err}') from err

    def _answer(self) -> None:
        """Queue what reading made OpenSSL write (a key update's answer),
        behind any unsent records; the next send writes it out."""
        if self._outgoing.pending:
            self._write(self._outgoing.read())

    # -- closing ------------------------------------------------------------
    async def aclose(self) -> None:
        """Send what is unsent and ``close_notify`` (bounded by
        :data:`CLOSE_TIMEOUT`; the peer's answer is not awaited) and close
        the socket. A stream whose handshake never completed just closes."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        try:
            if self._handshaken and not self._broken:
                with trio.move_on_after(CLOSE_TIMEOUT):
                    try:
                        if self._early or self._unsent:
                            await self.drain()
                        try:
                            self.ssl_object.unwrap()
                        except ssl.SSLWantReadError:
                            pass  # it would wait for the peer's close_notify
                        if not self._write(self._outgoing.read()):
                            await self.drain()
                    except (ssl.SSLError, trio.BusyResourceError, *_BROKEN):
                        # BusyResourceError: another task's drain is stuck
                        # on this socket; closing ends it
                        pass
        finally:
            self._closed = True
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
