"""The ``Actor``: one per process; serves RPC, owns connections to peers."""
from __future__ import annotations

import contextvars
import importlib
import importlib.util
import inspect
import os
import sys
import uuid as _uuid
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from types import ModuleType
from typing import Any, AsyncIterator, Callable

import trio

from . import _msg, _state
from ._call import CallScope, Reply
from ._context import DEFAULT_WINDOW, Context, _current_ctx, is_context_fn
from ._gen_stream import stream_from
from ._auth import describe_peer
from ._exceptions import (
    AuthenticationError,
    ContextCancelled,
    ModuleNotExposed,
    MsgTypeError,
    RemoteActorError,
    TransportClosed,
    format_tb,
    type_name,
    wire_type_name,
)
from ._dial import HANDSHAKE_TIMEOUT, dial
from ._ipc import Channel, handshake
from ._limits import HandshakeGate, raise_fd_limit
from ._plugins import get_plugin_manager, get_transport
from ._transport import Address
from .log import get_logger

log = get_logger('runtime')

#: a module may list what peers can call in it (names, e.g. a tuple of
#: str): then exactly those, imported or ``_private`` ones included;
#: without it, the public functions it defines itself
EXPORTS = '__tractor_exports__'
#: the RPC module of the tree's terminal lock, served by a root in debug
#: mode (or once it spawned a child in debug mode)
DEBUG_LOCK_MODULE = 'tractor.debug._lock'
#: the largest stream window a caller may ask a callee for (its inbox)
MAX_WINDOW = 1 << 16
_MAIN_NAMES = ('__main__', '__mp_main__')
_CTXC = type_name(ContextCancelled)
#: bound on sending a request that goes out even when its caller is cancelled
_START_SEND_TIMEOUT = 5.0


#: the channel the RPC being served came over (runtime methods such as the
#: registrar's use it to bind what a peer registers to its connection)
current_channel: contextvars.ContextVar[Channel | None] = contextvars.ContextVar(
    'tractor_current_channel', default=None,
)


def normalize_ns(ns: str) -> str:
    return '__main__' if ns in _MAIN_NAMES else ns


def pack_error(
    cid: int,
    exc: BaseException,
    actor: Actor,
    canceller: tuple[str, str] | None = None,
) -> _msg.Error:
    """Box ``exc`` for the wire; a relayed remote error keeps its origin."""
    if isinstance(exc, RemoteActorError):
        return _msg.Error(
            cid=cid,
            type_str=exc.boxed_type_str,
            message=exc.msg,
            tb_str=exc.tb_str,
            src_uid=exc.src_uid or actor.uid,
            relay_uid=actor.uid,
            canceller=getattr(exc, 'canceller', None) or canceller,
        )
    return _msg.Error(
        cid=cid,
        type_str=wire_type_name(exc),
        message=str(exc),
        tb_str=format_tb(exc),
        src_uid=actor.uid,
    )


def pack_cancelled(
    cid: int, actor: Actor, canceller: tuple[str, str] | None, tb_str: str = ''
) -> _msg.Error:
    """The error reply for a remote task that was cancelled (``tb_str``:
    where it cancelled itself, when it did)."""
    who = canceller[0] if canceller else 'unknown'
    return _msg.Error(
        cid=cid,
        type_str=_CTXC,
        message=f'task cancelled in {actor.name!r} (by {who!r})',
        tb_str=tb_str,
        src_uid=actor.uid,
        canceller=canceller,
    )


def unpack_error(msg: _msg.Error, chan: Channel | None = None) -> RemoteActorError:
    if msg.type_str == _CTXC:
        err: RemoteActorError = ContextCancelled(
            msg.message,
            boxed_type_str=msg.type_str,
            src_uid=msg.src_uid,
            relay_uid=msg.relay_uid,
            tb_str=msg.tb_str,
        )
        err.canceller = tuple(msg.canceller) if msg.canceller else None  # type: ignore[attr-defined]
        return err
    return RemoteActorError(
        msg.message,
        boxed_type_str=msg.type_str,
        src_uid=msg.src_uid,
        relay_uid=msg.relay_uid,
        tb_str=msg.tb_str,
    )


