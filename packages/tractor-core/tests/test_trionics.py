"""tractor.trionics beyond gather_contexts: broadcast receivers, the shared
context-manager cache, and the small helpers."""

from contextlib import asynccontextmanager

import pytest
import trio

import tractor
from tractor.trionics import (
    Lagged,
    broadcast_receiver,
    is_multi_cancelled,
    maybe_open_context,
    maybe_open_nursery,
    maybe_raise_from_masking_exc,
)

# -- broadcast_receiver -----------------------------------------------------------


async def test_broadcast_every_subscriber_gets_every_value():
    send, recv = trio.open_memory_channel(0)
    base = broadcast_receiver(recv, max_buffer_size=8)
    got: dict[int, list] = {}
    with trio.fail_after(10):
        async with trio.open_nursery() as tn:
            ready = trio.Semaphore(0)

            async def reader(i: int) -> None:
                async with base.subscribe() as sub:
                    ready.release()
                    got[i] = [x async for x in sub]

            for i in range(3):
                tn.start_soon(reader, i)
            for _ in range(3):
                await ready.acquire()
            async with send:
                for x in range(50):
                    await send.send(x)
    assert got == {i: list(range(50)) for i in range(3)}


async def test_broadcast_lagging_subscriber_gets_lagged_and_memory_stays_bounded():
    send, recv = trio.open_memory_channel(100)
    base = broadcast_receiver(recv, max_buffer_size=4)
    with trio.fail_after(10):
        async with base.subscribe() as fast, base.subscribe() as slow:
            for x in range(10):
                send.send_nowait(x)
            assert [await fast.receive() for _ in range(10)] == list(range(10))
            assert len(base._shared.ring) == 4  # never more than the bound
            with pytest.raises(Lagged) as err:
                await slow.receive()
            assert err.value.skipped == 6
            # it goes on from the oldest value still kept
            assert [await slow.receive() for _ in range(4)] == [6, 7, 8, 9]


async def test_broadcast_end_of_channel_reaches_every_subscriber():
    send, recv = trio.open_memory_channel(10)
    base = broadcast_receiver(recv, max_buffer_size=4)
    async with base.subscribe() as a, base.subscribe() as b:
        send.send_nowait(1)
        await send.aclose()
        assert [x async for x in a] == [1]
        assert [x async for x in b] == [1]


def test_broadcast_receiver_checks_its_arguments():
    with pytest.raises(ValueError, match='max_buffer_size'):
        broadcast_receiver(trio.open_memory_channel(0)[1], max_buffer_size=0)
    with pytest.raises(TypeError, match='receive'):
        broadcast_receiver(object(), max_buffer_size=4)


# -- maybe_open_context -------------------------------------------------------------

OPENED: list[str] = []


@asynccontextmanager
async def resource(name: str):
    await trio.sleep(0.01)  # entering takes time: a window for races
    OPENED.append(f'open {name}')
    try:
        yield f'res-{name}'
    finally:
        OPENED.append(f'close {name}')


async def test_maybe_open_context_shares_one_instance(reg_addr, tpt_proto):
    OPENED.clear()
    hits = []
    with trio.fail_after(20):
        async with tractor.open_root_actor(
            registry_addrs=[reg_addr], enable_transports=[tpt_proto]
        ):

            async def user(hold: trio.Event) -> None:
                async with maybe_open_context(resource, kwargs={'name': 'a'}) as (hit, value):
                    hits.append((hit, value))
                    await hold.wait()

            hold = trio.Event()
            async with trio.open_nursery() as tn:
                for _ in range(4):
                    tn.start_soon(user, hold)
                while len(hits) < 4:
                    await trio.sleep(0.005)
                assert OPENED == ['open a']  # entered once
                hold.set()
            # the last user left: it was exited
            assert OPENED == ['open a', 'close a']
            assert sorted(h for h, _ in hits) == [False, True, True, True]
            assert {v for _, v in hits} == {'res-a'}
            # a new user after that opens it afresh
            async with maybe_open_context(resource, kwargs={'name': 'a'}) as (hit, _):
                assert hit is False
    assert OPENED == ['open a', 'close a', 'open a', 'close a']


