"""``Portal``: call functions and open contexts in another actor."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from . import _caller, _state
from ._context import Context, is_context_fn
from ._exceptions import TransportClosed, check_seconds
from ._modules import normalize_ns
from ._stream import MsgStream
from .log import get_logger

if TYPE_CHECKING:
    from ._ipc import Channel

log = get_logger('portal')

#: how long ``cancel_actor()`` waits for the peer to acknowledge by default
CANCEL_ACK_TIMEOUT = 3.0


@functools.lru_cache(maxsize=1024)
def _call_address(fn: Callable) -> tuple[str, str, str | None]:
    """``_fn_address(fn)`` and why ``Portal.run`` cannot call ``fn`` (else
    ``None``), once per function (a portal's calls repeat a few functions)."""
    return (*_fn_address(fn), _not_runnable(fn))


def _not_runnable(fn: Callable) -> str | None:
    """Why ``Portal.run(fn)`` is the wrong call for ``fn``, if it is."""
    name = getattr(fn, '__name__', fn)
    if is_context_fn(fn):
        return f'{name} is a @tractor.context function: use Portal.open_context()'
    if inspect.isasyncgenfunction(fn):
        return (
            f'{name} is an async generator function: stream what it yields with '
            'Portal.open_stream_from()'
        )
    return None


def _fn_address(fn: Callable) -> tuple[str, str]:
    if isinstance(fn, str) or not callable(fn):
        raise TypeError(
            f'expected a function object, got {fn!r}; '
            'to call by name use Portal.run_from_ns(module_name, fn_name)'
        )
    name = getattr(fn, '__name__', None)
    mod = getattr(fn, '__module__', None)
    if not name or not mod:
        raise TypeError(f'{fn!r} has no module-level name to call remotely')
    if getattr(fn, '__qualname__', name) != name:
        raise TypeError(
            f'{fn.__qualname__} is not a module-level function: only functions '
            'defined at the top of a module can be called in another actor'
        )
    return normalize_ns(mod), name


class Portal:
    """A handle to call into one peer actor over ``channel``.

    ``run(fn, **kwargs)`` runs ``fn`` (a module-level function of a module
    the target enabled) and returns its result; ``open_context(fn, ...)``
    starts a linked task pair; ``cancel_actor()`` asks the peer to shut down.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._final_done = trio.Event()
        #: the block read the result: a one-shot child may be reaped now
        self._collected = trio.Event()
        self._final: Any = None
        self._final_error: BaseException | None = None
        self._one_shot = False

    @property
    def chan(self) -> Channel:
        return self.channel

    def __repr__(self) -> str:
        return f'<Portal to {self.channel.aid and self.channel.aid.name!r}>'

    async def run(self, func: Callable | str, fn_name: str | None = None, /, **kwargs: Any) -> Any:
        """Run ``func(**kwargs)`` in the peer and return its result.

        ``run('pkg.mod', 'fn', **kwargs)`` names the function instead, as
        :meth:`run_from_ns` does. Errors raised there arrive as
        :class:`RemoteActorError`.
        """
        if isinstance(func, str):
            if not isinstance(fn_name, str) or not fn_name:
                raise TypeError(
                    f"Portal.run({func!r}, ...) names a module: pass the function's "
                    "name too, run('pkg.mod', 'fn', **kwargs), or the function itself"
                )
            return await self.run_from_ns(func, fn_name, **kwargs)
        if fn_name is not None:
            raise TypeError(
                f'Portal.run() got a function and a second positional argument '
                f"{fn_name!r}: pass the function's arguments as keywords"
            )
        try:
            address: tuple[str, str, str | None] | None = _call_address(func)
        except TypeError:  # not a function, or an unhashable callable:
            address = None
        if address is None:  # (outside the except: no chained traceback)
            address = (*_fn_address(func), _not_runnable(func))  # raises what is wrong
        ns, name, refusal = address
        if refusal is not None:
            raise TypeError(refusal)
        return await _caller.call(_state.current_actor(), self.channel, ns, name, kwargs)

    async def run_from_ns(self, namespace_path: str, function_name: str, **kwargs: Any) -> Any:
        """Run ``function_name`` from module ``namespace_path`` in the peer."""
        _check_names('run_from_ns', namespace_path, function_name)
        return await _caller.call(
            _state.current_actor(),
            self.channel,
            normalize_ns(namespace_path),
            function_name,
            kwargs,
        )

    # -- one-shot actors (ActorNursery.run_in_actor) -------------------------
    def _set_final(self, result: Any = None, error: BaseException | None = None) -> None:
        self._final, self._final_error = result, error
        self._final_done.set()

    async def wait_for_result(self) -> Any:
        """The return value of the function given to ``run_in_actor()``
        (its error is raised instead)."""
        if not self._one_shot:
            raise RuntimeError(
                f'{self!r} has no main result: it was started with start_actor(), '
                'use run_in_actor() for a one-shot actor with a result'
            )
        await self._final_done.wait()
        self._collected.set()
        if self._final_error is not None:
            # raised here, so the nursery does not raise it a second time
            self._final_error._tractor_delivered = True  # type: ignore[attr-defined]  # a mark read with getattr
            raise self._final_error
        return self._final

    result = wait_for_result

    # -- contexts -------------------------------------------------------------
    @asynccontextmanager
    async def open_context(
        self, func: Callable, *, allow_overruns: bool = False, **kwargs: Any
    ) -> AsyncIterator[tuple[Context, Any]]:
        """Start ``func(**kwargs)`` (a ``@tractor.context`` function) in the peer.

        ``allow_overruns=True`` makes this side's streams on the context
        allow overruns (see ``Context.open_stream``) unless one says otherwise.

        Yields ``(ctx, first)``, ``first`` being what the callee passed to
        ``ctx.started()``. A clean exit of the block waits for the callee's
        result (``ctx.wait_for_result()``) and raises its error, if any.

        An error in the block, or a cancel of the scope around it, cancels
        the callee (and waits, bounded, for it to confirm) before it
        propagates. An error or a self-cancel of the callee cancels the block
        and is raised as ``RemoteActorError`` / ``ContextCancelled``. A
        ``ctx.cancel()`` of this side does not cancel the block: its answer,
        a ``ContextCancelled`` naming this actor, is ``wait_for_result()``'s
        value, and the block exits quietly for it.
        """
        if not isinstance(allow_overruns, bool):
            raise TypeError(
                f'open_context(allow_overruns=...) takes a bool, got {allow_overruns!r}'
            )
        ns, name = _fn_address(func)
        if not is_context_fn(func):
            raise TypeError(
                f'{name} is not a @tractor.context function: use Portal.run(), '
                'or decorate it with @tractor.context'
            )
        async with self._open_context(
            ns, name, kwargs, getattr(func, '_tractor_pld_dec', None)
        ) as pair:
            pair[0]._allow_overruns = allow_overruns
            yield pair

    @asynccontextmanager
    async def open_context_from_ns(
        self, namespace_path: str, function_name: str, **kwargs: Any
    ) -> AsyncIterator[tuple[Context, Any]]:
        """:meth:`open_context` by name, for a context function this side
        cannot import (``'self'``: a runtime method, e.g. the registrar's
        ``watch_registry``): the callee's ``pld_spec`` is checked there only."""
        _check_names('open_context_from_ns', namespace_path, function_name)
        async with self._open_context(
            normalize_ns(namespace_path), function_name, kwargs, None
        ) as pair:
            yield pair

    @asynccontextmanager
    async def open_stream_from(
        self, async_gen_fn: Callable, **kwargs: Any
    ) -> AsyncIterator[MsgStream]:
        """Stream what the peer's ``async_gen_fn(**kwargs)`` (an async
        generator of a module it enabled) yields: a one-way
        :class:`MsgStream` to iterate. Leaving the block early stops the
        generator; its error arrives as :class:`RemoteActorError`."""
        ns, name = _fn_address(async_gen_fn)
        if not inspect.isasyncgenfunction(async_gen_fn):
            raise TypeError(
                f'{name} is not an async generator function: open_stream_from() '
                'streams what one yields (use Portal.run() for others)'
            )
        async with self._open_context(
            'self', 'stream_from', {'ns': ns, 'func': name, 'kwargs': kwargs}, None
        ) as (ctx, _):
            async with ctx.open_stream() as stream:
                yield stream
                if not stream._eoc:
                    # the reader stopped before the end: stop the generator
                    # (quietly: a cancel this side asked for)
                    await ctx.cancel()

    def _open_context(
        self, ns: str, name: str, kwargs: dict[str, Any], pld_dec: Any
    ) -> AbstractAsyncContextManager[tuple[Context, Any]]:
        return _caller.open_context(_state.current_actor(), self.channel, ns, name, kwargs, pld_dec)

    # -- lifetime ---------------------------------------------------------------
    async def cancel_actor(self, timeout: float | None = None) -> bool:
        """Ask the peer actor to shut down; ``True`` once it acknowledged.

        Returns ``False`` if the peer is already gone or did not answer in
        ``timeout`` seconds (default 3).
        """
        check_seconds('Portal.cancel_actor(timeout=...)', timeout)
        if not self.channel.connected():
            return False
        actor = _state.current_actor()
        with trio.move_on_after(CANCEL_ACK_TIMEOUT if timeout is None else timeout) as cs:
            cs.shield = True
            try:
                await actor.call(self.channel, 'self', 'cancel', {})
                return True
            except TransportClosed:
                return False
        log.warning('%r did not acknowledge the cancel request in time', self)
        return False

    async def aclose(self) -> None:
        """Close the underlying channel (portals from lookups do this on exit)."""
        await self.channel.aclose()

    async def __aenter__(self) -> Portal:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _check_names(api: str, namespace_path: Any, function_name: Any) -> None:
    """A call by name takes a module path and a function name, both
    non-empty strings: anything else is refused here, before it reaches the
    peer (which would drop the connection a malformed request came on)."""
    for what, value in (('namespace_path', namespace_path), ('function_name', function_name)):
        if not isinstance(value, str) or not value:
            raise TypeError(f'Portal.{api}() takes {what} as a non-empty str, got {value!r}')
