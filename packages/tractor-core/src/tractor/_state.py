"""Process-wide runtime state: the one actor this process runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from ._exceptions import NoRuntime

if TYPE_CHECKING:
    from ._runtime import Actor

_current_actor: Actor | None = None
#: the asyncio loop hosting this process's trio run as a guest, while
#: ``tractor.to_asyncio.run_as_asyncio_guest()`` runs (an infected actor)
_asyncio_host_loop: Any = None


@overload
def current_actor(err_on_no_runtime: Literal[True] = True) -> Actor: ...
@overload
def current_actor(err_on_no_runtime: bool) -> Actor | None: ...


def current_actor(err_on_no_runtime: bool = True) -> Actor | None:
    """The actor running in this process.

    Raises :class:`NoRuntime` outside of ``open_root_actor()``/
    ``open_nursery()`` unless ``err_on_no_runtime=False`` (then ``None``).
    """
    if _current_actor is None and err_on_no_runtime:
        raise NoRuntime(
            'no tractor actor is running in this process: '
            'use `tractor.open_root_actor()` or `tractor.open_nursery()` first'
        )
    return _current_actor


def is_root_process() -> bool:
    """True unless this process was spawned as a subactor."""
    actor = _current_actor
    return actor is None or actor.is_root


def _set_actor(actor: Actor | None) -> None:
    global _current_actor
    _current_actor = actor


def asyncio_host_loop() -> Any:
    """The asyncio loop this process's trio run is a guest of, or ``None``."""
    return _asyncio_host_loop


def _set_asyncio_host_loop(loop: Any) -> None:
    global _asyncio_host_loop
    _asyncio_host_loop = loop


def debug_mode() -> bool:
    """Whether the actor running in this process is in debug mode
    (``debug_mode=True`` on the root, inherited by the tree, or set per
    child); ``False`` outside a runtime."""
    actor = _current_actor
    return bool(actor is not None and actor.debug_mode)


def get_runtime_vars() -> dict[str, Any]:
    """A snapshot of this actor's runtime variables, under the keys users
    of the established project read (a fresh dict: changing it changes
    nothing). Outside a runtime every key has its "no actor" value.

    - ``'_is_root'``: this actor is the root of its tree;
    - ``'_debug_mode'``: see :func:`debug_mode`;
    - ``'_root_mailbox'``: the root's first listen address as a plain
      tuple (``(None, None)`` when unknown); ``'_root_addrs'`` all of them;
    - ``'_registry_addrs'``: the registry addresses (plain tuples);
    - ``'_enable_tpts'``: the transports this actor serves (``['tcp']``...);
    - ``'_loglevel'``: the tree's log level name, or ``None``;
    - ``'use_greenback'``: whether sync code can pause (``breakpoint()``):
      true exactly in debug mode.
    """
    actor = _current_actor
    if actor is None:
        return {
            '_is_root': False,
            '_debug_mode': False,
            '_root_mailbox': (None, None),
            '_root_addrs': [],
            '_registry_addrs': [],
            '_enable_tpts': [],
            '_loglevel': None,
            'use_greenback': False,
        }
    roots = [a.unwrap() for a in actor.root_addrs]
    return {
        '_is_root': actor.is_root,
        '_debug_mode': bool(actor.debug_mode),
        '_root_mailbox': roots[0] if roots else (None, None),
        '_root_addrs': roots,
        '_registry_addrs': list(actor.reg_addrs),
        '_enable_tpts': list(actor.enable_transports),
        '_loglevel': actor.loglevel,
        'use_greenback': bool(actor.debug_mode),
    }
