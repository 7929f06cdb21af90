"""The shared polling helper: returns the condition's value, bounded, and
names the condition when it times out."""

from __future__ import annotations

import pytest
import trio

from tractor_testsupport.polling import ConditionTimeout, wait_until, wait_until_sync


async def test_wait_until_returns_the_value_sync_or_async():
    calls = []

    def counted() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else None

    async def ready() -> str:
        await trio.lowlevel.checkpoint()
        return 'yes'

    with trio.fail_after(5):
        assert await wait_until(counted, 'three calls', poll=0) == 3
        assert await wait_until(ready) == 'yes'


async def test_wait_until_names_the_condition_on_timeout():
    with trio.fail_after(5):
        with pytest.raises(
            ConditionTimeout,
            match=r'the thing is ready: still not true after 0\.05s \(last value: 0\)',
        ):
            await wait_until(lambda: 0, 'the thing is ready', timeout=0.05, poll=0.01)


def test_wait_until_sync():
    state = iter([None, '', 'done'])
    assert wait_until_sync(lambda: next(state), poll=0) == 'done'
    with pytest.raises(ConditionTimeout, match='never'):
        wait_until_sync(lambda: False, 'never', timeout=0.05, poll=0.01)
