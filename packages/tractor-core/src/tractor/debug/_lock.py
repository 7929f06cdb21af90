"""The tree's terminal lock: one debugger session at a time, tree-wide.

Every actor of a tree shares the terminal the root was started from, so two
debugger prompts at once would garble it. The root holds a fair (FIFO) lock
over the terminal; an actor that wants a session (a crash, a pause) takes it
first, from its own task if it is the root, else through a context with the
root (:func:`serve_tty`, over a connection to the root's own address). The
session ends the context; a connection that drops ends it too, so an actor
that dies in the debugger frees the terminal for the next one.

While any actor holds or waits for the lock, the root ignores Ctrl-C (see
:class:`_SigintGuard`): the tree is not torn down under a developer who is
reading a prompt. A nursery about to kill a child that did not exit in time
asks first whether the tree is in the debugger (:func:`tree_in_debugger`)
and waits for the sessions to end instead.

All of this exists only in debug mode: a root without it does not serve
the lock (unless it spawned a child with ``debug_mode=True``), and an actor
without it never consults it, so nothing can hold a tree's cancellation or
Ctrl-C hostage outside a debugging session. In debug mode the root watches
a local holder's process (a holder that is stopped or gone frees the
terminal), and the wait for the sessions to end is capped at
:data:`DEBUG_WAIT_CEILING`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from .. import _settings
from .._context import Context, context
from .._exceptions import ModuleNotExposed, RemoteActorError, TransportClosed
from .._portal import Portal
from .._state import current_actor
from .._transport import LOCAL as _LOCAL
from ..log import get_logger

if TYPE_CHECKING:
    from .._runtime import Actor

log = get_logger('debug')

#: where the root keeps its lock (``Actor.extensions``)
_EXTENSION = 'tractor.debug'
#: the longest the cancel ladder (and the other bounds that go through
#: :func:`within_grace`) waits for debugger sessions to end, in total,
#: before it does what it would have done without them (seconds;
#: ``TRACTOR_DEBUG_WAIT_CEILING``)
DEBUG_WAIT_CEILING = _settings.value('TRACTOR_DEBUG_WAIT_CEILING')
#: how often the root checks that a local lock holder's process still runs
HOLDER_CHECK_INTERVAL = 1.0


class _SigintGuard:
    """Ignore SIGINT in the root while the terminal belongs to a debugger
    session; put back whatever handler was there (trio's) afterwards."""

    def __init__(self) -> None:
        self._saved: Any = None
        self._active = False

    @staticmethod
    def _ignore(signum: int, frame: Any) -> None:
        log.debug('Ctrl-C ignored: an actor of this tree is in the debugger')

    def engage(self) -> None:
        if self._active or threading.current_thread() is not threading.main_thread():
            return
        self._saved = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._ignore)
        self._active = True

    def release(self) -> None:
        if not self._active:
            return
        self._active = False
        if signal.getsignal(signal.SIGINT) == self._ignore:
            signal.signal(signal.SIGINT, self._saved)
        self._saved = None


class TreeLock:
    """The root's lock over the terminal, fair between actors."""

    def __init__(self) -> None:
        self._lock = trio.Lock()
        #: uid of the actor whose session holds the terminal
        self.owner: tuple[str, str] | None = None
        #: actors holding or waiting for the lock
        self._pending = 0
        self._changed = trio.Event()
        self._sigint = _SigintGuard()

    @property
    def busy(self) -> bool:
        """True while a session is open or an actor waits for one."""
        return self._pending > 0

    @property
    def pending(self) -> int:
        """How many actors hold or wait for the lock."""
        return self._pending

    async def wait_idle(self) -> None:
        await self.wait_until(lambda lock: not lock.busy)

    async def wait_until(self, predicate: Callable[[TreeLock], bool]) -> None:
        """Return once ``predicate(self)`` holds (checked on every change)."""
        while not predicate(self):
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @asynccontextmanager
    async def hold(self, uid: tuple[str, str]) -> AsyncIterator[None]:
        """Wait for the terminal (in request order), hold it for the block."""
        if self._pending == 0:
            self._sigint.engage()
        self._pending += 1
        self._notify()
        try:
            async with self._lock:
                self.owner = uid
                self._notify()
                log.debug('terminal lock taken by %s', uid[0])
                try:
                    yield
                finally:
                    self.owner = None
                    log.debug('terminal lock released by %s', uid[0])
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._sigint.release()
            self._notify()


