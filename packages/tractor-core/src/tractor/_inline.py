"""Run a coroutine inside the current task, as if it had a task of its own.

A channel's reader runs a plain call itself (:func:`tractor._invoke.run_here`)
instead of starting a task for it: most calls finish without ever suspending
(a quick function, its reply written at once), and starting, scheduling and
reaping a task is then most of what the call costs. :func:`run_inline` steps
the call's coroutine by hand, which gives what a task would have given:

- its own :mod:`contextvars` context: every step runs in ``context``, so
  what the call sets (and the tasks it starts inherit) never leaks into the
  reader or into the next call;
- a hook, ``before_suspend``, called once, just before the coroutine first
  suspends: the reader hands the reading on to a new task there, so the
  channel is served while the call waits, and only a call that waits pays
  for a task.

After the first suspension the coroutine stays in this task to its end:
every trap it yields is passed up to trio unchanged, and every value or
exception trio resumes the task with is passed down, as ``await`` does.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any


@types.coroutine
def run_inline(
    coro: Coroutine[Any, Any, Any], context: contextvars.Context, before_suspend: Callable[[], None]
) -> Generator[Any, Any, tuple[Any, bool]]:
    """``await coro`` with every step run in ``context``; ``before_suspend()``
    is called right before its first suspension. Returns ``(result,
    suspended)``; raises what ``coro`` raises."""
    send, throw = coro.send, coro.throw
    try:
        trap = context.run(send, None)
    except StopIteration as done:
        return done.value, False
    try:
        before_suspend()
    except BaseException:
        coro.close()
        raise
    while True:
        try:
            value = yield trap
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                trap = context.run(throw, exc)
            except StopIteration as done:
                return done.value, True
        else:
            try:
                trap = context.run(send, value)
            except StopIteration as done:
                return done.value, True
