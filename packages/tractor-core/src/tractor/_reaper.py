"""Orphans of the ``'trio'`` backend: an actor that spawns is a child
subreaper, and ends the actors it adopts.

With ``start_method='trio'`` a subactor is the OS child of the actor that
spawned it. When that parent dies (killed at the end of its cancel grace,
SIGKILLed, OOM-killed), the kernel hands its children to the nearest
ancestor that asked to be a *child subreaper* (Linux's
``PR_SET_CHILD_SUBREAPER``), or to init otherwise, where a stuck one (stopped,
spinning with the GIL, deaf to SIGTERM) would live on forever.

So the first ``'trio'`` spawn of an actor whose start method is ``'trio'``
makes its process a subreaper (Linux only; elsewhere nothing changes), and
each time one of its own children exits it looks for adopted ones: children
of this process whose command line is a ``tractor._child`` whose uuid is
neither its own (a child it forked without exec, e.g. ``multiprocessing``,
still shows the actor's title) nor one of the actors it spawned.
Each gets :data:`ORPHAN_GRACE` to go on its own (a healthy orphan shuts down
once it loses its parent, see ``Actor._lost_parent``), then SIGKILL, and is
reaped by its pid. Nothing else is ever waited for: the runtime never calls
``waitpid(-1)``, which would take the exit status of processes that trio or
the user's code started. Once the last runtime of the process is torn down,
it stops being a subreaper.

Why not ``PR_SET_PDEATHSIG``: it fires when the *thread* that forked exits,
and trio starts processes from a worker thread that goes idle and exits.
Only a ``'trio'``-method actor becomes a subreaper: under the fork server
(the default) every actor is the server's child and the server ends the
orphans, and when a server dies its healthy children must not be adopted
and killed by its owner. So a tree that mixes the two (a ``'trio'``
``start_actor`` in a fork-server tree, or the reverse) is covered only where
it uses the fork server.

What this does not cover: a parent killed together with a stuck child,
while every ancestor up to the root is gone too (the root was SIGKILLed and
the middle is stuck): nobody is left to end it. The fork server (the default
start method) covers that case, since it outlives every actor of its tree.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

import trio

from . import _settings
from .log import get_logger

if TYPE_CHECKING:
    from ._runtime import Actor

log = get_logger('supervise')

#: seconds an orphan (an actor that lost its parent) gives its own children
#: before it kills them, and an adopted orphan gets before it is killed
#: (``TRACTOR_ORPHAN_GRACE``)
ORPHAN_GRACE: float = _settings.value('TRACTOR_ORPHAN_GRACE')

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
#: bound on the wait for a SIGKILLed orphan to exit (one in uninterruptible
#: sleep may take long): teardown must not hang on it
KILL_WAIT = 5.0
_CHILD_MODULE = b'tractor._child'


def _prctl_subreaper(on: bool | None) -> bool:
    """Set (``True``/``False``) the child-subreaper attribute, and say whether
    that worked; with ``None``, whether it is set already."""
    if not sys.platform.startswith('linux'):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if on is None:
        value = ctypes.c_int(0)
        return libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) == 0 and bool(
            value.value
        )
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0


def _children(pid: int) -> set[int]:
    kids: set[int] = set()
    try:
        tids = os.listdir(f'/proc/{pid}/task')
    except OSError:
        return kids
    listed = False
    for tid in tids:
        try:
            with open(f'/proc/{pid}/task/{tid}/children', 'rb') as f:
                kids.update(int(k) for k in f.read().split())
            listed = True
        except OSError:
            continue
    if not listed:  # a kernel without CONFIG_PROC_CHILDREN: every process's parent
        for entry in os.listdir('/proc'):
            if entry.isdigit():
                try:
                    with open(f'/proc/{entry}/stat', 'rb') as f:
                        if int(f.read().rsplit(b')', 1)[1].split()[1]) == pid:
                            kids.add(int(entry))
                except (OSError, IndexError, ValueError):
                    continue
    return kids


def _actor_uuid(pid: int) -> str | None:
    """The uuid of ``pid`` if it runs ``tractor._child`` (read from
    ``/proc``: its argv, or the process title that repeats it)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            words = f.read().replace(b'\0', b' ').split()
    except OSError:
        return None
    if _CHILD_MODULE in words and b'--uuid' in words:
        # the last one: the actor's name comes first in the title and argv,
        # and may itself hold the word
        at = len(words) - words[::-1].index(b'--uuid')
        if at < len(words):
            return words[at].decode(errors='replace')
    return None


