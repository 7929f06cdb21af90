"""Plain calls (``Start(kind='fn')``, ``Portal.run``): one request, one reply.

A plain call needs none of a :class:`~tractor.Context`'s machinery (no
stream, no inbox, no credit), so each side keeps a small handle in
``Actor._routes`` instead, which the channel's message loop feeds:

- the caller a :class:`Reply`, which hands the ``Return``/``Error`` straight
  to the waiting task (woken directly, no memory channel in between);
- the callee a :class:`CallScope`, through which a ``Cancel`` (or the loss
  of the channel) cancels the running function.

:class:`TaskScope` (a task's cancel scope, cancellable before the task
entered it) is shared with :class:`~tractor.Context`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from . import _msg
from ._boxing import unpack_error
from ._exceptions import MsgTypeError
from .log import get_logger

if TYPE_CHECKING:
    from ._ipc import Channel
    from ._runtime import Actor

log = get_logger('call')


class Reply:
    """(caller) The single reply to a plain call with id ``cid`` on ``chan``.

    With ``actor`` (the one serving ``chan``), the waiting task may read the
    reply itself when the channel's reader steps aside (``Actor._lead``)."""

    __slots__ = ('chan', 'cid', 'msg', 'error', '_waiter', '_actor')
    #: no stream inbox: what the reader's path for stream messages
    #: (``Actor._read_channel``) finds on a route that is not a context
    _inbox: None = None

    def __init__(self, chan: Channel, cid: int, actor: Actor | None = None) -> None:
        self.chan = chan
        self.cid = cid
        self._actor = actor
        #: the ``Return``, once it arrived
        self.msg: _msg.Return | None = None
        #: the callee's boxed error, or why no reply can come
        self.error: BaseException | None = None
        self._waiter: trio.lowlevel.Task | None = None

    @property
    def done(self) -> bool:
        return self.msg is not None or self.error is not None

    # -- inbound (called synchronously by the channel's message loop) -------
    def _deliver(self, msg: _msg._Msg) -> None:
        kind = type(msg)
        if kind is _msg.Cancel or kind is _msg.Credit:
            return  # not meaningful for a plain call: as a Context ignores them
        if self.msg is not None or self.error is not None:
            log.debug('call %s: dropping a second reply (%s)', self.cid, kind.__name__)
            return
        if kind is _msg.Return:
            self.msg = msg  # type: ignore[assignment]  # dispatch on a saved type(msg)
        elif kind is _msg.Error:
            self.error = unpack_error(msg)  # type: ignore[arg-type]  # dispatch on a saved type(msg)
        else:
            self.error = MsgTypeError(f'unexpected {kind.__name__} in reply to call {self.cid}')
        task = self._waiter  # (inline, as done above: once per call)
        if task is not None:
            self._waiter = None
            if self._actor is not None:
                self.chan._woke = True  # its reader may step aside (Actor._lead)
            trio.lowlevel.reschedule(task)

    def _lost(self, err: BaseException) -> None:
        """The channel died under us: no reply will come."""
        if not self.done:
            self.error = err
            task = self._waiter
            if task is not None:
                self._waiter = None
                trio.lowlevel.reschedule(task)

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    # -- the calling task ---------------------------------------------------
    async def receive(self) -> Any:
        """The call's decoded return value, once the reply arrived; raises
        its error instead (or why no reply can come). A checkpoint."""
        # (the wait inline: each frame between the task and trio's trap is
        # resumed once more per call)
        if self.msg is None and self.error is None:
            chan = self.chan
            if self._actor is not None and chan._lead_open:
                # (its first read waits for the socket: a checkpoint)
                await self._actor._lead(chan, self)
            if self.msg is None and self.error is None:
                # (the reader reads, or took the reading back first)
                self._waiter = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort)
        else:
            await trio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error
        assert self.msg is not None
        return _msg.decode_pld(self.msg.pld)

    async def wait(self) -> None:
        """Until the reply (or the loss of the channel) arrived; a checkpoint.
        Raises nothing of the reply's: it stays in ``msg`` / ``error``."""
        try:
            await self.receive()
        except Exception:
            pass  # the callee's error, or an undecodable result: the caller's to look at


class TaskScope:
    """The cancel scope one side's task runs in (a context's or a plain
    call's), cancellable by the channel's loop before the task entered it."""

    __slots__ = ('_cs', '_cancel_pending')

    def __init__(self) -> None:
        self._cs: trio.CancelScope | None = None
        self._cancel_pending = False

    @property
    def _scope(self) -> trio.CancelScope | None:
        return self._cs

    @_scope.setter
    def _scope(self, cs: trio.CancelScope | None) -> None:
        # a Cancel that arrived before the task entered its scope still counts
        self._cs = cs
        if cs is not None and self._cancel_pending:
            cs.cancel()

    def _cancel_scope(self) -> None:
        self._cancel_pending = True
        if self._cs is not None:
            self._cs.cancel()


class CallScope(TaskScope):
    """(callee) The handle of a running plain call: what ``tractor._invoke.invoke``
    needs of a context (``_scope``, ``canceller``) and nothing more."""

    __slots__ = ('chan', 'cid', 'canceller')
    _inbox: None = None  # (as Reply's)

    def __init__(self, chan: Channel, cid: int) -> None:
        super().__init__()
        self.chan = chan
        self.cid = cid
        #: the uid of the actor that cancelled the call, if any
        self.canceller: tuple[str, str] | None = None

    def _deliver(self, msg: _msg._Msg) -> None:
        if type(msg) is _msg.Cancel:
            if self.canceller is None:
                self.canceller = self.chan.uid
            self._cancel_scope()
        else:
            log.debug('call %s: ignoring %s from the caller', self.cid, type(msg).__name__)

    def _lost(self, err: BaseException) -> None:
        """The caller's channel died: nobody waits for the result any more."""
        self._cancel_scope()
