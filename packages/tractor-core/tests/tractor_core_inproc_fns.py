"""RPC targets of the in-process tier (``test_inproc_*.py``).

Caller and callee share one process and one trio run, so a callee reports
what happened to it (it ran, it was cancelled, which channel it came over)
in :data:`SEEN` and signals through :func:`event`, and a test waits on
those conditions instead of guessing with a sleep. :func:`reset` starts each
test afresh (events belong to one trio run).
"""

from __future__ import annotations

from typing import Any

import trio

import tractor
from tractor._invoke import current_channel
from tractor._ipc import Channel

#: what callees report, by key
SEEN: dict[str, Any] = {}
_events: dict[str, trio.Event] = {}


def reset() -> None:
    SEEN.clear()
    _events.clear()


def event(key: str) -> trio.Event:
    """The event named ``key`` (made on first use, by either side)."""
    ev = _events.get(key)
    if ev is None:
        ev = _events[key] = trio.Event()
    return ev


def describe(chan: Channel) -> dict:
    """Which I/O path ``chan`` takes: ``direct`` is the socket fast path."""
    return {'direct': chan._sock is not None, 'stream': type(chan.stream).__name__}


# -- plain calls --------------------------------------------------------------


async def add(x: int, y: int) -> int:
    return x + y


def sync_mul(x: int, y: int) -> int:
    return x * y


async def echo(value: Any) -> Any:
    return value


async def channel_path() -> dict:
    """How the channel this call came over does its I/O."""
    chan = current_channel.get()
    assert chan is not None
    return describe(chan)


def count_writes() -> None:
    """From now on, count the writes of the channel this call came over
    (its far end's replies) in ``SEEN['writes']``."""
    chan = current_channel.get()
    assert chan is not None
    stream = chan.stream
    inner = stream.send_all
    SEEN['writes'] = 0

    async def send_all(data) -> None:
        SEEN['writes'] += 1
        await inner(data)

    stream.send_all = send_all  # type: ignore[method-assign]


async def raise_value_error(msg: str = 'callee failed') -> None:
    raise ValueError(msg)


async def return_unencodable() -> object:
    return object()


async def wait_forever(key: str) -> None:
    """Say it runs, then wait until cancelled; record how it ended."""
    try:
        event(f'{key}:running').set()
        await trio.sleep_forever()
    except trio.Cancelled:
        SEEN[key] = 'cancelled'
        raise
    finally:
        event(f'{key}:ended').set()


async def wait_for(key: str) -> str:
    """Return once the test sets the event ``key``."""
    event(f'{key}:running').set()
    await event(key).wait()
    return key


import contextvars  # noqa: E402

_var: contextvars.ContextVar[str] = contextvars.ContextVar('inproc_var', default='unset')


def swap_var(value: str) -> str:
    """Set a context variable; return what it was (each call's own context)."""
    old = _var.get()
    _var.set(value)
    return old


async def task_name() -> str:
    """The name of the task this call runs in."""
    return trio.lowlevel.current_task().name


async def clean_up_slowly(key: str) -> None:
    """Wait until cancelled, then clean up (shielded) until the test sets
    ``key:release``."""
    try:
        event(f'{key}:running').set()
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            event(f'{key}:cleaning').set()
            await event(f'{key}:release').wait()
            SEEN[key] = 'cleaned'


def _private() -> None:
    """Not callable remotely: its name starts with ``_``."""


from os import getcwd  # noqa: E402,F401  (imported, so not callable remotely)

# -- contexts -------------------------------------------------------------------


@tractor.context
async def started_then_return(ctx: tractor.Context, value: Any) -> dict:
    await ctx.started(value)
    return {'side': ctx.side, 'value': value}


@tractor.context
async def echo_stream(ctx: tractor.Context, greeting: str) -> int:
    """Send a greeting first, then echo every message until the caller
    closes its end; return how many were echoed."""
    await ctx.started(describe(ctx.chan))
    n = 0
    async with ctx.open_stream() as stream:
        await stream.send(greeting)
        async for msg in stream:
            await stream.send(msg)
            n += 1
    return n


@tractor.context
async def produce(ctx: tractor.Context, key: str, n: int) -> dict:
    """After the caller's 'go', send ``n`` values without waiting for the
    reader: count them in ``SEEN[key]``, stop at ``StreamOverrun``."""
    await ctx.started()
    SEEN[key] = 0
    async with ctx.open_stream() as stream:
        assert await stream.receive() == 'go'
        try:
            for i in range(n):
                await stream.send(i)
                SEEN[key] += 1
        except tractor.StreamOverrun:
            return {'sent': SEEN[key], 'overrun': True}
    return {'sent': SEEN[key], 'overrun': False}


@tractor.context
async def fail_after_started(ctx: tractor.Context) -> None:
    await ctx.started()
    await event('fail').wait()
    raise ValueError('callee failed after started')


@tractor.context
async def sleep_in_context(ctx: tractor.Context, key: str) -> None:
    """Start, then wait until cancelled; record it."""
    await ctx.started()
    try:
        event(f'{key}:running').set()
        await trio.sleep_forever()
    except trio.Cancelled:
        SEEN[key] = ('cancelled', ctx.canceller)
        raise


@tractor.context
async def cancel_self(ctx: tractor.Context) -> None:
    await ctx.started()
    await ctx.cancel()
    await trio.sleep_forever()


def cancel_own_rpcs() -> str:
    """Cancel every RPC of this actor, this very call among them, and return
    before reaching a checkpoint: like a task's, the call has finished."""
    tractor.current_actor()._cancel_rpc()
    return 'returned'


async def wait_in_a_nursery(key: str) -> None:
    """Wait until cancelled inside a nursery of its own, whose cancel comes
    out as a group of ``Cancelled``."""
    async with trio.open_nursery() as tn:
        tn.start_soon(trio.sleep_forever)
        event(f'{key}:running').set()
        await trio.sleep_forever()


async def fail_when_cancelled(key: str) -> None:
    """Once cancelled, a child of its nursery fails while unwinding: the
    cancel and a real error come out together."""

    async def child() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError('cleanup failed')

    async with trio.open_nursery() as tn:
        tn.start_soon(child)
        event(f'{key}:running').set()
        await trio.sleep_forever()
