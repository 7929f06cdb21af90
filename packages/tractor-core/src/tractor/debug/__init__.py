"""Debugging a tree of actors: crash-to-REPL, pausing any actor.

With ``debug_mode=True`` on the root (inherited by every actor it spawns), an
uncaught error in any actor's task opens a post-mortem ``pdb`` session in
that actor, on the root's terminal, before the error propagates.
``await tractor.pause()`` (or ``breakpoint()`` in debug mode) opens a live
session at that line; ``await tractor.post_mortem()`` opens one on the error
being handled. One session at a time, tree-wide: the root holds the lock
over the terminal (see :mod:`tractor.debug._lock`).

The debugger is the standard library's ``pdb`` (subclassed only to name the
actor in its prompt): nothing to install, the commands every Python
developer knows, and a prompt that scripts and tests can rely on.

The names below load on first use: the runtime loads this package's plugin
(``tractor.debug._plugin``) in every actor, and only an actor in debug mode
imports the debugger itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._api import maybe_open_crash_handler as maybe_open_crash_handler
    from ._api import pause as pause
    from ._api import pause_from_sync as pause_from_sync
    from ._api import post_mortem as post_mortem

__all__ = ['maybe_open_crash_handler', 'pause', 'pause_from_sync', 'post_mortem']


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _api

        return getattr(_api, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
