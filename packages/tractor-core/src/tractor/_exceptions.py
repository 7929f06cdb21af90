"""Errors raised by the runtime, and the box (`RemoteActorError`) for errors that cross actors."""

from __future__ import annotations

import builtins
import sys
from typing import Any, cast

import trio


class TractorError(Exception):
    """Base of every error the runtime raises on its own account."""


class NoRuntime(TractorError, RuntimeError):
    """An API that needs a running actor was called outside of one."""


class NoTransportInstalled(TractorError, RuntimeError):
    """No transport plugin provides the protocol the runtime was asked to use."""


class ModuleNotExposed(ModuleNotFoundError):
    """A peer asked to run a function from a module the target did not enable."""


class TransportClosed(TractorError, trio.BrokenResourceError):
    """The IPC connection to a peer is gone (EOF, reset or closed locally)."""


#: what a byte stream raises when the connection under it is gone (broken,
#: closed under the caller, or an OS-level socket error): code at the stream
#: boundary catches these and raises :func:`transport_closed` instead
STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def transport_closed(what: str, err: BaseException) -> TransportClosed:
    """The :class:`TransportClosed` for ``err`` (one of :data:`STREAM_ERRORS`),
    reading ``what: err``; raise it ``from err``.

    (A function, not a context manager: the channel's send and receive
    paths catch inline, where an ``except`` costs nothing until it fires.)
    """
    return TransportClosed(f'{what}: {err}')


class AuthenticationError(TractorError):
    """A connection's peer failed the shared-secret proof (or refused ours):
    the two sides do not use the same secret. Raised on the dialing side;
    the listening side logs a warning and closes the connection."""


class StreamOverrun(TractorError):
    """A stream send that would run further ahead of a receiver than it
    allows: the receiver opened its end with ``allow_overruns=True``, and
    this sender already has as many unread messages there as it may. The
    value was not sent; the stream stays usable."""


class MsgTypeError(TractorError, TypeError):
    """A message or payload that the wire protocol cannot carry.

    Raised on the sending side, before anything is written, when a value is not
    msgspec-encodable or breaks its context's ``pld_spec``; raised on the
    receiving side when a frame does not decode to the expected message type.

    ``unencodable`` is true when the value could not be encoded at all: the
    error is then about the value itself, a plain ``TypeError`` to the peer
    (``RemoteActorError.boxed_type is TypeError`` when it crosses actors
    uncaught), as msgspec reports it.
    """

    def __init__(self, *args: object, unencodable: bool = False) -> None:
        super().__init__(*args)
        self.unencodable = unencodable

    def __reduce__(self):  # keep the flag through pickling (pytest-xdist & co)
        return (_rebuild_mte, (self.args, self.unencodable))


def _rebuild_mte(args: tuple, unencodable: bool) -> MsgTypeError:
    return MsgTypeError(*args, unencodable=unencodable)


def wire_type_name(exc: BaseException) -> str:
    """The type name an error is boxed under when it crosses actors."""
    if isinstance(exc, MsgTypeError) and exc.unencodable:
        return type_name(TypeError)
    return type_name(type(exc))


class ActorFailure(TractorError):
    """A subactor process failed to start or died before reporting ready
    (under a supervisor: how a child's process ended, as a restart's cause)."""


def _resolve_type(qualname: str) -> type[BaseException] | None:
    """Find an exception type by ``module:qualname`` among *already imported*
    modules only: a peer must never make us import code by naming it."""
    mod_name, _, name = qualname.rpartition(':')
    obj: Any = _imported_module(mod_name)
    for part in name.split('.'):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return obj
    return None


def _imported_module(mod_name: str) -> Any:
    """The imported module ``mod_name`` names here. The tree's main script
    has a name per process: ``__main__`` in the root (importable as its
    ``-m`` name if it was run so), ``__mp_main__`` in a child that loaded
    it from its file (or the ``-m`` name)."""
    if mod_name in ('builtins', ''):
        return builtins
    if mod_name == '__main__' and '__mp_main__' in sys.modules:
        return sys.modules['__mp_main__']
    mod = sys.modules.get(mod_name)
    if mod is None:
        main = sys.modules.get('__main__')
        spec = getattr(main, '__spec__', None)
        if spec is not None and spec.name == mod_name:
            return main
    return mod


