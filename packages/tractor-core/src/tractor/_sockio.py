"""Lean socket I/O for channels over a ``trio.SocketStream``.

``trio.SocketStream.send_all`` is a full checkpoint: even a write the kernel
accepts whole costs a trip through the scheduler (one more run-loop
iteration per message). A channel over a socket first tries a plain
non-blocking write here and only falls back to ``send_all`` (which waits
for the socket to drain) for what the kernel did not take.

Reads keep trio's checkpoint semantics (see :func:`receive_some`) but skip
the per-call layers of ``SocketStream.receive_some`` (conflict detector,
error-translating context managers): a channel has a single reader and
handles ``OSError`` itself.
"""

from __future__ import annotations

import os

import trio

#: the direct path writes to the socket's file descriptor (POSIX only)
_POSIX = os.name == 'posix'


def direct_socket(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket under ``stream`` if it can be written to directly."""
    if _POSIX and isinstance(stream, trio.SocketStream):
        return stream.socket
    return None


def try_send(sock: trio.socket.SocketType, data: bytes | bytearray | memoryview) -> int:
    """Write what the kernel takes now (no blocking, no yield); returns how
    many bytes that was. ``OSError`` for a broken or closed socket."""
    # fileno() is -1 once the socket is closed (EBADF below): never cached,
    # so a closed channel cannot write into a reused descriptor
    try:
        return os.write(sock.fileno(), data)
    except BlockingIOError:
        return 0


async def receive_some(
    sock: trio.socket.SocketType, max_bytes: int, *, drained: bool = False
) -> bytes:
    """Up to ``max_bytes`` from ``sock`` (``b''`` at EOF): a checkpoint, as
    ``SocketStream.receive_some`` is. ``OSError`` for a broken or closed
    socket, ``trio.ClosedResourceError`` if it is closed while waiting.

    ``drained=True`` says the caller's last read emptied the socket (it got
    less than it asked for): the read then waits for the socket first
    instead of trying it at once, which would most likely fail, costing a
    system call and an exception per message on an interactive connection.
    """
    if not drained:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            data = os.read(sock.fileno(), max_bytes)
        except BlockingIOError:
            pass
        else:
            # data was already there: still give other tasks a turn
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
    while True:
        await trio.lowlevel.wait_readable(sock)
        try:
            return os.read(sock.fileno(), max_bytes)
        except BlockingIOError:
            continue  # a spurious wake-up


async def receive_eager(sock: trio.socket.SocketType, max_bytes: int) -> bytes:
    """Up to ``max_bytes`` from ``sock`` (``b''`` at EOF): at once and
    without yielding when it has data, else once it does (a checkpoint
    then). For a step-by-step exchange whose caller checkpoints anyway (the
    authentication preamble, which waits for its peer at least once): a
    frame that is already there costs no trip through the scheduler."""
    try:
        return os.read(sock.fileno(), max_bytes)
    except BlockingIOError:
        return await receive_some(sock, max_bytes, drained=True)
