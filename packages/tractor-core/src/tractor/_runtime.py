"""The ``Actor``: one per process; serves RPC, owns connections to peers."""

from __future__ import annotations

import os
import uuid as _uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import trio

from . import _accept, _caller, _invoke, _modules, _msg, _state
from ._boxing import unpack_error
from ._call import CallScope, Reply
from ._context import Context
from ._debugger import Debugger
from ._dial import dial
from ._exceptions import MsgTypeError, TransportClosed
from ._gen_stream import stream_from
from ._inbox import Inbox
from ._ipc import Channel
from ._limits import HandshakeGate
from ._modules import normalize_ns
from ._plugins import get_plugin_manager
from ._portal import Portal
from ._transport import Address, get_transport, wrap_address
from .log import get_logger

log = get_logger('runtime')


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
        self._routes: dict[tuple[Channel, int], Context | Reply | CallScope] = {}
        self._spawning: dict[tuple[str, str], Any] = {}
        #: spawn channels of this actor's children once they are serving
        #: (so a SIGUSR1 task-tree dump can be relayed down the tree)
        self._child_chans: set[Channel] = set()
        self._parent_chan: Channel | None = None
        #: the spawning parent's uid (``None`` in a root)
        self.parent_uid: tuple[str, str] | None = None
        #: listener and connection tasks (shielded from the opener's scopes)
        self._io_tn: trio.Nursery | None = None
        #: channels handed to adopt() before the runtime served (see there)
        self._adopted: list[Channel] = []
        #: RPC tasks (likewise shielded; cancelled by cancel_soon/teardown)
        self._service_tn: trio.Nursery | None = None
        self._cancel_called = False
        self._cancel_event = trio.Event()
        self._cancel_complete = trio.Event()
        self._service_done = trio.Event()
        #: plain calls run by the channel reader that received them
        #: (tractor._invoke.run_here), and what their end sets once none is left
        self._calls_here: set[CallScope] = set()
        self._calls_idle: trio.Event | None = None
        self.cancel_requester: tuple[str, str] | None = None
        #: this actor lost its parent and is shutting down on its own: its
        #: children get the orphan grace (see tractor._cancel_ladder)
        self.orphaned = False
        #: set by debug mode (see tractor._debugger): consulted where an error
        #: leaves user code and by the cancel bounds
        self.debugger: Debugger | None = None
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
    def listen_addrs(self) -> list[Address]:
        return list(self._listen_addrs)

    @property
    def parent_portal(self) -> Any:
        """A :class:`~tractor.Portal` to the actor that spawned this one
        (``None`` in a root actor), over the spawn connection."""
        if self._parent_chan is None:
            return None
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

    def adopt(self, chan: Channel) -> None:
        """Serve ``chan``, a channel this actor dialed itself
        (``tractor.plugin.dial``: handshaken, its replies so far read), as a
        peer channel from now on, as if :meth:`connect` had returned it: a
        boot-time probe's connection can so be kept for later use. Handed
        over before the actor serves (a root's ``tractor_root_bind_addrs``
        hook), it is served once the runtime starts, or closed with the
        boot if the runtime never does."""
        if self._io_tn is None:
            self._adopted.append(chan)
        else:
            self._serve_soon(chan)

    def _serve_adopted(self) -> None:
        adopted, self._adopted = self._adopted, []
        for chan in adopted:
            self._serve_soon(chan)

    async def _close_adopted(self) -> None:
        """(boot gave up before serving) Close what :meth:`adopt` held."""
        adopted, self._adopted = self._adopted, []
        with trio.CancelScope(shield=True):
            for chan in adopted:
                await chan.aclose()

    def start_service_task(
        self, fn: Callable[..., Any], *args: Any, name: str | None = None
    ) -> None:
        """Run ``fn(*args)`` as a task of this actor's service nursery, where
        its RPC tasks run: it is not cancelled with the caller's scopes, only
        by ``cancel_soon()`` and teardown (before plugin hooks unwind).
        ``RuntimeError`` when the actor is not serving (not yet, or no more)."""
        self._service_nursery(fn).start_soon(fn, *args, name=name)

    async def start_service(
        self, fn: Callable[..., Any], *args: Any, name: str | None = None
    ) -> Any:
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

    async def call_local(self, ns: str, func: str, kwargs: dict[str, Any]) -> Any:
        """Run ``ns:func(**kwargs)`` in this actor as a peer's plain call
        would (the same checks as :meth:`resolve_rpc_target`; sync or async
        targets), with no IPC: e.g. the registrar asking itself."""
        return await _invoke.call_user(self._resolve(ns, func), None, kwargs)

    # -- RPC allowlist (tractor._modules) ------------------------------
    def load_modules(self) -> None:
        """Import every enabled module now, so a bad name fails the spawn;
        plugins add theirs (hook ``tractor_rpc_modules``)."""
        extra: list[str] = []
        for mods in get_plugin_manager().hook.tractor_rpc_modules(actor=self):
            extra.extend(mods or ())
        _modules.load([*self.enable_modules, *extra], self._mods, self._module_paths, self.is_root)
        log.runtime('%r serves RPC from %s', self.name, sorted(self._mods))

    def serve_module(self, name: str) -> None:
        """Serve RPC from module ``name`` from now on (a plugin enabling a
        module once the actor runs, e.g. the debugger's lock when a child in
        debug mode is spawned)."""
        _modules.load([name], self._mods, self._module_paths, self.is_root)

    def expose(self, name: str, fn: Callable) -> None:
        """Serve ``fn`` as runtime method ``name`` (``run_from_ns('self', name)``);
        plugins use this, e.g. the registrar's lookup methods."""
        self._runtime_methods[name] = fn

    def _resolve(self, ns: str, func: str) -> Callable:
        return _modules.resolve(self.name, self._mods, self._runtime_methods, ns, func)

    # -- a subactor's start (tractor._child) ---------------------------
    def _take_spawn_spec(self, spec: _msg.SpawnSpec, parent_uid: tuple[str, str] | None) -> None:
        """Adopt the start state the parent sent, before loading modules."""
        self.enable_modules = list(spec.enable_modules)
        self._module_paths = dict(spec.module_paths)
        self._reg_addrs = [wrap_address(a) for a in spec.reg_addrs]
        self.enable_transports = list(spec.enable_transports)
        self.loglevel = spec.loglevel
        self.debug_mode = spec.debug_mode
        self.start_method = spec.start_method
        self.root_uid = spec.root_uid
        self._root_addrs = [wrap_address(a) for a in spec.root_addrs]
        self.stack_on_sig = spec.stack_on_sig
        self.parent_uid = parent_uid  # known before serving (registration says it)

    def _serve_parent(self, chan: Channel) -> None:
        """Serve the spawn connection (once ``Ready`` is sent): from now on,
        losing it shuts this actor down."""
        self._parent_chan = chan
        self._serve_soon(chan)

    async def _listen(self, addr: Address) -> None:
        tpt = get_transport(addr.proto_key)
        listener, bound = await tpt.listen(addr)
        self._listen_addrs.append(bound)
        assert self._io_tn is not None
        self._io_tn.start_soon(_accept.serve_listener, self, listener, bound)

    async def connect(self, addr: Address | Any) -> Channel:
        """Dial a peer at ``addr`` and serve the new channel; returns it."""
        chan = await dial(addr, self.aid, addrs=self._listen_addrs)
        log.transport('%s: dialed %r', chan.raddr, chan.aid and chan.aid.name)
        try:
            self._serve_soon(chan)
        except BaseException:
            await chan.aclose()  # the actor is shutting down: nobody serves it
            raise
        return chan

    def _serve_soon(self, chan: Channel) -> None:
        """Serve a channel this actor dialed: a peer (``get_peer_channels``)
        with a writer from now on, read by a task that starts next tick (no
        wait for it: nothing arrives before it reads)."""
        assert self._io_tn is not None
        self._io_tn.start_soon(self._serve_dialed, chan)  # first: raises if closed
        self._open_channel(chan)

    async def _serve_dialed(self, chan: Channel) -> None:
        try:
            await self._serve_opened(chan)
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
        log.runtime('peer %r connected (%d channel(s))', uid[0], len(self._peers[uid]))
        ev = self._peer_events.pop(uid, None)
        if ev is not None:
            ev.set()

    def _remove_peer(self, chan: Channel) -> None:
        uid = chan.uid
        assert uid is not None  # (only channels that said Hello are peers)
        chans = self._peers.get(uid)
        if chans and chan in chans:
            chans.remove(chan)
            if not chans:
                del self._peers[uid]
            log.runtime('peer %r disconnected (%d channel(s) left)', uid[0], len(chans))

    def get_peer_channels(
        self, name: str | None = None, *, uid: tuple[str, str] | None = None
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

    async def _serve_channel(self, chan: Channel) -> None:
        """Route every message of ``chan`` (an accepted channel) until it
        closes or misbehaves.

        The channel is read by one task at a time (:meth:`_read_channel`),
        this one first; it returns once the channel's last reader is done.
        """
        self._open_channel(chan)
        await self._serve_opened(chan)

    def _open_channel(self, chan: Channel) -> None:
        """Make ``chan`` a peer of this actor and start its writer."""
        self._add_peer(chan)
        assert self._io_tn is not None
        self._io_tn.start_soon(chan.run_writer)

    async def _serve_opened(self, chan: Channel) -> None:
        ended = trio.Event()
        await self._read_channel(chan, ended)
        await ended.wait()

    async def _read_channel(self, chan: Channel, ended: trio.Event) -> None:
        """Be ``chan``'s reader: route its messages until it ends (then
        clean up and set ``ended``).

        A plain call's ``Start`` is run right here (no task to start and
        schedule before its reply can go out: ``_invoke.run_here``). If the
        call has to wait, this task first starts the channel's next reader
        and then stays the call's until it returns. The cancel scope around
        the loop is that call's (``_invoke.invoke``): one per reader, not one
        per call.
        """
        err: BaseException | None = None
        handed_on = False

        def hand_on() -> None:
            nonlocal handed_on
            assert self._io_tn is not None
            self._io_tn.start_soon(self._read_channel, chan, ended)
            handed_on = True

        try:
            # a fresh scope once a call run here cancelled itself without
            # suspending; none once a call that suspended here and kept this
            # task ended cancelled (the next reader took over)
            while not handed_on:
                with trio.CancelScope() as scope:
                    while True:
                        if chan._woke:
                            chan._woke = False
                            if chan._drained and chan._pos >= len(chan._buf):
                                # a reply or stream message this reader
                                # delivered woke a waiting task, and nothing
                                # more came: step aside for a pass, for that
                                # task to read what it waits for next itself
                                # (``_lead``)
                                chan._lead_open = True
                                await trio.lowlevel.cancel_shielded_checkpoint()
                        while chan._lead is not None:
                            await _park_reader(chan)
                        chan._lead_open = False
                        if chan._handoff is None:
                            msg = await chan.recv()
                        else:
                            msg = _take_handoff(chan)
                        kind = type(msg)
                        if kind is _msg.Start:
                            call = await _invoke.handle_start(self, chan, msg)  # type: ignore[arg-type]  # dispatch on a saved type(msg)
                            if call is not None:
                                if await _invoke.run_here(self, chan, call, msg, hand_on, scope):  # type: ignore[arg-type]  # dispatch on a saved type(msg)
                                    return  # the next reader took over
                                if scope.cancel_called:
                                    break  # the call cancelled itself
                        elif kind in _CTX_MSGS:
                            ctx = self._routes.get((chan, msg.cid))  # type: ignore[attr-defined]  # dispatch on a saved type(msg)
                            if ctx is not None:
                                # a stream message behind others still queued
                                # (so no taker waits: see Inbox.put) is
                                # appended here, which saves the calls of
                                # ``Context._deliver`` and ``Inbox.put`` per
                                # message of a busy stream
                                if (
                                    kind is _msg.Yield
                                    and (inbox := ctx._inbox) is not None
                                    and inbox._data
                                    and len(inbox._data) < inbox._capacity
                                    and not inbox._closed
                                ):
                                    inbox._data.append(msg)
                                else:
                                    ctx._deliver(msg)
                            elif kind is _msg.Error and msg.cid == 0:  # type: ignore[attr-defined]  # dispatch on a saved type(msg)
                                log.error('peer %r reported: %s', chan.aid, unpack_error(msg))  # type: ignore[arg-type]  # dispatch on a saved type(msg)
                            else:
                                log.debug(
                                    'no context %s for %s from %r',
                                    getattr(msg, 'cid', '?'),
                                    kind.__name__,
                                    chan.aid,
                                )
                        else:
                            raise MsgTypeError(f'unexpected {kind.__name__} after the handshake')
        except MsgTypeError as exc:
            err = exc
            log.warning('dropping connection to %r: %s', chan.aid and chan.aid.name, exc)
        except TransportClosed as exc:
            err = exc
            log.debug('connection to %r closed: %s', chan.aid and chan.aid.name, exc)
        except Exception as exc:
            # one connection's failure ends that connection, never the actor
            # (a handed-on reader runs right in the I/O nursery)
            err = exc
            log.exception('connection to %r failed', chan.aid and chan.aid.name)
        finally:
            if not handed_on:  # this task is the channel's last reader
                await self._channel_ended(chan, err)
                ended.set()

    async def _lead(self, chan: Channel, reply: Reply | None, inbox: Inbox | None = None) -> None:
        """(``Reply.receive``, ``MsgStream.receive``) Read ``chan`` in this
        task until ``reply`` came, or ``inbox`` has a message (or closed),
        while the channel's reader steps aside (``_lead_open``); the rest
        of the batch already read and checked is routed too, the socket not
        waited for again.

        What this task waits for then wakes no task: it has it as the read
        returns, one trip through the scheduler fewer per message (the
        reader, handed the reading back, waits for the socket again after
        this task's next request went out). Replies and context messages
        for others are delivered as the reader would; anything else (a
        ``Start``, a message for no context) and any error of the read are
        left to the reader (``_handoff``), with the reading, in order."""
        chan._lead = trio.lowlevel.current_task()
        chan._lead_open = False
        routes = self._routes
        try:
            while chan._pos < chan._vend or (
                (reply.msg is None and reply.error is None)
                if reply is not None
                else not inbox._data and not inbox._closed  # type: ignore[union-attr]  # one of the two is given
            ):
                try:
                    msg = await chan.recv()
                except Exception as exc:
                    chan._handoff = exc
                    return
                ctx = routes.get((chan, msg.cid)) if type(msg) in _CTX_MSGS else None  # type: ignore[attr-defined]  # every message in _CTX_MSGS has a cid
                if ctx is None:
                    chan._handoff = msg
                    return
                ctx._deliver(msg)
        finally:
            chan._lead = None
            # the next waiter may lead at once (before the reader ran again)
            # only from where the reader would go on: the socket
            chan._lead_open = chan._handoff is None and chan._pos >= len(chan._buf)
            reader = chan._reader_parked
            if reader is not None:
                chan._reader_parked = None
                trio.lowlevel.reschedule(reader)

    async def _channel_ended(self, chan: Channel, err: BaseException | None) -> None:
        """``chan`` is done (EOF, an error, a bad message): drop the peer,
        fail whatever waited on the channel, close it; a lost parent shuts
        this actor down."""
        self._remove_peer(chan)
        lost = (
            err
            if isinstance(err, TransportClosed)
            else TransportClosed(f'connection to {chan.aid and chan.aid.name!r} was dropped: {err}')
        )
        for (c, _cid), ctx in list(self._routes.items()):
            if c is chan:
                ctx._lost(lost)
        await chan.aclose()
        if chan is self._parent_chan and not self._cancel_called:
            log.warning('lost the parent %r: shutting down', chan.aid and chan.aid.name)
            self.orphaned = True
            self.cancel_soon(requester=None)

    # -- calling peers (tractor._caller) ---------------------------------
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
        """Run ``ns.func(**kwargs)`` in the peer on ``chan`` and return its
        result (see :func:`tractor._caller.call`)."""
        return await _caller.call(
            self, chan, ns, func, kwargs, reply_on_cancel=reply_on_cancel, always_start=always_start
        )

    # -- cancellation -------------------------------------------------------
    def cancel_soon(self, requester: tuple[str, str] | None = None) -> None:
        """Begin shutting this actor down (its RPC tasks, then itself)."""
        if self._cancel_called:
            return
        self._cancel_called = True
        self.cancel_requester = requester
        log.cancel('%r cancel requested by %s', self.name, requester[0] if requester else 'itself')
        self._cancel_rpc()
        self._cancel_event.set()

    def _cancel_rpc(self) -> None:
        """Cancel every RPC this actor runs: the service nursery's tasks
        and the plain calls its channel readers run themselves."""
        if self._service_tn is not None:
            self._service_tn.cancel_scope.cancel()
        for call in self._calls_here:
            if call.canceller is None:
                call.canceller = self.cancel_requester or self.uid
            call._cancel_scope()

    async def _rpc_done(self) -> None:
        """Until every RPC is over (after :meth:`_cancel_rpc`)."""
        await self._service_done.wait()
        while self._calls_here:
            self._calls_idle = idle = trio.Event()
            await idle.wait()

    async def wait_cancelled(self) -> None:
        await self._cancel_event.wait()


async def _park_reader(chan: Channel) -> None:
    """(the reader of ``chan``) Until the task leading ``chan`` hands the
    reading back."""
    chan._reader_parked = trio.lowlevel.current_task()

    def abort(_: Any) -> trio.lowlevel.Abort:
        chan._reader_parked = None
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)


def _take_handoff(chan: Channel) -> _msg._Msg:
    """(the reader of ``chan``) What the task that led left to it: the
    message, or the read's error raised here, as the reader's own read
    would have."""
    left, chan._handoff = chan._handoff, None
    if isinstance(left, BaseException):
        raise left
    assert left is not None
    return left


_CTX_MSGS = frozenset(
    {_msg.Started, _msg.Yield, _msg.Stop, _msg.Return, _msg.Error, _msg.Credit, _msg.Cancel}
)
