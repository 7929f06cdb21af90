"""The public plugin SDK: its names are pinned, and no distribution other
than core reaches into core's private modules (nor into another
distribution's)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: what ``tractor.plugin`` offers; a change here is a change of the SDK
PLUGIN_NAMES = [
    'ENTRY_POINT_GROUP',
    'hookimpl',
    'hookspec',
    'LOCAL',
    'REMOTE',
    'SAME_HOST',
    'Address',
    'BufferedSendStream',
    'StoreAddress',
    'Transport',
    'get_transport',
    'installed_transports',
    'is_one_address',
    'wrap_address',
    'runtime_dir',
    'runtime_dir_path',
    'sock_receive_some',
    'sock_send_nowait',
    'Channel',
    'check_actor_name',
    'current_channel',
    'dial',
    'fn_address',
    'request',
    'SettingError',
    'parse_positive_int',
    'parse_seconds',
    'register_setting',
    'setting_value',
    'NURSERY_OPTIONS',
    'Process',
    'SpawnBackend',
    'SpawnFn',
]
#: what ``tractor.discovery.store`` offers a registry store's author
STORE_NAMES = [
    'DEFAULT_BUFFER',
    'Entry',
    'Hub',
    'MemoryRegistry',
    'Registered',
    'RegistryBackend',
    'Subscription',
    'Uid',
    'Unregistered',
    'WireAddr',
    'check_filter',
    'check_uid',
    'check_wire',
    'meta_fields',
]

#: a private module of ``tractor`` or of one of its sub-packages used as an
#: attribute (``tractor._plugins.wrap_address``, ``tractor.discovery._x``)
_PRIVATE_ATTR = re.compile(r'\btractor(?P<sub>(?:\.[A-Za-z]\w*)*)\._\w')


def _distributions() -> list[tuple[Path, str | None]]:
    """Each non-core distribution's source tree, with the ``tractor``
    sub-package it ships itself (``'discovery'``), whose private modules it
    may of course use."""
    out: list[tuple[Path, str | None]] = []
    for group in ('packages', 'plugins', 'integration'):
        for proj in sorted((ROOT / group).glob('*/pyproject.toml')):
            dist = proj.parent
            if dist.name == 'tractor-core':
                continue
            src = dist / 'src'
            if not src.is_dir():
                continue  # the meta distribution: no code
            own = (
                [p.name for p in (src / 'tractor').iterdir() if p.is_dir()]
                if (src / 'tractor').is_dir()
                else []
            )
            out.append((src, own[0] if len(own) == 1 else None))
    return out


def _is_private(dotted: str, own: str | None) -> bool:
    """Whether ``dotted`` (``tractor.x._y``) names a private part of
    tractor that is not the distribution's own sub-package ``own``."""
    parts = dotted.split('.')
    if parts[0] != 'tractor' or (own is not None and len(parts) > 1 and parts[1] == own):
        return False
    return any(p.startswith('_') for p in parts[1:])


def private_uses(text: str, own: str | None = None) -> list[tuple[int, str]]:
    """``(line number, line)`` of every use of a private tractor module in
    ``text`` (imports of any shape, attribute use), except those of the
    distribution's own sub-package ``own``."""
    lines = text.splitlines()
    hit: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any(_is_private(f'{node.module}.{a.name}', own) for a in node.names):
                hit.add(node.lineno)
        elif isinstance(node, ast.Import) and any(_is_private(a.name, own) for a in node.names):
            hit.add(node.lineno)
    for lineno, line in enumerate(lines, 1):
        for m in _PRIVATE_ATTR.finditer(line):
            if _is_private(m.group(0)[:-1] + '_', own):
                hit.add(lineno)
    return [(n, lines[n - 1].strip()) for n in sorted(hit)]


def test_the_scanner_finds_each_form():
    """The grep below cannot pass by matching nothing."""
    bad = [
        'from tractor._ipc import Channel',
        'import tractor._msg as m',
        'x = str(tractor._plugins.wrap_address(wire))',
        'from tractor import _settings',
        'from tractor import (\n    TransportClosed,\n    _settings,\n)',
        'from tractor import TransportClosed, _settings, context',
        'from tractor.discovery._events import Hub',
    ]
    good = [
        'from tractor.plugin import Channel, dial',
        'from tractor import Portal, context',
        'import tractor_tcp._local',
        'self._peers = {}',
        'from tractor.discovery.store import Hub',
    ]
    text = '\n'.join(bad + good)
    starts = [1]
    for line in bad:
        starts.append(starts[-1] + line.count('\n') + 1)
    assert [n for n, _ in private_uses(text)] == starts[:-1]
    # a distribution's own private modules are its business
    assert private_uses('from tractor.discovery._events import Hub', own='discovery') == []
    assert private_uses('from tractor._ipc import Channel', own='discovery') != []


def test_no_distribution_imports_private_tractor_modules():
    dists = _distributions()
    names = {src.parent.name for src, _ in dists}
    # the scan covers what it claims to (a moved tree must not drop out)
    assert {
        'tractor-discovery',
        'tractor-cluster',
        'tractor-tcp',
        'tractor-uds',
        'tractor-etcd',
        'tractor-tls',
        'test-transport',
        'test-support',
    } <= names
    found = []
    for src, own in dists:
        for path in sorted(src.rglob('*.py')):
            for lineno, line in private_uses(path.read_text(), own):
                found.append(f'{path.relative_to(ROOT)}:{lineno}: {line}')
    assert not found, 'private tractor modules used outside core:\n' + '\n'.join(found)


