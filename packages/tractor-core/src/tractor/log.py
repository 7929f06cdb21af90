"""Logging with the actor name and trio task in every record.

``get_logger(name)`` returns a stdlib logger under the ``tractor`` hierarchy;
``get_console_log(level)`` attaches a console handler and sets the level.
The environment variable ``TRACTOR_LOGLEVEL`` sets the level tree-wide
(subactors also inherit the ``loglevel=`` given to the root).
"""
from __future__ import annotations

import logging
import os
import sys

ROOT_NAME = 'tractor'
LOG_FORMAT = (
    '%(asctime)s.%(msecs)03d %(levelname)-8s [%(actor)s %(task)s] '
    '%(name)s: %(message)s'
)
DATE_FORMAT = '%H:%M:%S'

# levels between the stdlib ones, for runtime chatter users can opt into
TRANSPORT = 5
RUNTIME = 15
CANCEL = 16
_CUSTOM_LEVELS = {'TRANSPORT': TRANSPORT, 'RUNTIME': RUNTIME, 'CANCEL': CANCEL}
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


class _ActorContextFilter(logging.Filter):
    """Stamp records with the current actor's name and the current trio task."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ._state import _current_actor  # late: log is imported first

        actor = _current_actor
        record.actor = f'{actor.name}:{actor.pid}' if actor else f'-:{os.getpid()}'
        try:
            import trio

            record.task = trio.lowlevel.current_task().name.rpartition('.')[2]
        except (RuntimeError, ImportError):
            record.task = '-'
        return True


_filter = _ActorContextFilter()


def get_logger(name: str | None = None) -> logging.Logger:
    """A logger under ``tractor`` whose records carry actor and task."""
    if not name or name == ROOT_NAME:
        full = ROOT_NAME
    elif name.startswith(ROOT_NAME + '.'):
        full = name
    else:
        full = f'{ROOT_NAME}.{name}'
    logger = logging.getLogger(full)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    return logger


_console: logging.Handler | None = None


def get_console_log(
    level: str | int | None = None, name: str | None = None
) -> logging.Logger:
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
