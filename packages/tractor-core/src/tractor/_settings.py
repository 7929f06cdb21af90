"""Every environment variable the runtime reads, in one typed place.

A setting is read when it is first needed (never at import, so a bad value
cannot break ``import tractor``) and checked for the whole runtime when an
actor boots (:func:`check`): a bad value is a :class:`SettingError` naming
the variable, the value and what is expected. ``docs/architecture.md``
lists them all in one table, generated from :data:`SETTINGS`'s docs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import msgspec

from ._exceptions import TractorError


class SettingError(TractorError, ValueError):
    """An environment variable with a value the runtime cannot use."""


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float('inf'):
        raise ValueError
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError
    return value


def _flag(text: str) -> bool:
    low = text.strip().lower()
    if low in ('1', 'true', 'yes', 'on'):
        return True
    if low in ('0', 'false', 'no', 'off', ''):
        return False
    raise ValueError


class Setting(msgspec.Struct, frozen=True):
    env: str
    parse: Callable[[str], Any]
    default: Any
    expected: str
    doc: str


SETTINGS: dict[str, Setting] = {}


def register(env: str, parse: Callable[[str], Any], default: Any, expected: str, doc: str) -> None:
    """Declare setting ``env`` (plugins declare theirs the same way)."""
    SETTINGS.setdefault(env, Setting(env, parse, default, expected, doc))


_SECONDS = 'a number of seconds > 0'
for _args in (
    (
        'TRACTOR_CANCEL_GRACE',
        _seconds,
        3.0,
        _SECONDS,
        'how long a graceful cancel waits for an actor before killing it',
    ),
    (
        'TRACTOR_SPAWN_TIMEOUT',
        _seconds,
        60.0,
        _SECONDS,
        "bound on a child's boot (and on a fork server's answer to a request)",
    ),
    (
        'TRACTOR_HANDSHAKE_TIMEOUT',
        _seconds,
        5.0,
        _SECONDS,
        "bound on a new connection's authentication and Hello exchange",
    ),
    (
        'TRACTOR_HELLO_TIMEOUT',
        _seconds,
        2.0,
        _SECONDS,
        "bound on the peer's preamble hello, on accepted connections",
    ),
    (
        'TRACTOR_SEND_STALL_TIMEOUT',
        _seconds,
        30.0,
        _SECONDS,
        'seconds a peer may read nothing of a frame before its connection is dropped',
    ),
    (
        'TRACTOR_MAX_FRAME',
        _positive_int,
        64 * 1024 * 1024,
        'a number of bytes >= 1',
        'the largest frame a connection accepts',
    ),
    (
        'TRACTOR_PARTIAL_FRAME_BUDGET',
        _positive_int,
        None,
        'a number of bytes >= 1',
        'bytes all connections of a process may hold in frames still being received '
        '(default 4 x TRACTOR_MAX_FRAME)',
    ),
    (
        'TRACTOR_MAX_HANDSHAKES',
        _positive_int,
        128,
        'a whole number >= 1',
        'unfinished handshakes an actor runs at once; past it the oldest is dropped',
    ),
    (
        'TRACTOR_ORPHAN_GRACE',
        _seconds,
        1.0,
        _SECONDS,
        'seconds an orphaned actor (its parent gone) has before it is killed, and gives its own children',
    ),
    (
        'TRACTOR_FORKSERVER_MAX_PENDING',
        _positive_int,
        64,
        'a whole number >= 1',
        'spawn requests a fork server holds at once',
    ),
    (
        'TRACTOR_FORKSERVER_PENDING_TIMEOUT',
        _seconds,
        10.0,
        _SECONDS,
        'how long a fork server keeps a spawn request it cannot serve yet',
    ),
    (
        'TRACTOR_DEBUG_WAIT_CEILING',
        _seconds,
        3600.0,
        _SECONDS,
        'the longest bounds wait, in all, for debugger sessions to end',
    ),
    (
        'TRACTOR_AIO_CANCEL_GRACE',
        _seconds,
        None,
        _SECONDS,
        'how long an infected actor waits for a cancelled asyncio task (default twice '
        'TRACTOR_CANCEL_GRACE)',
    ),
    (
        'TRACTOR_FULL_TRACEBACKS',
        _flag,
        False,
        '1/0, true/false, yes/no',
        "keep the runtime's frames in remote tracebacks",
    ),
):
    register(*_args)
_cache: dict[str, tuple[str | None, Any]] = {}


def _parse(env: str) -> Any:
    setting = SETTINGS[env]
    raw = os.environ.get(env)
    hit = _cache.get(env)
    if hit is not None and hit[0] == raw:
        return hit[1]
    if raw is None or raw.strip() == '':
        value = setting.default
    else:
        try:
            value = setting.parse(raw)
        except (ValueError, TypeError, OverflowError):
            raise SettingError(
                f'{env}={raw!r} is not usable: expected {setting.expected} '
                f'({setting.doc}; default {setting.default!r})'
            ) from None
    _cache[env] = (raw, value)
    return value


def value(env: str) -> Any:
    """The value of setting ``env``: its default when the variable is unset
    or unusable (so importing never fails; :func:`check`, run when an actor
    boots, reports the unusable one)."""
    try:
        return _parse(env)
    except SettingError:
        return SETTINGS[env].default


def check() -> None:
    """Check every declared setting (an actor boots): the first unusable one
    raises :class:`SettingError` naming the variable, its value and what is
    expected."""
    for env in SETTINGS:
        _parse(env)
