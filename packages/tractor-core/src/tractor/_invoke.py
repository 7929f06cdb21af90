"""The callee's side of a request: what the channel's loop does with a ``Start``.

:func:`handle_start` checks the request and starts :func:`invoke` in the
actor's service nursery (or answers a call into the runtime itself inline,
or has the channel's reader run a plain call itself: :func:`run_here`);
:func:`invoke` resolves the target through the RPC allowlist, runs it under
its :class:`~tractor.Context` or :class:`~tractor._call.CallScope`, and
sends the ``Return`` or the boxed ``Error``.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from . import _modules, _msg
from ._boxing import pack_cancelled, pack_error
from ._call import CallScope
from ._context import DEFAULT_WINDOW, Context, _current_ctx, is_context_fn
from ._exceptions import ModuleNotExposed, MsgTypeError
from ._inline import run_inline
from .log import get_logger

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._runtime import Actor

log = get_logger('runtime')

#: the largest stream window a caller may ask a callee for (its inbox)
MAX_WINDOW = 1 << 16

#: the channel the RPC being served came over (runtime methods such as the
#: registrar's use it to bind what a peer registers to its connection)
current_channel: contextvars.ContextVar[Channel | None] = contextvars.ContextVar(
    'tractor_current_channel', default=None
)


async def handle_start(actor: Actor, chan: Channel, msg: _msg.Start) -> CallScope | None:
    """Take a ``Start`` the reader of ``chan`` received: answer it (a bad
    request, a call into the runtime), start it in the service nursery (a
    context), or, for a plain call, return its :class:`CallScope` for the
    reader to run it itself (:func:`run_here`)."""
    if msg.ns == 'self' and msg.func in ('cancel', 'ping'):
        await _runtime_call(actor, chan, msg)
        return None
    if not 0 <= msg.window <= MAX_WINDOW or (chan, msg.cid) in actor._routes:
        # a bad stream window, or a call id still in use: refuse this
        # request with a typed error, keep serving the connection
        why = (
            f'call id {msg.cid} is already in use on this connection'
            if 0 <= msg.window <= MAX_WINDOW
            else f'stream window {msg.window} is outside 0..{MAX_WINDOW}'
        )
        await chan.send_or_drop(pack_error(msg.cid, MsgTypeError(why), actor.uid))
        return None
    if msg.kind != 'ctx' and not actor._cancel_called and actor.debugger is None:
        # (once the actor is shutting down, or in debug mode, where the
        # debugger follows RPC tasks, a plain call takes a task as a
        # context does: it is then started cancelled, or refused)
        call = CallScope(chan, msg.cid)
        actor._routes[(chan, msg.cid)] = call
        return call
    ctx: Context | CallScope = (
        Context(
            actor,
            chan,
            msg.cid,
            'callee',
            f'{msg.ns}:{msg.func}',
            window=msg.window or DEFAULT_WINDOW,
        )
        if msg.kind == 'ctx'
        else CallScope(chan, msg.cid)  # a plain call: no stream
    )
    actor._routes[(chan, msg.cid)] = ctx
    try:
        assert actor._service_tn is not None
        actor._service_tn.start_soon(invoke, actor, chan, ctx, msg, name=f'{msg.ns}:{msg.func}')
    except RuntimeError:
        actor._routes.pop((chan, msg.cid), None)
        await chan.send_or_drop(
            pack_error(msg.cid, RuntimeError(f'actor {actor.name!r} is shutting down'), actor.uid)
        )
    return None


async def run_here(
    actor: Actor,
    chan: Channel,
    call: CallScope,
    msg: _msg.Start,
    hand_on: Callable[[], None],
    scope: trio.CancelScope,
) -> bool:
    """(the reader of ``chan``) Run the plain call ``msg`` in this task, in
    a context of its own (:func:`tractor._inline.run_inline`). If the call
    has to wait, ``hand_on()`` first starts the channel's next reader, and
    this task stays the call's to its end; returns whether that happened
    (``False``: the call finished at once, and this task reads on).

    ``scope`` is the cancel scope the reader entered around its loop: it
    becomes the call's (see :func:`invoke`). A cancel of the call after it
    suspended ends in that scope, which then is this task's last; one the
    call made itself without suspending leaves it cancelled, and the reader
    must take a fresh one before it reads on.

    The call is an RPC of the actor like a service task: ``cancel_soon()``
    and teardown cancel it and wait for it (``Actor._cancel_rpc``). The task
    carries the call's name meanwhile (log lines, task dumps)."""
    task = trio.lowlevel.current_task()
    name, task.name = task.name, f'{msg.ns}:{msg.func}'
    handed_on = False

    def before_suspend() -> None:
        nonlocal handed_on
        hand_on()
        handed_on = True

    calls = actor._calls_here
    calls.add(call)
    try:
        _, waited = await run_inline(
            invoke(actor, chan, call, msg, scope), contextvars.copy_context(), before_suspend
        )
        return waited
    except BaseException as exc:
        if _without_cancelled(exc) is None:
            raise  # for the reader's scope, or this task's outer ones (teardown), to end
        # SystemExit, KeyboardInterrupt... out of the call: what a service
        # task's would do (end the actor, through its service nursery), not
        # what the channel's reader would (take down every connection)
        _raise_in_service(actor, exc)
        return handed_on
    finally:
        calls.discard(call)
        task.name = name
        if not calls and actor._calls_idle is not None:
            actor._calls_idle.set()


def _raise_in_service(actor: Actor, exc: BaseException) -> None:
    async def reraise() -> None:
        raise exc

    tn = actor._service_tn
    try:
        if tn is None:
            raise RuntimeError('no service nursery')
        tn.start_soon(reraise, name=f'{type(exc).__name__} out of an RPC')
    except RuntimeError:
        raise exc from None