async def test_maybe_open_context_survives_fast_cancels(reg_addr, tpt_proto):
    """Users cancelled while it opens, or right after joining, corrupt
    nothing: later users still get one working instance."""
    OPENED.clear()
    with trio.fail_after(20):
        async with tractor.open_root_actor(
            registry_addrs=[reg_addr], enable_transports=[tpt_proto]
        ):
            for delay in (0, 0.001, 0.005, 0.02):
                with trio.move_on_after(delay):
                    async with maybe_open_context(resource, kwargs={'name': 'b'}, key='b'):
                        await trio.sleep_forever()
            async with maybe_open_context(resource, kwargs={'name': 'b'}, key='b') as (hit, value):
                assert (hit, value) == (False, 'res-b')
            # every open was closed again
            assert OPENED.count('open b') == OPENED.count('close b')


async def test_maybe_open_context_needs_a_runtime():
    with pytest.raises(tractor.NoRuntime):
        async with maybe_open_context(resource, kwargs={'name': 'c'}):
            pass


# -- helpers -----------------------------------------------------------------------------


async def test_maybe_open_nursery():
    async with trio.open_nursery() as given:
        async with maybe_open_nursery(given) as tn:
            assert tn is given
    async with maybe_open_nursery() as tn:
        assert isinstance(tn, trio.Nursery)


async def test_is_multi_cancelled():
    with trio.CancelScope() as cs:
        try:
            async with trio.open_nursery() as tn:
                tn.start_soon(trio.sleep_forever)
                tn.start_soon(trio.sleep_forever)
                await trio.lowlevel.checkpoint()
                cs.cancel()
                await trio.sleep_forever()
        except BaseExceptionGroup as group:
            assert is_multi_cancelled(group)
            raise
    assert not is_multi_cancelled(BaseExceptionGroup('x', [ValueError()]))
    assert not is_multi_cancelled(ValueError())


async def test_maybe_raise_from_masking_exc_unmasks_the_error():
    with trio.CancelScope() as cs:
        with pytest.raises(KeyError) as err:
            async with maybe_raise_from_masking_exc():
                try:
                    raise KeyError('the real failure')
                finally:
                    cs.cancel()
                    await trio.lowlevel.checkpoint()  # Cancelled masks the KeyError
    assert isinstance(err.value.__cause__, trio.Cancelled)
    # a plain cancel passes through untouched
    with trio.CancelScope() as cs:
        async with maybe_raise_from_masking_exc():
            cs.cancel()
            await trio.lowlevel.checkpoint()
    assert cs.cancelled_caught


@asynccontextmanager
async def never_opens():
    await trio.sleep_forever()
    yield


async def test_maybe_open_context_cancelled_while_entering_does_not_hang(reg_addr, tpt_proto):
    with trio.fail_after(20):
        async with tractor.open_root_actor(
            registry_addrs=[reg_addr], enable_transports=[tpt_proto]
        ):
            with trio.move_on_after(0.05) as cs:
                async with maybe_open_context(never_opens, key='never'):
                    pytest.fail('it opened')
            assert cs.cancelled_caught


@asynccontextmanager
async def fails_while_used():
    async with trio.open_nursery() as tn:

        async def boom() -> None:
            await trio.sleep(0.05)
            raise OSError('the resource broke')

        tn.start_soon(boom)
        yield 'fragile'


async def test_maybe_open_context_that_broke_is_not_handed_out_again(reg_addr, tpt_proto):
    with trio.fail_after(20):
        async with tractor.open_root_actor(
            registry_addrs=[reg_addr], enable_transports=[tpt_proto]
        ):
            for _ in range(2):
                # the broken one is gone after the first round: a new user
                # opens a fresh one (hit is False again)
                with pytest.raises(ExceptionGroup) as err:
                    async with maybe_open_context(fails_while_used, key='fragile') as (hit, _):
                        assert hit is False
                        await trio.sleep(0.2)
                assert err.group_contains(OSError, match='broke')


async def test_broadcast_cancelled_receive_loses_nothing():
    send, recv = trio.open_memory_channel(10)
    base = broadcast_receiver(recv, max_buffer_size=8)
    async with base.subscribe() as a, base.subscribe() as b:
        send.send_nowait(0)
        send.send_nowait(1)
        assert await a.receive() == 0  # pulled: now buffered for b
        with trio.CancelScope() as cs:
            cs.cancel()
            await b.receive()
        assert cs.cancelled_caught
        assert await b.receive() == 0
        assert await b.receive() == 1
