"""The wire protocol: a closed, tagged union of message structs.

Every frame on a connection is a 4-byte big-endian length followed by one
msgpack-encoded message from :data:`Msg`. Payload fields (``pld``) are kept
as ``msgspec.Raw`` on receipt so each context can decode them with its own
type spec; on send any msgspec-encodable value may sit in them.
"""
from __future__ import annotations

from typing import Any, Union

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
    #: (``tractor._auth.spawn_proof``), empty otherwise
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
    #: the tree's fork server (its socket path), for children to reuse
    forkserver: str | None = None
    #: the root actor of the tree (uid, addresses): the debugger's terminal
    #: lock lives there
    root_uid: tuple[str, str] | None = None
    root_addrs: list[tuple[str, list]] = []


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
    """Flow control: the receiver consumed ``n`` more stream messages."""

    cid: int
    n: int


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


Msg = Union[Hello, SpawnSpec, Ready, Start, Started, Yield, Stop, Credit, Return, Error, Cancel]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Msg)
_any_decoder = msgspec.msgpack.Decoder()


def append_frame(msg: _Msg, buf: bytearray) -> None:
    """Append ``msg`` with its length prefix to ``buf``."""
    start = len(buf)
    buf.extend(b'\0\0\0\0')
    try:
        _encoder.encode_into(msg, buf, start + 4)
    except (TypeError, OverflowError, ValueError) as err:
        raise MsgTypeError(
            f'cannot send {type(msg).__name__}: {err} '
            '(only msgspec-encodable values cross actors: '
            'builtins, dataclasses, msgspec.Struct, ...)'
        ) from err
    buf[start:start + 4] = (len(buf) - start - 4).to_bytes(4, 'big')


def decode(data: bytes | memoryview) -> _Msg:
    """One frame's message. Anything wrong with it, whatever the decoder
    raises (``RecursionError``, ``MemoryError`` for an absurd value, ...),
    is a :class:`MsgTypeError`: the caller drops that one connection."""
    check_depth(data)
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as err:
        raise MsgTypeError(f'malformed message: {err}') from err
    except Exception as err:
        raise MsgTypeError(f'undecodable message: {type(err).__name__}: {err}') from err


def decode_pld(raw: Raw, decoder: msgspec.msgpack.Decoder | None = None) -> Any:
    """A payload (from a frame :func:`decode` already bounded in depth);
    any decoding failure is a :class:`MsgTypeError` for that context."""
    try:
        return (decoder or _any_decoder).decode(raw)
    except msgspec.DecodeError as err:
        raise MsgTypeError(f'payload does not match the expected type: {err}') from err
    except Exception as err:
        raise MsgTypeError(f'undecodable payload: {type(err).__name__}: {err}') from err


# -- the structural depth bound ----------------------------------------------

#: msgpack header bytes that open a container (fixmap, fixarray, array16/32,
#: map16/32); a value nested d deep holds at least d of them
_CONTAINER_BYTES = bytes([*range(0x80, 0xa0), 0xdc, 0xdd, 0xde, 0xdf])
_NOT_CONTAINER = bytes(b for b in range(256) if b not in _CONTAINER_BYTES)
#: scalar sizes after the first byte, for fixed-size types
_FIXED = {
    0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8,
    0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
    0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17,  # fixext: type byte + data
}
#: types with a length field: its width, extra bytes (ext's type byte)
_SIZED = {
    0xc4: (1, 0), 0xc5: (2, 0), 0xc6: (4, 0),  # bin
    0xc7: (1, 1), 0xc8: (2, 1), 0xc9: (4, 1),  # ext
    0xd9: (1, 0), 0xda: (2, 0), 0xdb: (4, 0),  # str
}


def check_depth(data: bytes | memoryview, limit: int = MAX_DEPTH) -> None:
    """``MsgTypeError`` if a msgpack value in ``data`` nests deeper than
    ``limit``.

    Cheap for what real traffic looks like: a frame shorter than ``limit``
    bytes, or one with fewer than ``limit`` container header bytes (counted
    at C speed), cannot nest that deep, so only frames with many containers
    are walked, element by element. Malformed input is left to the decoder.
    """
    if len(data) <= limit:
        return
    raw = bytes(data) if isinstance(data, memoryview) else data
    if len(raw.translate(None, _NOT_CONTAINER)) <= limit:
        return
    # walk: remaining[i] is how many elements the i-th open container holds
    remaining: list[int] = []
    pos, end = 0, len(raw)
    while pos < end:
        b = raw[pos]
        pos += 1
        n = -1  # elements of a container opened here
        if b <= 0x7f or b >= 0xe0:
            pass
        elif b <= 0x8f:
            n = 2 * (b & 0x0f)
        elif b <= 0x9f:
            n = b & 0x0f
        elif b <= 0xbf:
            pos += b & 0x1f
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED:
            width, extra = _SIZED[b]
            pos += width + extra + int.from_bytes(raw[pos:pos + width], 'big')
        elif b in (0xdc, 0xdd):
            width = 2 if b == 0xdc else 4
            n = int.from_bytes(raw[pos:pos + width], 'big')
            pos += width
        elif b in (0xde, 0xdf):
            width = 2 if b == 0xde else 4
            n = 2 * int.from_bytes(raw[pos:pos + width], 'big')
            pos += width
        else:
            return  # 0xc1 is never used: malformed, the decoder says so
        if n > 0:
            remaining.append(n)
            if len(remaining) > limit:
                raise MsgTypeError(
                    f'message nests deeper than {limit} levels: refused'
                )
            continue
        # a scalar (or empty container) completed: close finished containers
        while remaining:
            remaining[-1] -= 1
            if remaining[-1]:
                break
            remaining.pop()


def wire_addrs(addrs) -> list[tuple[str, list]]:
    return [a.to_wire() for a in addrs]
