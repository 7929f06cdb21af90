"""Calling functions in other actors: run, run_from_ns, run_in_actor."""

import os

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import (
    add,
    echo,
    minor_faults,
    nothing,
    raise_value_error,
    return_unencodable,
    sync_mul,
    sync_raise_key_error,
)

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


async def test_run_and_run_from_ns(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('calc', enable_modules=FNS)
            assert await portal.run(add, x=1, y=2) == 3
            assert await portal.run(sync_mul, x=3, y=4) == 12
            assert await portal.run(nothing) is None
            assert await portal.run_from_ns(fns.__name__, 'add', x=5, y=6) == 11
            assert await portal.run_from_ns(fns.__name__, 'sync_mul', x=2, y=2) == 4
            payload = {'a': [1, 2.5, 'x', None, True], 'b': {'nested': b'bytes'}}
            assert await portal.run(echo, value=payload) == payload
            # many concurrent calls over one channel each get their own answer
            results = {}

            async def one(i: int) -> None:
                results[i] = await portal.run(add, x=i, y=i)

            async with trio.open_nursery() as tn:
                for i in range(20):
                    tn.start_soon(one, i)
            assert results == {i: 2 * i for i in range(20)}
            await an.cancel()


async def test_served_calls_fault_in_no_fresh_memory(runtime_kwargs):
    """Once warm, an actor serving calls reuses its memory: reading a
    message must not map fresh pages (a read buffer at glibc's mmap
    threshold was mapped, shrunk and unmapped on every read, a page fault
    and three system calls per message)."""
    calls = 300
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('calc', enable_modules=FNS)
            for _ in range(50):  # warm: the heap holds what a call needs
                await portal.run(nothing)
            before = await portal.run(minor_faults)
            for _ in range(calls):
                await portal.run(nothing)
            faults = await portal.run(minor_faults) - before
            await an.cancel()
    assert faults < calls // 10, f'{faults} page faults in {calls} calls'


async def test_remote_errors_from_run(runtime_kwargs):
    """An error in the callee arrives as RemoteActorError; the actor and the
    channel keep working afterwards."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('faulty', enable_modules=FNS)
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(raise_value_error, msg='boom')
            err = info.value
            assert err.boxed_type is ValueError
            assert err.src_uid == portal.channel.aid.uid
            assert 'boom' in str(err)
            assert 'raise_value_error' in err.tb_str
            assert 'ValueError' in err.tb_str

            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(sync_raise_key_error)
            assert info.value.boxed_type is KeyError

            # bad arguments are the callee's TypeError
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(add, x=1)
            assert info.value.boxed_type is TypeError

            # an unknown function name in an enabled module
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run_from_ns(fns.__name__, 'no_such_function')
            assert info.value.boxed_type is AttributeError

            # a result the wire cannot carry
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(return_unencodable)
            assert issubclass(info.value.boxed_type, TypeError)

            # an argument the wire cannot carry fails here, before sending
            with pytest.raises(tractor.MsgTypeError):
                await portal.run(echo, value=object())

            assert await portal.run(add, x=1, y=1) == 2
            await an.cancel()


async def test_run_in_actor_result(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            p_async = await an.run_in_actor(add, x=20, y=22)
            p_sync = await an.run_in_actor(sync_mul, name='multiplier', x=6, y=7)
            assert await p_async.wait_for_result() == 42
            assert await p_sync.result() == 42
            assert p_sync.channel.aid.name == 'multiplier'
            assert p_async.channel.aid.name == 'add'  # named after the function


async def test_run_in_actor_error(runtime_kwargs):
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                await an.run_in_actor(raise_value_error, name='err', msg='oops')
    assert info.value.boxed_type is ValueError
    assert info.value.src_uid[0] == 'err'


async def test_run_in_actor_error_is_what_the_result_raises(runtime_kwargs):
    """The portal's result raises the child's error; handled there, the
    nursery does not raise it again."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.run_in_actor(raise_value_error, name='err', msg='oops')
            with pytest.raises(tractor.RemoteActorError) as from_portal:
                await portal.wait_for_result()
    assert from_portal.value.boxed_type is ValueError
    assert from_portal.value.src_uid[0] == 'err'


async def test_start_actor_portal_has_no_result(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('daemon', enable_modules=FNS)
            with pytest.raises(RuntimeError):
                await portal.wait_for_result()
            await an.cancel()


def _not_module_level():
    def inner():
        return 1

    return inner


async def test_run_takes_module_level_functions(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('strict', enable_modules=FNS)
            with pytest.raises(TypeError):
                await portal.run('add', x=1, y=2)
            with pytest.raises(TypeError):
                await portal.run(_not_module_level())
            with pytest.raises(TypeError):
                await an.run_in_actor(_not_module_level())
            assert await portal.run(add, x=2, y=3) == 5
            await an.cancel()


async def test_module_not_enabled_is_refused(runtime_kwargs):
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('locked')  # enables nothing
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(add, x=1, y=2)
            assert info.value.boxed_type is tractor.ModuleNotExposed
            # an importable stdlib module is refused just the same
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(os.getcwd)
            assert info.value.boxed_type is tractor.ModuleNotExposed
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run_from_ns('os', 'system', command='true')
            assert info.value.boxed_type is tractor.ModuleNotExposed
            # dunder names of an enabled module are not callable either
            other = await an.start_actor('open', enable_modules=FNS)
            with pytest.raises(tractor.RemoteActorError) as info:
                await other.run_from_ns(fns.__name__, '__loader__')
            assert info.value.boxed_type is tractor.ModuleNotExposed
            await an.cancel()


async def test_nonexistent_enabled_module_fails_spawn(runtime_kwargs):
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                await an.start_actor('broken', enable_modules=['no_such_module_xyz'])
        assert issubclass(info.value.boxed_type, ModuleNotFoundError)
        assert 'no_such_module_xyz' in str(info.value)


async def test_allowlist_means_defined_and_public(runtime_kwargs):
    """Only functions an enabled module *defines* and does not keep
    private are callable; a module's ``__tractor_exports__`` replaces that
    rule with its own list (widening or narrowing it). Each refusal names
    the rule."""
    import tractor_core_allowlist as allow
    import tractor_core_exports as exports

    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor(
                'strict', enable_modules=[allow.__name__, exports.__name__]
            )
            assert await portal.run_from_ns(allow.__name__, 'public') == 'public'
            refused = {
                'getcwd': "defined in 'posix'",  # from os import getcwd
                'run': "defined in 'subprocess'",  # from subprocess import run
                '_private': 'is private',
            }
            for name, why in refused.items():
                with pytest.raises(tractor.RemoteActorError) as info:
                    await portal.run_from_ns(allow.__name__, name)
                assert info.value.boxed_type is tractor.ModuleNotExposed, name
                assert why in str(info.value), (name, str(info.value))
            # the export list decides alone
            assert await portal.run_from_ns(exports.__name__, 'getpid') == portal.channel.aid.pid
            assert await portal.run_from_ns(exports.__name__, '_helper') == 'helper'
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run_from_ns(exports.__name__, 'unlisted')
            assert info.value.boxed_type is tractor.ModuleNotExposed
            assert '__tractor_exports__' in str(info.value)
            await an.cancel()
