"""Wrong arguments fail early and say what is wrong."""

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import whoami

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


async def test_unknown_kwarg_to_open_root_actor(runtime_kwargs):
    with pytest.raises(TypeError, match='no_such_option'):
        async with tractor.open_root_actor(no_such_option=1, **runtime_kwargs):
            pass
    assert tractor.current_actor(err_on_no_runtime=False) is None


async def test_unknown_kwarg_to_open_nursery(runtime_kwargs):
    # booting the root: the kwargs go to open_root_actor
    with pytest.raises(TypeError, match='bogus_flag'):
        async with tractor.open_nursery(bogus_flag=True, **runtime_kwargs):
            pass
    # inside a running actor: only the per-nursery options are accepted
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs):
            with pytest.raises(TypeError, match='bogus_flag'):
                async with tractor.open_nursery(bogus_flag=True):
                    pass
            async with tractor.open_nursery(loglevel='error') as an:
                assert an.children == {}


async def test_unknown_kwarg_to_start_actor(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            with pytest.raises(TypeError, match='enable_module'):
                await an.start_actor('typo', enable_module=FNS)
            with pytest.raises(TypeError, match='enable_modules'):
                await an.start_actor('typo', enable_modules=fns.__name__)  # not a list
            assert an.children == {}


@pytest.mark.parametrize('where', ['open_nursery', 'open_root_actor', 'start_actor'])
async def test_bad_start_method(where, runtime_kwargs):
    with trio.fail_after(30):
        with pytest.raises(ValueError) as info:
            if where == 'start_actor':
                async with tractor.open_nursery(**runtime_kwargs) as an:
                    await an.start_actor('never', start_method='fork-bomb')
            elif where == 'open_nursery':
                async with tractor.open_nursery(start_method='fork-bomb', **runtime_kwargs):
                    pass
            else:
                async with tractor.open_root_actor(start_method='fork-bomb', **runtime_kwargs):
                    pass
    msg = str(info.value)
    assert 'fork-bomb' in msg
    assert "'trio'" in msg  # lists what is available


async def test_start_method_env_var(runtime_kwargs, monkeypatch):
    monkeypatch.setenv('TRACTOR_START_METHOD', 'from-the-env')
    with pytest.raises(ValueError, match='from-the-env'):
        async with tractor.open_nursery(**runtime_kwargs):
            pass
    # an explicit argument wins over the environment
    with trio.fail_after(30):
        async with tractor.open_nursery(start_method='trio', **runtime_kwargs) as an:
            portal = await an.start_actor('explicit', enable_modules=FNS)
            assert (await portal.run(whoami))['start_method'] == 'trio'
            await an.cancel()
    monkeypatch.setenv('TRACTOR_START_METHOD', 'trio')
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            assert tractor.current_actor().start_method == 'trio'
            portal = await an.start_actor('from-env', enable_modules=FNS)
            assert (await portal.run(whoami))['start_method'] == 'trio'
            await an.cancel()


async def test_empty_actor_name(runtime_kwargs):
    with pytest.raises(ValueError):
        async with tractor.open_root_actor(name='', **runtime_kwargs):
            pass
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            with pytest.raises(ValueError):
                await an.start_actor('')
            with pytest.raises(ValueError):
                await an.run_in_actor(whoami, name='')
            assert an.children == {}


async def test_actor_names_hold_no_control_characters(runtime_kwargs):
    """A name goes into the child's argv, its process title and the
    registry's listings: control characters are refused; spaces and dashes
    are not, even a word the runtime reads back from the process table."""
    from tractor._reaper import _actor_uuid

    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            for bad in ('a\0b', 'a\nb', 'tab\there', 'red\x1b[31m'):
                with pytest.raises(ValueError, match='control characters'):
                    await an.start_actor(bad, enable_modules=FNS)
            assert an.children == {}
            odd = 'odd --uuid 0000'
            portal = await an.start_actor(odd, enable_modules=FNS, start_method='trio')
            # the reaper finds the real uuid in the child's title, not the name's word
            assert _actor_uuid(portal.channel.aid.pid) == portal.channel.aid.uuid
            assert (await portal.run(whoami))['name'] == odd
            await an.cancel()


async def test_bad_transport_arguments(tpt_proto):
    with pytest.raises(tractor.NoTransportInstalled, match='smoke-signals'):
        async with tractor.open_root_actor(enable_transports=['smoke-signals']):
            pass
    with pytest.raises(TypeError):
        async with tractor.open_root_actor(enable_transports=tpt_proto):  # not a list
            pass
    # one bare address where a list of them belongs
    for bare in (('127.0.0.1', 1616), ('/some/dir', 'registry.sock')):
        with pytest.raises(TypeError, match='list of addresses'):
            async with tractor.open_root_actor(registry_addrs=bare):
                pass
    assert tractor.current_actor(err_on_no_runtime=False) is None


async def test_bad_bind_addrs(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            with pytest.raises(ValueError):
                await an.start_actor('nowhere', bind_addrs=[('127.0.0.1', 'not-a-port')])
            with pytest.raises(ValueError):
                await an.start_actor('nowhere', bind_addrs=[(1, 2, 3)])
            assert an.children == {}


async def test_no_runtime():
    with pytest.raises(tractor.NoRuntime):
        tractor.current_actor()
    assert tractor.is_root_process()
    assert issubclass(tractor.NoRuntime, RuntimeError)


async def test_no_runtime_after_exit(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_root_actor(**runtime_kwargs) as actor:
            assert tractor.current_actor() is actor
            with pytest.raises(RuntimeError):  # one runtime per process
                async with tractor.open_root_actor(**runtime_kwargs):
                    pass
            assert tractor.current_actor() is actor
    with pytest.raises(tractor.NoRuntime):
        tractor.current_actor()


def test_bad_setting_fails_the_boot_not_the_import(tmp_path):
    """A bad TRACTOR_* value: ``import tractor`` works; booting raises a
    SettingError naming the variable, the value and what is expected."""
    import subprocess
    import sys

    code = (
        'import trio, tractor\n'
        'async def main():\n'
        '    async with tractor.open_root_actor():\n'
        '        pass\n'
        'try:\n'
        '    trio.run(main)\n'
        'except ValueError as err:\n'
        '    print(type(err).__name__, err)\n'
    )
    res = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__('os').environ, 'TRACTOR_CANCEL_GRACE': '3s'},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("SettingError TRACTOR_CANCEL_GRACE='3s' is not usable"), res.stdout
    assert 'a number of seconds' in res.stdout


def test_every_setting_is_in_the_docs_table():
    """One table lists every variable the runtime reads (docs/architecture.md)."""
    from pathlib import Path

    import tractor.discovery  # noqa: F401  (declares its settings)
    import tractor_uds  # noqa: F401
    from tractor import _settings

    doc = (Path(__file__).resolve().parents[3] / 'docs' / 'architecture.md').read_text()
    missing = [env for env in _settings.SETTINGS if f'| `{env}` |' not in doc]
    assert missing == []


async def test_registry_addrs_takes_address_objects(reg_addr, tpt_proto):
    """A list of two Address objects is two addresses, not one."""
    import socket

    from tractor._transport import wrap_address

    if tpt_proto == 'tcp':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            other = ('127.0.0.1', s.getsockname()[1])
    else:
        other = (reg_addr[0], 'other-' + reg_addr[1])
    with trio.fail_after(30):
        async with tractor.open_root_actor(
            registry_addrs=[wrap_address(reg_addr), wrap_address(other)],
            enable_transports=[tpt_proto],
        ) as actor:
            assert actor.reg_addrs == [reg_addr, other]


async def test_call_by_name_takes_two_names(runtime_kwargs):
    """``run_from_ns`` with something other than two names fails here with
    a ``TypeError`` naming the argument; the peer never sees the request
    (it would drop the connection, and a child its parent) and keeps
    serving."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('named', enable_modules=FNS)
            with pytest.raises(TypeError, match='function_name'):
                await portal.run_from_ns(fns.__name__, 123)
            with pytest.raises(TypeError, match='namespace_path'):
                await portal.run_from_ns(123, 'whoami')
            with pytest.raises(TypeError, match='namespace_path'):
                await portal.run_from_ns('', 'whoami')
            with pytest.raises(TypeError, match='function_name'):
                async with portal.open_context_from_ns(fns.__name__, None):
                    pass
            assert (await portal.run_from_ns(fns.__name__, 'whoami'))['name'] == 'named'
            await an.cancel()


async def test_loglevel_of_a_child(runtime_kwargs):
    """A child's level is a name (a standard number is taken by its name);
    anything else fails ``start_actor`` naming it, not the child's boot."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            with pytest.raises(TypeError, match='loglevel'):
                await an.start_actor('bad', enable_modules=FNS, loglevel=['info'])
            with pytest.raises(ValueError, match='unknown log level'):
                await an.start_actor('bad', enable_modules=FNS, loglevel='loud')
            with pytest.raises(ValueError, match='unknown log level'):
                await an.start_actor('bad', enable_modules=FNS, loglevel=13)
            assert an.children == {}
            portal = await an.start_actor('numbered', enable_modules=FNS, loglevel=40)
            assert await portal.run(fns.log_level) == 'ERROR'
            await an.cancel()


async def test_arguments_that_cannot_cross_fail_the_call_only(runtime_kwargs):
    """Arguments nesting deeper than the receiver allows, or holding a
    cycle, fail that call with ``MsgTypeError`` before anything is sent; an
    async generator asks for ``open_stream_from``; the peer keeps serving."""
    deep: list = []
    for _ in range(150):
        deep = [deep]
    cyclic: list = []
    cyclic.append(cyclic)
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('target', enable_modules=FNS)
            with pytest.raises(tractor.MsgTypeError, match='nests deeper'):
                await portal.run(fns.echo, value=deep)
            with pytest.raises(tractor.MsgTypeError, match='cannot send'):
                await portal.run(fns.echo, value=cyclic)
            with pytest.raises(TypeError, match='open_stream_from'):
                await portal.run(fns.count_up, n=3)
            with pytest.raises(TypeError, match='timeout'):
                await portal.cancel_actor(timeout='soon')
            assert await portal.run(fns.echo, value=[[1]]) == [[1]]
            assert (await portal.run(fns.whoami))['name'] == 'target'
            await an.cancel()
