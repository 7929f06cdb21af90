"""Using asyncio libraries from a trio program: an "infected" child actor
runs an asyncio event loop as its host with trio as a guest, so its trio
tasks (the runtime, RPC, this module's context) drive asyncio code through
``tractor.to_asyncio``.

Here the asyncio "library" is the standard library's own streams: an
upper-casing ``asyncio.start_server`` server and an ``asyncio.open_connection``
client, bridged to the parent's stream by a ``@tractor.context``.

    python examples/asyncio_echo.py
"""

import asyncio

import trio

import tractor
from tractor import to_asyncio

# -- asyncio code, as any asyncio library would have it ----------------------


async def aio_nap(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f'slept {seconds}s in {type(asyncio.get_running_loop()).__name__}'


async def aio_shout_server(chan: to_asyncio.LinkedTaskChannel) -> None:
    """Serve upper-cased echoes; hand the trio side the port, then serve
    until cancelled (when the trio side leaves its block)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    async with server:
        chan.started_nowait(server.sockets[0].getsockname()[1])
        await server.serve_forever()


async def aio_client(chan: to_asyncio.LinkedTaskChannel, port: int) -> None:
    """Send each line the trio side gives us, hand back the answer."""
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    chan.started_nowait(f'connected to port {port}')
    try:
        while True:
            writer.write((await chan.get()).encode() + b'\n')
            await writer.drain()
            chan.send_nowait((await reader.readline()).decode().rstrip('\n'))
    finally:
        writer.close()


# -- trio code in the infected child: what the parent calls ------------------


async def nap(seconds: float) -> str:
    return await to_asyncio.run_task(aio_nap, seconds=seconds)


@tractor.context
async def shout(ctx: tractor.Context) -> None:
    async with (
        to_asyncio.open_channel_from(aio_shout_server) as (port, _server),
        to_asyncio.open_channel_from(aio_client, port=port) as (hello, client),
    ):
        await ctx.started(hello)
        async with ctx.open_stream() as stream:
            async for text in stream:
                await client.send(text)
                await stream.send(await client.receive())


# -- the parent: a plain trio program ----------------------------------------


async def main() -> None:
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('shouter', enable_modules=[__name__], infect_asyncio=True)
        print('asyncio says:', await portal.run(nap, seconds=0.1))
        async with portal.open_context(shout) as (ctx, hello):
            print('shouter:', hello)
            async with ctx.open_stream() as stream:
                for word in ('hello', 'from', 'trio'):
                    await stream.send(word)
                    print(word, '->', await stream.receive())
        await portal.cancel_actor()


if __name__ == '__main__':
    trio.run(main)
