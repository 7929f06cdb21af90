"""Process-wide runtime state: the one actor this process runs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import NoRuntime

if TYPE_CHECKING:
    from ._runtime import Actor

_current_actor: Actor | None = None
#: the asyncio loop hosting this process's trio run as a guest, while
#: ``tractor.to_asyncio.run_as_asyncio_guest()`` runs (an infected actor)
_asyncio_host_loop: Any = None


def current_actor(err_on_no_runtime: bool = True) -> Actor:
    """The actor running in this process.

    Raises :class:`NoRuntime` outside of ``open_root_actor()``/
    ``open_nursery()`` unless ``err_on_no_runtime=False`` (then ``None``).
    """
    if _current_actor is None and err_on_no_runtime:
        raise NoRuntime(
            'no tractor actor is running in this process: '
            'use `tractor.open_root_actor()` or `tractor.open_nursery()` first'
        )
    return _current_actor  # type: ignore[return-value]


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