async def _runtime_call(actor: Actor, chan: Channel, msg: _msg.Start) -> None:
    """Calls into the runtime itself (``ns='self'``), answered inline."""
    if msg.func == 'cancel':
        actor.cancel_soon(requester=chan.uid)
        result: Any = True
    elif msg.func == 'ping':
        result = actor.uid
    else:
        await chan.send_or_drop(
            pack_error(msg.cid, ModuleNotExposed(f'no runtime method {msg.func!r}'), actor.uid)
        )
        return
    await chan.send_or_drop(_msg.Return(cid=msg.cid, pld=result))


def _without_cancelled(exc: BaseException) -> BaseException | None:
    """What of ``exc`` is not a cancellation, as leaving a cancelled scope
    keeps it: ``None`` for a ``Cancelled`` or a group of nothing else, the
    rest of a group that holds more, ``exc`` itself otherwise."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1]
    return None if isinstance(exc, trio.Cancelled) else exc


async def invoke(
    actor: Actor,
    chan: Channel,
    ctx: Context | CallScope,
    msg: _msg.Start,
    scope: trio.CancelScope | None = None,
) -> None:
    """Run the request ``msg`` and answer it on ``chan``: its ``Return``, its
    boxed error, or, cancelled, the boxed ``ContextCancelled``.

    The function runs in a cancel scope of its own, or in ``scope``: the one
    a channel's reader entered once around its loop, for the plain calls it
    runs itself (:func:`run_here`). Entering and leaving a trio cancel scope
    is about a third of what a quick call costs the callee, and a call that
    never suspends can be cancelled by nobody but itself, so only the calls
    that do suspend should pay for one: they keep the reader's task, and
    with it ``scope``, to their end, and the reader that takes over opens
    the next."""
    cid = msg.cid
    current_channel.set(chan)  # this task's own context
    answered = False
    try:
        fn = _modules.resolve(actor.name, actor._mods, actor._runtime_methods, msg.ns, msg.func)
        ctx_fn = is_context_fn(fn)
        if msg.kind == 'ctx' and not ctx_fn:
            raise TypeError(
                f'{msg.ns}.{msg.func} is not a @tractor.context function: '
                'call it with Portal.run(), not open_context()'
            )
        if msg.kind != 'ctx' and ctx_fn:
            raise TypeError(
                f'{msg.ns}.{msg.func} is a @tractor.context function: '
                'open it with Portal.open_context(), not Portal.run()'
            )
        # the kind checks above: a context function's call made a Context
        target: Context | None = ctx if ctx_fn else None  # type: ignore[assignment]  # see above
        if target is not None:
            # (built once by @context, shared by every context of the function)
            target._pld_dec = getattr(fn, '_tractor_pld_dec', None)
        # (this task's own: it runs only this call; a plain call has none,
        # whatever the task that started the channel's loop had)
        _current_ctx.set(target)
        if scope is None:
            with trio.CancelScope() as cs:
                ctx._scope = cs
                if actor.debugger is not None:
                    # e.g. debug mode: a crash opens the debugger, and
                    # breakpoint() works in the task
                    result = await actor.debugger.run_rpc(actor, call_user, fn, target, msg.kwargs)
                else:
                    result = await call_user(fn, target, msg.kwargs)
            if cs.cancelled_caught:
                await chan.send_or_drop(_cancelled(actor, ctx))
                return
        else:
            # the reader's scope (run_here): what leaving a cancel scope of
            # its own would have done with a cancel of this call, done by
            # hand; the reader's scope then stops the Cancelled, as its own
            # would have
            ctx._scope = scope
            try:
                result = await call_user(fn, target, msg.kwargs)
            except BaseException as exc:
                rest = _without_cancelled(exc) if scope.cancel_called else exc
                if rest is exc:
                    raise
                if rest is not None:
                    raise rest from None  # the errors besides the cancel
                await chan.send_or_drop(_cancelled(actor, ctx))
                answered = True
                raise
        try:
            if target is not None and target._pld_dec is not None:
                _msg.check_pld(result, target._pld_dec)
            reply = _msg.Return(cid=cid, pld=result)
            if scope is not None and scope.cancel_called:
                # the call cancelled itself and returned before it reached
                # a checkpoint: like a task's, it finished, so its result
                # goes out (send_or_drop's shield keeps the send from
                # raising the cancel)
                await chan.send_or_drop(reply)
            else:
                # with more requests already read (pipelined callers), the
                # replies to a whole read go out in one write
                await chan.send(reply, cork=chan.input_buffered())
        except MsgTypeError as err:
            await chan.send_or_drop(pack_error(cid, err, actor.uid))
    except Exception as err:
        log.debug('%s.%s failed in %r', msg.ns, msg.func, actor.name, exc_info=True)
        await chan.send_or_drop(pack_error(cid, err, actor.uid))
    except BaseException:
        if not answered:
            # the actor itself is being cancelled
            await chan.send_or_drop(
                pack_cancelled(cid, actor.uid, actor.cancel_requester or actor.uid)
            )
        raise
    finally:
        actor._routes.pop((chan, cid), None)


def _cancelled(actor: Actor, ctx: Context | CallScope) -> _msg.Error:
    """The answer to a request whose function was cancelled through its scope."""
    return pack_cancelled(
        ctx.cid, actor.uid, ctx.canceller or actor.uid, getattr(ctx, '_cancel_tb', '')
    )


async def call_user(fn: Callable, ctx: Context | None, kwargs: dict[str, Any]) -> Any:
    """Run an RPC target: a ``@context`` function gets ``ctx``; a plain one
    may be sync or async."""
    if ctx is not None:
        return await fn(ctx=ctx, **kwargs)
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result
