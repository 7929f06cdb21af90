"""The wire protocol: a closed, tagged union of message structs.

Every frame on a connection is a 4-byte big-endian length followed by one
msgpack-encoded message from :data:`Msg`. Payload fields (``pld``) are kept
as ``msgspec.Raw`` on receipt so each context can decode them with its own
type spec; on send any msgspec-encodable value may sit in them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw, Struct

from ._exceptions import MsgTypeError

#: refuse frames larger than this (bytes); override per process with
#: ``TRACTOR_MAX_FRAME`` (read at channel creation)
DEFAULT_MAX_FRAME = 64 * 1024 * 1024

#: refuse frames whose msgpack values nest deeper than this. Well below the
#: interpreter's recursion limit (1000): msgspec recurses once per level,
#: and so would any code handed the decoded value (repr, logging, encoding
#: it back in an error reply), so a frame near the limit could fail far
#: from the decoder. Legitimate messages nest a handful of levels.
MAX_DEPTH = 100


class Aid(Struct, array_like=True, frozen=True):
    """An actor's identity: unique ``(name, uuid)`` plus its pid."""

    name: str
    uuid: str
    pid: int

    @property
    def uid(self) -> tuple[str, str]:
        return (self.name, self.uuid)


class _Msg(Struct, tag=True, array_like=True):
    pass


class Hello(_Msg):
    """First message each side sends on a new connection."""

    aid: Aid
    #: where the sender listens (empty while it boots)
    addrs: list[tuple[str, list]] = []
    version: int = 2
    #: a spawned child's proof that it holds its parent's spawn token
    #: (``tractor._session.spawn_proof``), empty otherwise
    spawn_proof: bytes = b''


class SpawnSpec(_Msg):
    """Everything a freshly spawned actor needs, from its parent."""

    enable_modules: list[str]
    module_paths: dict[str, str]
    sys_path: list[str]
    reg_addrs: list[tuple[str, list]]
    bind_addrs: list[tuple[str, list]]
    enable_transports: list[str]
    loglevel: str | None = None
    debug_mode: bool = False
    start_method: str = 'trio'
    #: the root actor of the tree (uid, addresses): the debugger's terminal
    #: lock lives there
    root_uid: tuple[str, str] | None = None
    root_addrs: list[tuple[str, list]] = []
    #: write the task tree to stderr on SIGUSR1 (``enable_stack_on_sig``)
    stack_on_sig: bool = False
    #: plugins' state for the child, by plugin (hooks
    #: ``tractor_spawn_spec_ext`` in the parent, ``..._received`` in the child)
    ext: dict[str, Any] = {}


class Ready(_Msg):
    """A child's answer to its spawn spec: it serves on ``accept_addrs``."""

    accept_addrs: list[tuple[str, list]]


class Start(_Msg):
    """Run ``ns:func`` in the receiver. ``kind`` is ``'fn'`` or ``'ctx'``."""

    cid: int
    ns: str
    func: str
    kwargs: dict[str, Any]
    kind: str = 'fn'
    window: int = 0


class Started(_Msg):
    cid: int
    pld: Raw


class Yield(_Msg):
    cid: int
    pld: Raw


class Stop(_Msg):
    """The sender closed its end of the context's stream."""

    cid: int


class Credit(_Msg):
    """Flow control: the receiver consumed ``n`` more stream messages.
    ``overrun``: the receiver allows overruns (``open_stream(allow_overruns=
    True)``): past its credit the sender gets ``StreamOverrun`` instead of
    waiting."""

    cid: int
    n: int
    overrun: bool = False


class Return(_Msg):
    cid: int
    pld: Raw


class Error(_Msg):
    """A boxed exception; ``cid`` 0 means the actor itself failed."""

    cid: int
    type_str: str
    message: str
    tb_str: str
    src_uid: tuple[str, str]
    relay_uid: tuple[str, str] | None = None
    canceller: tuple[str, str] | None = None


class Cancel(_Msg):
    """Ask the receiver to cancel the task it runs for ``cid``."""

    cid: int


Msg = Hello | SpawnSpec | Ready | Start | Started | Yield | Stop | Credit | Return | Error | Cancel