@pytest.mark.parametrize(
    'modname, names', [('tractor.plugin', PLUGIN_NAMES), ('tractor.discovery.store', STORE_NAMES)]
)
def test_public_names_are_pinned(modname, names):
    import importlib

    mod = importlib.import_module(modname)
    assert sorted(mod.__all__) == sorted(names)
    assert len(set(mod.__all__)) == len(mod.__all__)
    for name in names:
        assert getattr(mod, name) is not None, name


#: modules ``import tractor`` must not import, though trio and msgspec do
#: not either: the plugin SDK (pluggy), and what only some paths need
#: (``pkgutil`` and ``importlib.util``: finding the namespace portions and
#: optional pieces; ``dataclasses``)
NOT_AT_IMPORT = ('pluggy', 'tractor.plugin', 'pkgutil', 'importlib.util', 'dataclasses')


def test_import_tractor_stays_lean():
    """``import tractor`` loads none of ``NOT_AT_IMPORT``, finds its
    sub-packages of other distributions all the same, and
    ``tractor.plugin`` (pluggy's SDK) resolves on first use."""
    code = (
        f'import sys, tractor; print(sorted(m for m in {NOT_AT_IMPORT!r} if m in sys.modules)); '
        'import tractor.discovery, tractor.cluster; '
        'print("find_actor" in tractor.__all__, "open_actor_cluster" in tractor.__all__); '
        'from tractor.plugin import hookimpl; '
        'print(tractor.plugin.hookimpl is hookimpl)'
    )
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split('\n')[:3] == ['[]', 'True True', 'True'], out.stderr


#: modules a root's boot must not import: the fork server's spawner side
#: (loaded on the first spawn) and TLS's certificates and stream (on the
#: first TLS listen or dial), and the 'idna' codec (a TCP listen of an
#: address literal needs no name encoding)
NOT_AT_BOOT = (
    'tractor._forkserver.backend',
    'tractor._forkserver.owner',
    'tractor._forkserver.process',
    'tractor._forkserver.protocol',
    'tractor_tls._certs',
    'tractor_tls._stream',
    'encodings.idna',
)


@pytest.mark.parametrize('tpt_proto', ['tcp'])
def test_root_boot_imports_only_what_it_uses(reg_addr, tmp_path):
    """A short program pays at boot only for what it uses: a root that
    spawns nothing and serves no TLS loads none of ``NOT_AT_BOOT``; its
    first spawn loads the spawner (and the child answers), and TLS's public
    names still resolve."""
    code = textwrap.dedent(
        """
        import platform, sys, trio, tractor
        NOT_AT_BOOT = %r

        async def main(port):
            async with tractor.open_root_actor(registry_addrs=[('127.0.0.1', port)]):
                print(sorted(m for m in NOT_AT_BOOT if m in sys.modules))
                async with tractor.open_nursery() as an:
                    portal = await an.start_actor('child', enable_modules=['platform'])
                    got = await portal.run_from_ns('platform', 'python_version')
                    print(got == platform.python_version())
                    print('tractor._forkserver.backend' in sys.modules)
                    await portal.cancel_actor()
            import tractor_tls
            print(tractor_tls.TLSConfigError.__module__)

        trio.run(main, int(sys.argv[1]))
        """
    ) % (NOT_AT_BOOT,)
    env = {**os.environ, 'TRACTOR_RUNTIME_DIR': str(tmp_path)}
    env.pop('TRACTOR_START_METHOD', None)
    out = subprocess.run(
        [sys.executable, '-c', code, str(reg_addr[1])],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split('\n')[:4] == ['[]', 'True', 'True', 'tractor_tls._certs'], (
        out.stdout,
        out.stderr,
    )


def test_the_documented_transport_is_the_test_transport():
    """``docs/architecture.md`` ("Writing a plugin") shows the model
    transport; it must stay the code that the third-party tests run."""
    doc = (ROOT / 'docs' / 'architecture.md').read_text()
    block = doc.split('<!-- test-transport:begin -->', 1)[1].split(
        '<!-- test-transport:end -->', 1
    )[0]
    code = block.strip().removeprefix('```python').removesuffix('```').strip()
    mod = ROOT / 'integration' / 'test-transport' / 'src' / 'tractor_testtransport' / '__init__.py'
    assert code == mod.read_text().split('"""', 2)[2].strip()
    assert private_uses(code) == []


def test_dial_and_request_as_a_plugin_would(runtime_kwargs, tpt_proto, tmp_path):
    """``dial`` + ``request`` talk to an actor outside its message loop (a
    bootstrap probe's way): a runtime call answers, an error comes boxed,
    and an address nobody listens at is an ``OSError``."""
    import socket

    import trio

    import tractor
    from tractor.plugin import dial, request

    if tpt_proto == 'tcp':
        with socket.socket() as sock:  # a port just freed: nothing listens there
            sock.bind(('127.0.0.1', 0))
            nobody: tuple = ('127.0.0.1', sock.getsockname()[1])
    else:
        nobody = (str(tmp_path), 'nobody.sock')

    async def main() -> None:
        with trio.fail_after(30):
            async with tractor.open_root_actor(name='sdk_dialer', **runtime_kwargs):
                actor = tractor.current_actor()
                chan = await dial(actor.listen_addrs[0], actor.aid)
                try:
                    assert chan.uid == actor.uid  # the handshake ran: we know who answered
                    assert tuple(await request(chan, 'self', 'ping')) == actor.uid
                    with pytest.raises(tractor.RemoteActorError):
                        await request(chan, 'self', 'no_such_method')
                finally:
                    await chan.aclose()
                with pytest.raises(OSError):
                    await dial(nobody, actor.aid, connect_timeout=5)

    trio.run(main)
