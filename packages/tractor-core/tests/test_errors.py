"""Errors crossing actors: boxing, one-cancels-all, groups of failures."""

import pytest
import trio

import tractor
import tractor_core_testfns as fns
from tractor_core_testfns import (
    fail_when_cancelled,
    long_sleep,
    raise_value_error,
    spawn_failing_grandchild,
    wait_file_then_raise,
)

pytestmark = pytest.mark.slow

FNS = [fns.__name__]


async def test_one_cancels_all(runtime_kwargs, pids_gone):
    """One failing one-shot actor cancels its siblings, daemons included,
    and the nursery raises the boxed remote error."""
    pids = []
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                daemon = await an.start_actor('daemon', enable_modules=FNS)
                sleeper = await an.run_in_actor(long_sleep, name='sleeper')
                pids += [daemon.channel.aid.pid, sleeper.channel.aid.pid]
                failing = await an.run_in_actor(raise_value_error, name='failer', msg='kaboom')
                pids.append(failing.channel.aid.pid)
                failer_uid = failing.channel.aid.uid
                # the body is busy with a long call into the daemon: the
                # failure cancels it too
                await daemon.run(long_sleep)
    err = info.value
    assert err.boxed_type is ValueError
    assert err.src_uid == failer_uid
    assert 'kaboom' in str(err)
    assert 'raise_value_error' in err.tb_str and 'ValueError' in err.tb_str
    assert await pids_gone(pids) == []


async def test_error_in_body_cancels_children(runtime_kwargs, pids_gone):
    with trio.fail_after(30):
        with pytest.raises(KeyError):
            async with tractor.open_nursery(**runtime_kwargs) as an:
                daemon = await an.start_actor('daemon', enable_modules=FNS)
                sleeper = await an.run_in_actor(long_sleep, name='sleeper')
                pids = [daemon.channel.aid.pid, sleeper.channel.aid.pid]
                raise KeyError('body failed')
    assert await pids_gone(pids) == []


async def test_two_failures_group(runtime_kwargs, tmp_path):
    """Two children that both fail arrive as an exception group of both:
    the second one fails while the first one's failure cancels it, and
    that error is not lost to the cancel."""
    go = str(tmp_path / 'go')
    with trio.fail_after(30):
        with pytest.raises(BaseExceptionGroup) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                await an.run_in_actor(fail_when_cancelled, name='second')
                await an.run_in_actor(wait_file_then_raise, name='first', wait_for=go)
                open(go, 'w').close()
    group = info.value
    assert all(isinstance(e, tractor.RemoteActorError) for e in group.exceptions)
    assert sorted((e.src_uid[0], e.boxed_type.__name__) for e in group.exceptions) == [
        ('first', 'ValueError'),
        ('second', 'KeyError'),
    ]


async def test_cancelled_one_shot_result(runtime_kwargs):
    """A one-shot actor cancelled by a sibling's failure has no result: its
    portal says so instead of blocking forever."""
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError):
            async with tractor.open_nursery(**runtime_kwargs) as an:
                sleeper = await an.run_in_actor(long_sleep, name='sleeper')
                await an.run_in_actor(raise_value_error, name='failer')
        with pytest.raises(tractor.ContextCancelled):
            await sleeper.wait_for_result()


async def test_collapse_eg(runtime_kwargs):
    """trionics.collapse_eg() unwraps a lone error, keeps groups of several."""
    with trio.fail_after(30):

        async def run_tree() -> None:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                await an.run_in_actor(raise_value_error, name='lone')

        with pytest.raises(tractor.RemoteActorError):
            async with tractor.trionics.collapse_eg():
                async with trio.open_nursery() as tn:  # wraps errors in a group
                    tn.start_soon(run_tree)

    with pytest.raises(ValueError, match='inner'):
        async with tractor.trionics.collapse_eg():
            raise BaseExceptionGroup('one', [ValueError('inner')])
    with pytest.raises(BaseExceptionGroup):
        async with tractor.trionics.collapse_eg():
            raise BaseExceptionGroup('two', [ValueError('a'), KeyError('b')])


