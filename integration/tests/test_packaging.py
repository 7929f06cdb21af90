"""Build every distribution's wheel and install subsets into fresh venvs.

Proves the package scheme: a lean install (``tractor-core`` + one transport)
runs an actor tree, missing optional pieces fail naming the distribution to
install, core without a transport fails at boot naming ``tractor-tcp``, and
the ``tractor`` meta wheel pulls in everything.

This is the slow packaging test (marked ``packaging``); it runs in CI like
every other test. Third-party packages (trio, msgspec, pluggy) come from the
package index, normally served from uv's cache after ``uv sync``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.packaging]

ROOT = Path(__file__).resolve().parents[2]
DISTS = [
    'tractor',
    'tractor-core',
    'tractor-tcp',
    'tractor-uds',
    'tractor-discovery',
    'tractor-cluster',
]
#: generous bounds for one uv/python invocation; they only stop hangs
CMD_TIMEOUT = 120
PROG_TIMEOUT = 60


def _uv() -> str:
    # `uv run` exports the path of its own binary as $UV
    uv = os.environ.get('UV') or shutil.which('uv')
    if not uv:
        pytest.fail('the packaging test needs `uv` on PATH (pip install uv)')
    return uv


def _env() -> dict[str, str]:
    """Our environment (TRACTOR_TEST_SESSION included, so the leak check
    covers everything started below) minus what would leak the workspace's
    own packages into a fresh venv."""
    env = dict(os.environ)
    for var in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'PYTHONSTARTUP'):
        env.pop(var, None)
    return env


def _run(cmd: list[str], *, cwd: Path, timeout: float = CMD_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; on timeout kill that group
    (it holds only what ``cmd`` started) and fail."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f'{cmd} timed out after {timeout}s\n{out}\n{err}')
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _check(cmd: list[str], *, cwd: Path, timeout: float = CMD_TIMEOUT) -> str:
    res = _run(cmd, cwd=cwd, timeout=timeout)
    assert res.returncode == 0, f'{cmd} exited {res.returncode}\n{res.stdout}\n{res.stderr}'
    return res.stdout


def _wheel(wheels: Path, dist: str) -> Path:
    [whl] = wheels.glob(f'{dist.replace("-", "_")}-*.whl')
    return whl


def _ships(whl: Path, member: str) -> bool:
    with zipfile.ZipFile(whl) as zf:
        return member in zf.namelist()


@pytest.fixture(scope='module')
def wheels(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('wheels')
    _check([_uv(), 'build', '--all-packages', '--wheel', '-o', str(out)], cwd=ROOT)
    for dist in DISTS:
        _wheel(out, dist)  # exactly one wheel each, the meta one included
    return out


class Venv:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.python = path / 'bin' / 'python'

    def run(self, code: str, *args: str) -> subprocess.CompletedProcess:
        script = self.path / f'prog_{uuid.uuid4().hex[:8]}.py'
        script.write_text(textwrap.dedent(code))
        return _run([str(self.python), str(script), *args], cwd=self.path, timeout=PROG_TIMEOUT)

    def check(self, code: str, *args: str) -> str:
        res = self.run(code, *args)
        assert res.returncode == 0, f'exited {res.returncode}\n{res.stdout}\n{res.stderr}'
        return res.stdout


def _make_venv(tmp_path_factory, wheels: Path, name: str, dists: list[str]) -> Venv:
    path = tmp_path_factory.mktemp(name)
    uv = _uv()
    _check([uv, 'venv', '--python', sys.executable, str(path / 'venv')], cwd=path)
    venv = Venv(path / 'venv')
    # tractor wheels by path (never a same-named project from the index);
    # their third-party dependencies from the index or uv's cache
    _check(
        [
            uv,
            'pip',
            'install',
            '--python',
            str(venv.python),
            '--find-links',
            str(wheels),
            *(str(_wheel(wheels, d)) for d in dists),
        ],
        cwd=path,
    )
    return venv


def _installed(venv: Venv) -> set[str]:
    out = venv.check("""
        import importlib.metadata as md
        print('\\n'.join(d.metadata['Name'] for d in md.distributions()))
    """)
    return {n for n in out.split() if n.startswith('tractor')}


@pytest.fixture(scope='module')
def lean(tmp_path_factory, wheels) -> Venv:
    return _make_venv(tmp_path_factory, wheels, 'lean', ['tractor-core', 'tractor-tcp'])


@pytest.fixture(scope='module')
def bare(tmp_path_factory, wheels) -> Venv:
    return _make_venv(tmp_path_factory, wheels, 'bare', ['tractor-core'])


@pytest.fixture(scope='module')
def full(tmp_path_factory, wheels) -> Venv:
    return _make_venv(tmp_path_factory, wheels, 'full', ['tractor'])


# a parent-child program run by the venv's own python: argv[1] is the
# transport, the registry address is fresh so runs never collide
SPAWN_PROG = """
    import os, sys, uuid
    import trio, tractor

    async def double(x):
        return tractor.current_actor().name, os.getpid(), x * 2

    async def main(proto):
        if proto in ('tcp', 'tls'):
            import socket
            with socket.socket() as s:
                s.bind(('127.0.0.1', 0))
                reg = ('127.0.0.1', s.getsockname()[1])
            if proto == 'tls':
                reg = ('tls', list(reg))  # a plain tuple is TCP's
        else:
            reg = (os.environ['TRACTOR_RUNTIME_DIR'], f'pkg-{uuid.uuid4().hex[:8]}.sock')
        with trio.fail_after(30):
            async with tractor.open_nursery(
                enable_transports=[proto], registry_addrs=[reg]
            ) as an:
                portal = await an.start_actor('pkg-child', enable_modules=[__name__])
                name, pid, y = await portal.run(double, x=21)
                assert (name, y) == ('pkg-child', 42), (name, y)
                assert pid != os.getpid()
                assert portal.channel.raddr.proto_key == proto
                assert await portal.cancel_actor()
        print('spawn ok', tractor.__file__)

    if __name__ == '__main__':
        trio.run(main, sys.argv[1])
