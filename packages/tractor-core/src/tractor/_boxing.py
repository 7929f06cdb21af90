"""Boxing errors for the wire and unboxing them on arrival.

Below the call and context layers: everything here takes the uid of the
actor doing the boxing, never the actor itself, so any layer can box an
error without reaching up to :class:`~tractor._runtime.Actor`.
"""

from __future__ import annotations

import os
import sys
import traceback

from . import _msg, _settings
from ._exceptions import ContextCancelled, RemoteActorError, type_name, wire_type_name

Uid = tuple[str, str]

#: the wire name of a remote cancel
CANCELLED = type_name(ContextCancelled)


def pack_error(cid: int, exc: BaseException, uid: Uid, canceller: Uid | None = None) -> _msg.Error:
    """Box ``exc``, raised in actor ``uid``, as the error reply of call
    ``cid``; a relayed remote error keeps its origin (``uid`` becomes the
    relay)."""
    if isinstance(exc, RemoteActorError):
        return _msg.Error(
            cid=cid,
            type_str=exc.boxed_type_str,
            message=exc.msg,
            tb_str=exc.tb_str,
            src_uid=exc.src_uid or uid,
            relay_uid=uid,
            canceller=getattr(exc, 'canceller', None) or canceller,
        )
    return _msg.Error(
        cid=cid,
        type_str=wire_type_name(exc),
        message=_bounded(_message(exc)),
        tb_str=_bounded(format_tb(exc)),
        src_uid=uid,
    )


#: the longest message or traceback text an error carries (what is past it
#: is cut, and the cut said): an error must reach its caller whatever its size
MAX_ERROR_TEXT = 256 * 1024


def _message(exc: BaseException) -> str:
    """``str(exc)``, or what can be said of an exception whose ``__str__``
    itself fails: the error still reaches the caller."""
    try:
        return str(exc)
    except Exception as err:
        return f'<str() of the {type(exc).__name__} failed: {type(err).__name__}>'


def _bounded(text: str) -> str:
    if len(text) <= MAX_ERROR_TEXT:
        return text
    return f'{text[:MAX_ERROR_TEXT]}... [{len(text) - MAX_ERROR_TEXT} more characters cut]'


def pack_cancelled(cid: int, uid: Uid, canceller: Uid | None, tb_str: str = '') -> _msg.Error:
    """The error reply of call ``cid`` whose task in actor ``uid`` was
    cancelled (``tb_str``: where it cancelled itself, when it did)."""
    who = canceller[0] if canceller else 'unknown'
    return _msg.Error(
        cid=cid,
        type_str=CANCELLED,
        message=f'task cancelled in {uid[0]!r} (by {who!r})',
        tb_str=tb_str,
        src_uid=uid,
        canceller=canceller,
    )


def unpack_error(msg: _msg.Error) -> RemoteActorError:
    """The exception a caller raises for an error reply: a
    :class:`ContextCancelled` for a cancel, else a :class:`RemoteActorError`
    boxing the remote type."""
    if msg.type_str == CANCELLED:
        err = ContextCancelled(
            msg.message,
            boxed_type_str=msg.type_str,
            src_uid=msg.src_uid,
            relay_uid=msg.relay_uid,
            tb_str=msg.tb_str,
        )
        err.canceller = msg.canceller
        return err
    return RemoteActorError(
        msg.message,
        boxed_type_str=msg.type_str,
        src_uid=msg.src_uid,
        relay_uid=msg.relay_uid,
        tb_str=msg.tb_str,
    )


def runtime_dirs() -> tuple[str, ...]:
    """Where the runtime's own frames come from: every portion of the
    ``tractor`` package and the libraries that run a task for it."""
    dirs = []
    for name in ('tractor', 'trio', 'outcome', 'greenback'):
        mod = sys.modules.get(name)
        for path in getattr(mod, '__path__', ()) or ():
            dirs.append(os.path.join(os.path.abspath(path), ''))
    return tuple(dirs)


def format_tb(exc: BaseException) -> str:
    """The traceback of ``exc`` as text for the wire, without the runtime's
    frames above the first frame of user code (the RPC machinery that ran
    it). ``TRACTOR_FULL_TRACEBACKS=1`` keeps every frame."""
    if isinstance(exc, RemoteActorError):
        return exc.tb_str
    tb = exc.__traceback__
    if not _settings.value('TRACTOR_FULL_TRACEBACKS'):
        runtime = runtime_dirs()
        first = tb
        while first is not None and first.tb_frame.f_code.co_filename.startswith(runtime):
            first = first.tb_next
        if first is not None:  # (all runtime frames: a runtime error, keep them)
            tb = first
    return ''.join(traceback.format_exception(type(exc), exc, tb))
