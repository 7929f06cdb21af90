"""Spawning subactors: backend selection and the parent's side of boot.

A backend (hook ``tractor_spawn_methods``) starts a process that dials the
parent back; the parent then sends the whole start state as one
:class:`~tractor._msg.SpawnSpec` and waits for :class:`~tractor._msg.Ready`.
"""
from __future__ import annotations

import os
import secrets
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import trio

from . import _settings
from . import _msg, _secret, _session
from ._exceptions import ActorFailure, MsgTypeError, TransportClosed
from ._plugins import get_plugin_manager

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._transport import Address

ENV_START_METHOD = 'TRACTOR_START_METHOD'
#: fork each child from a warm template process (``tractor._spawn_forkserver``)
DEFAULT_START_METHOD = 'forkserver'
#: the default where the fork server cannot run (not Linux 5.3+)
FALLBACK_START_METHOD = 'trio'
#: how long a child may take from exec to Ready
SPAWN_TIMEOUT = _settings.value('TRACTOR_SPAWN_TIMEOUT')


class Process(Protocol):
    """What a spawn backend returns: the part of ``trio.Process`` the actor
    nursery uses (``tractor._spawn_forkserver.ForkedProcess`` is another)."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...

    def terminate(self) -> None: ...

    def send_signal(self, sig: int) -> None: ...


SpawnFn = Callable[..., Awaitable[Process]]


def spawn_methods() -> dict[str, SpawnFn]:
    methods: dict[str, SpawnFn] = {}
    for provided in get_plugin_manager().hook.tractor_spawn_methods():
        for key, fn in (provided or {}).items():
            methods.setdefault(key, fn)
    return methods


def default_start_method() -> str:
    from ._spawn_forkserver import supported

    return DEFAULT_START_METHOD if supported() else FALLBACK_START_METHOD


def resolve_start_method(start_method: str | None) -> str:
    """``start_method`` or ``$TRACTOR_START_METHOD`` or the default, checked."""
    method = start_method or os.environ.get(ENV_START_METHOD) or default_start_method()
    methods = spawn_methods()
    if method not in methods:
        raise ValueError(
            f'unknown start_method {method!r}; available: {sorted(methods)}'
        )
    return method


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
            path = main_script_path() or (
                getattr(sys.modules.get('__mp_main__'), '__file__', None)
            )
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

    def proves(self, chan: Channel) -> bool:
        """Whether the peer on ``chan`` showed it holds this spawn's token,
        i.e. is the process we started, not just a peer claiming its uid."""
        return chan.session is not None and _session.check_spawn_proof(
            self.token, chan.session, chan.peer_spawn_proof
        )

    async def handoff(self, chan: Channel) -> bool:
        """Called by the listener once the child said Hello."""
        from ._runtime import unpack_error

        try:
            with trio.fail_after(SPAWN_TIMEOUT):
                await chan.send(self.spec)
                msg = await chan.recv()
            if isinstance(msg, _msg.Ready):
                self.chan = chan
                self.accept_addrs = msg.accept_addrs
                chan.set_raddr_from(msg.accept_addrs)
            elif isinstance(msg, _msg.Error):
                self.error = unpack_error(msg, chan)
            else:
                self.error = ActorFailure(f'child sent {type(msg).__name__} instead of Ready')
        except (MsgTypeError, TransportClosed, trio.TooSlowError) as err:
            self.error = ActorFailure(f'child failed during boot: {err!r}')
        self.done.set()
        return self.error is None

    def fail(self, err: BaseException) -> None:
        if not self.done.is_set():
            self.error = err
            self.done.set()


def parent_addr_for_child(listen_addrs: list[Address]) -> Address:
    """The parent address a child dials: the most local one we listen on."""
    if not listen_addrs:
        raise RuntimeError('this actor does not listen anywhere; cannot spawn')
    return min(listen_addrs, key=lambda a: a.transport.locality(a))
