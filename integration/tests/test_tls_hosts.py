"""TLS across hosts: each "host" is a network namespace on one bridge
(``tractor_testsupport.netns``), with a certificate of the test's CA naming
its own address. A tree on host A (its root the registrar, at A's default
TLS registry address) serves 'svc' (over TCP and TLS); a program on host B
joins over TLS, finds 'svc' and calls it over TLS (encrypted first among
remote addresses); a program on B with a certificate from another CA is
refused. Needs root and iproute2 (skips otherwise).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trustme

pytestmark = pytest.mark.slow
TIMEOUT = 90


def cert_env(ca: trustme.CA, ca_path: Path, tmp_path: Path, name: str, *identities: str) -> dict:
    leaf = ca.issue_cert(*identities)
    cert, key = tmp_path / f'{name}.pem', tmp_path / f'{name}.key'
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return {
        'TRACTOR_TLS_CA': str(ca_path),
        'TRACTOR_TLS_CERT': str(cert),
        'TRACTOR_TLS_KEY': str(key),
    }


async def test_tls_across_hosts(net, run_program, tmp_path):
    a, b = net.hosts
    ca = trustme.CA(organization_name='tractor tests')
    ca_path = tmp_path / 'ca.pem'
    ca.cert_pem.write_to_path(str(ca_path))
    env_a = cert_env(ca, ca_path, tmp_path, 'host-a', a.ip, '127.0.0.1')
    env_b = cert_env(ca, ca_path, tmp_path, 'host-b', b.ip, '127.0.0.1')
    # every listener of A's tree on A's routable address (TLS follows TCP's rule)
    env_a['TRACTOR_TCP_BIND_HOST'] = a.ip
    reg = f'/ip4/{a.ip}/tcp/1617/tls'
    with trio.fail_after(TIMEOUT):
        async with run_program(
            'discovery_tree.py',
            'tree',
            '--registry',
            reg,
            '--transport',
            'tls',
            '--service',
            'svc:tls,tcp',
            prefix=a.run,
            env=env_a,
        ) as tree:
            assert tree.info['root']['is_registrar']
            svc = tree.info['services']['svc']
            # multihomed, both on A's routable address: from B both are remote
            assert sorted(svc['transports']) == ['tcp', 'tls']
            assert {tuple(x)[0] for x in svc['accept_addrs']} == {a.ip}
            async with run_program(
                'discovery_tree.py',
                'join',
                '--registry',
                reg,
                '--find',
                'svc',
                '--call',
                '__main__:whoami',
                '--name',
                'caller',
                '--transport',
                'tls',
                ready='RESULT',
                prefix=b.run,
                env=env_b,
            ) as joiner:
                got = joiner.info
            assert got['found']['uid'] == svc['uid']
            # the encrypted address first among remote ones (TCP was registered
            # last, which wins ties, and B could dial it)
            assert got['found']['proto'] == 'tls' and got['found_addr'][0] == a.ip
            assert got['called']['pid'] == svc['pid']
            assert got['me']['accept_addrs'][0][0] == b.ip

            # a program on B with a certificate from another CA: A refuses
            # it, and the program fails with the typed error
            stranger = trustme.CA(organization_name='someone else')
            env_x = cert_env(stranger, ca_path, tmp_path, 'stranger', b.ip)
            async with run_program(
                'discovery_tree.py',
                'join',
                '--registry',
                reg,
                '--find',
                'svc',
                '--name',
                'stranger',
                '--transport',
                'tls',
                ready=None,
                expect_rc=None,
                prefix=b.run,
                env=env_x,
            ) as bad:
                with trio.fail_after(TIMEOUT):
                    await bad.proc.wait()
            assert bad.proc.returncode != 0
            assert 'TLSHandshakeError' in bad.stderr(), bad.stderr()
            assert 'does not trust the CA' in bad.stderr(), bad.stderr()
