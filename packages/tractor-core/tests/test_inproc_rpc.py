"""The in-process tier: calls, the router and ``_invoke`` over the memory
transport, with no process spawned.

A root actor serving only ``tractor_testsupport.memory`` calls itself through
a channel it dialed to its own listener, so every request and reply crosses
a real ``Channel`` (framing, authentication, routing) on its generic
trio-stream path.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import pytest
import trio
import trio.testing

import tractor
import tractor_core_inproc_fns as fns
from tractor import _msg
from tractor._dial import HANDSHAKE_TIMEOUT, handshake
from tractor._exceptions import type_name
from tractor._ipc import Channel
from tractor_testsupport import memory

MODS = [fns.__name__]
#: every test starts from fresh in-process state (see tractor_core_inproc_fns.reset)
pytestmark = pytest.mark.usefixtures('fresh_inproc_fns')


async def test_both_ends_take_the_generic_stream_path():
    """The channel under test is not a socket: the dialed end and the
    accepted end both do their I/O through the trio stream (the path TLS
    and any non-socket transport take), never the direct socket writes."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            chan = portal.channel
            assert chan.raddr is not None and chan.raddr.proto_key == 'memory'
            assert fns.describe(chan) == {'direct': False, 'stream': 'StapledStream'}
            assert chan.session is not None  # authenticated, batches checked
            assert await portal.run(fns.channel_path) == {
                'direct': False,
                'stream': 'StapledStream',
            }
    assert not memory._listeners  # the listener went with the runtime


async def test_plain_calls_async_sync_and_values():
    value = {'bytes': b'\x00\xff' * 1000, 'nested': [1, [2.5, None, 'x']], 'big': 1 << 62}
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            assert await portal.run(fns.add, x=2, y=3) == 5
            assert await portal.run(fns.sync_mul, x=4, y=5) == 20
            assert await portal.run(fns.echo, value=value) == value
            assert await portal.run_from_ns(fns.__name__, 'add', x=1, y=1) == 2
            assert await portal.run(fns.echo, value=None) is None


async def test_concurrent_calls_on_one_channel_are_routed_by_call_id():
    """Replies arriving out of order reach their own callers."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            results: dict[str, str] = {}

            async def call(key: str) -> None:
                results[key] = await portal.run(fns.wait_for, key=key)

            async with trio.open_nursery() as tn:
                for key in ('a', 'b', 'c'):
                    tn.start_soon(call, key)
                    await fns.event(f'{key}:running').wait()
                for key in ('c', 'a', 'b'):  # answered in another order
                    fns.event(key).set()
            assert results == {'a': 'a', 'b': 'b', 'c': 'c'}


async def test_a_plain_call_runs_in_a_task_named_for_it():
    """The channel's reader runs a plain call itself: the task carries the
    call's name meanwhile (log lines, task dumps), and reading goes on in
    another task (the concurrent calls above)."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            assert await portal.run(fns.task_name) == f'{fns.__name__}:task_name'
            assert await portal.run(fns.add, x=1, y=2) == 3


async def test_each_plain_call_has_its_own_context():
    """What a call sets in a context variable is gone for the next call on
    the same channel, as it would be with a task per call."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            assert await portal.run(fns.swap_var, value='first') == 'unset'
            assert await portal.run(fns.swap_var, value='second') == 'unset'


async def test_teardown_cancels_running_plain_calls_and_waits_for_them():
    """A plain call in flight is an RPC like any other: shutting the actor
    down cancels it, and the runtime is not done before the call is, even
    when its cleanup takes a while."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            caught: list[BaseException] = []
            done: list[bool] = []

            async def in_flight() -> None:
                try:
                    await portal.run(fns.clean_up_slowly, key='k')
                except tractor.ContextCancelled as err:
                    caught.append(err)

            async def rpc_done() -> None:
                await actor._rpc_done()
                done.append(True)

            async with trio.open_nursery() as tn:
                tn.start_soon(in_flight)
                await fns.event('k:running').wait()
                actor.cancel_soon(requester=('someone', 'x'))
                await fns.event('k:cleaning').wait()
                tn.start_soon(rpc_done)
                await trio.testing.wait_all_tasks_blocked()
                assert not done  # the call is still cleaning up
                fns.event('k:release').set()
            assert done and fns.SEEN['k'] == 'cleaned'
            assert len(caught) == 1 and caught[0].canceller == ('someone', 'x')


