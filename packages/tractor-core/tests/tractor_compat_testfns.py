"""Functions ``test_compat_api.py`` runs inside subactors (and the daemon
script serves): kept apart from the tests so subactors import no pytest."""

from __future__ import annotations

import trio

import tractor
from tractor.msg import NamespacePath


async def runtime_vars() -> dict:
    """This actor's runtime variables, as plain data for the caller."""
    rv = tractor.get_runtime_vars()
    return {
        **rv,
        'debug_mode()': tractor.debug_mode(),
        '_root_mailbox': list(rv['_root_mailbox']),
        '_root_addrs': [list(a) for a in rv['_root_addrs']],
        '_registry_addrs': [list(a) for a in rv['_registry_addrs']],
    }


async def double(x: int) -> int:
    return 2 * x


async def call_path(path: str, **kwargs) -> object:
    """Load the function a ``NamespacePath`` text names, here, and await it."""
    return await NamespacePath(path).load_ref()(**kwargs)


@tractor.context
async def park(ctx: tractor.Context) -> None:
    await ctx.started(tractor.current_actor().name)
    await park_here_for_the_stack_dump()


async def park_here_for_the_stack_dump() -> None:
    await trio.sleep_forever()


@tractor.context(pld_spec=int)
async def int_ctx(ctx: tractor.Context, start: object = 0, ret: object = 0) -> object:
    """A context whose payloads must all be ``int``. ``start`` is tried as
    the started() value (a refusal is reported as the second try's value);
    the stream echoes each value doubled, then ``ret`` is returned."""
    try:
        await ctx.started(start)
    except tractor.MsgTypeError as err:
        assert isinstance(err, TypeError)
        await ctx.started(-1)
        report = str(err)
    else:
        report = ''
    async with ctx.open_stream() as stream:
        if report:
            # a refused stream send is refused here too, and the stream lives on
            try:
                await stream.send('not an int')
            except tractor.MsgTypeError:
                await stream.send(-2)
        async for x in stream:
            await stream.send(2 * x)
    return ret


@tractor.context
async def started_unencodable(ctx: tractor.Context) -> None:
    """started() with a value msgspec cannot encode, uncaught."""
    await ctx.started(object())
