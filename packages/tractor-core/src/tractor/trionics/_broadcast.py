"""``broadcast_receiver``: one receive channel, many local readers, each of
which sees every value.

Values pulled from the underlying channel are kept in a bounded ring; every
subscriber has its own read position in it. Whichever subscriber reaches the
end of the ring pulls the next value (one at a time); the others wait for it.
A subscriber that falls more than ``max_buffer_size`` values behind the
newest gets :class:`Lagged` (and is moved to the oldest value still kept),
so a slow reader never makes memory grow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import trio

from .._exceptions import TractorError

T = TypeVar('T')
T_co = TypeVar('T_co', covariant=True)


class Lagged(TractorError, trio.TooSlowError):
    """A broadcast subscriber fell behind by more than the buffer holds:
    ``skipped`` values were lost to it. It may go on receiving (from the
    oldest value still kept)."""

    def __init__(self, msg: str, skipped: int) -> None:
        super().__init__(msg)
        self.skipped = skipped


class _Receiver(Protocol[T_co]):
    async def receive(self) -> T_co: ...


class _Shared(Generic[T]):
    """State every subscriber of one broadcast shares."""

    def __init__(self, rx: _Receiver[T], max_buffer_size: int) -> None:
        self.rx = rx
        self.ring: deque[T] = deque(maxlen=max_buffer_size)
        #: sequence number of the next value to be pulled
        self.next_seq = 0
        self.pulling = False
        self.pulled = trio.Event()
        #: what ended the underlying channel (EndOfChannel, an error)
        self.ended: BaseException | None = None

    @property
    def oldest_seq(self) -> int:
        return self.next_seq - len(self.ring)


class BroadcastReceiver(trio.abc.ReceiveChannel[T]):
    """One reader of a broadcast (see :func:`broadcast_receiver`)."""

    def __init__(self, shared: _Shared[T], seq: int) -> None:
        self._shared = shared
        self._seq = seq
        self._closed = False

    async def receive(self) -> T:
        """The next value for this reader; ``Lagged`` if it fell too far
        behind, ``trio.EndOfChannel`` (or the underlying error) at the end."""
        if self._closed:
            raise trio.ClosedResourceError('this broadcast receiver was closed')
        sh = self._shared
        while True:
            if self._seq < sh.oldest_seq:
                skipped = sh.oldest_seq - self._seq
                self._seq = sh.oldest_seq
                raise Lagged(
                    f'this subscriber fell {skipped} values behind the newest '
                    f'(the buffer holds {sh.ring.maxlen})',
                    skipped,
                )
            if self._seq < sh.next_seq:
                # a cancel is taken before the value, never after it
                await trio.lowlevel.checkpoint_if_cancelled()
                value = sh.ring[self._seq - sh.oldest_seq]
                self._seq += 1
                await trio.lowlevel.cancel_shielded_checkpoint()
                return value
            if sh.ended is not None:
                raise sh.ended
            if sh.pulling:
                await sh.pulled.wait()
                continue
            # this reader is at the head: it pulls the next value for all
            sh.pulling = True
            try:
                value = await sh.rx.receive()
            except BaseException as exc:
                if not isinstance(exc, trio.Cancelled):
                    sh.ended = exc
                raise
            else:
                sh.ring.append(value)
                sh.next_seq += 1
                self._seq += 1
                return value
            finally:
                sh.pulling = False
                sh.pulled.set()
                sh.pulled = trio.Event()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[BroadcastReceiver[T]]:
        """Another reader of the same broadcast, starting at the newest
        value (it sees what arrives from now on); closed on block exit."""
        sub = BroadcastReceiver(self._shared, self._shared.next_seq)
        try:
            yield sub
        finally:
            await sub.aclose()

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()


def broadcast_receiver(rx: Any, max_buffer_size: int) -> BroadcastReceiver[Any]:
    """Wrap ``rx`` (anything with ``async receive()``, e.g. a trio
    ``ReceiveChannel`` or a :class:`~tractor.MsgStream`) so several local
    tasks can each receive every value: returns the first reader; more come
    from its ``subscribe()``. At most ``max_buffer_size`` values are kept
    for readers that lag; beyond that a reader gets :class:`Lagged`."""
    if (
        not isinstance(max_buffer_size, int)
        or isinstance(max_buffer_size, bool)
        or max_buffer_size < 1
    ):
        raise ValueError(f'max_buffer_size must be a positive int, got {max_buffer_size!r}')
    if not callable(getattr(rx, 'receive', None)):
        raise TypeError(f'broadcast_receiver() needs something with `async receive()`, got {rx!r}')
    return BroadcastReceiver(_Shared(rx, max_buffer_size), 0)
