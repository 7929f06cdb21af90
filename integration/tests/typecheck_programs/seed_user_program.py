import trio

import tractor


async def greet(who: str) -> str:
    return f'hello {who}'


@tractor.context
async def counter(ctx: tractor.Context, start: int) -> int:
    await ctx.started(start)
    async with ctx.open_stream() as stream:
        async for x in stream:
            await stream.send(x + 1)
    return start


async def main() -> None:
    async with tractor.open_nursery(registry_addrs=[('127.0.0.1', 1616)], loglevel='info') as an:
        portal: tractor.Portal = await an.start_actor('greeter', enable_modules=[__name__])
        text: str = await portal.run(greet, who='world')
        print(text)
        async with portal.open_context(counter, start=1) as (ctx, first):
            async with ctx.open_stream() as stream:
                await stream.send(1)
                print(await stream.receive())
        async with tractor.find_actor('greeter') as found:
            assert found is not None
        async with tractor.wait_for_actor('greeter') as waited:
            print(waited.channel.raddr)
        async with tractor.get_registry() as reg:
            print(reg)
        await an.cancel()
    async with tractor.open_actor_cluster(modules=[__name__], count=2) as portals:
        for name, p in portals.items():
            print(name, p.channel.aid)
    async with tractor.trionics.collapse_eg():
        pass
    tractor.log.get_console_log('INFO')
    print(tractor.discovery.mk_maddr(('127.0.0.1', 1616)))


if __name__ == '__main__':
    trio.run(main)