"""

# prints "<name>: <exception type>: <message>" for each missing piece
MISSING_PROG = """
    import sys, tractor
    for name in sys.argv[1:]:
        try:
            getattr(tractor, name)
        except (ImportError, AttributeError) as err:
            print(f'{name}: {type(err).__name__}: {err}')
        else:
            print(f'{name}: resolved')
"""

# what a lean install says where a missing piece is needed
HINTS_PROG = """
    import trio, tractor

    print('hasattr', hasattr(tractor, 'find_actor'), hasattr(tractor, 'open_actor_cluster'))
    for mod in ('tractor.discovery', 'tractor.cluster'):
        try:
            __import__(mod)
        except ModuleNotFoundError as err:
            print(f'import {mod}: {err}')

    async def join():
        async with tractor.open_root_actor(registry_addrs=[('127.0.0.1', 1616)]):
            pass

    async def join_uds():
        async with tractor.open_root_actor(
            registry_addrs=[('127.0.0.1', 1616)], enable_transports=['uds'],
        ):
            pass

    async def default():
        async with tractor.open_root_actor():
            pass

    for fn in (join, join_uds, default):
        try:
            trio.run(fn)
        except tractor.NoTransportInstalled as err:
            print(f'{fn.__name__}: {err}')
"""

BOOT_PROG = """
    import trio, tractor

    async def boot(opener):
        with trio.fail_after(30):
            async with opener():
                pass

    for opener in (tractor.open_root_actor, tractor.open_nursery):
        try:
            trio.run(boot, opener)
        except tractor.NoTransportInstalled as err:
            print(f'{opener.__name__}: {err}')
        else:
            print(f'{opener.__name__}: booted')
