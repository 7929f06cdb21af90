"""The caller's side of a request: plain calls and contexts, in one place.

:func:`call` (``Portal.run``, ``kind='fn'``) sends one ``Start`` and waits
on a :class:`~tractor._call.Reply` slot; :func:`open_context`
(``Portal.open_context``, ``kind='ctx'``) keeps a
:class:`~tractor.Context` for the exchange. Both register their handle in
``actor._routes`` under ``(channel, cid)`` for the channel's message loop
to feed, and both ask the callee to cancel when the caller is cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from . import _msg
from ._call import Reply
from ._context import CANCEL_ACK_TIMEOUT, DEFAULT_WINDOW, Context, _current_ctx
from ._debugger import within_grace
from ._exceptions import ContextCancelled, RemoteActorError, TransportClosed

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._runtime import Actor

#: bound on sending a request that goes out even when its caller is cancelled
_START_SEND_TIMEOUT = 5.0


async def call(
    actor: Actor,
    chan: Channel,
    ns: str,
    func: str,
    kwargs: dict[str, Any],
    *,
    reply_on_cancel: float = 0.0,
    always_start: bool = False,
) -> Any:
    """Run ``ns.func(**kwargs)`` in the peer on ``chan`` and return its result.

    When the caller is cancelled, the peer is asked to cancel the task.
    With ``reply_on_cancel`` > 0 the caller then waits (shielded, at most
    that long) for the final reply, and a real error the callee raised
    (anything but the cancel itself) is raised instead of ``Cancelled``,
    so a failure that races a cancel is not lost. With ``always_start``
    the request goes out even if the caller is cancelled already (it is
    then cancelled at once, like a trio task that was started).
    """
    cid = chan.next_cid()
    reply = Reply(chan, cid, actor)
    actor._routes[(chan, cid)] = reply
    sent = False
    try:
        if always_start:
            with trio.move_on_after(_START_SEND_TIMEOUT) as cs:
                cs.shield = True
                await chan.send(_msg.Start(cid=cid, ns=ns, func=func, kwargs=kwargs))
                sent = True
            await trio.lowlevel.checkpoint_if_cancelled()
            if not sent:
                raise TransportClosed(
                    f'{chan.aid and chan.aid.name!r} did not take the request '
                    f'within {_START_SEND_TIMEOUT}s'
                )
        else:
            await chan.send(_msg.Start(cid=cid, ns=ns, func=func, kwargs=kwargs))
            sent = True
        return await reply.receive()
    except trio.Cancelled:
        if sent and not reply.done:
            await chan.send_or_drop(_msg.Cancel(cid=cid))
            if reply_on_cancel > 0:
                with trio.CancelScope(shield=True):
                    await within_grace(actor, reply_on_cancel, reply.wait)
        err = reply.error
        if (
            reply_on_cancel > 0
            and isinstance(err, RemoteActorError)
            and not isinstance(err, ContextCancelled)
        ):
            # the callee's own error, with its own cause: not a consequence
            # of the cancel being handled here
            raise err  # noqa: B904
        raise
    finally:
        actor._routes.pop((chan, cid), None)


@asynccontextmanager
async def open_context(
    actor: Actor, chan: Channel, ns: str, name: str, kwargs: dict[str, Any], pld_dec: Any
) -> AsyncIterator[tuple[Context, Any]]:
    """Open a context with ``ns:name(**kwargs)`` (a ``@tractor.context``
    function) in the peer on ``chan``: yields ``(ctx, first)`` once the
    callee called ``started(first)``; see :meth:`tractor.Portal.open_context`
    for what the block's exits mean."""
    cid = chan.next_cid()
    ctx = Context(
        actor, chan, cid, 'caller', f'{ns}:{name}', window=DEFAULT_WINDOW, pld_dec=pld_dec
    )
    actor._routes[(chan, cid)] = ctx
    try:
        # raises MsgTypeError before anything is sent for bad kwargs
        await chan.send(
            _msg.Start(cid=cid, ns=ns, func=name, kwargs=kwargs, kind='ctx', window=DEFAULT_WINDOW)
        )
    except BaseException:
        actor._routes.pop((chan, cid), None)
        raise
    try:
        msg = await ctx._next_msg()
        if type(msg) is _msg.Error:
            assert ctx._remote_error is not None
            raise ctx._remote_error
        if type(msg) is not _msg.Started:
            raise RuntimeError(
                f'{name} returned before calling `await ctx.started()`'
                if type(msg) is _msg.Return
                else f'expected Started from {name}, got {type(msg).__name__}'
            )
        first = ctx._decode(msg.pld)
        body_error: BaseException | None = None
        token = _current_ctx.set(ctx)
        try:
            with trio.CancelScope() as scope:
                ctx._scope = scope
                try:
                    yield ctx, first
                except trio.Cancelled:
                    raise  # for the cancel scopes to sort out
                except BaseException as err:
                    body_error = err
        finally:
            _current_ctx.reset(token)
        ctx._scope = None
        if body_error is not None:
            if ctx._is_own_cancel(body_error):
                return  # the reply to a cancel we asked for: exit quietly
            await ctx._cancel_and_wait(_confirm_bound(body_error))
            raise body_error
        if scope.cancelled_caught:
            if ctx._cancel_called:
                # our own ctx.cancel(): wait for the callee to confirm
                await ctx._cancel_and_wait()
                remote = ctx._remote_error
                if remote is None or ctx._is_own_cancel(remote):
                    return
                raise remote
            if ctx._remote_error is not None:
                raise ctx._remote_error
        try:
            await ctx.wait_for_result()
        except ContextCancelled as err:
            if not ctx._is_own_cancel(err):
                raise
    except BaseException as exc:
        # our error or cancel (in the block or while waiting): the callee
        # must not outlive it
        await ctx._cancel_and_wait(_confirm_bound(exc))
        raise
    finally:
        actor._routes.pop((chan, cid), None)


def _confirm_bound(exc: BaseException) -> float:
    """How long a context left by ``exc`` waits for its callee to confirm
    the cancel: not at all for a Ctrl-C (the program is going away; the
    actor nursery's cancel, which follows, kills a callee that is stuck)."""
    ctrl_c = isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
    )
    return 0.0 if ctrl_c else CANCEL_ACK_TIMEOUT
