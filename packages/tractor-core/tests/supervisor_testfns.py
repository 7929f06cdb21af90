"""Functions the supervisor tests run inside subactors (kept apart from the
test module so a child imports only this, not pytest)."""

from __future__ import annotations

import os

import trio

import tractor


async def pid() -> int:
    return os.getpid()


def exit_now(code: int = 3) -> None:
    """The process ends on the spot (no cancel, no goodbye)."""
    os._exit(code)


def exit_cleanly() -> None:
    """``sys.exit(0)`` in an RPC task: the actor shuts down on its own,
    with exit code 0 (not a cancel)."""
    raise SystemExit(0)


async def fail(msg: str = 'boom') -> None:
    raise ValueError(msg)


async def sleep_forever() -> None:
    await trio.sleep_forever()


async def flaky(path: str, failures: int) -> int:
    """Raise on the first ``failures`` runs (counted in ``path`` across
    incarnations), then return the number of the run that succeeded."""
    with open(path, 'a+') as f:
        f.seek(0)
        run = len(f.read())
        f.write('x')
    if run < failures:
        raise RuntimeError(f'run {run} fails')
    return run


async def fail_once_then_hold(path: str) -> None:
    """The first run raises; later runs (the restarts) hold forever."""
    first = not os.path.exists(path)
    with open(path, 'a'):
        pass
    if first:
        raise RuntimeError('first run fails')
    await trio.sleep_forever()


async def cancel_peer(name: str) -> bool:
    """Look ``name`` up through the registrar and ask it to cancel: a cancel
    that its supervisor did not ask for."""
    async with tractor.find_actor(name, raise_on_none=True) as portal:
        return await portal.cancel_actor()


async def lookup_pid(name: str) -> int:
    """The pid of the actor a lookup by ``name`` reaches (from another actor)."""
    async with tractor.find_actor(name, raise_on_none=True) as portal:
        return await portal.run(pid)


async def supervise_dying(max_restarts: int) -> None:
    """A nested supervisor whose child keeps dying: it gives up and raises
    ``TooManyRestarts`` here, which ends this actor's function."""
    async with tractor.open_supervisor(max_restarts=max_restarts, within=60) as sup:
        await sup.run_in_actor(exit_now, name='grandchild', code=5)


async def fail_on_cue_once(cue: str, done: str) -> None:
    """Wait until ``cue`` exists, then raise, once: a re-run (``done``
    exists) holds forever instead."""
    if os.path.exists(done):
        await trio.sleep_forever()
    while not os.path.exists(cue):
        await trio.sleep(0.01)
    with open(done, 'a'):
        pass
    raise RuntimeError('failed on cue')


@tractor.context
async def started_pid(ctx: tractor.Context) -> None:
    """Report this process's pid as the context's first value, then echo."""
    await ctx.started(os.getpid())
    async with ctx.open_stream() as stream:
        async for value in stream:
            await stream.send(value)


#: per-process state, read back with get_state()
STATE: dict[str, object] = {}


def get_state(key: str):
    return STATE.get(key)


async def sleep_marked() -> None:
    """Note that the call arrived, then sleep until cancelled or killed."""
    STATE['sleeping'] = True
    await trio.sleep_forever()
