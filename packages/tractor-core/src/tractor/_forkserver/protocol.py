"""The fork server's wire format, shared by the server, its spares and the
requester (``tractor._forkserver.backend``).

One request connection per child: 4-byte big-endian length + one msgpack
value, both directions. The request is a :class:`ForkRequest` carrying, as
``SCM_RIGHTS``, the fds the child gets (the requester's 0, 1, 2 and any
``pass_fds``). Replies:

- ``{'pid': n}`` with the child's pidfd attached, right after the fork;
- ``{'exit': returncode}`` (``subprocess`` convention: ``-N`` for signal N)
  once reaped, then the connection closes;
- ``{'error': text}`` when nothing was forked;
- ``{'fallback': text}`` when the request's environment differs from the
  server's in variables that are read at interpreter start or import
  (``PYTHON*``, ``TRACTOR_*``, ``LD_*``): a fork could not honour them, so
  the requester starts that child from a fresh interpreter instead.

The server hands a request on to its spare in the same framing, over a
socketpair.
"""

from __future__ import annotations

import array
import os
import socket
from typing import Any

import msgspec

#: requests larger than this are refused (the environment dominates)
MAX_REQUEST = 16 * 1024 * 1024
#: fds one request may hand over (stdio plus a few ``pass_fds``)
MAX_FDS = 16
#: environment variables read at interpreter start or import time: a forked
#: child cannot honour a change of these since the server started
STARTUP_ENV_PREFIXES = (b'PYTHON', b'TRACTOR_', b'LD_')
#: bytes of argv the server reserves so a child can show its own command
#: line (``/proc/<pid>/cmdline``, ``ps``) in place of the server's
TITLE_ROOM = 320


class ForkRequest(msgspec.Struct):
    """One child to fork: its ``tractor._child`` arguments and the process
    state it would have inherited had it been exec'd by the requester."""

    args: list[str]
    env: list[tuple[bytes, bytes]]
    cwd: bytes | None = None
    umask: int | None = None
    #: fd numbers the ``SCM_RIGHTS`` fds take in the child, in order
    fds: list[int] = []
    #: signals the requester ignores and blocks: an exec'd child would
    #: inherit both (every caught signal reverts to its default)
    sigign: list[int] = []
    sigmask: list[int] = []


_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(ForkRequest)
_reply_decoder = msgspec.msgpack.Decoder(dict[str, Any])


def frame(obj: Any) -> bytes:
    """``obj`` as one frame: its length, then its msgpack encoding."""
    body = _encoder.encode(obj)
    return len(body).to_bytes(4, 'big') + body


def decode_request(body: bytes) -> ForkRequest:
    """A request frame's body; ``msgspec.DecodeError`` when malformed."""
    return _request_decoder.decode(body)


def decode_reply(body: bytes) -> dict[str, Any]:
    """A reply frame's body (``{'pid': n}``, ``{'exit': code}``, ...)."""
    return _reply_decoder.decode(body)


class Frames:
    """Accumulates bytes and splits them into frame bodies."""

    __slots__ = ('data',)

    def __init__(self, data: bytes = b'') -> None:
        self.data = data

    def feed(self, chunk: bytes) -> None:
        self.data += chunk

    def next(self) -> bytes | None:
        data = self.data
        if len(data) < 4:
            return None
        end = 4 + int.from_bytes(data[:4], 'big')
        if len(data) < end:
            return None
        self.data = data[end:]
        return data[4:end]

    def pending(self) -> int:
        return len(self.data)


def fds_from_ancdata(ancdata: list) -> list[int]:
    """The fds received as ``SCM_RIGHTS`` in ``recvmsg``'s ancillary data."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array('i')
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds.extend(arr)
    return fds


def startup_env(env: dict[bytes, bytes] | list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The variables of ``env`` a fork cannot honour a change of."""
    items = env.items() if isinstance(env, dict) else env
    return {k: v for k, v in items if k.startswith(STARTUP_ENV_PREFIXES)}


def close_quietly(fd: int) -> None:
    """Close ``fd``, already closed or not."""
    try:
        os.close(fd)
    except OSError:
        pass
