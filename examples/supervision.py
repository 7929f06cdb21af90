"""Supervision: a worker that dies is restarted under its name, and the
portal you hold follows it; a worker that keeps dying makes the supervisor
give up with TooManyRestarts, after stopping everyone else.

    python examples/supervision.py
"""

import os

import trio

import tractor


async def whoami() -> int:
    return os.getpid()


def crash() -> None:
    os._exit(1)  # the worker's process ends on the spot


async def always_crash() -> None:
    crash()


async def main():
    async with tractor.open_supervisor(strategy='one_for_one', max_restarts=3, within=10) as sup:
        worker = await sup.start_actor('worker', enable_modules=[__name__])
        first = await worker.run(whoami)
        try:
            await worker.run(crash)
        except tractor.TransportClosed:
            print('the call in flight when the worker died raised TransportClosed')
        second = await worker.run(whoami)  # waits for the new incarnation
        print(
            f'worker restarted: pid {first} -> {second}, '
            f'restarts: {sup.children["worker"].restarts}'
        )
        await sup.cancel()  # stop every child for good; the block then exits

    try:
        async with tractor.open_supervisor(max_restarts=2, within=10) as sup:
            await sup.start_actor('bystander', enable_modules=[__name__])
            await sup.run_in_actor(always_crash, name='doomed')
            await trio.sleep_forever()  # cancelled when the supervisor gives up
    except tractor.TooManyRestarts as err:
        print(
            f'gave up on {err.child!r} after {err.restarts} restarts '
            f'(last failure: {err.__cause__})'
        )
        print(f'bystander: {sup.children["bystander"].state}')


if __name__ == '__main__':
    trio.run(main)
