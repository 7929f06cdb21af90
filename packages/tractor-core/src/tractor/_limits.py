"""Resource bounds of an actor: its fd limit and the handshakes it runs at once.

A connection that has not finished its handshake belongs to nobody yet: a
stranger can open thousands. :class:`HandshakeGate` caps how many an actor
authenticates at once (``TRACTOR_MAX_HANDSHAKES``); past it the oldest
unfinished handshake is dropped at once, with one log line per interval
however many there were. Each one that is let in is bounded in time by the handshake
(``TRACTOR_HELLO_TIMEOUT`` for the first 40 bytes, then
``TRACTOR_HANDSHAKE_TIMEOUT``). Every actor also raises its soft fd limit
to the hard one at boot (:func:`raise_fd_limit`), so the cap, not the
process limit, is what a flood runs into.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from . import _settings
from .log import get_logger

log = get_logger('limits')

#: connections an actor authenticates at once; more are closed on accept
MAX_HANDSHAKES = _settings.value('TRACTOR_MAX_HANDSHAKES')
#: at most one "refused" log line per this many seconds
REFUSAL_LOG_INTERVAL = 10.0


def raise_fd_limit() -> tuple[int, int] | None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; returns the
    ``(soft, hard)`` now in force (``None`` where there are no rlimits)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as err:
        log.debug('cannot raise the fd limit from %d to %d: %s', soft, hard, err)
        return soft, hard
    return hard, hard


class HandshakeGate:
    """Caps the handshakes in flight: past the cap, the *oldest* one is
    dropped to make room (a legitimate handshake takes milliseconds, so
    what has been waiting longest is the likeliest idle flooder), and a
    flood costs at most ``cap`` connections' state at any time."""

    def __init__(self, cap: int = MAX_HANDSHAKES) -> None:
        self.cap = cap
        #: the cancel scope of every handshake in flight, oldest first
        self._in_flight: dict[trio.CancelScope, None] = {}
        self.dropped = 0
        self._unlogged = 0
        self._logged_at = float('-inf')

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @contextmanager
    def admit(self) -> Iterator[trio.CancelScope]:
        """Run one handshake inside this block; it is cancelled (the caller
        closes the connection) if the cap later needs its place."""
        while len(self._in_flight) >= self.cap:
            oldest = next(iter(self._in_flight))
            del self._in_flight[oldest]
            oldest.cancel()
            self._dropped_one()
        with trio.CancelScope() as scope:
            self._in_flight[scope] = None
            try:
                yield scope
            finally:
                self._in_flight.pop(scope, None)

    def _dropped_one(self) -> None:
        self.dropped += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_INTERVAL:
            log.warning(
                'dropped %d unfinished handshake(s) to make room: %d in flight is the cap '
                '(TRACTOR_MAX_HANDSHAKES); a flood of unauthenticated connections?',
                self._unlogged,
                self.cap,
            )
            self._unlogged = 0
            self._logged_at = now