"""


def test_all_wheels_build(wheels):
    core = _wheel(wheels, 'tractor-core')
    assert _ships(core, 'tractor/__init__.py')
    # portions of `tractor` live in their own wheels, never core's __init__
    for dist, member in [
        ('tractor-discovery', 'tractor/discovery/__init__.py'),
        ('tractor-cluster', 'tractor/cluster/__init__.py'),
    ]:
        # hatchling builds an empty wheel when a package dir is missing
        assert _ships(_wheel(wheels, dist), member)
        assert not _ships(_wheel(wheels, dist), 'tractor/__init__.py')
    with zipfile.ZipFile(_wheel(wheels, 'tractor')) as zf:
        meta = zf.read('tractor-0.1.0.dist-info/METADATA').decode()
    for dist in DISTS[1:]:
        extra = '[debug]' if dist == 'tractor-core' else ''
        assert f'Requires-Dist: {dist}{extra}==0.1.0' in meta


TEST_ONLY = ['tractor-testsupport', 'tractor-testtransport']
#: published, but not pulled in by the meta package
ADD_ONS = ['tractor-etcd', 'tractor-tls']


def _metadata(whl: Path) -> str:
    with zipfile.ZipFile(whl) as zf:
        [name] = [n for n in zf.namelist() if n.endswith('.dist-info/METADATA')]
        return zf.read(name).decode()


@pytest.mark.parametrize('dist', DISTS + ADD_ONS + TEST_ONLY)
def test_wheel_metadata_is_complete(wheels, dist):
    """Licence (with its file), authors, classifiers, keywords and Python
    versions on every wheel; py.typed in every wheel that ships code; the
    test-only ones refuse an upload."""
    whl = _wheel(wheels, dist)
    meta = _metadata(whl)
    assert 'License-Expression: MIT' in meta
    assert 'License-File: LICENSE' in meta
    assert _ships(whl, f'{whl.name.split("-")[0]}-0.1.0.dist-info/licenses/LICENSE')
    assert 'Author: The tractor developers' in meta
    assert 'Keywords: ' in meta
    assert 'Requires-Python: >=3.11' in meta
    for classifier in (
        'Framework :: Trio',
        'Typing :: Typed',
        'Programming Language :: Python :: 3.11',
    ):
        assert f'Classifier: {classifier}' in meta, classifier
    assert ('Classifier: Private :: Do Not Upload' in meta) == (dist in TEST_ONLY)
    if dist != 'tractor':  # the meta wheel ships no code
        with zipfile.ZipFile(whl) as zf:
            assert any(n.endswith('/py.typed') for n in zf.namelist()), zf.namelist()


def test_meta_long_description_is_the_main_readme(wheels):
    meta = _metadata(_wheel(wheels, 'tractor'))
    readme = (ROOT / 'README.md').read_text()
    assert 'Description-Content-Type: text/markdown' in meta
    assert readme.splitlines()[0] in meta and readme.splitlines()[-1] in meta
    assert len(meta) > len(readme)


DEBUG_PROG = """
    import trio, tractor

    async def main():
        async with tractor.open_root_actor(debug_mode=True):
            pass

    try:
        trio.run(main)
    except ModuleNotFoundError as err:
        print(f'refused: {err}')
    else:
        print('booted')
"""


def test_debug_mode_on_a_lean_install_names_the_extra(lean):
    """greenback is the ``debug`` extra of tractor-core (the meta package
    pulls it in): without it, debug mode says what to install."""
    out = lean.check(DEBUG_PROG)
    assert out.startswith('refused: '), out
    assert 'tractor-core[debug]' in out, out


def test_lean_install_runs_a_tree(lean):
    assert _installed(lean) == {'tractor-core', 'tractor-tcp'}
    out = lean.check(SPAWN_PROG, 'tcp')
    assert 'spawn ok' in out
    assert str(lean.path) in out  # the venv's copy, not the workspace's


def test_lean_install_names_missing_distributions(lean):
    out = lean.check(MISSING_PROG, 'find_actor', 'discovery', 'open_actor_cluster')
    lines = dict(line.split(': ', 1) for line in out.splitlines())
    for name, dist in [
        ('find_actor', 'tractor-discovery'),
        ('discovery', 'tractor-discovery'),
        ('open_actor_cluster', 'tractor-cluster'),
    ]:
        assert lines[name].startswith('MissingDistribution'), out
        assert repr(dist) in lines[name] or f'install {dist}' in lines[name], out
    # the other transport is not there either, and says what to install
    res = lean.run(SPAWN_PROG, 'uds')
    assert res.returncode != 0
    assert 'tractor-uds' in res.stderr, res.stderr


def test_core_without_transport_fails_at_boot(bare):
    assert _installed(bare) == {'tractor-core'}
    out = bare.check(BOOT_PROG)
    lines = out.splitlines()
    assert len(lines) == 2, out
    for line in lines:
        assert 'booted' not in line, out
        assert 'tractor-tcp' in line, out


def test_meta_install_resolves_everything(full):
    assert _installed(full) == set(DISTS)
    names = [
        'discovery',
        'find_actor',
        'wait_for_actor',
        'Registrar',
        'cluster',
        'open_actor_cluster',
    ]
    out = full.check(MISSING_PROG, *names)
    assert out.splitlines() == [f'{n}: resolved' for n in names], out
    for proto in ('tcp', 'uds'):
        assert 'spawn ok' in full.check(SPAWN_PROG, proto)


def test_lean_install_star_import_lists_only_what_is_installed(lean):
    out = lean.check("""
        from tractor import *  # noqa: F403
        import tractor
        print(sorted(tractor.__all__))
    """)
    assert "'open_nursery'" in out
    assert 'find_actor' not in out and 'open_actor_cluster' not in out, out


ETCD_PROG = """
    import trio, tractor
    from tractor._transport import wrap_address

    try:
        addr = wrap_address('etcd://127.0.0.1:2379/app')
    except Exception as err:
        print(f'{type(err).__name__}: {err}')
    else:
        print('parsed', type(addr).__module__, addr)
