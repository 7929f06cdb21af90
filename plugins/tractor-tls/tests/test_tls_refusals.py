"""Refused connections: each costs the dialer a typed error naming the
certificate at fault and why, costs the listener one warning line, and
everyone else is still served.

The listener is the root actor of the test (its log is ``caplog``); the
dialers with bad certificates are subactors spawned with those files in
their environment (they boot over UDS, which needs no certificate, and
serve nothing else), while the root keeps the good files.
"""

from __future__ import annotations

import logging
import os
import ssl
import uuid

import pytest
import trio

import tractor
from tractor_tls import TLSAddress

pytestmark = pytest.mark.slow

TIMEOUT = 60


async def echo(value=None):
    return value


async def dial(wire) -> list:
    """Dial ``wire`` from this actor and make one call over it:
    ``['ok', reply]`` or ``['refused', error type, .which, message]``."""
    actor = tractor.current_actor()
    try:
        chan = await actor.connect(wire)
    except Exception as err:  # the test looks at which one it was
        return ['refused', type(err).__name__, getattr(err, 'which', None), str(err)]
    try:
        return ['ok', await tractor.Portal(chan).run(echo, value='served')]
    finally:
        await chan.aclose()


def refusals(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith('tractor')
        and r.levelno == logging.WARNING
        and 'refused' in r.getMessage()
    ]


