"""``tractor._inline.run_inline``: a coroutine run in the current task as if
it had a task of its own (its own context; a hook before it first waits)."""

from __future__ import annotations

import contextvars

import pytest
import trio

from tractor._inline import run_inline

var: contextvars.ContextVar[str] = contextvars.ContextVar('test_inline_var', default='unset')


async def test_a_coroutine_that_never_waits_returns_without_the_hook():
    hooked: list[bool] = []

    async def quick() -> int:
        return 7

    with trio.fail_after(5):
        assert await run_inline(
            quick(), contextvars.copy_context(), lambda: hooked.append(True)
        ) == (7, False)
    assert hooked == []


async def test_the_hook_runs_once_right_before_the_first_wait():
    steps: list[str] = []

    async def waits() -> str:
        steps.append('before')
        await trio.sleep(0)
        steps.append('between')
        await trio.sleep(0)
        steps.append('after')
        return 'done'

    with trio.fail_after(5):
        result = await run_inline(waits(), contextvars.copy_context(), lambda: steps.append('hook'))
    assert result == ('done', True)
    assert steps == ['before', 'hook', 'between', 'after']


async def test_each_run_has_its_own_context_and_its_tasks_inherit_it():
    seen: list[str] = []

    async def sets_var() -> str:
        var.set('inside')
        async with trio.open_nursery() as tn:
            tn.start_soon(lambda: _record(seen))
        return var.get()

    with trio.fail_after(5):
        assert await run_inline(sets_var(), contextvars.copy_context(), lambda: None) == (
            'inside',
            True,
        )
    assert seen == ['inside']  # a task it started inherited the value
    assert var.get() == 'unset'  # nothing leaked into the task that ran it


async def _record(seen: list[str]) -> None:
    seen.append(var.get())


@pytest.mark.parametrize('waits_first', [False, True])
async def test_errors_come_out_as_raised(waits_first):
    async def fails() -> None:
        if waits_first:
            await trio.sleep(0)
        raise ValueError('boom')

    with trio.fail_after(5), pytest.raises(ValueError, match='boom'):
        await run_inline(fails(), contextvars.copy_context(), lambda: None)


async def test_a_cancel_reaches_the_coroutine_and_its_cleanup_runs():
    cleaned: list[str] = []

    async def sleeps() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0)  # it may still wait while unwinding
            cleaned.append(var.get())

    with trio.fail_after(5):
        with trio.CancelScope() as cs:
            context = contextvars.copy_context()
            context.run(var.set, 'own')
            # the hook runs just before the coroutine waits: cancel it there
            await run_inline(sleeps(), context, cs.cancel)
    assert cs.cancelled_caught
    assert cleaned == ['own']  # unwound in its own context too


async def test_a_failing_hook_closes_the_coroutine():
    closed: list[bool] = []

    async def waits() -> None:
        try:
            await trio.sleep(0)
        finally:
            closed.append(True)

    def hook() -> None:
        raise RuntimeError('no reader to hand on to')

    with trio.fail_after(5), pytest.raises(RuntimeError, match='no reader'):
        await run_inline(waits(), contextvars.copy_context(), hook)
    assert closed == [True]
