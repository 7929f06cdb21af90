"""The callee side of ``Portal.open_stream_from()``: a runtime method every
actor serves, which runs an async generator of an enabled module and sends
what it yields over a context's stream."""

from __future__ import annotations

import inspect
from typing import Any

from ._context import Context, context


@context
async def stream_from(ctx: Context, ns: str, func: str, kwargs: dict[str, Any]) -> None:
    """Stream every value ``ns.func(**kwargs)`` yields, until it is exhausted
    or the caller stops reading. The allowlist applies as to any call."""
    fn = ctx._actor._resolve(ns, func)
    if not inspect.isasyncgenfunction(fn):
        raise TypeError(
            f'{ns}.{func} is not an async generator function: '
            'open_stream_from() streams what one yields (use Portal.run() for others)'
        )
    await ctx.started()
    async with ctx.open_stream() as stream:
        agen = fn(**kwargs)
        try:
            async for value in agen:
                if stream.peer_closed:  # the caller stopped reading
                    break
                await stream.send(value)
        finally:
            await agen.aclose()