async def test_errors_are_boxed_with_origin_and_traceback():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(fns.raise_value_error, msg='boom')
            err = info.value
            assert err.boxed_type is ValueError
            assert 'boom' in str(err)
            assert err.src_uid == actor.uid
            assert 'raise_value_error' in err.tb_str
            # an unencodable return value fails the call, not the channel
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(fns.return_unencodable)
            assert info.value.boxed_type is TypeError
            assert await portal.run(fns.add, x=1, y=2) == 3


@pytest.mark.parametrize(
    'ns, func, match',
    [
        ('os', 'getcwd', 'not enabled'),
        (fns.__name__, '_private', 'private'),
        (fns.__name__, 'getcwd', 'is defined in'),
        (fns.__name__, '__init__', 'not a function name'),
    ],
)
async def test_the_allowlist_refuses_with_a_typed_error(ns, func, match):
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            with pytest.raises(tractor.RemoteActorError, match=match) as info:
                await portal.run_from_ns(ns, func)
            assert info.value.boxed_type is tractor.ModuleNotExposed


async def test_invoke_checks_the_call_kind_against_the_target():
    """``_invoke`` refuses a context function called as a plain one (the
    caller's own check is bypassed by naming it)."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            with pytest.raises(tractor.RemoteActorError, match='open_context') as info:
                await portal.run_from_ns(fns.__name__, 'started_then_return', value=1)
            assert info.value.boxed_type is TypeError


async def test_runtime_methods_ping():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            assert tuple(await portal.run_from_ns('self', 'ping')) == actor.uid


# -- the router, driven by hand over a raw channel --------------------------------


async def _raw_channel(actor) -> Channel:
    """A channel to ``actor``'s memory listener that this test drives by
    hand (the handshake done, nobody routing its messages)."""
    addr = actor.listen_addrs[0]
    chan = Channel(await addr.transport.connect(addr), raddr=addr, initiator=True)
    aid = _msg.Aid(name='raw', uuid=str(uuid.uuid4()), pid=os.getpid())
    await handshake(chan, aid, HANDSHAKE_TIMEOUT)
    return chan


async def test_router_refuses_bad_requests_and_keeps_serving():
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, _portal):
            async with await _raw_channel(actor) as chan:
                # a stream window out of range: a typed refusal for that cid
                await chan.send(
                    _msg.Start(
                        cid=7,
                        ns=fns.__name__,
                        func='add',
                        kwargs={'x': 1, 'y': 1},
                        kind='ctx',
                        window=1 << 20,
                    )
                )
                reply = await chan.recv()
                assert isinstance(reply, _msg.Error) and reply.cid == 7
                assert reply.type_str == type_name(tractor.MsgTypeError)
                assert 'window' in reply.message

                # a call id still in use: refused, the first call unharmed
                await chan.send(
                    _msg.Start(cid=9, ns=fns.__name__, func='wait_forever', kwargs={'key': 'k'})
                )
                await fns.event('k:running').wait()
                await chan.send(_msg.Start(cid=9, ns=fns.__name__, func='add', kwargs={}))
                reply = await chan.recv()
                assert isinstance(reply, _msg.Error) and 'already in use' in reply.message

                # messages for no context are dropped, not fatal
                await chan.send(_msg.Yield(cid=12345, pld=1))
                await chan.send(_msg.Credit(cid=12345, n=1))

                # a Cancel reaches the running call, which answers cancelled
                await chan.send(_msg.Cancel(cid=9))
                reply = await chan.recv()
                assert isinstance(reply, _msg.Error) and reply.cid == 9
                assert reply.type_str == type_name(tractor.ContextCancelled)
                assert fns.SEEN['k'] == 'cancelled'

                await chan.send(_msg.Start(cid=11, ns='self', func='ping', kwargs={}))
                reply = await chan.recv()
                assert isinstance(reply, _msg.Return) and reply.cid == 11
                assert tuple(_msg.decode_pld(reply.pld)) == actor.uid


async def test_a_call_that_cancels_itself_before_a_checkpoint_returns_and_the_reader_reads_on():
    """A plain call run by the channel's reader shares the reader's cancel
    scope. One that cancels itself (here: every RPC of its actor) and
    returns before any checkpoint has finished, as a task would have: its
    result goes out, and the reader serves the next request."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (_actor, portal):
            assert await portal.run(fns.cancel_own_rpcs) == 'returned'
            assert await portal.run(fns.add, x=2, y=3) == 5
            assert await portal.run(fns.cancel_own_rpcs) == 'returned'
            assert await portal.run(fns.echo, value='still served') == 'still served'


