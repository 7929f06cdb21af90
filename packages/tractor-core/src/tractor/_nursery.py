"""``open_nursery()``: the ``async with`` block of an :class:`ActorNursery`.

It boots the root actor first when none runs, and decides how the block
ends: it waits for the one-shot children, cancels every child on an error
(the body's or a child's), and raises what the user has not seen yet, as
one error or a group. The nursery itself (spawning and supervising
children) is :mod:`tractor._supervise`, its cancel ladder
:mod:`tractor._cancel_ladder`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from . import _state
from ._root import open_root_actor
from ._supervise import ActorNursery
from .log import get_logger
from .trionics import is_multi_cancelled

if TYPE_CHECKING:
    from ._runtime import Actor

log = get_logger('supervise')


@asynccontextmanager
async def _open_actor_nursery(
    actor: Actor, defaults: dict[str, Any]
) -> AsyncIterator[ActorNursery]:
    an = ActorNursery(actor, defaults)
    body_exc: BaseException | None = None
    # The supervision tasks (one per child, one per run_in_actor call) run in
    # `sup_tn`; they never raise, so its scope only ever cancels the body
    # through a cancel from outside. One cancels all goes through `_fail()`,
    # which cancels only `body_scope`; `an.cancel()` cancels neither.
    async with trio.open_nursery() as sup_tn:
        an._sup_tn = sup_tn
        try:
            with trio.CancelScope() as body_scope:
                an._body_scope = body_scope
                yield an
        except BaseException as exc:
            body_exc = exc
            if actor.debugger is not None and not _only_cancels(exc):
                # e.g. debug mode: a crash of the body opens the debugger
                # before the children are cancelled
                await actor.debugger.post_mortem(actor, exc)
        finally:
            an._body_scope = None
            an._block_done.set()
        try:
            if body_exc is None:
                # the block is done: wait for the one-shot children, and
                # (on a child's error) for the cancel that error started
                await an._wait_reaped()
        except BaseException as exc:  # a cancel from outside meanwhile
            body_exc = exc
        finally:
            if body_exc is not None or an._errors:
                await an.cancel()
    # An error the block read from portal.result() is not raised again: the
    # block saw it (and raised or handled it). Unless one cancels all then
    # cut the block short: raised here, so that is never silent.
    cut_short = body_scope.cancelled_caught
    errors = [e for e in an._errors if e is not body_exc and (cut_short or not _was_delivered(e))]
    if body_exc is not None:
        if _only_cancels(body_exc) or isinstance(body_exc, KeyboardInterrupt):
            # a cancel from outside (or Ctrl-C) wins; the children's errors
            # would otherwise be lost in it, so they are logged
            for err in errors:
                log.error('child error while the nursery was cancelled: %r', err)
            raise body_exc
        if not errors:
            raise body_exc
        raise BaseExceptionGroup('errors in an actor nursery', [body_exc, *errors])
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup('several actors failed', errors)


def _was_delivered(err: BaseException) -> bool:
    """``err`` was already raised to the user by ``portal.wait_for_result()``."""
    return getattr(err, '_tractor_delivered', False)


def _only_cancels(exc: BaseException) -> bool:
    """``trio.Cancelled``, or a group of nothing else (trio's nurseries wrap
    a cancel passing through them)."""
    return isinstance(exc, trio.Cancelled) or is_multi_cancelled(exc)


#: options open_nursery() takes inside a running actor (defaults for children)
NURSERY_OPTIONS = ('start_method', 'loglevel', 'debug_mode')


@asynccontextmanager
async def open_nursery(
    *,
    registry_addrs: list[Any] | None = None,
    name: str | None = None,
    ensure_registry: bool = False,
    enable_transports: list[str] | None = None,
    loglevel: str | None = None,
    debug_mode: bool | None = None,
    start_method: str | None = None,
    enable_modules: list[str] | None = None,
    secret: bytes | str | None = None,
    tpt_bind_addrs: list[Any] | None = None,
    enable_stack_on_sig: bool = False,
) -> AsyncIterator[ActorNursery]:
    """Open an actor nursery; boots the root actor first when none runs.

    When it boots the root, the options go to ``open_root_actor()`` (see
    there); inside a running actor only ``start_method``, ``loglevel`` and
    ``debug_mode`` (defaults for the children) are accepted, the others are
    a ``TypeError``.
    """
    root_only: dict[str, Any] = {
        k: v
        for k, v in (
            ('registry_addrs', registry_addrs),
            ('name', name),
            ('ensure_registry', ensure_registry),
            ('enable_transports', enable_transports),
            ('enable_modules', enable_modules),
            ('secret', secret),
            ('tpt_bind_addrs', tpt_bind_addrs),
            ('enable_stack_on_sig', enable_stack_on_sig),
        )
        if v is not None and v is not False
    }
    child_defaults: dict[str, Any] = {
        k: v
        for k, v in (
            ('start_method', start_method),
            ('loglevel', loglevel),
            ('debug_mode', debug_mode),
        )
        if v is not None
    }
    actor = _state.current_actor(err_on_no_runtime=False)
    if actor is None:
        async with open_root_actor(**root_only, **child_defaults) as actor:
            async with _open_actor_nursery(actor, {}) as an:
                yield an
        return
    if root_only:
        raise TypeError(
            f'open_nursery() got {sorted(root_only)} inside a running actor: those are root '
            f'options for open_root_actor(); here only {list(NURSERY_OPTIONS)} apply'
        )
    async with _open_actor_nursery(actor, child_defaults) as an:
        yield an
