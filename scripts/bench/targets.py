"""Functions the benchmarked actors serve (``enable_modules=['targets']``)."""

from __future__ import annotations

import time

import tractor


async def noop(data: bytes | None = None) -> None:
    """The call every round-trip figure makes (``data``: the 10 KiB case)."""
    return None


@tractor.context
async def sink(ctx: tractor.Context) -> int:
    """Consume a stream; returns how many messages arrived."""
    await ctx.started()
    count = 0
    async with ctx.open_stream() as stream:
        async for _ in stream:
            count += 1
    return count


@tractor.context
async def echo(ctx: tractor.Context) -> None:
    """Send every stream message straight back."""
    await ctx.started()
    async with ctx.open_stream() as stream:
        async for msg in stream:
            await stream.send(msg)


async def fill_registry(n: int, in_flight: int = 50) -> None:
    """Register ``n`` more entries (``filler-<i>``, at this actor's own
    addresses: never dialed) with this actor's registrar, over its one
    connection to it."""
    import uuid

    import trio

    from tractor.discovery._client import client

    actor = tractor.current_actor()
    cli = client(actor)
    reg = actor.registry_addrs[0]
    addrs = [a.to_wire() for a in actor.listen_addrs]
    limit = trio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with limit:
            await cli.call(
                reg, 'register_actor', uid=[f'filler-{i}', uuid.uuid4().hex], addrs=addrs
            )

    async with trio.open_nursery() as tn:
        for i in range(n):
            tn.start_soon(one, i)


async def lookup_samples(name: str, n: int, warmup: int = 3) -> dict[str, list[float]]:
    """Time ``n`` rounds of each lookup of ``name`` from this actor, which
    holds no channel to ``name``: every ``find_actor`` dials it afresh."""
    actor = tractor.current_actor()
    out: dict[str, list[float]] = {'find_actor': [], 'query_actor': [], 'wait_for_actor': []}
    for i in range(warmup + n):
        if actor.get_peer_channels(name):
            raise RuntimeError(f'{actor.name} is already connected to {name!r}')
        t0 = time.perf_counter()
        async with tractor.find_actor(name) as portal:
            assert portal is not None, f'{name!r} is not registered'
        t1 = time.perf_counter()
        async with tractor.query_actor(name) as (addr, _reg):
            assert addr is not None, f'{name!r} is not registered'
        t2 = time.perf_counter()
        async with tractor.wait_for_actor(name) as portal:
            pass
        t3 = time.perf_counter()
        if i >= warmup:
            out['find_actor'].append(t1 - t0)
            out['query_actor'].append(t2 - t1)
            out['wait_for_actor'].append(t3 - t2)
    return out
