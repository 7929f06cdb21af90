import functools, trio, tractor, pytest

async def echo_len(value: bytes) -> int:
    return len(value)

async def test_cancel_mid_send(runtime_kwargs):
    with trio.fail_after(60):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('big', enable_modules=[__name__])
            payload = b'x' * (16 * 1024 * 1024)
            for i in range(5):
                async with trio.open_nursery() as tn:
                    tn.start_soon(functools.partial(portal.run, echo_len, value=payload))
                    for _ in range(i + 1):
                        await trio.sleep(0)
                    tn.cancel_scope.cancel()
                assert await portal.run(echo_len, value=b'abc') == 3
            await an.cancel()
