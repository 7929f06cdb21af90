"""Every trio task's stack, on demand (``SIGUSR1``) or as text.

For a tree that seems stuck: ``kill -USR1 <pid>`` makes an actor started
with ``enable_stack_on_sig=True`` (the root option; every actor of the tree
inherits it) write the tree of its trio tasks, each with the frames of its
coroutine chain, to stderr. The signal is received by a task of the actor's
I/O nursery (``trio.open_signal_receiver``), so the dump is taken between
two steps of the event loop: an actor blocked in synchronous code answers
once that code returns.
"""

from __future__ import annotations

import linecache
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

import trio

from .log import get_logger

if TYPE_CHECKING:
    from ._runtime import Actor

log = get_logger('devx')

#: the signal that asks for a dump
STACK_SIGNAL = signal.SIGUSR1


def _coro_frames(coro: Any) -> Iterator[FrameType]:
    """The frames of a suspended coroutine chain, outermost first: follow
    what each coroutine (or async generator step) awaits."""
    seen = 0
    while coro is not None and seen < 1000:  # bounded: a cycle cannot hang a dump
        seen += 1
        frame = (
            getattr(coro, 'cr_frame', None)
            or getattr(coro, 'gi_frame', None)
            or getattr(coro, 'ag_frame', None)
        )
        if frame is not None:
            yield frame
        nxt = getattr(coro, 'cr_await', None)
        if nxt is None:
            nxt = getattr(coro, 'gi_yieldfrom', None)
        if nxt is None:
            nxt = getattr(coro, 'ag_await', None)
        coro = nxt


def _format_frame(frame: FrameType, indent: str) -> list[str]:
    code = frame.f_code
    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
    out = [f'{indent}  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}']
    if line:
        out.append(f'{indent}    {line}')
    return out


def _format_task(task: trio.lowlevel.Task, depth: int, out: list[str]) -> None:
    indent = '  ' * depth
    out.append(f'{indent}task {task.name!r}')
    for frame in _coro_frames(task.coro):
        out.extend(_format_frame(frame, indent))
    for nursery in task.child_nurseries:
        out.append(f'{indent}  nursery ({len(nursery.child_tasks)} tasks)')
        for child in sorted(nursery.child_tasks, key=lambda t: t.name):
            _format_task(child, depth + 2, out)


def dump_task_tree(header: str | None = None) -> str:
    """Every task of the running trio loop, as an indented tree from the
    root task down through its nurseries, each with its current frames
    (outermost first, as in a traceback). Must be called from a trio task."""
    out = [header] if header else []
    root = trio.lowlevel.current_root_task()
    if root is not None:  # (None only while the run starts or ends)
        _format_task(root, 0, out)
    return '\n'.join(out)


async def dump_on_signal(
    actor: Actor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """(runtime) Write :func:`dump_task_tree` to stderr on each ``SIGUSR1``,
    then pass the signal on to this actor's children (so signalling the
    root dumps the whole tree), for the actor's lifetime. Reports started
    once the handler is in place, so a signal sent after the actor serves
    never hits the default action (which would end the process); children
    are signalled only once they serve, so theirs is in place too."""
    with trio.open_signal_receiver(STACK_SIGNAL) as signals:
        task_status.started()
        async for _ in signals:
            text = dump_task_tree(
                f'>>> tractor: task tree of actor {actor.name!r} (pid {os.getpid()})'
            )
            log.devx('dumping the task tree of %r on SIGUSR1', actor.name)
            try:
                sys.stderr.write(text + '\n<<< end of task tree\n')
                sys.stderr.flush()
            except (OSError, ValueError):  # stderr closed: nothing to tell
                pass
            for chan in list(actor._child_chans):
                if chan.aid is None:
                    continue
                try:
                    os.kill(chan.aid.pid, STACK_SIGNAL)
                except OSError:  # exited meanwhile
                    pass
