"""Plugins that are robust: one registered in code reaches the children,
one that cannot be passed on fails the spawn saying why, and an installed
plugin whose import fails is skipped with one warning while everything
else keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TIMEOUT = 60

PLUGIN = """
from tractor.plugin import hookimpl

@hookimpl
def tractor_rpc_modules(actor):
    # every actor that loaded this plugin also serves this module
    return [__name__ + '_served']
"""
SERVED = """
import os

def hello() -> str:
    return f'served by pid {os.getpid()}'
"""

PROGRAM = """
import sys
import trio, tractor
import {plugin}

async def main(method):
    async with tractor.open_nursery(
        registry_addrs=[('127.0.0.1', int(sys.argv[2]))], start_method=method,
    ) as an:
        portal = await an.start_actor('plain', enable_modules=[])
        print(await portal.run_from_ns('{plugin}_served', 'hello'), flush=True)
        await an.cancel()

tractor.register_plugin({plugin})
trio.run(main, sys.argv[1])
"""

MAIN_PLUGIN = """
import sys
import trio, tractor
from tractor.plugin import hookimpl

class Local:
    @hookimpl
    def tractor_rpc_modules(self, actor):
        return []

async def main():
    async with tractor.open_nursery(registry_addrs=[('127.0.0.1', int(sys.argv[1]))]) as an:
        try:
            await an.start_actor('plain')
        except TypeError as err:
            print(f'refused: {err}', flush=True)

tractor.register_plugin(Local())
trio.run(main)
"""


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(
    tmp_path: Path, code: str, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    script = tmp_path / f'prog_{uuid.uuid4().hex[:6]}.py'
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
        cwd=tmp_path,
    )


@pytest.mark.parametrize('start_method', ['trio', 'forkserver'])
def test_plugin_registered_in_code_reaches_children(tmp_path, start_method):
    name = f'codeplug_{uuid.uuid4().hex[:6]}'
    (tmp_path / f'{name}.py').write_text(PLUGIN)
    (tmp_path / f'{name}_served.py').write_text(SERVED)
    res = _run(
        tmp_path,
        PROGRAM.format(plugin=name),
        start_method,
        str(_port()),
        env={'PYTHONPATH': str(tmp_path)},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith('served by pid '), res.stdout + res.stderr
    assert int(res.stdout.split()[-1]) != 0


def test_plugin_that_cannot_reach_children_fails_the_spawn_saying_why(tmp_path):
    res = _run(tmp_path, MAIN_PLUGIN, str(_port()))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith('refused: '), res.stdout + res.stderr
    assert 'cannot reach child actors' in res.stdout and "'__main__'" in res.stdout, res.stdout


def test_broken_installed_plugin_is_skipped_with_one_warning(tmp_path):
    """An entry point whose module raises on import: one warning naming it
    and its error; the other plugins (the transports, discovery) work."""
    site = tmp_path / 'site'
    dist = site / 'brokenplug-1.0.dist-info'
    dist.mkdir(parents=True)
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n')
    (dist / 'entry_points.txt').write_text('[tractor]\nbroken = brokenplug_mod\n')
    (site / 'brokenplug_mod.py').write_text('raise RuntimeError("this plugin is broken")\n')
    code = """
        import sys
        import trio, tractor

        async def main():
            async with tractor.open_nursery(registry_addrs=[('127.0.0.1', int(sys.argv[1]))]) as an:
                portal = await an.start_actor('ok')
                async with tractor.find_actor('ok') as found:
                    print('found', found is not None, flush=True)
                await an.cancel()

        trio.run(main)
    """
    res = _run(tmp_path, code, str(_port()), env={'PYTHONPATH': str(site)})
    assert res.returncode == 0, res.stderr
    assert 'found True' in res.stdout
    warnings = [line for line in res.stderr.splitlines() if "'broken'" in line]
    # once per process that loads plugins (root, fork server template, child
    # are separate processes); each line names the plugin and its error
    assert warnings, res.stderr
    assert all('this plugin is broken' in w and 'brokenplug_mod' in w for w in warnings), warnings