@pytest.mark.parametrize(
    ('func', 'reply_type'),
    [
        # the cancel as a group of Cancelled: answered cancelled
        ('wait_in_a_nursery', tractor.ContextCancelled),
        # a real error besides it: that error is the answer, as leaving a
        # cancel scope keeps what is not a Cancelled
        ('fail_when_cancelled', ExceptionGroup),
    ],
)
async def test_a_cancelled_call_that_waited_answers_and_the_actor_serves_on(func, reply_type):
    """A plain call cancelled while it waits (in the reader's task, which it
    kept) answers as a task's would have; the connection and the actor's
    service tasks (contexts) are served on."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with await _raw_channel(actor) as chan:
                await chan.send(_msg.Start(cid=3, ns=fns.__name__, func=func, kwargs={'key': 'k'}))
                await fns.event('k:running').wait()
                await chan.send(_msg.Cancel(cid=3))
                reply = await chan.recv()
                assert isinstance(reply, _msg.Error) and reply.cid == 3
                assert reply.type_str == type_name(reply_type)
                await chan.send(
                    _msg.Start(cid=5, ns=fns.__name__, func='add', kwargs={'x': 1, 'y': 2})
                )
                reply = await chan.recv()
                assert isinstance(reply, _msg.Return) and reply.cid == 5
                assert _msg.decode_pld(reply.pld) == 3
            async with portal.open_context(fns.started_then_return, value=7) as (ctx, first):
                assert first == 7
                assert await ctx.wait_for_result() == {'side': 'callee', 'value': 7}


async def test_router_drops_a_connection_that_breaks_the_protocol():
    """A second ``Hello`` is not valid after the handshake: the actor drops
    that connection (and only that one)."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            async with await _raw_channel(actor) as chan:
                await chan.send(_msg.Hello(aid=_msg.Aid(name='x', uuid='y', pid=1), addrs=[]))
                with pytest.raises(tractor.TransportClosed):
                    await chan.recv()
            assert await portal.run(fns.add, x=1, y=1) == 2


async def test_a_dialed_channel_is_a_peer_at_once_and_can_close_at_once(caplog):
    """``Actor.connect`` returns a channel that is already a served peer
    (found by uid, sends go out) without waiting for its reader task to
    start; closing it before that task ran ends it quietly."""
    caplog.set_level('WARNING', logger='tractor')
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            for _ in range(20):
                chan = await actor.connect(actor.listen_addrs[0])
                assert chan in actor.get_peer_channels(uid=actor.uid)
                await chan.aclose()
            chan = await actor.connect(actor.listen_addrs[0])
            assert await tractor.Portal(chan).run(fns.echo, value=7) == 7
            await chan.aclose()
            await trio.testing.wait_all_tasks_blocked()
            # every closed one is gone (both ends: it dialed itself); the
            # portal's connection stays, dialed and accepted end
            chans = actor._peers[actor.uid]
            assert len(chans) == 2 and portal.channel in chans
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_replies_to_pipelined_calls_share_writes():
    """Calls that arrive together (64 callers on one portal) are answered
    together: the replies to what one read brought in go out in a few
    writes, not one write each, and every caller gets its own answer."""
    with trio.fail_after(10):
        async with memory.open_loopback(enable_modules=MODS) as (actor, portal):
            await portal.run(fns.count_writes)
            got: dict[int, Any] = {}

            async def call(i: int) -> None:
                got[i] = await portal.run(fns.echo, value=i)

            async with trio.open_nursery() as tn:
                for i in range(64):
                    tn.start_soon(call, i)
            assert got == {i: i for i in range(64)}
            assert fns.SEEN['writes'] <= 8, fns.SEEN['writes']
            # a lone call is still answered at once (written through)
            fns.SEEN['writes'] = 0
            assert await portal.run(fns.echo, value='alone') == 'alone'
            assert fns.SEEN['writes'] == 1
