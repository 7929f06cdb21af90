"""tractor demo: a word-count service fed by a pool of worker actors.

Run it with ``uv run python scripts/demo.py``. It boots a root actor on the
embedded defaults (it becomes the registrar at 127.0.0.1:1616), starts a
long-lived ``tally`` service, fans a text out to a cluster of workers that
find the service *by name* and report into it, then streams the top words
back out of the service through a context, and tears everything down.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import partial

import trio

import tractor

TEXT = """
Structured concurrency means every task has a parent that waits for it.
Actors are processes; a nursery of actors waits for its children, and an
error in a child cancels its siblings and reaches the parent. A process
tree that obeys structured concurrency leaves no zombies behind: every
child is reaped, every error is seen, every cancel reaches every task.
""".split()

_tally: Counter[str] = Counter()


# -- the `tally` service ----------------------------------------------------
async def add_counts(counts: dict[str, int], worker: str) -> int:
    """Merge one worker's counts; returns the running total of words."""
    _tally.update(counts)
    print(f'  tally  <- {sum(counts.values()):2d} words from {worker}')
    return sum(_tally.values())


@tractor.context
async def top_words(ctx: tractor.Context, n: int) -> int:
    """Stream the ``n`` most common words, one ``(word, count)`` at a time."""
    await ctx.started(len(_tally))
    async with ctx.open_stream() as stream:
        for word, count in _tally.most_common(n):
            await stream.send([word, count])
    return sum(_tally.values())


# -- the workers ------------------------------------------------------------
async def count_chunk(words: list[str]) -> int:
    """Count a chunk and report it to whoever is registered as `tally`."""
    me = tractor.current_actor()
    counts = Counter(w.strip('.,;:').lower() for w in words)
    async with tractor.find_actor('tally', raise_on_none=True) as tally:
        total = await tally.run(add_counts, counts=dict(counts), worker=me.name)
    print(f'  {me.name} (pid {os.getpid()}) counted {len(words)} words; tally has {total}')
    return len(words)


async def main(workers: int = 3) -> None:
    async with tractor.open_nursery() as an:
        actor = tractor.current_actor()
        print(
            f'root {actor.uid[0]!r} serves on {actor.accept_addrs}, registrar: {actor.is_registrar}'
        )
        tally = await an.start_actor('tally', enable_modules=[__name__])

        chunk = -(-len(TEXT) // workers)
        async with tractor.open_actor_cluster(
            modules=[__name__], count=workers, names=[f'counter_{i}' for i in range(workers)]
        ) as pool:
            print(f'cluster up: {sorted(pool)}')
            async with trio.open_nursery() as tn:
                for i, portal in enumerate(pool.values()):
                    tn.start_soon(
                        partial(portal.run, count_chunk, words=TEXT[i * chunk : (i + 1) * chunk])
                    )

        async with tally.open_context(top_words, n=5) as (ctx, distinct):
            print(f'top 5 of {distinct} distinct words:')
            async with ctx.open_stream() as stream:
                async for word, count in stream:
                    print(f'  {count:2d}  {word}')
        print(f'total words counted: {await ctx.wait_for_result()}')
        await tally.cancel_actor()
    print('all actors exited')


if __name__ == '__main__':
    trio.run(main)
