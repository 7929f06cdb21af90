"""Process titles: what ``ps``, ``top -c`` and ``pgrep -f`` show for the
processes tractor starts.

A subactor shows ``tractor: <name> <uuid> -m tractor._child <its arguments>``
whichever backend spawned it: the actor's whole name and uuid first, then
the command line it runs (so ``pgrep -f tractor._child`` still finds every
actor). The kernel's 15-byte ``comm`` (``top``'s default column,
``/proc/<pid>/comm``) gets the title's start.

setproctitle writes the title. By default it also takes the memory of the
environment strings for a longer title, and ``/proc/<pid>/environ`` then
shows the title instead of the environment: anything that finds processes
by their environment (debugging tools, our own tests' leak check) would go
blind. We keep it to the argv area (``SPT_NOENV``), so whoever starts a
titled process reserves room for the title with :func:`room_arg`.
"""

from __future__ import annotations

import os

#: the argument that reserves argv room for a title; programs accept and
#: ignore it, and the title never shows it
ROOM_FLAG = '--title-room'


def room_arg(size: int) -> str:
    """One argv word that leaves ``size`` more bytes for the title."""
    return f'{ROOM_FLAG}={" " * size}'


#: whether setproctitle has made its one-time setup in this process (or in
#: the process it was forked from: a fork-server child inherits it)
_set_up = False


def set_title(title: str) -> None:
    """Show ``title`` as this process's command line and (its first 15
    bytes) its ``comm``, within the argv area; the environment the kernel
    shows stays intact."""
    # imported here: a root never titles itself, and the import (its C
    # extension) was 2 ms of its boot
    import setproctitle

    global _set_up
    if _set_up:
        setproctitle.setproctitle(title)
        return
    # read by setproctitle once, at its first call; not left for our
    # children. (Only then: touching the environment costs a forked child
    # several ms of copied pages, so later calls do not.)
    saved = os.environ.get('SPT_NOENV')
    os.environ['SPT_NOENV'] = '1'
    try:
        setproctitle.setproctitle(title)
        _set_up = True
    finally:
        if saved is None:
            del os.environ['SPT_NOENV']
        else:
            os.environ['SPT_NOENV'] = saved


def command_title(head: str, module: str, args: list[str]) -> str:
    """``<head> -m <module> <args>``, without the room argument."""
    shown = [a for a in args if not a.startswith(ROOM_FLAG)]
    return ' '.join([head, '-m', module, *shown])


def actor_title(name: str, uuid: str, module: str, args: list[str]) -> str:
    """The title of the subactor ``(name, uuid)`` running ``python -m
    <module> <args>``."""
    return command_title(f'tractor: {name} {uuid}', module, args)


def actor_room(name: str, uuid: str) -> int:
    """Bytes a ``python -m <module> <args>`` command line needs on top of its
    own for :func:`actor_title` (the head is longer than any interpreter
    path it replaces by at most this)."""
    return len(f'tractor: {name} {uuid} ')