"""


def test_etcd_registry_is_one_distribution_away(full, tmp_path_factory, wheels):
    """The meta install does not pull tractor-etcd, and an etcd:// address
    there names the distribution; `pip install tractor-etcd` next to
    `tractor` is all it takes."""
    assert 'tractor-etcd' not in _installed(full)
    out = full.check(ETCD_PROG)
    assert out.startswith('NoTransportInstalled') and 'tractor-etcd' in out, out
    with_etcd = _make_venv(tmp_path_factory, wheels, 'etcd', ['tractor', 'tractor-etcd'])
    assert _installed(with_etcd) == {*DISTS, 'tractor-etcd'}
    out = with_etcd.check(ETCD_PROG)
    assert out.split()[:2] == ['parsed', 'tractor_etcd._address'], out


@pytest.fixture(scope='module')
def uds_only(tmp_path_factory, wheels) -> Venv:
    return _make_venv(tmp_path_factory, wheels, 'udsonly', ['tractor-core', 'tractor-uds'])


def test_lean_install_fails_helpfully(uds_only):
    """core + uds: hasattr() is False for the missing names, importing a
    missing sub-package names its distribution, the seed's join program
    (a TCP registry address) names tractor-tcp, and the default transport
    is not silently replaced."""
    out = uds_only.check(HINTS_PROG)
    lines = out.splitlines()
    assert lines[0] == 'hasattr False False', out
    assert (
        "import tractor.discovery: tractor.discovery is provided by the 'tractor-discovery'" in out
    )
    assert "import tractor.cluster: tractor.cluster is provided by the 'tractor-cluster'" in out
    # the seed's join program, as written, needs TCP and says so
    join = next(line for line in lines if line.startswith('join: '))
    assert 'pip install tractor-tcp' in join, out
    # asking for UDS with a TCP registry address: that address needs tractor-tcp
    join_uds = next(line for line in lines if line.startswith('join_uds: '))
    assert 'TCP address' in join_uds and 'pip install tractor-tcp' in join_uds, out
    default = next(line for line in lines if line.startswith('default: '))
    assert "default transport 'tcp' is not installed" in default and "['uds']" in default, out


TLS_MISSING_PROG = """
    import trio, tractor

    async def main():
        async with tractor.open_root_actor(enable_transports=['tls']):
            pass

    try:
        trio.run(main)
    except Exception as err:
        print(f'{type(err).__name__}: {err}')
"""


def test_tls_is_one_distribution_away(full, tmp_path_factory, wheels, tmp_path, monkeypatch):
    """The meta install has no TLS and says which distribution has it;
    `pip install tractor-tls` next to `tractor` runs a tree over TLS
    (certificates made here with trustme, handed over in the environment)."""
    import trustme

    assert 'tractor-tls' not in _installed(full)
    out = full.check(TLS_MISSING_PROG)
    assert out.startswith('NoTransportInstalled') and 'tractor-tls' in out, out
    ca = trustme.CA()
    leaf = ca.issue_cert('127.0.0.1', 'localhost')
    for var, name, pem in (
        ('TRACTOR_TLS_CA', 'ca.pem', ca.cert_pem),
        ('TRACTOR_TLS_CERT', 'cert.pem', leaf.cert_chain_pems[0]),
        ('TRACTOR_TLS_KEY', 'key.pem', leaf.private_key_pem),
    ):
        pem.write_to_path(str(tmp_path / name))
        monkeypatch.setenv(var, str(tmp_path / name))
    with_tls = _make_venv(tmp_path_factory, wheels, 'tls', ['tractor', 'tractor-tls'])
    assert _installed(with_tls) == {*DISTS, 'tractor-tls'}
    assert 'spawn ok' in with_tls.check(SPAWN_PROG, 'tls')


def test_tractor_command_ships_with_discovery(lean, full):
    """The ``tractor`` console script comes with tractor-discovery (so with
    the meta package); ``python -m tractor`` on a lean install says which
    distribution to install (exit code 2)."""
    res = _run([str(lean.python), '-m', 'tractor', 'ls'], cwd=lean.path, timeout=PROG_TIMEOUT)
    assert res.returncode == 2 and 'tractor-discovery' in res.stderr, res
    assert not (lean.path / 'bin' / 'tractor').exists()
    out = _check([str(full.path / 'bin' / 'tractor'), '--help'], cwd=full.path)
    assert 'registrar' in out and 'watch' in out
    out = _check([str(full.python), '-m', 'tractor', 'ls', '--help'], cwd=full.path)
    assert '--registry' in out and '--json' in out
