"""
A price feed three ways, with the names users of the established project
reach for:

- ``Portal.open_stream_from()``: a one-way stream from a remote async
  generator;
- ``MsgStream.subscribe()``: several local tasks each get every message of
  one stream;
- ``tractor.trionics.maybe_open_context()``: one feed connection shared by
  every task that asks for it.

Run it: ``python examples/feeds.py``
"""

from contextlib import asynccontextmanager

import trio

import tractor


async def ticks(symbol: str, count: int):
    """An async generator in the feed actor: ``count`` fake prices."""
    for i in range(count):
        yield {'sym': symbol, 'px': 100 + i}
        await trio.sleep(0)


@tractor.context
async def ticker(ctx: tractor.Context, count: int) -> None:
    await ctx.started(tractor.current_actor().name)
    async with ctx.open_stream() as stream:
        await stream.receive()  # the caller's readers are subscribed
        for i in range(count):
            await stream.send(i)


@tractor.context
async def session(ctx: tractor.Context) -> None:
    await ctx.started(tractor.current_actor().name)
    await trio.sleep_forever()


@asynccontextmanager
async def feed_connection(portal: tractor.Portal):
    """What tasks would share: one open session with the feed."""
    async with portal.open_context(session) as (ctx, who):
        yield who
        await ctx.cancel()  # the last user left: end the session quietly


async def main() -> None:
    async with tractor.open_nursery() as an:
        feed = await an.start_actor('feed', enable_modules=[__name__])

        # 1. a stream from a remote async generator
        async with feed.open_stream_from(ticks, symbol='btc', count=3) as stream:
            async for tick in stream:
                print('tick', tick)

        # 2. one stream, three readers, each seeing every message
        async with feed.open_context(ticker, count=3) as (ctx, _):
            async with ctx.open_stream() as stream:
                got: dict[int, list] = {}

                async def reader(i: int, task_status=trio.TASK_STATUS_IGNORED) -> None:
                    async with stream.subscribe() as sub:
                        task_status.started()
                        got[i] = [x async for x in sub]

                async with trio.open_nursery() as tn:
                    for i in range(3):
                        await tn.start(reader, i)
                    await stream.send('go')
        for i in sorted(got):
            print(f'reader {i} got {got[i]}')

        # 3. one shared connection for every task that asks
        async def user(i: int) -> None:
            async with tractor.trionics.maybe_open_context(
                feed_connection, kwargs={'portal': feed}, key='feed'
            ) as (cache_hit, who):
                print(f'user {i}: connected to {who} ({"shared" if cache_hit else "opened"})')
                await trio.sleep(0.1)

        async with trio.open_nursery() as tn:
            for i in range(3):
                tn.start_soon(user, i)

        await an.cancel()


if __name__ == '__main__':
    trio.run(main)
