"""Spawning subactors: backend selection and the parent's side of boot.

A backend (a :class:`SpawnBackend` of hook ``tractor_spawn_methods``) starts
a process that connects to the parent: over the socket pair it inherits
(``_spawn_trio.child_command``, which core's backends use), else by dialing
the parent back; the parent then sends the whole start state as one
:class:`~tractor._msg.SpawnSpec` (plugins add theirs to its ``ext``) and
waits for :class:`~tractor._msg.Ready`. Backends say whether
they can run here and how preferred they are, which picks the default.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import trio

from . import _msg, _secret, _session, _settings
from ._boxing import unpack_error
from ._exceptions import ActorFailure, MsgTypeError, TransportClosed
from ._plugins import get_plugin_manager
from .log import get_logger

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._runtime import Actor
    from ._transport import Address

ENV_START_METHOD = 'TRACTOR_START_METHOD'
#: core's own backend, always available: the default unless an available
#: backend declares a higher :attr:`SpawnBackend.priority`
FALLBACK_START_METHOD = 'trio'
#: how long a child may take from exec to Ready
SPAWN_TIMEOUT = _settings.value('TRACTOR_SPAWN_TIMEOUT')

log = get_logger('spawn')


class Process(Protocol):
    """What a spawn backend returns: the part of ``trio.Process`` the actor
    nursery uses (the fork server's ``ForkedProcess`` is another)."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...

    def terminate(self) -> None: ...

    def send_signal(self, sig: int) -> None: ...


SpawnFn = Callable[..., Awaitable[Process]]


def _always() -> bool:
    return True


class SpawnBackend(msgspec.Struct, frozen=True):
    """A spawn backend, as hook ``tractor_spawn_methods`` provides it:
    ``{'name': SpawnBackend(spawn_fn, available=..., priority=...)}``.

    ``await spawn(name=..., uuid=..., parent_addr=...)`` starts the process
    of subactor ``(name, uuid)`` (from ``child_command``, passing its fds:
    the child then starts connected to the parent; else it dials
    ``parent_addr`` back), and
    returns its :class:`Process` (``infect_asyncio=True`` is passed only to
    ask for an asyncio-hosted child). ``available()`` says whether the
    backend can run on this machine; it is asked whenever a start method is
    picked, so it should cache what it probes. A backend that cannot run is
    never the default, and naming it fails saying it is unavailable here
    and what it ``needs``. The default is the available backend of highest
    ``priority``; core's ``'trio'`` has 0 and wins a tie.
    """

    spawn: SpawnFn
    available: Callable[[], bool] = _always
    priority: int = 0
    #: what the backend needs that a machine may lack (for the error)
    needs: str = ''


def spawn_backends() -> dict[str, SpawnBackend]:
    """Every backend the plugins provide, by name. A plain function (the
    ``{name: async_spawn_fn}`` form) is a backend that is always available,
    of priority 0."""
    backends: dict[str, SpawnBackend] = {}
    for provided in get_plugin_manager().hook.tractor_spawn_methods():
        for key, impl in (provided or {}).items():
            if key not in backends:
                backends[key] = impl if isinstance(impl, SpawnBackend) else SpawnBackend(impl)
    return backends


def default_start_method(backends: dict[str, SpawnBackend] | None = None) -> str:
    """The available backend of highest priority (``'trio'`` on a tie, then
    the first provided)."""
    if backends is None:
        backends = spawn_backends()
    best, best_key = FALLBACK_START_METHOD, None
    for index, (name, backend) in enumerate(backends.items()):
        key = (backend.priority, name == FALLBACK_START_METHOD, -index)
        if (best_key is None or key > best_key) and backend.available():
            best, best_key = name, key
    return best


def resolve_start_method(start_method: str | None) -> str:
    """``start_method`` or ``$TRACTOR_START_METHOD`` or the default, checked:
    ``ValueError`` when no backend has that name or it cannot run here."""
    backends = spawn_backends()
    method = start_method or os.environ.get(ENV_START_METHOD) or default_start_method(backends)
    backend = backends.get(method)
    if backend is None or not backend.available():
        here = sorted(name for name, b in backends.items() if b.available())
        if backend is None:
            raise ValueError(f'unknown start_method {method!r}; available here: {here}')
        needs = f' (it needs {backend.needs})' if backend.needs else ''
        raise ValueError(
            f'start_method {method!r} is not available here{needs}; available here: {here}'
        )
    return method


def spawn_spec_ext(
    actor: Actor, child_uid: tuple[str, str], start_method: str, spec: _msg.SpawnSpec
) -> dict[str, Any]:
    """The child's ``SpawnSpec.ext``: what the plugins' parent-side hook
    ``tractor_spawn_spec_ext`` returns, asked once the child's process
    started. Each plugin should use its own key; on a clash the first
    answer stays (and the clash is logged)."""
    ext: dict[str, Any] = {}
    for provided in get_plugin_manager().hook.tractor_spawn_spec_ext(
        actor=actor, child_uid=child_uid, start_method=start_method, spec=spec
    ):
        for key, value in (provided or {}).items():
            if key in ext:
                log.error(
                    'two plugins set SpawnSpec.ext[%r] for %r: keeping the first', key, child_uid
                )
                continue
            ext[key] = value
    return ext


def main_script_path() -> str | None:
    """The file of ``__main__`` when it is a script (not ``-m`` or a REPL)."""
    main = sys.modules.get('__main__')
    path = getattr(main, '__file__', None)
    return os.path.abspath(path) if path else None


def module_paths(names: list[str], inherited: dict[str, str] | None = None) -> dict[str, str]:
    """Files of the enabled modules already imported here, so a child can
    load the ones that are not importable by name (scripts, test files).

    ``inherited`` is what a subactor got from its own parent: its
    ``__main__`` is the root's main script (not the runtime's entry point
    it was started with), and its children get that one too.
    """
    out: dict[str, str] = {}
    for name in names:
        if name == '__main__' and inherited and any(k.startswith('__main__') for k in inherited):
            out.update({k: v for k, v in inherited.items() if k.startswith('__main__')})
            continue
        if name == '__main__':
            main = sys.modules.get('__main__')
            spec = getattr(main, '__spec__', None)
            if spec is not None and spec.name not in ('__main__', '__mp_main__'):
                out['__main__:module'] = spec.name
            path = main_script_path() or (getattr(sys.modules.get('__mp_main__'), '__file__', None))
            if path:
                out['__main__'] = path
            continue
        mod = sys.modules.get(name)
        path = getattr(mod, '__file__', None)
        if path:
            out[name] = os.path.abspath(path)
    return out


class SpawnWaiter:
    """The parent's rendezvous with one child that is booting."""

    def __init__(self, spec: _msg.SpawnSpec) -> None:
        self.spec = spec
        #: handed to the child on its secret pipe; the spec goes only to a
        #: connection that proves it holds it (see :meth:`proves`)
        self.token = secrets.token_bytes(_secret.SPAWN_TOKEN_SIZE)
        self.done = trio.Event()
        self.chan: Channel | None = None
        self.accept_addrs: list[Any] = []
        self.error: BaseException | None = None
        #: the parent's end of the child's inherited socket pair, once a
        #: core backend made one (``child_command``); ``None``: the child
        #: dials the parent instead
        self.sock: socket.socket | None = None

    def proves(self, chan: Channel) -> bool:
        """Whether the peer on ``chan`` showed it holds this spawn's token,
        i.e. is the process we started, not just a peer claiming its uid."""
        return chan.session is not None and _session.check_spawn_proof(
            self.token, chan.session, chan.peer_spawn_proof
        )

    async def handoff(self, actor: Actor, chan: Channel, spec_sent: bool = False) -> bool:
        """Called once the child said Hello (on a connection to ``actor``'s
        listener, or its inherited socket): send the spec unless
        ``spec_sent``, wait for ``Ready``, then let the plugins'
        ``tractor_child_ready`` hooks finish their part before the spawn
        counts as done."""
        try:
            with trio.fail_after(SPAWN_TIMEOUT):
                if not spec_sent:
                    await chan.send(self.spec)
                msg = await chan.recv()
                if isinstance(msg, _msg.Ready):
                    chan.set_raddr_from(msg.accept_addrs)
                    await _child_ready(actor, chan, msg.accept_addrs)
                    self.chan = chan
                    self.accept_addrs = msg.accept_addrs
                elif isinstance(msg, _msg.Error):
                    self.error = unpack_error(msg)
                else:
                    self.error = ActorFailure(f'child sent {type(msg).__name__} instead of Ready')
        except (MsgTypeError, TransportClosed, trio.TooSlowError) as err:
            self.error = ActorFailure(f'child failed during boot: {err!r}')
        except Exception as err:  # a plugin's hook: this spawn fails with it
            self.error = err
        self.done.set()
        return self.error is None

    def fail(self, err: BaseException) -> None:
        if not self.done.is_set():
            self.error = err
            self.done.set()

    def socket_pair(self) -> socket.socket:
        """A new socket pair for the child: keeps the parent's end (closing
        an earlier one: a backend that falls back to another start method
        asks again) and returns the child's."""
        self.close_socket()
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return theirs

    def close_socket(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


async def _child_ready(actor: Actor, chan: Channel, accept_addrs: list[Any]) -> None:
    """Await what the plugins' ``tractor_child_ready`` hooks return, in
    turn; once one fails, the others' coroutines are closed unawaited."""
    pending = [
        p
        for p in get_plugin_manager().hook.tractor_child_ready(
            actor=actor, chan=chan, accept_addrs=accept_addrs
        )
        if p is not None
    ]
    try:
        while pending:
            await pending.pop(0)
    finally:
        for left in pending:
            close = getattr(left, 'close', None)
            if close is not None:
                close()


def parent_addr_for_child(listen_addrs: list[Address]) -> Address:
    """The parent address a child dials: the most local one we listen on."""
    if not listen_addrs:
        raise RuntimeError('this actor does not listen anywhere; cannot spawn')
    return min(listen_addrs, key=lambda a: a.transport.locality(a))
