"""Typed payloads: a context whose every payload must be a ``Point``.

``@tractor.context(pld_spec=Point | None)`` declares the type; a value of
another type is refused where it is sent (``MsgTypeError``, nothing goes
out), and received payloads arrive decoded as ``Point`` instances.
"""

import msgspec
import trio

import tractor


class Point(msgspec.Struct):
    x: int
    y: int


@tractor.context(pld_spec=Point | None)
async def mirror(ctx: tractor.Context) -> None:
    try:
        await ctx.started({'x': 'not', 'y': 'a point'})
    except tractor.MsgTypeError as err:
        print(f'callee: refused before sending: {err}', flush=True)
    await ctx.started(Point(0, 0))  # nothing was sent: started() can be retried
    async with ctx.open_stream() as stream:
        async for p in stream:
            assert type(p) is Point
            await stream.send(Point(-p.x, -p.y))


async def main() -> None:
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('mirror', enable_modules=[__name__])
        async with portal.open_context(mirror) as (ctx, origin), ctx.open_stream() as stream:
            print('caller: started with', origin, flush=True)
            for i in range(1, 4):
                await stream.send(Point(i, 2 * i))
                print('caller: mirrored', await stream.receive(), flush=True)
            try:
                await stream.send((1, 2))
            except tractor.MsgTypeError:
                print('caller: a tuple is no Point, refused here', flush=True)
        await portal.cancel_actor()


if __name__ == '__main__':
    trio.run(main)