def type_name(exc_type: type[BaseException]) -> str:
    """``module:qualname``, a class of the tree's main script named alike
    in every actor: by its ``-m`` name if it has one, else ``__main__``."""
    mod = exc_type.__module__
    if mod == '__mp_main__':
        mod = '__main__'
    elif mod == '__main__':
        spec = getattr(sys.modules.get('__main__'), '__spec__', None)
        if spec is not None and spec.name:
            mod = spec.name
    return f'{mod}:{exc_type.__qualname__}'


class RemoteActorError(TractorError):
    """An error raised in another actor, boxed and shipped to this one.

    ``boxed_type`` is the remote exception type when it is importable here
    (``None`` otherwise, with its name still in ``boxed_type_str``);
    ``src_uid`` names the actor where it was raised and ``tb_str`` holds the
    remote traceback text. When an error is relayed through intermediate
    actors, ``src_uid`` stays the origin and ``relay_uid`` is the last hop.
    """

    def __init__(
        self,
        message: str,
        *,
        boxed_type_str: str = 'builtins:Exception',
        src_uid: tuple[str, str] | None = None,
        relay_uid: tuple[str, str] | None = None,
        tb_str: str = '',
    ) -> None:
        super().__init__(message)
        self.msg = message
        self.boxed_type_str = boxed_type_str
        # a uid given as a list (decoded without a type) is kept as the tuple
        self.src_uid = cast('tuple[str, str]', tuple(src_uid)) if src_uid else None
        self.relay_uid = cast('tuple[str, str]', tuple(relay_uid)) if relay_uid else None
        self.tb_str = tb_str

    @property
    def boxed_type(self) -> type[BaseException] | None:
        return _resolve_type(self.boxed_type_str)

    @property
    def type_name(self) -> str:
        return self.boxed_type_str.rpartition(':')[2]

    def __str__(self) -> str:
        src = f'{self.src_uid[0]!r}' if self.src_uid else 'a remote actor'
        head = f'{self.type_name} raised in {src}: {self.msg}'
        if self.tb_str:
            indented = ''.join('  | ' + line for line in self.tb_str.rstrip().splitlines(True))
            return f'{head}\n  remote traceback:\n{indented}'
        return head

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.type_name}: {self.msg!r}, src={self.src_uid})'

    def __reduce__(self):  # keep it picklable for pytest-xdist & co
        return (
            _rebuild,
            (
                type(self),
                self.msg,
                self.boxed_type_str,
                self.src_uid,
                self.relay_uid,
                self.tb_str,
                getattr(self, 'canceller', None),
            ),
        )


def _rebuild(cls, msg, boxed, src, relay, tb, canceller):
    err = cls(msg, boxed_type_str=boxed, src_uid=src, relay_uid=relay, tb_str=tb)
    if canceller is not None:
        err.canceller = canceller
    return err


class ContextCancelled(RemoteActorError):
    """A remote task (an RPC or a context's callee) was cancelled.

    ``canceller`` is the uid of the actor that asked for the cancel. The side
    that requested a cancel never sees this error for its own request.
    """

    canceller: tuple[str, str] | None = None

    def __str__(self) -> str:
        who = self.canceller[0] if self.canceller else 'unknown'
        src = self.src_uid[0] if self.src_uid else 'a remote actor'
        return f'remote task in {src!r} was cancelled by {who!r}: {self.msg}'


def check_actor_name(name: Any) -> str:
    """``name`` if it can name an actor (a non-empty string without
    control characters: it goes into a child's argv, its process title and
    the registry's listings), else a ``ValueError`` saying what was given."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'an actor name must be a non-empty string, got {name!r}')
    if not name.isprintable() and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise ValueError(f'an actor name may not hold control characters, got {name!r}')
    return name


def check_seconds(what: str, value: Any) -> None:
    """``TypeError`` naming ``what`` unless ``value`` is ``None`` or a
    number of seconds >= 0 (a bound a public API takes)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or value < 0
    ):
        raise TypeError(f'{what} takes seconds >= 0, got {value!r}')