def tree_lock(actor: Actor) -> TreeLock:
    """The terminal lock of the tree ``actor`` is the root of."""
    lock = actor.extensions.get(_EXTENSION)
    if lock is None:
        lock = actor.extensions[_EXTENSION] = TreeLock()
    return lock


# -- served by the root ---------------------------------------------------------
@context
async def serve_tty(ctx: Context, uid: tuple[str, str]) -> None:
    """(root) Hold the terminal for actor ``uid`` until it closes the stream
    (its session is over) or its connection drops (it died)."""
    lock = tree_lock(current_actor())
    try:
        async with lock.hold((uid[0], uid[1])):
            await ctx.started()
            async with ctx.open_stream() as stream, trio.open_nursery() as tn:
                tn.start_soon(_watch_holder, ctx, uid, tn.cancel_scope)
                async for _ in stream:
                    break
                tn.cancel_scope.cancel()
    except TransportClosed as err:
        log.warning('actor %r left the debugger by dying: %s', uid[0], err)


async def _watch_holder(ctx: Context, uid: tuple[str, str], session: trio.CancelScope) -> None:
    """(root) End the session of a holder on this host whose process is
    stopped (SIGSTOP, a debugger of its own) or gone while its connection
    lingers: a wedged holder must not keep the terminal forever."""
    chan = ctx.chan
    addr = chan.raddr
    pid = chan.aid.pid if chan.aid is not None else None
    if pid is None or addr is None or addr.transport.locality(addr) > _LOCAL:
        return  # another host's pid means nothing here
    while True:
        await trio.sleep(HOLDER_CHECK_INTERVAL)
        state = _process_state(pid)
        if state is None or state in 'TtZX':
            log.warning(
                'actor %r (pid %d) holds the terminal but is %s: ending its session',
                uid[0],
                pid,
                'gone' if state is None else f'in state {state!r}',
            )
            session.cancel()
            return


def _process_state(pid: int) -> str | None:
    """The one-letter state of a local process (``/proc/<pid>/stat``)."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b')') + 2 :][:1].decode() or None


async def wait_tree_idle() -> bool:
    """(root) Return once no actor holds or waits for the terminal; ``True``
    if that meant waiting."""
    lock = tree_lock(current_actor())
    if not lock.busy:
        return False
    await lock.wait_idle()
    return True


# -- used by every actor ---------------------------------------------------------
async def _root_portal(actor: Actor) -> Portal:
    """A portal to the root: the spawn channel when the parent is the root,
    else a connection of our own to the root's address."""
    uid = actor.root_uid
    if uid is None:
        raise RuntimeError(f'actor {actor.name!r} does not know its root actor')
    for chan in actor.get_peer_channels(uid[0]):
        if chan.uid == uid:
            return Portal(chan)
    errors = []
    for addr in actor.root_addrs:
        try:
            return Portal(await actor.connect(addr))
        except OSError as err:
            errors.append(f'{addr}: {err}')
    raise TransportClosed(f'cannot reach the root actor {uid[0]!r}: {"; ".join(errors)}')