#: fields that decode to arbitrary values, besides Start.kwargs and the
#: payloads (bounded where they are decoded, see decode_pld)
_ANY_FIELDS: dict[type[_Msg], tuple[str, ...]] = {
    Hello: ('addrs',),
    SpawnSpec: ('reg_addrs', 'bind_addrs', 'root_addrs'),
    Ready: ('accept_addrs',),
}

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Msg)
_any_decoder = msgspec.msgpack.Decoder()


def append_frame(msg: _Msg, buf: bytearray) -> None:
    """Append ``msg`` with its length prefix to ``buf``."""
    start = len(buf)
    buf.extend(b'\0\0\0\0')
    try:
        _encoder.encode_into(msg, buf, start + 4)
    except (TypeError, OverflowError, ValueError, RecursionError) as err:
        raise _unencodable(type(msg).__name__, err) from err
    buf[start : start + 4] = (len(buf) - start - 4).to_bytes(4, 'big')


def _unencodable(what: str, err: BaseException) -> MsgTypeError:
    return MsgTypeError(
        f'cannot send {what}: {err} '
        '(only msgspec-encodable values cross actors: '
        'builtins, dataclasses, msgspec.Struct, ...)',
        unencodable=True,
    )


def check_pld(value: Any, decoder: msgspec.msgpack.Decoder) -> None:
    """(sender side) Refuse ``value`` with :class:`MsgTypeError` unless it
    is what a receiver decoding with ``decoder`` (a context's ``pld_spec``)
    would accept: the same encode and typed decode the two sides do, so the
    check and the receiver never disagree. Only called when a spec is set."""
    try:
        raw = _encoder.encode(value)
    except (TypeError, OverflowError, ValueError) as err:
        raise _unencodable(f'{type(value).__name__} payload', err) from err
    try:
        decoder.decode(raw)
    except msgspec.DecodeError as err:
        raise MsgTypeError(
            f"payload of type {type(value).__name__} does not match the context's "
            f'pld_spec {_spec_name(decoder.type)}: {err}'
        ) from err


def _spec_name(spec: Any) -> str:
    return spec.__name__ if isinstance(spec, type) else str(spec)


def decode(data: bytes | memoryview) -> _Msg:
    """One frame's message. Anything wrong with it, whatever the decoder
    raises (``RecursionError``, ``MemoryError`` for an absurd value, ...),
    is a :class:`MsgTypeError`: the caller drops that one connection."""
    try:
        msg = _decoder.decode(data)
    except msgspec.DecodeError as err:
        raise MsgTypeError(f'malformed message: {err}') from err
    except Exception as err:
        raise MsgTypeError(f'undecodable message: {type(err).__name__}: {err}') from err
    kind = type(msg)
    if kind is Start:
        if len(data) > MAX_DEPTH:  # shorter frames cannot nest that deep
            check_depth(msg.kwargs)
    elif kind in _ANY_FIELDS and len(data) > MAX_DEPTH:
        for field in _ANY_FIELDS[kind]:
            check_depth(getattr(msg, field))
    return msg


def decode_pld(raw: Raw, decoder: msgspec.msgpack.Decoder | None = None) -> Any:
    """A payload; any decoding failure, or a value nesting deeper than
    :data:`MAX_DEPTH`, is a :class:`MsgTypeError` for that context."""
    try:
        value = (decoder or _any_decoder).decode(raw)
    except msgspec.DecodeError as err:
        raise MsgTypeError(f'payload does not match the expected type: {err}') from err
    except Exception as err:
        raise MsgTypeError(f'undecodable payload: {type(err).__name__}: {err}') from err
    if type(value) in _NESTED and len(raw) > MAX_DEPTH:  # shorter ones cannot nest that deep
        check_depth(value)
    return value


# -- the structural depth bound ----------------------------------------------

_NESTED = frozenset((list, dict, tuple))


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """``MsgTypeError`` if ``value`` (a decoded kwargs dict or payload)
    nests containers deeper than ``limit``.

    Walks containers only, without recursion: a container of scalars costs
    one C-level scan, so a large bytes or str payload, or a long list of
    numbers, is cheap. (The decoder itself cannot be told to stop at a
    depth; a RecursionError it raises first is caught by the callers.)
    """
    if type(value) not in _NESTED:
        return
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            raise MsgTypeError(f'value nests deeper than {limit} levels: refused')
        for items in (v, v.values()) if type(v) is dict else (v,):
            if not _NESTED.isdisjoint(map(type, items)):  # one C-level pass
                stack.extend((x, depth + 1) for x in items if type(x) in _NESTED and x)