class Actor:
    """The runtime of one process: identity, RPC allowlist, IPC server, peers.

    Users get it from ``tractor.current_actor()``: ``.name``, ``.uid``
    (``(name, uuid)``), ``.aid`` (name, uuid, pid), ``.accept_addrs`` and
    ``.reg_addrs`` (plain address tuples), ``.is_registrar``.
    """

    def __init__(
        self,
        name: str,
        uuid: str | None = None,
        *,
        enable_modules: list[str] | None = None,
        module_paths: dict[str, str] | None = None,
        reg_addrs: list[Address] | None = None,
        enable_transports: list[str] | None = None,
        is_root: bool = False,
        loglevel: str | None = None,
        debug_mode: bool = False,
        start_method: str = 'trio',
    ) -> None:
        self.aid = _msg.Aid(name=name, uuid=uuid or str(_uuid.uuid4()), pid=os.getpid())
        self.enable_modules = [normalize_ns(m) for m in enable_modules or ()]
        self._module_paths = dict(module_paths or {})
        self._mods: dict[str, ModuleType] = {}
        self._reg_addrs: list[Address] = list(reg_addrs or ())
        self.enable_transports = list(enable_transports or ())
        self.is_root = is_root
        self.is_registrar = False
        self.loglevel = loglevel
        self.debug_mode = debug_mode
        self.start_method = start_method
        #: dump the task tree on SIGUSR1 (``enable_stack_on_sig``)
        self.stack_on_sig = False
        self._listen_addrs: list[Address] = []
        self._peers: dict[tuple[str, str], list[Channel]] = {}
        self._peer_events: dict[tuple[str, str], trio.Event] = {}
        #: what the message loops feed, by (channel, call id): a Context, or
        #: for a plain call a Reply (caller) / CallScope (callee)
        self._contexts: dict[tuple[Channel, int], Context | Reply | CallScope] = {}
        self._spawning: dict[tuple[str, str], Any] = {}
        #: spawn channels of this actor's children once they are serving
        #: (so a SIGUSR1 task-tree dump can be relayed down the tree)
        self._child_chans: set[Channel] = set()
        self._parent_chan: Channel | None = None
        #: the spawning parent's uid (``None`` in a root)
        self.parent_uid: tuple[str, str] | None = None
        #: listener and connection tasks (shielded from the opener's scopes)
        self._root_tn: trio.Nursery | None = None
        #: RPC tasks (likewise shielded; cancelled by cancel_soon/teardown)
        self._service_tn: trio.Nursery | None = None
        self._cancel_called = False
        self._cancel_event = trio.Event()
        self._cancel_complete = trio.Event()
        self._service_done = trio.Event()
        self.cancel_requester: tuple[str, str] | None = None
        #: plugins hang their per-actor state here (e.g. the registrar)
        self.extensions: dict[str, Any] = {}
        # (every actor serves the callee side of Portal.open_stream_from)
        self._runtime_methods: dict[str, Callable] = {'stream_from': stream_from}
        #: the tree's root actor: where the debugger's terminal lock is
        self.root_uid: tuple[str, str] | None = self.aid.uid if is_root else None
        self._root_addrs: list[Address] = []
        #: caps the unauthenticated connections handled at once
        self._handshakes = HandshakeGate()

    # -- identity -------------------------------------------------------
    def is_infected_aio(self) -> bool:
        """Whether this actor runs trio as a guest of an asyncio loop
        (``infect_asyncio=True``; see ``tractor.to_asyncio``)."""
        return _state.asyncio_host_loop() is not None

    @property
    def name(self) -> str:
        return self.aid.name

    @property
    def uid(self) -> tuple[str, str]:
        return self.aid.uid

    @property
    def pid(self) -> int:
        return self.aid.pid

    @property
    def accept_addrs(self) -> list[tuple]:
        return [a.unwrap() for a in self._listen_addrs]

    @property
    def accept_addr(self) -> tuple | None:
        return self._listen_addrs[0].unwrap() if self._listen_addrs else None

    @property
    def listen_addrs(self) -> list[Address]:
        return list(self._listen_addrs)

    @property
    def parent_portal(self) -> Any:
        """A :class:`~tractor.Portal` to the actor that spawned this one
        (``None`` in a root actor), over the spawn connection."""
        if self._parent_chan is None:
            return None
        from ._portal import Portal

        return Portal(self._parent_chan)

    @property
    def root_addrs(self) -> list[Address]:
        """Where the tree's root actor listens (this actor's own addresses
        in the root)."""
        return list(self._listen_addrs if self.is_root else self._root_addrs)

    @property
    def reg_addrs(self) -> list[tuple]:
        return [a.unwrap() for a in self._reg_addrs]

    @property
    def registry_addrs(self) -> list[Address]:
        return list(self._reg_addrs)

    def __repr__(self) -> str:
        return f'<Actor {self.name!r} uuid={self.aid.uuid[:8]} pid={self.pid}>'

    # -- services for plugins (see tractor.plugin) ---------------------------
    # Small public handles on the runtime, so other distributions never
    # reach into the private attributes behind them.
    @property
    def parent_channel(self) -> Channel | None:
        """The spawn connection to the parent (``None`` in a root actor, and
        in a child until it serves)."""
        return self._parent_chan

    @property
    def cancel_called(self) -> bool:
        """Whether this actor is shutting down (``cancel_soon()`` was called
        or teardown began)."""
        return self._cancel_called

    def start_service_task(self, fn: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        """Run ``fn(*args)`` as a task of this actor's service nursery, where
        its RPC tasks run: it is not cancelled with the caller's scopes, only
        by ``cancel_soon()`` and teardown (before plugin hooks unwind).
        ``RuntimeError`` when the actor is not serving (not yet, or no more)."""
        self._service_nursery(fn).start_soon(fn, *args, name=name)

    async def start_service(self, fn: Callable[..., Any], *args: Any, name: str | None = None) -> Any:
        """Like :meth:`start_service_task`, but wait until ``fn`` calls
        ``task_status.started(value)`` and return ``value`` (``trio.Nursery.start``)."""
        return await self._service_nursery(fn).start(fn, *args, name=name)

    def _service_nursery(self, fn: Callable[..., Any]) -> trio.Nursery:
        tn = self._service_tn
        if tn is None:
            raise RuntimeError(f'{self!r} is not serving: cannot start {fn!r} as a service task')
        return tn

    def resolve_rpc_target(self, ns: str, func: str) -> Callable[..., Any]:
        """The function a peer's request for ``ns:func`` runs here (``ns='self'``:
        a runtime method, see :meth:`expose`), after the same checks every
        RPC passes: ``ModuleNotExposed`` when peers may not call it,
        ``AttributeError`` when the module has no such function."""
        return self._resolve(ns, func)

    # -- RPC allowlist ----------------------------------------------------
    def load_modules(self) -> None:
        """Import every enabled module now, so a bad name fails the spawn."""
        # a root in debug mode serves the tree's debugger lock
        # (tractor.debug._lock); without debug mode there is none
        extra: list[str] = [DEBUG_LOCK_MODULE] if self.is_root and self.debug_mode else []
        for mods in get_plugin_manager().hook.tractor_rpc_modules(actor=self):
            extra.extend(mods or ())
        for name in [*self.enable_modules, *extra]:
            if name in self._mods:
                continue
            self._mods[name] = self._import(name)
        main = self._mods.get('__main__')
        if main is not None:
            # the script is also served under its importable name, so a
            # program that imported it (`import tree_script`) can call
            # `portal.run(tree_script.fn)`
            alias = _importable_name(main)
            if alias and alias not in self._mods:
                self._mods[alias] = main

    def _import(self, name: str) -> ModuleType:
        if name == '__main__':
            if self.is_root:
                return sys.modules['__main__']
            if '__mp_main__' in sys.modules:
                return sys.modules['__mp_main__']
            modname = self._module_paths.get('__main__:module')
            if modname:  # the parent ran `python -m modname`
                return importlib.import_module(modname)
            path = self._module_paths.get('__main__')
            if not path:
                raise ModuleNotFoundError(
                    'the parent enabled `__main__` but has no main script file to load'
                )
            return _load_from_path('__mp_main__', path)
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            path = self._module_paths.get(name)
            if not path:
                raise
            return _load_from_path(name, path)

    def expose(self, name: str, fn: Callable) -> None:
        """Serve ``fn`` as runtime method ``name`` (``run_from_ns('self', name)``);
        plugins use this, e.g. the registrar's lookup methods."""
        self._runtime_methods[name] = fn

    def _resolve(self, ns: str, func: str) -> Callable:
        if ns == 'self':
            try:
                return self._runtime_methods[func]
            except KeyError:
                raise ModuleNotExposed(
                    f'actor {self.name!r} has no runtime method {func!r}'
                ) from None
        ns = normalize_ns(ns)
        mod = self._mods.get(ns)
        if mod is None:
            raise ModuleNotExposed(
                f'module {ns!r} is not enabled in actor {self.name!r}; '
                f'enabled: {sorted(self._mods)} (pass it in `enable_modules=[...]`)'
            )
        if not func.isidentifier() or func.startswith('__'):
            raise ModuleNotExposed(f'{func!r} is not a function name that can be called')
        exports = getattr(mod, EXPORTS, None)
        if exports is not None:
            # the module's own list decides, either way (widen or narrow)
            if isinstance(exports, str) or func not in exports:
                raise ModuleNotExposed(
                    f'{ns}.{func} is not in {ns}.{EXPORTS}, the list of what '
                    f'{ns!r} lets peers call'
                )
        elif func.startswith('_'):
            raise ModuleNotExposed(
                f'{ns}.{func} is private (its name starts with "_"); list it in '
                f'{ns}.{EXPORTS} to let peers call it'
            )
        fn = getattr(mod, func, None)
        if fn is None or not callable(fn) or isinstance(fn, type):
            raise AttributeError(f'module {ns!r} has no function {func!r}')
        if exports is None and getattr(fn, '__module__', None) != mod.__name__:
            # e.g. `from os import system` in an enabled module: a name it
            # imported is not a function it defines
            raise ModuleNotExposed(
                f'{ns}.{func} is defined in {getattr(fn, "__module__", None)!r}, not in '
                f'{ns!r}: only functions an enabled module defines are callable '
                f'(list it in {ns}.{EXPORTS} to let peers call it)'
            )
        return fn

    # -- lifetime ---------------------------------------------------------
    @asynccontextmanager
    async def _open_runtime(self, bind_addrs: list[Address]) -> AsyncIterator[Actor]:
        """Listen on ``bind_addrs``, serve until the block exits, then tear
        down: RPC tasks first (so nested actor nurseries can still reach
        their children), then plugin hooks (unregister), then connections.

        The block's own exceptions, and a failure to start serving (an
        address already taken, a plugin hook failing), come out unwrapped
        (never in a group).
        """
        body_exc: BaseException | None = None
        raise_fd_limit()
        async with trio.open_nursery() as root_tn:
            # listeners, connections and RPC tasks run in nurseries shielded
            # from the caller's scopes: when the code that opened the runtime
            # is cancelled, its actor nurseries still need the links to their
            # children (cancel requests, final replies, unregistering). Both
            # are cancelled explicitly here once the block is done.
            self._root_tn = await root_tn.start(self._run_io_nursery)
            self._service_tn = await root_tn.start(self._run_service_nursery)
            try:
                async with AsyncExitStack() as hooks:
                    try:
                        if self.stack_on_sig:
                            from .devx._stack import dump_on_signal

                            await self._root_tn.start(dump_on_signal, self)
                        for addr in bind_addrs:
                            await self._listen(addr)
                        for cm in get_plugin_manager().hook.tractor_actor_serving(actor=self):
                            if cm is not None:
                                await hooks.enter_async_context(cm)
                    except Exception as exc:
                        body_exc = exc  # never served: unwind, then raise it
                    else:
                        debug_api = None
                        if self.debug_mode:
                            from .debug import _api as debug_api
                        try:
                            with debug_api.breakpoint_hook() if debug_api else nullcontext():
                                yield self
                        except trio.Cancelled:
                            raise
                        except BaseException as exc:
                            body_exc = exc
                            if debug_api:
                                await debug_api.maybe_post_mortem(self, exc)
                        finally:
                            self._cancel_called = True
                            self._service_tn.cancel_scope.cancel()
                            with trio.CancelScope(shield=True):
                                await self._service_done.wait()
            finally:
                self._cancel_called = True
                self._service_tn.cancel_scope.cancel()
                self._root_tn.cancel_scope.cancel()
                root_tn.cancel_scope.cancel()
                self._cancel_complete.set()
                for addr in self._listen_addrs:
                    try:
                        addr.transport.close_listener(addr)
                    except OSError:
                        pass
        if body_exc is not None:
            raise body_exc

    async def _run_service_nursery(
        self, task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Host RPC tasks outside the caller's scopes, so cancelling them
        never cancels the code that opened the runtime (nor the reverse:
        only ``cancel_soon()`` and teardown cancel them)."""
        try:
            with trio.CancelScope(shield=True):
                async with trio.open_nursery() as tn:
                    task_status.started(tn)
                    await trio.sleep_forever()
        finally:
            self._service_done.set()

    async def _run_io_nursery(
        self, task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Host listener and connection tasks, shielded from the caller's
        scopes; ``_open_runtime`` cancels this nursery last, explicitly."""
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as tn:
                task_status.started(tn)
                await trio.sleep_forever()

    async def _listen(self, addr: Address) -> None:
        tpt = get_transport(addr.proto_key)
        listener, bound = await tpt.listen(addr)
        self._listen_addrs.append(bound)
        assert self._root_tn is not None
        self._root_tn.start_soon(self._serve_listener, listener, bound)

    async def _serve_listener(self, listener: trio.abc.Listener, addr: Address) -> None:
        async with listener:
            async with trio.open_nursery() as tn:
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as err:
                        # e.g. EMFILE: back off instead of dying
                        log.warning('accept() on %s failed: %s', addr, err)
                        await trio.sleep(0.05)
                        continue
                    tn.start_soon(self._handle_connection, stream, addr)

    async def _handle_connection(self, stream: trio.abc.Stream, laddr: Address) -> None:
        chan = Channel(stream, laddr=laddr, raddr=None, initiator=False)
        try:
            try:
                with self._handshakes.admit() as gate:
                    aid = await handshake(chan, self.aid, HANDSHAKE_TIMEOUT, self._listen_addrs)
                if gate.cancelled_caught:
                    return  # dropped for a newer one (logged by the gate)
            except TransportClosed as err:
                # closed before saying anything: liveness probes, port scans
                log.debug('connection on %s closed during the handshake: %s', laddr, err)
                return
            except (AuthenticationError, MsgTypeError, trio.TooSlowError) as err:
                # one line, naming the peer; nothing it sent was decoded
                # unless it passed authentication (see tractor._auth)
                log.warning(
                    'refused connection from %s on %s: %s', describe_peer(stream), laddr,
                    err if not isinstance(err, trio.TooSlowError)
                    else f'handshake not done within {HANDSHAKE_TIMEOUT}s',
                )
                return
            log.transport('%s: accepted %r (pid %d)', laddr, aid.name, aid.pid)
            waiter = self._spawning.get(aid.uid)
            if waiter is not None:
                if not waiter.proves(chan):
                    # the uuid is public (a child's argv): only the process
                    # we started holds the token from its secret pipe
                    log.warning(
                        'refused connection from %s on %s: it claims to be the child %r '
                        'being spawned but cannot prove its spawn token',
                        describe_peer(stream), laddr, aid.name,
                    )
                    return
                del self._spawning[aid.uid]
                if waiter.spec.debug_mode and self.is_root and DEBUG_LOCK_MODULE not in self._mods:
                    # debug_mode for one child only: its sessions still
                    # need the tree's terminal lock
                    self._mods[DEBUG_LOCK_MODULE] = self._import(DEBUG_LOCK_MODULE)
                ok = await waiter.handoff(chan)
                if not ok:
                    return
                self._child_chans.add(chan)
            await self._serve_channel(chan)
        except Exception:
            log.exception('connection handler on %s failed', laddr)
        finally:
            self._child_chans.discard(chan)
            await chan.aclose()

    async def connect(self, addr: Address | Any) -> Channel:
        """Dial a peer at ``addr`` and serve the new channel; returns it."""
        chan = await dial(addr, self.aid, addrs=self._listen_addrs)
        log.transport('%s: dialed %r', chan.raddr, chan.aid and chan.aid.name)
        ready = trio.Event()
        assert self._root_tn is not None
        self._root_tn.start_soon(self._serve_dialed, chan, ready)
        await ready.wait()
        return chan

    async def _serve_dialed(self, chan: Channel, ready: trio.Event) -> None:
        try:
            await self._serve_channel(chan, ready)
        except Exception:
            # like an accepted connection: whatever goes wrong on one
            # connection ends that connection, never the actor (this task
            # runs in the actor's I/O nursery)
            log.exception('connection to %r failed', chan.aid and chan.aid.name)
        finally:
            await chan.aclose()

    def _add_peer(self, chan: Channel) -> None:
        uid = chan.uid
        assert uid is not None
        self._peers.setdefault(uid, []).append(chan)
        ev = self._peer_events.pop(uid, None)
        if ev is not None:
            ev.set()

    def _remove_peer(self, chan: Channel) -> None:
        chans = self._peers.get(chan.uid)  # type: ignore[arg-type]
        if chans and chan in chans:
            chans.remove(chan)
            if not chans:
                del self._peers[chan.uid]  # type: ignore[arg-type]

    def get_peer_channels(
        self, name: str | None = None, *, uid: tuple[str, str] | None = None,
    ) -> list[Channel]:
        """Connected channels, newest first: to every peer, to peers named
        ``name``, or to the one actor ``uid`` (``(name, uuid)``)."""
        if uid is not None:
            return [c for c in reversed(self._peers.get(uid, ())) if c.connected()]
        out: list[Channel] = []
        for peer, chans in reversed(self._peers.items()):
            if name is None or peer[0] == name:
                out.extend(c for c in reversed(chans) if c.connected())
        return out

    async def _serve_channel(self, chan: Channel, ready: trio.Event | None = None) -> None:
        """Route every message of ``chan`` until it closes or misbehaves."""
        self._add_peer(chan)
        assert self._root_tn is not None
        self._root_tn.start_soon(chan.run_writer)
        if ready is not None:
            ready.set()
        err: BaseException | None = None
        try:
            while True:
                msg = await chan.recv()
                kind = type(msg)
                if kind is _msg.Start:
                    await self._handle_start(chan, msg)  # type: ignore[arg-type]
                elif kind in _CTX_MSGS:
                    ctx = self._contexts.get((chan, msg.cid))  # type: ignore[attr-defined]
                    if ctx is not None:
                        ctx._deliver(msg)
                    elif kind is _msg.Error and msg.cid == 0:  # type: ignore[attr-defined]
                        log.error('peer %r reported: %s', chan.aid, unpack_error(msg))  # type: ignore[arg-type]
                    else:
                        log.debug('no context %s for %s from %r', getattr(msg, 'cid', '?'), kind.__name__, chan.aid)
                else:
                    raise MsgTypeError(f'unexpected {kind.__name__} after the handshake')
        except MsgTypeError as exc:
            err = exc
            log.warning('dropping connection to %r: %s', chan.aid and chan.aid.name, exc)
        except TransportClosed as exc:
            err = exc
            log.debug('connection to %r closed: %s', chan.aid and chan.aid.name, exc)
        finally:
            self._remove_peer(chan)
            lost = err if isinstance(err, TransportClosed) else TransportClosed(
                f'connection to {chan.aid and chan.aid.name!r} was dropped: {err}'
            )
            for (c, _cid), ctx in list(self._contexts.items()):
                if c is chan:
                    ctx._lost(lost)
            await chan.aclose()
            if chan is self._parent_chan and not self._cancel_called:
                log.warning('lost the parent %r: shutting down', chan.aid and chan.aid.name)
                self.cancel_soon(requester=None)

    async def _handle_start(self, chan: Channel, msg: _msg.Start) -> None:
        if msg.ns == 'self' and msg.func in ('cancel', 'ping'):
            await self._runtime_call(chan, msg)
            return
        if not 0 <= msg.window <= MAX_WINDOW or (chan, msg.cid) in self._contexts:
            # a bad stream window, or a call id still in use: refuse this
            # request with a typed error, keep serving the connection
            why = (
                f'call id {msg.cid} is already in use on this connection'
                if 0 <= msg.window <= MAX_WINDOW
                else f'stream window {msg.window} is outside 0..{MAX_WINDOW}'
            )
            await self._send_safe(chan, pack_error(msg.cid, MsgTypeError(why), self))
            return
        ctx: Context | CallScope = (
            Context(self, chan, msg.cid, 'callee', f'{msg.ns}:{msg.func}', window=msg.window or DEFAULT_WINDOW)
            if msg.kind == 'ctx' else CallScope(chan, msg.cid)  # a plain call: no stream
        )
        self._contexts[(chan, msg.cid)] = ctx
        try:
            assert self._service_tn is not None
            self._service_tn.start_soon(self._invoke, chan, ctx, msg, name=f'{msg.ns}:{msg.func}')
        except RuntimeError:
            self._contexts.pop((chan, msg.cid), None)
            await self._send_safe(chan, pack_error(msg.cid, RuntimeError(f'actor {self.name!r} is shutting down'), self))

    async def _runtime_call(self, chan: Channel, msg: _msg.Start) -> None:
        """Calls into the runtime itself (``ns='self'``), answered inline."""
        if msg.func == 'cancel':
            self.cancel_soon(requester=chan.uid)
            result: Any = True
        elif msg.func == 'ping':
            result = self.uid
        else:
            await self._send_safe(chan, pack_error(msg.cid, ModuleNotExposed(f'no runtime method {msg.func!r}'), self))
            return
        await self._send_safe(chan, _msg.Return(cid=msg.cid, pld=result))

    async def _send_safe(self, chan: Channel, msg: Any) -> None:
        with trio.move_on_after(5) as cs:
            cs.shield = True
            try:
                await chan.send(msg)
            except (TransportClosed, trio.ClosedResourceError):
                log.debug('could not send %s to %r: connection gone', type(msg).__name__, chan.aid)

    async def _invoke(self, chan: Channel, ctx: Context | CallScope, msg: _msg.Start) -> None:
        cid = msg.cid
        current_channel.set(chan)  # this task's own context
        try:
            fn = self._resolve(msg.ns, msg.func)
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
            if ctx_fn and getattr(fn, '_tractor_pld_spec', None) is not None:
                import msgspec

                ctx._pld_dec = msgspec.msgpack.Decoder(fn._tractor_pld_spec)  # type: ignore[attr-defined]
            # (this task's own: it runs only this call; a plain call has none,
            # whatever the task that started the channel's loop had)
            _current_ctx.set(ctx if ctx_fn else None)
            with trio.CancelScope() as cs:
                ctx._scope = cs
                target = ctx if ctx_fn else None
                if self.debug_mode:
                    # a crash opens the debugger; breakpoint() works here
                    from .debug import _api as debug_api

                    result = await debug_api.run_debuggable(
                        self, _call_user, fn, target, msg.kwargs
                    )
                else:
                    result = await _call_user(fn, target, msg.kwargs)
            if cs.cancelled_caught:
                await self._send_safe(chan, pack_cancelled(
                    cid, self, ctx.canceller or self.uid, getattr(ctx, '_cancel_tb', ''),
                ))
                return
            try:
                if ctx_fn and ctx._pld_dec is not None:  # type: ignore[union-attr]
                    _msg.check_pld(result, ctx._pld_dec)  # type: ignore[union-attr]
                await chan.send(_msg.Return(cid=cid, pld=result))
            except MsgTypeError as err:
                await self._send_safe(chan, pack_error(cid, err, self))
        except Exception as err:
            log.debug('%s.%s failed in %r', msg.ns, msg.func, self.name, exc_info=True)
            await self._send_safe(chan, pack_error(cid, err, self))
        except BaseException:
            # the actor itself is being cancelled
            await self._send_safe(chan, pack_cancelled(cid, self, self.cancel_requester or self.uid))
            raise
        finally:
            self._contexts.pop((chan, cid), None)

    # -- calling peers ------------------------------------------------------
    async def call(
        self,
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
        reply = Reply(chan, cid)
        self._contexts[(chan, cid)] = reply
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
                await self._send_safe(chan, _msg.Cancel(cid=cid))
                if reply_on_cancel > 0:
                    from .debug._lock import within_grace

                    with trio.CancelScope(shield=True):
                        await within_grace(self, reply_on_cancel, reply.wait)
            err = reply.error
            if (
                reply_on_cancel > 0
                and isinstance(err, RemoteActorError)
                and not isinstance(err, ContextCancelled)
            ):
                raise err
            raise
        finally:
            self._contexts.pop((chan, cid), None)

    # -- cancellation -------------------------------------------------------
    def cancel_soon(self, requester: tuple[str, str] | None = None) -> None:
        """Begin shutting this actor down (its RPC tasks, then itself)."""
        if self._cancel_called:
            return
        self._cancel_called = True
        self.cancel_requester = requester
        log.cancel('%r cancel requested by %s', self.name, requester[0] if requester else 'itself')
        if self._service_tn is not None:
            self._service_tn.cancel_scope.cancel()
        self._cancel_event.set()

    async def wait_cancelled(self) -> None:
        await self._cancel_event.wait()


async def _call_user(fn: Callable, ctx: Context | None, kwargs: dict[str, Any]) -> Any:
    """Run an RPC target: a ``@context`` function gets ``ctx``; a plain one
    may be sync or async."""
    if ctx is not None:
        return await fn(ctx=ctx, **kwargs)
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


_CTX_MSGS = frozenset({
    _msg.Started, _msg.Yield, _msg.Stop, _msg.Return, _msg.Error, _msg.Credit, _msg.Cancel,
})


def _importable_name(mod: ModuleType) -> str | None:
    """The name a main script is importable under from ``sys.path`` (run
    as ``python pkg/tree.py`` from the directory above: ``pkg.tree``), or
    ``None`` when there is none."""
    spec = getattr(mod, '__spec__', None)
    if spec is not None and spec.name not in _MAIN_NAMES:
        return spec.name  # run with `python -m ...`, or loaded by name
    path = getattr(mod, '__file__', None)
    if not path or not path.endswith('.py'):
        return None
    path = os.path.abspath(path)
    for entry in sys.path:
        base = os.path.join(os.path.abspath(entry or '.'), '')
        if path.startswith(base):
            parts = path[len(base):-3].split(os.sep)
            if parts[-1] == '__init__':
                parts.pop()
            if parts and all(p.isidentifier() for p in parts):
                return '.'.join(parts)
    return None


def _load_from_path(name: str, path: str) -> ModuleType:
    """Load a module from its file under ``name`` (for ``__main__`` scripts
    and modules the parent imported by path), without running its
    ``if __name__ == '__main__':`` block."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f'cannot load module {name!r} from {path!r}')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod
