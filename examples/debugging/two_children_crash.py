"""Two children crash at the same moment: one debugger session opens, the
other child waits for the terminal with its error; after the first session
the second one opens, and both errors reach the root.

To crash "at once" both children first meet at a rendezvous served by the
root (a child already at a prompt cannot answer its sibling: its event loop
stands still during the session).
"""

import trio

import tractor

_arrived: set[str] = set()
_all_here = trio.Event()


async def rendezvous(name: str, expected: int) -> None:
    """(runs in the root) Return once ``expected`` children have called."""
    _arrived.add(name)
    if len(_arrived) >= expected:
        _all_here.set()
    await _all_here.wait()


async def fail(tag: str) -> None:
    await tractor.current_actor().parent_portal.run(rendezvous, name=tag, expected=2)
    raise KeyError(f'{tag} failed')


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True, enable_modules=[__name__]) as an:
        await an.run_in_actor(fail, tag='alpha', name='alpha')
        await an.run_in_actor(fail, tag='beta', name='beta')


if __name__ == '__main__':
    trio.run(main)