def child_actors(pid: int) -> list[tuple[int, str]]:
    """``(pid, uuid)`` of every child of ``pid`` that runs ``tractor._child``."""
    found: list[tuple[int, str]] = []
    for kid in sorted(_children(pid)):
        uuid = _actor_uuid(kid)
        if uuid is not None:
            found.append((kid, uuid))
    return found


class Reaper:
    """This process's subreaper duty (one per process: :data:`reaper`)."""

    def __init__(self) -> None:
        #: uuids of the actors this process spawned with the 'trio' backend
        #: and has not reaped yet: its own children, never adopted ones
        self.own: set[str] = set()
        #: adopted pids being ended
        self._ending: set[int] = set()
        #: the actors (by id) whose I/O nursery runs a sweep
        self._serving: set[int] = set()
        #: the uuids of those actors (this process's own)
        self._selves: set[str] = set()
        self._subreaper = False
        #: whether the attribute was set before us (then we leave it set)
        self._was_subreaper = False
        self._poked = trio.Event()

    def spawning(self, actor: Actor, uuid: str) -> None:
        """``actor`` is about to spawn ``uuid`` as its OS child (``uuid`` is
        noted before its process exists, so a sweep never mistakes it for an
        orphan). If ``actor``'s start method is ``'trio'``, from now on this
        process is a subreaper and ``actor`` sweeps; otherwise its tree's
        orphans are the fork server's (see the module doc)."""
        self.own.add(uuid)
        if actor.start_method != 'trio':
            return  # its tree's orphans are the fork server's (module doc)
        if id(actor) not in self._serving and actor._io_tn is not None:
            self._serving.add(id(actor))
            self._selves.add(actor.uid[1])
            actor._io_tn.start_soon(self._serve, actor, name='sweep adopted actors')
            if not self._subreaper:
                self._was_subreaper = _prctl_subreaper(None)
                self._subreaper = self._was_subreaper or _prctl_subreaper(True)

    def exited(self, uuid: str) -> None:
        """A child of this process exited: its own children, if it had
        any, may be this process's now."""
        self.own.discard(uuid)
        if self._subreaper:
            self._poked.set()

    async def _serve(self, actor: Actor) -> None:
        """Sweep on every poke until ``actor``'s I/O nursery is cancelled,
        then once more; the nursery waits for each orphan's end (shielded,
        at most :data:`ORPHAN_GRACE` and a kill)."""
        try:
            async with trio.open_nursery() as tn:
                try:
                    while True:
                        await self._poked.wait()
                        self._poked = trio.Event()
                        self._sweep(tn)
                finally:
                    self._sweep(tn)  # what the last exits handed over
        finally:
            self._serving.discard(id(actor))
            self._selves.discard(actor.uid[1])
            if not self._serving and self._subreaper:
                self._subreaper = self._was_subreaper or not _prctl_subreaper(False)

    def _sweep(self, tn: trio.Nursery) -> None:
        if not self._subreaper:
            return
        for pid, uuid in child_actors(os.getpid()):
            if uuid not in self.own and uuid not in self._selves and pid not in self._ending:
                self._ending.add(pid)
                tn.start_soon(self._end, tn, pid, uuid)

    async def _end(self, tn: trio.Nursery, pid: int, uuid: str) -> None:
        # ours until reaped, so its pid cannot be reused under us
        with trio.CancelScope(shield=True):
            try:
                fd = os.pidfd_open(pid)
            except OSError:  # gone already
                self._ending.discard(pid)
                return
            try:
                with trio.move_on_after(ORPHAN_GRACE) as grace:
                    await trio.lowlevel.wait_readable(fd)
                if grace.cancelled_caught:
                    if _actor_uuid(pid) != uuid:  # it exec'd something else meanwhile
                        return
                    log.warning(
                        'killing the orphaned actor %s (pid %d): its parent is gone and it '
                        'did not exit within %.1fs',
                        uuid,
                        pid,
                        ORPHAN_GRACE,
                    )
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                    with trio.move_on_after(KILL_WAIT) as waited:
                        await trio.lowlevel.wait_readable(fd)
                    if waited.cancelled_caught:
                        log.warning('orphan %d did not exit %.0fs after SIGKILL', pid, KILL_WAIT)
                        return
                try:
                    # it has exited (its pidfd is readable): this does not block
                    os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222
                except ChildProcessError:
                    pass
            finally:
                os.close(fd)
                self._ending.discard(pid)
            self._sweep(tn)  # its own children (if it had any) are ours now


#: this process's reaper
reaper = Reaper()
