"""etcd's own protection passed through: TLS with a client certificate, and
user/password authentication, against real etcd members."""

from __future__ import annotations

import base64
import ssl
import uuid

import pytest
import trio

import tractor
from tractor.discovery import RegistrarUnreachable
from tractor_etcd import EtcdError
from tractor_testsupport.etcd import (
    EtcdMember,
    etcd_binary,
    gateway_post,
    make_certs,
    start_cluster,
)

pytestmark = pytest.mark.slow

TIMEOUT = 30


async def whoami() -> list:
    return list(tractor.current_actor().uid)


async def register_and_find(url: str, name: str, then=None) -> None:
    """A tree on ``url`` starts ``name``, which the registry then finds."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(registry_addrs=[url]) as an:
            portal = await an.start_actor(name, enable_modules=[__name__])
            async with tractor.get_registry() as reg:
                uid, _ = await reg.find_actor(name=name)
                assert uid == portal.channel.uid
            if then is not None:
                await then()
            await an.cancel()


@pytest.fixture
def certs(tmp_path):
    return make_certs(str(tmp_path))


@pytest.fixture
def tls_etcd(certs, free_ports):
    if etcd_binary() is None:
        pytest.skip('etcd is not installed (Debian: apt-get install etcd-server)')
    ctx = ssl.create_default_context(cafile=certs['ca'])
    ctx.load_cert_chain(certs['client_cert'], certs['client_key'])
    member = EtcdMember(
        'tls',
        '127.0.0.1',
        free_ports(),
        free_ports(),
        tls=ctx,
        extra_args=[
            '--cert-file',
            certs['server_cert'],
            '--key-file',
            certs['server_key'],
            '--trusted-ca-file',
            certs['ca'],
            '--client-cert-auth',
        ],
    )
    try:
        start_cluster([member])
        yield member
    finally:
        member.remove()


async def test_tls_with_a_client_certificate(tls_etcd, certs):
    """``cacert``/``cert``/``key`` in the address: the tree registers and
    finds over TLS; without them the same etcd is unreachable."""
    prefix = f's{uuid.uuid4().hex[:8]}'
    url = (
        f'etcd://{tls_etcd.endpoint}/{prefix}?ttl=2&cacert={certs["ca"]}'
        f'&cert={certs["client_cert"]}&key={certs["client_key"]}'
    )
    plain = f'etcd://{tls_etcd.endpoint}/{prefix}'

    async def without_tls():
        with pytest.raises(RegistrarUnreachable):
            async with tractor.find_actor('secure-not-connected', registry_addrs=[plain]):
                pass

    await register_and_find(url, 'secure', then=without_tls)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_user_and_password(etcd, monkeypatch):
    """``user=`` in the address and ``TRACTOR_ETCD_PASSWORD``: with auth on
    in etcd, the right password registers and finds; a wrong one is refused
    with an error naming the user."""
    prefix = f'a{uuid.uuid4().hex[:8]}'
    ep = etcd.endpoint
    for user, pw in (('root', 'rootpw'), ('app', 'apppw')):
        gateway_post(ep, '/v3/auth/user/add', {'name': user, 'password': pw})
    gateway_post(ep, '/v3/auth/role/add', {'name': 'root'})
    gateway_post(ep, '/v3/auth/user/grant', {'user': 'root', 'role': 'root'})
    gateway_post(ep, '/v3/auth/role/add', {'name': 'app'})
    gateway_post(
        ep,
        '/v3/auth/role/grant',
        {
            'name': 'app',
            'perm': {
                'permType': 'READWRITE',
                'key': _b64(f'{prefix}/'),
                'range_end': _b64(f'{prefix}0'),
            },
        },
    )
    gateway_post(ep, '/v3/auth/user/grant', {'user': 'app', 'role': 'app'})
    gateway_post(ep, '/v3/auth/enable', {})
    url = f'etcd://{ep}/{prefix}?ttl=2&user=app'
    monkeypatch.setenv('TRACTOR_ETCD_PASSWORD', 'apppw')
    await register_and_find(url, 'authed')
    # a wrong password fails the boot (registering), saying who was refused
    monkeypatch.setenv('TRACTOR_ETCD_PASSWORD', 'wrong')
    with trio.fail_after(TIMEOUT):
        with pytest.raises(EtcdError, match="refused the user 'app'"):
            async with tractor.open_root_actor(registry_addrs=[url]):
                pass
