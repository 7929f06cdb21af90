"""Functions defined in the user's main script are servable by subactors."""

import json
import sys

import pytest
import trio

pytestmark = pytest.mark.slow

SCRIPT = 'main_module.py'


@pytest.mark.parametrize('how', ['file', 'module'])
async def test_main_script_functions(how, tpt_proto, reg_addr, run_script, tmp_path):
    """``enable_modules=[__name__]`` in a script run as ``__main__`` loads it
    in the child under another name, without running its main block."""
    from pathlib import Path

    scripts = Path(__file__).parent / 'scripts'
    args = [tpt_proto, json.dumps(reg_addr)]
    if how == 'file':
        proc = await run_script(SCRIPT, *args, timeout=45)
    else:  # python -m main_module, from the scripts directory
        with trio.fail_after(45):
            proc = await trio.run_process(
                [sys.executable, '-m', SCRIPT.removesuffix('.py'), *args],
                cwd=scripts,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    out = proc.stdout.decode()
    assert proc.returncode == 0, f'{out}\n{proc.stderr.decode()}'
    lines = out.splitlines()
    main_pids = [int(line.split()[1]) for line in lines if line.startswith('MAIN ')]
    assert len(main_pids) == 1, out  # the main block ran in the root only
    root_pid = main_pids[0]
    loaded = [line.split() for line in lines if line.startswith('LOADED ')]
    results = [json.loads(line.split(' ', 1)[1]) for line in lines if line.startswith('RESULT ')]
    assert len(results) == 4, out
    for res in results:
        assert res['pid'] != root_pid
        assert res['module'] != '__main__'
    assert results[0]['actor'] == 'scripted' and results[2]['actor'] == 'oneshot'
    assert results[0]['pid'] == results[1]['pid']
    # called by the script's importable name: the same module, the same actor
    assert results[3]['actor'] == 'scripted' and results[3]['pid'] == results[0]['pid']
    assert results[3]['module'] == results[0]['module']
    # the module body ran once per process: root (as __main__) and each child
    by_pid = {int(pid): name for _, name, pid in loaded}
    assert by_pid[root_pid] == '__main__'
    assert {results[0]['pid'], results[2]['pid']} <= set(by_pid)
    assert len(loaded) == 3, out
    # an error class of the script is itself on both sides (the child has
    # the script under another module name): child -> root, root -> child
    boxed = [json.loads(line.split(' ', 1)[1]) for line in lines if line.startswith('BOXED ')]
    script = '__main__' if how == 'file' else 'main_module'  # its -m name, when it has one
    assert boxed == [{'type_str': f'{script}:ScriptError', 'is_ours': True}] * 2, out
