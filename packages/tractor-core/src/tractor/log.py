"""Logging with the actor name and trio task in every record.

``get_logger(name)`` returns a :class:`StackLevelAdapter` over a stdlib logger
under the ``tractor`` hierarchy (or under ``pkg_name``): the stdlib level
methods plus ``transport()``, ``runtime()``, ``devx()``, ``cancel()`` and
``pdb()`` for the runtime's own levels; ``.logger`` is the wrapped logger.
``get_console_log(level)`` attaches a console handler and sets the level.
The environment variable ``TRACTOR_LOGLEVEL`` sets the level tree-wide
(subactors also inherit the ``loglevel=`` given to the root).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from . import _state

ROOT_NAME = 'tractor'
LOG_FORMAT = '%(asctime)s.%(msecs)03d %(levelname)-8s [%(actor)s %(task)s] %(name)s: %(message)s'
DATE_FORMAT = '%H:%M:%S'

# levels between the stdlib ones, for runtime chatter users can opt into;
# the numbers are the ones users of the established project set and filter on
TRANSPORT = 5  # below DEBUG: every message on the wire
RUNTIME = 15  # between DEBUG and INFO: the runtime's bookkeeping
DEVX = 17  # the debugger's and other developer tools' own chatter
CANCEL = 22  # just above INFO: who cancelled what
PDB = 500  # above CRITICAL: debugger sessions, shown at any level
_CUSTOM_LEVELS = {
    'TRANSPORT': TRANSPORT,
    'RUNTIME': RUNTIME,
    'DEVX': DEVX,
    'CANCEL': CANCEL,
    'PDB': PDB,
}
for _name, _lvl in _CUSTOM_LEVELS.items():
    logging.addLevelName(_lvl, _name)


def level_from(level: str | int) -> int:
    """Turn ``'info'``, ``'INFO'``, ``'runtime'`` or ``20`` into a level int."""
    if isinstance(level, int):
        return level
    key = str(level).upper()
    if key in _CUSTOM_LEVELS:
        return _CUSTOM_LEVELS[key]
    value = logging.getLevelName(key)
    if not isinstance(value, int):
        raise ValueError(f'unknown log level {level!r}')
    return value


def level_name(level: object) -> str:
    """The name a level goes down to a child as: a known name as given,
    a number by its registered name (``10``: ``'DEBUG'``); ``TypeError``
    for anything else, ``ValueError`` for an unknown name or number."""
    if isinstance(level, bool) or not isinstance(level, str | int):
        raise TypeError(f'loglevel takes a level name such as "info", got {level!r}')
    if isinstance(level, int):
        name = logging.getLevelName(level)
        if not isinstance(name, str) or name.startswith('Level '):
            raise ValueError(f'unknown log level {level!r}')
        return name
    level_from(level)
    return level


class _ActorContextFilter(logging.Filter):
    """Stamp records with the current actor's name and the current trio task."""

    def filter(self, record: logging.LogRecord) -> bool:
        actor = _state._current_actor
        record.actor = f'{actor.name}:{actor.pid}' if actor else f'-:{os.getpid()}'
        try:
            import trio

            record.task = trio.lowlevel.current_task().name.rpartition('.')[2]
        except (RuntimeError, ImportError):
            record.task = '-'
        return True


_filter = _ActorContextFilter()


class StackLevelAdapter(logging.LoggerAdapter[logging.Logger]):
    """A stdlib logger plus one method per runtime level.

    ``debug()``, ``info()``, ``warning()``, ... behave as on
    ``logging.Logger`` (``%``-style arguments, ``exc_info=``); ``.logger``
    is the wrapped logger, ``.name`` its name. Like the stdlib methods, the
    level methods check the level first: a disabled level formats nothing.
    Records name the caller's file and line, not this module's.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, None)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        # records get the actor and task from the logger's filter, so
        # there is no `extra` to merge
        return msg, kwargs

    def _at(self, level: int, msg: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(level):
            # skip this frame and the level method's, so the record names
            # the caller's line
            kwargs['stacklevel'] = kwargs.get('stacklevel', 1) + 2
            self.logger._log(level, msg, args, **kwargs)

    def transport(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`TRANSPORT` (5): IPC traffic, frame by frame."""
        self._at(TRANSPORT, msg, args, kwargs)

    def runtime(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`RUNTIME` (15): the runtime's bookkeeping."""
        self._at(RUNTIME, msg, args, kwargs)

    def devx(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`DEVX` (17): developer tooling (debugger, stack dumps)."""
        self._at(DEVX, msg, args, kwargs)

    def cancel(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`CANCEL` (22): cancellation requests and outcomes."""
        self._at(CANCEL, msg, args, kwargs)

    def pdb(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`PDB` (500): debugger session status."""
        self._at(PDB, msg, args, kwargs)

    @property
    def filters(self) -> list[Any]:
        return self.logger.filters

    @property
    def handlers(self) -> list[logging.Handler]:
        return self.logger.handlers

    @property
    def level(self) -> int:
        return self.logger.level


def get_logger(name: str | None = None, pkg_name: str = ROOT_NAME) -> StackLevelAdapter:
    """A :class:`StackLevelAdapter` over the logger ``<pkg_name>.<name>``
    (``name`` may already start with ``pkg_name``, as ``__name__`` does;
    no name gives the package's own logger). Its records carry the actor
    and the trio task."""
    if not isinstance(pkg_name, str) or not pkg_name:
        raise ValueError(f'pkg_name must be a non-empty string, got {pkg_name!r}')
    if not name or name == pkg_name:
        full = pkg_name
    elif name.startswith(pkg_name + '.'):
        full = name
    else:
        full = f'{pkg_name}.{name}'
    logger = logging.getLogger(full)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    adapter = _adapters.get(full)
    if adapter is None or adapter.logger is not logger:
        adapter = _adapters[full] = StackLevelAdapter(logger)
    return adapter


#: one adapter per logger name (loggers are process-wide singletons too)
_adapters: dict[str, StackLevelAdapter] = {}


_console: logging.Handler | None = None


def get_console_log(level: str | int | None = None, name: str | None = None) -> StackLevelAdapter:
    """Log to stderr at ``level`` (default: ``TRACTOR_LOGLEVEL`` or WARNING)."""
    global _console
    logger = get_logger(name)
    root = logging.getLogger(ROOT_NAME)
    if level is None:
        level = os.environ.get('TRACTOR_LOGLEVEL') or 'WARNING'
    root.setLevel(level_from(level))
    if _console is None:
        _console = logging.StreamHandler(sys.stderr)
        _console.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
        _console.addFilter(_filter)
        root.addHandler(_console)
    return logger


def current_level() -> str | None:
    """The tractor logger's level name when one was set, for children."""
    lvl = logging.getLogger(ROOT_NAME).level
    return logging.getLevelName(lvl) if lvl else None