class TtyHold:
    """This actor's hold on the tree's terminal, taken by :func:`acquire_tty`.

    The hold lives in a task of the actor's I/O nursery, so it outlives the
    task that asked for it (``pause()`` returns before its session starts).
    """

    def __init__(self) -> None:
        self._release = trio.Event()
        self._returned = trio.Event()

    def release(self) -> None:
        """Give the terminal back (callable from sync code: pdb's hooks)."""
        self._release.set()

    @property
    def released(self) -> bool:
        return self._release.is_set()

    async def wait_returned(self) -> None:
        """Wait until the root has the terminal back (or is gone), so whatever
        this actor does next happens after the session, tree-wide."""
        await self._returned.wait()

    async def _hold(self, actor: Actor, *, task_status: trio.TaskStatus[None]) -> None:
        """Take the lock, report it taken, hold it until released. A failure
        before the lock is taken goes to the requester (``nursery.start``);
        one after it (the root died during the session) is only logged: it
        must not take the actor down."""
        taken = False
        try:
            if actor.is_root:
                async with tree_lock(actor).hold(actor.uid):
                    task_status.started()
                    taken = True
                    await self._release.wait()
                return
            portal = await _root_portal(actor)
            try:
                async with portal.open_context(serve_tty, uid=actor.uid) as (ctx, _):
                    async with ctx.open_stream():
                        task_status.started()
                        taken = True
                        await self._release.wait()
            except RemoteActorError as err:
                if taken or err.boxed_type is not ModuleNotExposed:
                    raise
                # the root is not in debug mode and serves no lock: an
                # explicit post_mortem()/pause() still gets its session,
                # without the tree-wide lock
                log.debug('the root serves no terminal lock: session without it')
                task_status.started()
                taken = True
                await self._release.wait()
        except Exception as err:
            if not taken:
                raise
            log.warning('lost the terminal lock of the tree: %s', err)
        finally:
            self._returned.set()


async def acquire_tty(actor: Actor) -> TtyHold:
    """Wait for the tree's terminal (in request order) and take it for this
    actor; the session ends with :meth:`TtyHold.release`."""
    hold = TtyHold()
    assert actor._io_tn is not None
    await actor._io_tn.start(hold._hold, actor)
    return hold


@asynccontextmanager
async def tty_lock(actor: Actor) -> AsyncIterator[None]:
    """Hold the tree's terminal for the block. Shielded from cancellation:
    a session that was started is finished, and the terminal is back with
    the root before the block's exit returns."""
    with trio.CancelScope(shield=True):
        hold = await acquire_tty(actor)
    try:
        yield
    finally:
        hold.release()
        with trio.CancelScope(shield=True):
            await hold.wait_returned()


async def tree_in_debugger(actor: Actor) -> bool:
    """If some actor of the tree holds or waits for the terminal, wait until
    none does and return ``True``; else ``False`` at once. ``False`` too when
    the root cannot be asked (it is gone)."""
    if actor.is_root:
        return await wait_tree_idle()
    try:
        portal = await _root_portal(actor)
        return bool(await portal.run(wait_tree_idle))
    except (TransportClosed, OSError, RuntimeError) as err:
        log.debug('cannot ask the root whether the tree is in the debugger: %s', err)
        return False


async def within_grace(actor: Actor, grace: float, afn: Callable[[], Awaitable[Any]]) -> bool:
    """``await afn()`` for at most ``grace`` seconds; ``True`` if it finished.

    When the bound runs out while the tree is in the debugger (the peer being
    waited for may be the one at the prompt, or be queued for it), wait for
    the sessions to end, then give ``afn`` its grace again: nobody is killed
    or given up on while a developer is reading a prompt, for up to
    :data:`DEBUG_WAIT_CEILING` in all. (The runtime's policy, installed in
    actors in debug mode: see ``tractor._debugger``.)
    """
    with trio.move_on_after(DEBUG_WAIT_CEILING + grace) as ceiling:
        while True:
            with trio.move_on_after(grace):
                await afn()
                return True
            if not await tree_in_debugger(actor):
                return False
    if ceiling.cancelled_caught:
        log.warning(
            'waited %.0fs for the debugger sessions of the tree to end: going on without them',
            DEBUG_WAIT_CEILING,
        )
    return False
