"""``ActorNursery``: spawn and supervise subactors.

The nursery's ``async with`` block (``open_nursery()``: booting the root,
how the block's and the children's errors end it) is :mod:`tractor._nursery`;
the record of each child and the cancel ladder that stops them
(``cancel()``) are :mod:`tractor._cancel_ladder`.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from . import _msg
from ._accept import serve_spawn_socket
from ._cancel_ladder import CANCEL_GRACE, CancelLadder, _Child
from ._exceptions import ActorFailure, ContextCancelled, check_actor_name, type_name
from ._extras import require_debug
from ._modules import normalize_ns
from ._portal import Portal, _fn_address
from ._reaper import reaper
from ._spawn import (
    SPAWN_TIMEOUT,
    SpawnWaiter,
    module_paths,
    parent_addr_for_child,
    resolve_start_method,
    spawn_backends,
    spawn_spec_ext,
)
from ._transport import get_transport, wrap_address
from .log import current_level, get_logger, level_name

if TYPE_CHECKING:
    from ._runtime import Actor

log = get_logger('supervise')

#: start_actor() options that run_in_actor() takes besides the call's kwargs
_SPAWN_OPTIONS = (
    'bind_addrs',
    'enable_transports',
    'loglevel',
    'debug_mode',
    'start_method',
    'infect_asyncio',
)


class ActorNursery(CancelLadder):
    """Spawns subactors and owns their lifetimes.

    The ``async with`` block does not exit until every child has exited:
    one-shot actors (``run_in_actor``) once their result was read or the
    block ended, daemons (``start_actor``) when cancelled. An error anywhere
    cancels all children; ``cancel()`` cancels them without the block.
    """

    def __init__(self, actor: Actor, defaults: dict[str, Any]) -> None:
        self._actor = actor
        self._defaults = defaults
        self._children: dict[tuple[str, str], _Child] = {}
        self._errors: list[BaseException] = []
        #: the ``async with`` block is over: one-shot children are reaped now
        self._block_done = trio.Event()
        self._sup_tn: trio.Nursery | None = None
        self._body_scope: trio.CancelScope | None = None
        self.cancel_called = False

    @property
    def children(self) -> dict[tuple[str, str], Portal | None]:
        return {uid: c.portal for uid, c in self._children.items()}

    async def start_actor(
        self,
        name: str,
        *,
        enable_modules: list[str] | None = None,
        bind_addrs: list[Any] | None = None,
        enable_transports: list[str] | None = None,
        loglevel: str | None = None,
        debug_mode: bool | None = None,
        start_method: str | None = None,
        infect_asyncio: bool = False,
    ) -> Portal:
        """Spawn a subactor ``name`` serving ``enable_modules``; returns its
        portal once the child is up and serving (and registered).

        ``infect_asyncio=True`` runs the child's trio as a guest of an asyncio
        loop, so its tasks can use asyncio libraries (``tractor.to_asyncio``).
        """
        return await self._start_child(
            name,
            None,
            enable_modules=enable_modules,
            bind_addrs=bind_addrs,
            enable_transports=enable_transports,
            loglevel=loglevel,
            debug_mode=debug_mode,
            start_method=start_method,
            infect_asyncio=infect_asyncio,
        )

    async def _start_child(
        self,
        name: str,
        one_shot: tuple[str, str, dict] | None,
        *,
        enable_modules: list[str] | None = None,
        bind_addrs: list[Any] | None = None,
        enable_transports: list[str] | None = None,
        loglevel: str | None = None,
        debug_mode: bool | None = None,
        start_method: str | None = None,
        infect_asyncio: bool = False,
    ) -> Portal:
        """Spawn a child; ``one_shot=(ns, fn, kwargs)`` makes it run that
        call (``run_in_actor``) once it serves."""
        if self.cancel_called:
            raise RuntimeError('this actor nursery was cancelled; it spawns no more')
        check_actor_name(name)
        if isinstance(enable_modules, str):
            raise TypeError(f'enable_modules takes a list of module names, got {enable_modules!r}')
        if not isinstance(infect_asyncio, bool):
            raise TypeError(f'infect_asyncio must be a bool, got {infect_asyncio!r}')
        mods = [normalize_ns(m) for m in enable_modules or ()]
        for m in mods:
            if not isinstance(m, str) or not m:
                raise TypeError(f'enable_modules takes module names (str), got {m!r}')
        actor = self._actor
        transports = list(enable_transports or actor.enable_transports)
        for key in transports:
            get_transport(key)
        binds = [wrap_address(a) for a in bind_addrs or ()]
        if not binds:
            near = {a.proto_key: a for a in actor._listen_addrs}
            binds = [get_transport(k).random_addr(name, near=near.get(k)) for k in transports]
        method = resolve_start_method(
            start_method or self._defaults.get('start_method') or actor.start_method
        )
        level = loglevel or self._defaults.get('loglevel') or actor.loglevel or current_level()
        if level is not None:
            level = level_name(level)
        debug = (
            self._defaults.get('debug_mode', actor.debug_mode) if debug_mode is None else debug_mode
        )
        if debug:
            require_debug()
        uid = (name, str(_uuid.uuid4()))
        spec = _msg.SpawnSpec(
            enable_modules=mods,
            module_paths=module_paths(mods, None if actor.is_root else actor._module_paths),
            sys_path=list(__import__('sys').path),
            reg_addrs=[a.to_wire() for a in actor._reg_addrs],
            bind_addrs=[a.to_wire() for a in binds],
            enable_transports=transports,
            loglevel=level,
            debug_mode=bool(debug),
            start_method=method,
            root_uid=actor.root_uid,
            root_addrs=[a.to_wire() for a in actor.root_addrs],
            stack_on_sig=actor.stack_on_sig,
        )
        waiter = SpawnWaiter(spec)
        actor._spawning[uid] = waiter
        parent_addr = parent_addr_for_child(actor._listen_addrs)
        assert self._sup_tn is not None
        try:
            # (passed only when set: a third-party backend need not know it)
            extra = {'infect_asyncio': True} if infect_asyncio else {}
            proc = await spawn_backends()[method].spawn(
                name=name, uuid=uid[1], parent_addr=str(parent_addr), **extra
            )
        except BaseException:
            actor._spawning.pop(uid, None)
            waiter.close_socket()
            raise
        # asked once the process started: what a plugin hands down may exist
        # only from this spawn on (the tree's fork server)
        try:
            spec.ext = spawn_spec_ext(actor, uid, method, spec)
        except Exception as err:  # a plugin's bug fails this spawn (the child is reaped)
            waiter.fail(err)
        if waiter.sock is not None:
            if waiter.done.is_set():
                waiter.close_socket()
            else:
                assert actor._io_tn is not None
                actor._io_tn.start_soon(serve_spawn_socket, actor, uid, waiter, parent_addr)
        child = _Child(uid, proc, waiter)
        self._children[uid] = child
        self._sup_tn.start_soon(self._supervise, child, name=f'supervise {name}')
        if self.cancel_called and not self._errors:
            # an.cancel() ran while the process started: it did not see it
            actor._spawning.pop(uid, None)
            self._abandon(child)
            with trio.CancelScope(shield=True):
                await child.exited.wait()
            raise RuntimeError(f'this actor nursery was cancelled while {name!r} was starting')
        try:
            with trio.fail_after(SPAWN_TIMEOUT):
                await waiter.done.wait()
        except trio.Cancelled:
            if not self._errors:
                # cancelled from outside: the half-booted child is killed
                self._abandon(child)
                with trio.CancelScope(shield=True):
                    await child.exited.wait()
                raise
            # one cancels all, because a sibling failed: this spawn finishes
            # (bounded) and its call starts anyway, as a trio task that was
            # started runs to its first checkpoint, so an error of its own
            # still counts; then it is cancelled gracefully like the others
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CANCEL_GRACE):  # (a cancel ladder's bound)
                    await waiter.done.wait()
                if waiter.chan is None or waiter.error is not None:
                    self._abandon(child)
                    await child.exited.wait()
                else:
                    self._serving(child, one_shot)
            raise
        except BaseException:
            self._abandon(child)
            with trio.CancelScope(shield=True):  # reaped before we raise
                await child.exited.wait()
            raise
        finally:
            actor._spawning.pop(uid, None)
        if waiter.error is not None:
            self._abandon(child)
            await child.exited.wait()
            raise waiter.error
        portal = self._serving(child, one_shot)
        log.info(
            'spawned %r (pid %d, %s)%s',
            name,
            proc.pid,
            method,
            f' to run {one_shot[1]}()' if one_shot else '',
        )
        if self.cancel_called and not self._errors:
            # an.cancel() is cancelling it (it waited for it to serve)
            raise RuntimeError(f'this actor nursery was cancelled while {name!r} was starting')
        return portal

    def _abandon(self, child: _Child) -> None:
        child.settled.set()
        child.waiter.fail(ActorFailure('spawn abandoned'))
        child.cancel_requested = True
        child.proc.kill()

    def _serving(self, child: _Child, one_shot: tuple[str, str, dict] | None) -> Portal:
        """The child serves: its portal, and its call if it is a one-shot."""
        assert child.waiter.chan is not None and self._sup_tn is not None
        portal = child.portal = Portal(child.waiter.chan)
        if one_shot is not None:
            portal._one_shot = True
            child.one_shot = trio.CancelScope()
            if self.cancel_called or self._errors:
                child.one_shot.cancel()
            self._sup_tn.start_soon(
                self._run_one_shot, child, *one_shot, name=f'one-shot {one_shot[1]}'
            )
        child.settled.set()
        return portal

    async def run_in_actor(
        self,
        fn: Callable,
        *,
        name: str | None = None,
        enable_modules: list[str] | None = None,
        **kwargs: Any,
    ) -> Portal:
        """Spawn a one-shot actor that runs ``fn(**kwargs)``.

        Its result is ``await portal.wait_for_result()``; the actor serves
        its siblings until that result was read or the block ended, then it
        is reaped. Its error cancels the whole nursery and is raised at
        ``wait_for_result()``, else when the block exits.
        """
        ns, fname = _fn_address(fn)
        opts = {k: kwargs.pop(k) for k in _SPAWN_OPTIONS if k in kwargs}
        return await self._start_child(
            fname if name is None else name,
            (ns, fname, kwargs),
            enable_modules=[ns, *(enable_modules or ())],
            **opts,
        )

    async def _run_one_shot(self, child: _Child, ns: str, fname: str, kwargs: dict) -> None:
        portal = child.portal
        assert portal is not None and child.one_shot is not None
        try:
            with child.one_shot:
                # if this is cancelled (a sibling failed, the nursery is
                # closing) while the child already failed, its error still
                # counts; the call goes out even if that happened already, as
                # a trio task runs to its first checkpoint
                result = await self._actor.call(
                    portal.channel,
                    normalize_ns(ns),
                    fname,
                    kwargs,
                    reply_on_cancel=CANCEL_GRACE,
                    always_start=True,
                )
                portal._set_final(result=result)
                # it goes on serving (its siblings may still call it) until
                # the block has collected the result or is over
                async with trio.open_nursery() as tn:
                    for event in (portal._collected, self._block_done):
                        tn.start_soon(_set_then_cancel, event, tn.cancel_scope)
        except Exception as err:
            portal._set_final(error=err)
            self._fail(err)
        finally:
            child.one_shot = None
            if not portal._final_done.is_set():  # cancelled before it returned
                aid = portal.channel.aid
                cancelled = ContextCancelled(
                    f'{fname} was cancelled before it returned',
                    boxed_type_str=type_name(ContextCancelled),
                    src_uid=aid.uid if aid else None,
                )
                cancelled.canceller = self._actor.uid
                portal._set_final(error=cancelled)
            with trio.CancelScope(shield=True):
                await self._cancel_child(child, hard_kill=False)

    def _fail(self, err: BaseException) -> None:
        """One cancels all: record ``err``, stop the body, cancel children."""
        self._errors.append(err)
        if self._body_scope is not None:
            self._body_scope.cancel()
        if not self.cancel_called and self._sup_tn is not None:
            self._sup_tn.start_soon(self.cancel)

    async def _supervise(self, child: _Child) -> None:
        proc = child.proc
        try:
            # shielded: children are only ever stopped through cancel()/kill,
            # never by unwinding this task (which would skip the graceful ladder)
            with trio.CancelScope(shield=True):
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
            child.exited.set()
            reaper.exited(child.uid[1])
            child.waiter.fail(
                ActorFailure(
                    f'actor {child.uid[0]!r} exited with code {proc.returncode} before it was ready'
                )
            )
            self._children.pop(child.uid, None)
            if proc.returncode and not child.cancel_requested:
                log.error(
                    'actor %r (pid %d) died unexpectedly with code %s',
                    child.uid[0],
                    proc.pid,
                    proc.returncode,
                )
            else:
                log.info(
                    'actor %r (pid %d) exited (code %s)', child.uid[0], proc.pid, proc.returncode
                )

    async def _wait_reaped(self) -> None:
        """Until every child has exited (one-shots when their call is done,
        daemons when cancelled)."""
        while self._children:
            await next(iter(self._children.values())).exited.wait()


async def _set_then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