async def raw_tls_without_cert(addr: TLSAddress, ca: str) -> None:
    """A TLS client that trusts our CA but presents no certificate."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    tcp = await trio.open_tcp_stream(*addr.unwrap())
    stream = trio.SSLStream(tcp, ctx, server_hostname=addr.host)
    try:
        await stream.do_handshake()
        # TLS 1.3: the listener's verdict on us arrives after the handshake
        await stream.receive_some(64)
    except trio.BrokenResourceError:
        pass
    finally:
        await tcp.aclose()


#: case -> (who dials, what the dialer sees: error type, which, words; the listener's words)
CASES = {
    'client cert from another CA': (
        'child',
        'TLSHandshakeError',
        'ours',
        'does not trust the CA',
        'failed verification',
    ),
    'listener cert not trusted': (
        'child',
        'TLSHandshakeError',
        'peer',
        'failed verification',
        'refused our certificate',
    ),
    'expired client cert': ('child', 'TLSHandshakeError', 'ours', 'expired', 'expired'),
    'missing client cert': ('child', 'TLSConfigError', None, 'does not exist', None),
    'no client cert': ('raw', None, None, None, 'sent no certificate'),
    'plain TCP to a TLS port': ('root', None, None, None, 'does not speak TLS'),
    'TLS to a TCP port': (
        'root',
        'TLSHandshakeError',
        None,
        'does not speak TLS',
        'did not open with the tractor preamble',
    ),
}


@pytest.mark.parametrize('case', list(CASES))
async def test_refusal(case, pki, monkeypatch, caplog):
    who, err_type, which, dial_words, listen_words = CASES[case]
    caplog.set_level(logging.WARNING, logger='tractor')
    reg = (os.environ['TRACTOR_RUNTIME_DIR'], f'reg@{uuid.uuid4().hex[:8]}.sock')
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(
            enable_transports=['tls', 'tcp', 'uds'], registry_addrs=[reg], enable_modules=[__name__]
        ) as an:
            root = tractor.current_actor()
            tls = next(a for a in root.listen_addrs if a.proto_key == 'tls')
            tcp = next(a for a in root.listen_addrs if a.proto_key == 'tcp')
            good = await an.start_actor('good', enable_modules=[__name__])
            assert await good.run(dial, wire=tls.to_wire()) == ['ok', 'served']
            before = len(refusals(caplog))

            if who == 'child':
                files = {
                    'client cert from another CA': lambda: pki.issue('stranger', ca=_other_ca()),
                    'listener cert not trusted': lambda: pki.other_ca_set('distrustful'),
                    'expired client cert': lambda: pki.expired('old'),
                    'missing client cert': lambda: _missing(pki),
                }[case]()
                with monkeypatch.context() as env:
                    for var, value in files.env().items():
                        env.setenv(var, value)
                    bad = await an.start_actor(
                        'bad', enable_modules=[__name__], enable_transports=['uds']
                    )
                got = await bad.run(dial, wire=tls.to_wire())
            elif who == 'raw':
                await raw_tls_without_cert(tls, str(pki.ca_path))
                got = None
            elif case == 'plain TCP to a TLS port':
                got = await dial(tls.unwrap())  # a plain tuple: TCP
            else:
                got = await dial(('tls', list(tcp.unwrap())))

            if got is not None:
                assert got[0] == 'refused', got
                if err_type is not None:
                    assert got[1] == err_type, got
                    assert got[2] == which, got
                    assert dial_words in got[3], got
                else:  # a plain dialer: the core's own refusal
                    assert got[1] in ('TransportClosed', 'PreambleError', 'MsgTypeError'), got
            if listen_words is not None:
                with trio.fail_after(10):  # the listener's task logs after the dialer saw it
                    while len(refusals(caplog)) == before:
                        await trio.sleep(0.01)
            # everyone else is still served, over the held and over a new connection
            assert await good.run(echo, value='still') == 'still'
            assert await good.run(dial, wire=tls.to_wire()) == ['ok', 'served']
            new = refusals(caplog)[before:]
            if listen_words is None:
                assert new == []
            else:
                assert len(new) == 1, new
                assert listen_words in new[0], new
            await an.cancel()


_OTHER = []


def _other_ca():
    import trustme

    if not _OTHER:
        _OTHER.append(trustme.CA(organization_name='another tree'))
    return _OTHER[0]


def _missing(pki):
    made = pki.issue('gone')
    made.cert.unlink()
    return made


async def test_the_secret_proof_runs_inside_tls(pki, tls_reg, caplog):
    """A peer with a good certificate but the wrong secret is still
    refused: both are required."""
    from tractor import AuthenticationError, _auth
    from tractor_tls import TLSTransport

    caplog.set_level(logging.WARNING, logger='tractor')
    with trio.fail_after(TIMEOUT):
        async with tractor.open_root_actor(
            enable_transports=['tls'], registry_addrs=[tls_reg], secret='the-tree-secret'
        ) as actor:
            addr = actor.listen_addrs[0]
            stream = await TLSTransport().connect(addr)  # the certificate is fine
            try:
                with pytest.raises(AuthenticationError):
                    await _auth.authenticate(
                        stream,
                        b'not-the-secret',
                        initiator=True,
                        binding=_auth.dial_binding(stream, addr.to_wire()),
                    )
            finally:
                await stream.aclose()
            with trio.fail_after(10):
                while not any('shared secret' in m for m in refusals(caplog)):
                    await trio.sleep(0.01)
            stream = await TLSTransport().connect(addr)
            try:  # the right secret over the same kind of session passes
                await _auth.authenticate(
                    stream,
                    b'the-tree-secret',
                    initiator=True,
                    binding=_auth.dial_binding(stream, addr.to_wire()),
                )
            finally:
                await stream.aclose()


async def test_a_listener_that_never_speaks_tls(pki, monkeypatch):
    """Something accepts TCP but never answers the TLS handshake: the dial
    fails within the bound, typed, instead of hanging."""
    import tractor_tls
    from tractor_tls import TLSHandshakeError, TLSTransport

    monkeypatch.setattr(tractor_tls, 'HANDSHAKE_TIMEOUT', 0.5)
    listeners = await trio.open_tcp_listeners(0, host='127.0.0.1')
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        async with listeners[0], trio.open_nursery() as tn:

            async def silent():
                conn = await listeners[0].accept()
                async with conn:
                    await trio.sleep_forever()

            tn.start_soon(silent)
            with pytest.raises(TLSHandshakeError, match='no TLS handshake within 0.5s'):
                await TLSTransport().connect(TLSAddress('127.0.0.1', port))
            tn.cancel_scope.cancel()
