"""Contexts and streaming: a long-lived dialog with a worker actor.

The root actor spawns a worker, opens a context on it (a task pair: one task
here, one in the worker) and talks to it over the context's bidirectional
stream, then collects the worker's return value.

Run it from the repository root::

    python examples/streaming_context.py
"""

import trio

import tractor


@tractor.context
async def squarer(ctx: tractor.Context, scale: int) -> int:
    """Runs in the worker: answer every number streamed in with its
    square times ``scale``, until the caller closes the stream."""
    # unblocks the caller's `open_context()` with a first value
    await ctx.started(f'{tractor.current_actor().name} ready, scale={scale}')
    handled = 0
    async with ctx.open_stream() as stream:
        async for x in stream:  # ends when the caller closes its end
            await stream.send(x * x * scale)
            handled += 1
    return handled  # becomes the caller's `ctx.wait_for_result()`


async def main() -> None:
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('squarer', enable_modules=[__name__])

        async with portal.open_context(squarer, scale=2) as (ctx, greeting):
            print(f'worker says: {greeting}')

            async with ctx.open_stream() as stream:
                # one way: requests out ...
                for x in range(5):
                    await stream.send(x)
                    # ... and the other way: answers back
                    print(f'{x} -> {await stream.receive()}')

                # both at once: a feeder task and this task reading; the
                # stream's credit window keeps the feeder at most 256
                # messages ahead of the reader
                async with trio.open_nursery() as tn:

                    async def feed() -> None:
                        for x in range(5, 1000):
                            await stream.send(x)

                    tn.start_soon(feed)
                    total = 0
                    for _ in range(5, 1000):
                        total += await stream.receive()
                print(f'sum of the next 995 answers: {total}')
            # leaving the stream block ended the worker's `async for`

            handled = await ctx.wait_for_result()
            print(f'worker handled {handled} messages')

        await an.cancel()


if __name__ == '__main__':
    trio.run(main)
