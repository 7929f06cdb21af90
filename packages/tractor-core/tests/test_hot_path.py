"""The lean hot path's building blocks, in one process: a context's
``Inbox``, a plain call's ``Reply``, and a channel's direct socket writes
(cancellation still lands, order is kept, a send that has to wait yields)."""

import pytest
import trio
import trio.testing

from tractor import _msg
from tractor._call import Reply
from tractor._exceptions import TransportClosed
from tractor._inbox import Inbox
from tractor._ipc import Channel


async def test_inbox_fifo_bound_and_close():
    box: Inbox[int] = Inbox(2)
    assert box.get_nowait() is None
    assert box.put(1) and box.put(2)
    assert not box.put(3)  # full: refused, nothing buffered
    box.grow(3)
    assert box.put(3)
    box.close()
    assert box.put(4)  # ignored once closed
    assert [await box.get() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(trio.EndOfChannel):
        await box.get()


async def test_inbox_hands_items_to_waiters_in_order():
    box: Inbox[str] = Inbox(8)
    got = []

    async def taker(tag: str) -> None:
        got.append((tag, await box.get()))

    async with trio.open_nursery() as tn:
        tn.start_soon(taker, 'a')
        await trio.testing.wait_all_tasks_blocked()
        tn.start_soon(taker, 'b')
        await trio.testing.wait_all_tasks_blocked()
        box.put('x')
        box.put('y')
    assert sorted(got) == [('a', 'x'), ('b', 'y')]  # the oldest taker got the first item


async def test_inbox_get_is_cancellable_and_close_wakes_takers():
    box: Inbox[int] = Inbox(1)
    with trio.move_on_after(0.01) as cs:
        await box.get()
    assert cs.cancelled_caught
    assert box.put(1) and await box.get() == 1  # the cancelled taker left no trace

    async def take() -> None:
        with pytest.raises(trio.EndOfChannel):
            await box.get()

    async with trio.open_nursery() as tn:
        tn.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        box.close()


async def test_reply_wakes_the_caller_and_is_cancellable():
    reply = Reply(chan=None, cid=1)  # type: ignore[arg-type]  # no channel: none is used
    with trio.move_on_after(0.01) as cs:
        await reply.wait()
    assert cs.cancelled_caught and not reply.done

    async def answer() -> None:
        await trio.testing.wait_all_tasks_blocked()
        reply._deliver(_msg.Credit(cid=1, n=1))  # not a reply: ignored
        reply._deliver(_msg.Return(cid=1, pld=b'\xa2ok'))  # msgpack 'ok'

    async with trio.open_nursery() as tn:
        tn.start_soon(answer)
        assert await reply.receive() == 'ok'
    reply._lost(TransportClosed('gone'))  # after the reply: no effect
    assert reply.error is None


async def _socket_channel() -> tuple[Channel, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return Channel(trio.SocketStream(a)), trio.SocketStream(b)


async def test_direct_send_keeps_order_and_cancellation():
    chan, peer = await _socket_channel()
    async with chan, peer:
        with trio.CancelScope() as cs:
            cs.cancel()
            with pytest.raises(trio.Cancelled):
                await chan.send(_msg.Stop(cid=1))  # a cancelled send sends nothing
        for cid in range(3):
            await chan.send(_msg.Stop(cid=cid))
        reader = Channel(peer)
        assert [(await reader.recv()).cid for _ in range(3)] == [0, 1, 2]


async def test_send_that_must_wait_yields_and_sends_whole():
    chan, peer = await _socket_channel()
    async with chan, peer:
        big = _msg.Yield(cid=1, pld=b'x' * (4 << 20))  # more than a socket buffer
        got = []

        async def read() -> None:
            reader = Channel(peer)
            got.append(len((await reader.recv()).pld))

        async with trio.open_nursery() as tn:
            tn.start_soon(read)  # only runs if the send yields while it waits
            await chan.send(big)
        assert got and got[0] > 4 << 20


async def test_a_closed_channel_never_reads_its_socket_again():
    """A reader that starts after its channel was closed here (a successor
    reader task, a dialed channel closed before its reader ran) gets
    ``TransportClosed`` at once, never a wait on a descriptor that may
    belong to another socket by then."""
    chan, peer = await _socket_channel()
    async with peer:
        writer = Channel(peer)
        await writer.send(_msg.Stop(cid=1))
        assert (await chan.recv()).cid == 1  # a short read: the socket is drained
        await chan.aclose()
        with trio.fail_after(5):
            with pytest.raises(TransportClosed, match='is closed'):
                await chan.recv()


class _Passes(trio.abc.Instrument):
    """Counts run-loop iterations (each one waits for I/O, maybe 0 s)."""

    def __init__(self) -> None:
        self.passes = 0

    def before_io_wait(self, timeout: float) -> None:
        self.passes += 1


async def test_handshake_frames_that_are_there_cost_no_scheduler_pass():
    """The preamble writes straight into the socket and reads what is
    already there without a trip through the scheduler, and a listener's
    verdict goes out with its ``Hello``, in one write: a whole handshake
    between two channels in one process takes 5 or 6 run-loop iterations
    (8 when every preamble read and write was a trio checkpoint and the
    verdict a write of its own)."""
    from tractor._dial import handshake
    from tractor.plugin import wrap_address

    a, b = trio.socket.socketpair()  # unix sockets: the address is a UDS one
    addr = wrap_address(('/nonexistent', 'peer.sock'))
    dialer = Channel(trio.SocketStream(a), raddr=addr, initiator=True)
    listener = Channel(trio.SocketStream(b), laddr=addr)
    aid = _msg.Aid(name='x', uuid='u', pid=1)
    count = _Passes()
    trio.lowlevel.add_instrument(count)
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as tn:
                tn.start_soon(handshake, dialer, aid, 5.0, [], b's' * 32)
                tn.start_soon(handshake, listener, aid, 5.0, [addr], b's' * 32)
    finally:
        trio.lowlevel.remove_instrument(count)
    async with dialer, listener:
        assert dialer.aid == listener.aid == aid
        assert count.passes <= 6, count.passes


async def test_a_read_cancelled_mid_frame_keeps_what_came():
    """A task reading for its reply can be cancelled while a large frame is
    half here: the bytes that came stay for whoever reads next, and the
    frame arrives whole."""
    chan, peer = await _socket_channel()
    async with chan, peer:
        frame = bytearray()
        _msg.append_frame(_msg.Yield(cid=1, pld=b'y' * (300 << 10)), frame)
        half = len(frame) // 2  # several reads' worth: the read waits for more
        await peer.send_all(frame[:half])
        with trio.fail_after(5):
            with trio.CancelScope() as cs:

                async def cancel_once_waiting() -> None:
                    await trio.testing.wait_all_tasks_blocked()
                    cs.cancel()

                async with trio.open_nursery() as tn:
                    tn.start_soon(cancel_once_waiting)
                    await chan.recv()
            assert cs.cancelled_caught
            await peer.send_all(frame[half:])
            msg = await chan.recv()
        assert msg.cid == 1 and len(_msg.decode_pld(msg.pld)) == 300 << 10


async def test_a_waiting_caller_reads_its_own_reply(runtime_kwargs):
    """Once the channel's reader has stepped aside, a caller waiting for its
    reply reads the channel itself (``Actor._lead``): no task is woken for
    the reply, and with both ends in one process a ``portal.run`` round trip
    takes the raw ping-pong's two run-loop passes (three when the reader
    read every reply and woke its caller for the next pass)."""
    import tractor
    import tractor_core_testfns as fns

    with trio.fail_after(30):
        async with tractor.open_root_actor(
            **runtime_kwargs, enable_modules=[fns.__name__]
        ) as actor:
            async with tractor.Portal(await actor.connect(actor.listen_addrs[0])) as portal:
                for _ in range(20):  # the reader steps aside after a reply
                    await portal.run(fns.nothing)
                count = _Passes()
                trio.lowlevel.add_instrument(count)
                try:
                    for _ in range(200):
                        await portal.run(fns.nothing)
                finally:
                    trio.lowlevel.remove_instrument(count)
                assert count.passes <= 2.1 * 200, count.passes / 200
                # a request coming in while the caller reads is the reader's
                # (handed over in order); the calls keep being answered
                for x in range(30):
                    assert await portal.run(fns.add_over_the_callers_channel, x=x) == x + 1
                    assert await portal.run(fns.add, x=x, y=2) == x + 2


async def test_a_stream_receiver_reads_its_own_messages(runtime_kwargs):
    """A stream's ``receive()`` that finds its inbox empty reads the channel
    itself as a waiting caller does (``Actor._lead``): a ping-pong over a
    context stream with both ends in one process takes two run-loop passes
    per round trip (four when each side's reader woke its receiver)."""
    import tractor
    import tractor_core_testfns as fns

    with trio.fail_after(30):
        async with tractor.open_root_actor(
            **runtime_kwargs, enable_modules=[fns.__name__]
        ) as actor:
            async with (
                tractor.Portal(await actor.connect(actor.listen_addrs[0])) as portal,
                portal.open_context(fns.pong_server, data=1) as (ctx, first),
                ctx.open_stream() as stream,
            ):
                assert first == 2
                for _ in range(20):  # the readers step aside after a delivery
                    await stream.send('ping')
                    assert await stream.receive() == 'pong'
                count = _Passes()
                trio.lowlevel.add_instrument(count)
                try:
                    for _ in range(200):
                        await stream.send('ping')
                        assert await stream.receive() == 'pong'
                finally:
                    trio.lowlevel.remove_instrument(count)
                assert count.passes <= 2.1 * 200, count.passes / 200


async def test_a_caller_cancelled_while_it_reads_hands_the_reading_back(runtime_kwargs):
    """A caller cancelled while it reads the channel for its reply (waiting
    on the socket) hands the reading back as it unwinds: the callee's call
    is cancelled and the channel serves on."""
    import tractor
    import tractor_core_testfns as fns

    with trio.fail_after(30):
        async with tractor.open_root_actor(
            **runtime_kwargs, enable_modules=[fns.__name__]
        ) as actor:
            async with tractor.Portal(await actor.connect(actor.listen_addrs[0])) as portal:
                chan = portal.channel
                for _ in range(20):  # the reader steps aside after a reply
                    await portal.run(fns.nothing)
                leading = []
                with trio.CancelScope() as cs:

                    async def cancel_while_it_reads() -> None:
                        await trio.testing.wait_all_tasks_blocked()
                        leading.append(chan._lead is not None)
                        cs.cancel()

                    async with trio.open_nursery() as tn:
                        tn.start_soon(cancel_while_it_reads)
                        await portal.run(fns.long_sleep, key='lead')
                assert cs.cancelled_caught and leading == [True]
                assert chan._lead is None
                for x in range(10):
                    assert await portal.run(fns.add, x=x, y=1) == x + 1
                assert await portal.run(fns.get_state, key='lead') == 'cancelled'
