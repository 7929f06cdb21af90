"""Certificate configuration: what is missing or wrong is named, with its
file and its variable; configure() writes the environment children
inherit; changed files are picked up (rotation)."""

from __future__ import annotations

import os

import pytest
import trio

import tractor
from tractor_tls import TLSConfigError, TLSTransport, _certs, configure

pytestmark = pytest.mark.slow


@pytest.mark.parametrize('var', ['TRACTOR_TLS_CA', 'TRACTOR_TLS_CERT', 'TRACTOR_TLS_KEY'])
def test_unset_variable_is_named(pki, monkeypatch, var):
    monkeypatch.delenv(var)
    with pytest.raises(TLSConfigError, match=f'{var} .* is not set'):
        _certs.contexts()


def test_missing_file(pki, monkeypatch, tmp_path):
    monkeypatch.setenv('TRACTOR_TLS_KEY', str(tmp_path / 'nope.key'))
    with pytest.raises(
        TLSConfigError, match=r"private key '.*nope.key' \(TRACTOR_TLS_KEY\) does not exist"
    ):
        _certs.contexts()


def test_not_pem(pki, monkeypatch, tmp_path):
    junk = tmp_path / 'junk.pem'
    junk.write_text('hello\n')
    monkeypatch.setenv('TRACTOR_TLS_CERT', str(junk))
    with pytest.raises(
        TLSConfigError, match=r'certificate .*junk.pem.* \(TRACTOR_TLS_CERT\) is not a PEM'
    ):
        _certs.contexts()
    monkeypatch.setenv('TRACTOR_TLS_CERT', str(pki.good.cert))
    monkeypatch.setenv('TRACTOR_TLS_CA', str(junk))
    with pytest.raises(TLSConfigError, match=r'CA certificate .*junk.pem.* \(TRACTOR_TLS_CA\)'):
        _certs.contexts()


def test_key_of_another_certificate(pki, monkeypatch):
    other = pki.issue('other')
    monkeypatch.setenv('TRACTOR_TLS_KEY', str(other.key))
    with pytest.raises(TLSConfigError, match='does not belong to the certificate'):
        _certs.contexts()


def test_configure_sets_env_and_checks(pki, monkeypatch, tmp_path):
    for var in ('TRACTOR_TLS_CA', 'TRACTOR_TLS_CERT', 'TRACTOR_TLS_KEY'):
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    configure(ca='ca.pem', cert='good.pem', key='good.key', verify_host=False)
    assert os.environ['TRACTOR_TLS_CERT'] == str(tmp_path / 'good.pem')
    assert os.environ['TRACTOR_TLS_VERIFY_HOST'] == '0'
    assert not _certs.contexts()[1].check_hostname
    with pytest.raises(TLSConfigError, match='does not exist'):
        configure(cert='missing.pem')
    # a refused configuration leaves the previous one in place
    assert os.environ['TRACTOR_TLS_CERT'] == str(tmp_path / 'good.pem')


def test_contexts_are_tls13_mutual(pki):
    import ssl

    server, client = _certs.contexts()
    for ctx in (server, client):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
        assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname


def test_rotation_rebuilds(pki, monkeypatch):
    first = _certs.contexts()
    assert _certs.contexts() is first  # unchanged files: cached
    new = pki.issue('rotated')
    os.replace(new.cert, pki.good.cert)
    os.replace(new.key, pki.good.key)
    assert _certs.contexts() is not first


async def test_listening_without_certificates_fails_at_boot(pki, monkeypatch):
    monkeypatch.delenv('TRACTOR_TLS_CA')
    with trio.fail_after(30):
        with pytest.raises(TLSConfigError, match='TRACTOR_TLS_CA'):
            async with tractor.open_root_actor(
                enable_transports=['tls'], registry_addrs=[('tls', ['127.0.0.1', 1])]
            ):
                pass


async def test_rotated_certificate_serves_new_connections(pki, tls_reg):
    """Replacing the files changes what new connections present; a
    connection already open goes on."""
    tpt = TLSTransport()
    with trio.fail_after(30):
        async with tractor.open_root_actor(
            enable_transports=['tls'], registry_addrs=[tls_reg]
        ) as actor:
            addr = actor.listen_addrs[0]
            before = await tpt.connect(addr)
            serial_before = before.ssl_object.getpeercert()['serialNumber']
            new = pki.issue('rotated')
            os.replace(new.key, pki.good.key)
            os.replace(new.cert, pki.good.cert)
            after = await tpt.connect(addr)
            serial_after = after.ssl_object.getpeercert()['serialNumber']
            assert serial_after != serial_before
            await after.aclose()
            await before.aclose()


async def dial_and_call(wire) -> str:
    actor = tractor.current_actor()
    chan = await actor.connect(wire)
    try:
        return await tractor.Portal(chan).run_from_ns('self', 'registrar_info') and 'served'
    finally:
        await chan.aclose()


async def test_unusable_rotation_keeps_serving(pki, monkeypatch, caplog):
    """The listener's files replaced by something unusable: it warns and
    goes on with the certificates it had. (The dialer is a subactor with
    files of its own; it boots over UDS.)"""
    import logging
    import uuid

    caplog.set_level(logging.WARNING, logger='tractor')
    reg = (os.environ['TRACTOR_RUNTIME_DIR'], f'reg@{uuid.uuid4().hex[:8]}.sock')
    with trio.fail_after(60):
        async with tractor.open_nursery(
            enable_transports=['tls', 'uds'], registry_addrs=[reg], enable_modules=[__name__]
        ) as an:
            tls = next(a for a in tractor.current_actor().listen_addrs if a.proto_key == 'tls')
            own = pki.issue('dialer')
            with monkeypatch.context() as env:
                env.setenv('TRACTOR_TLS_CERT', str(own.cert))
                env.setenv('TRACTOR_TLS_KEY', str(own.key))
                dialer = await an.start_actor(
                    'dialer', enable_modules=[__name__], enable_transports=['uds']
                )
            assert await dialer.run(dial_and_call, wire=tls.to_wire()) == 'served'
            junk = pki.root / 'junk.pem'
            junk.write_text('not a certificate\n')
            os.replace(junk, pki.good.cert)  # the listener's certificate breaks
            assert await dialer.run(dial_and_call, wire=tls.to_wire()) == 'served'
            assert any(
                'unusable' in r.getMessage() and 'previous ones' in r.getMessage()
                for r in caplog.records
            ), [r.getMessage() for r in caplog.records]
            await an.cancel()