async def test_remote_error_is_relayed_through_middle(runtime_kwargs):
    """An error two levels down keeps its origin and traceback."""
    with trio.fail_after(30):
        with pytest.raises(tractor.RemoteActorError) as info:
            async with tractor.open_nursery(**runtime_kwargs) as an:
                await an.run_in_actor(spawn_failing_grandchild, name='middle')
    err = info.value
    assert err.boxed_type is ValueError
    assert err.src_uid[0] == 'leaf'
    assert err.relay_uid is not None and err.relay_uid[0] == 'middle'
    assert 'raise_value_error' in err.tb_str


async def test_enable_modules_import_error_reaches_the_parent(runtime_kwargs):
    """A child whose ``enable_modules`` cannot be imported fails its spawn
    with the import error, boxed: its type, the child's uid and the
    traceback where it failed (see the differences section of
    docs/architecture.md)."""
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            with pytest.raises(tractor.RemoteActorError) as info:
                await an.start_actor('badmods', enable_modules=['no_such_module_xyz'])
            assert info.value.boxed_type is ModuleNotFoundError
            assert info.value.src_uid[0] == 'badmods'
            assert 'no_such_module_xyz' in str(info.value)
            assert an.children == {}


async def test_unknown_remote_error_type_is_named_not_guessed(runtime_kwargs, tmp_path):
    """An exception type the receiver does not know: ``boxed_type`` is
    ``None`` (never a stand-in such as ``Exception``) and ``boxed_type_str``
    names the remote type."""
    (tmp_path / 'only_the_child_has_me.py').write_text(
        'class PrivateError(Exception):\n    pass\n\n'
        'async def fail() -> None:\n    raise PrivateError("hidden")\n'
    )
    import sys

    sys.path.append(str(tmp_path))  # children inherit the path; we never import it
    try:
        with trio.fail_after(30):
            async with tractor.open_nursery(**runtime_kwargs) as an:
                portal = await an.start_actor('private', enable_modules=['only_the_child_has_me'])
                with pytest.raises(tractor.RemoteActorError) as info:
                    await portal.run_from_ns('only_the_child_has_me', 'fail')
                await an.cancel()
    finally:
        sys.path.remove(str(tmp_path))
    assert 'only_the_child_has_me' not in sys.modules
    assert info.value.boxed_type is None
    assert info.value.boxed_type_str == 'only_the_child_has_me:PrivateError'
    assert 'hidden' in str(info.value)


@pytest.mark.parametrize('full', [False, True], ids=['trimmed', 'full'])
async def test_remote_traceback_starts_at_user_code(runtime_kwargs, monkeypatch, full):
    """``tb_str`` leaves out the runtime frames that ran the function (the
    RPC machinery), unless ``TRACTOR_FULL_TRACEBACKS=1`` (children inherit
    the environment)."""
    if full:
        monkeypatch.setenv('TRACTOR_FULL_TRACEBACKS', '1')
    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('tb', enable_modules=FNS)
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(raise_value_error, msg='where')
            await an.cancel()
    tb = info.value.tb_str
    assert 'raise_value_error' in tb and 'ValueError: where' in tb
    assert ('_invoke.py' in tb) is full, tb


async def test_an_error_that_cannot_be_printed_or_is_huge_still_arrives(runtime_kwargs):
    """An exception whose ``__str__`` fails, or whose message is larger
    than a frame may be, reaches the caller as ``RemoteActorError`` (the
    text said or cut), and the actor that raised it keeps serving."""
    from tractor._boxing import MAX_ERROR_TEXT

    with trio.fail_after(30):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('raiser', enable_modules=FNS)
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(fns.raise_unprintable)
            assert info.value.type_name == 'Unprintable'
            assert 'str() of the Unprintable failed' in info.value.msg
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(fns.raise_huge, size=70 << 20)  # past the 64 MiB frame
            assert info.value.boxed_type is ValueError
            assert len(info.value.msg) < MAX_ERROR_TEXT + 100
            assert info.value.msg.endswith('more characters cut]')
            assert (await portal.run(fns.whoami))['name'] == 'raiser'
            await an.cancel()
