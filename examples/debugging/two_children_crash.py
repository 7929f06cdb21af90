"""Two children crash at the same moment: one debugger session opens, the
other child waits for the terminal with its error; after the first session
the second one opens, and both errors reach the root."""
import trio
import tractor


async def fail(tag: str, sibling: str) -> None:
    # both are up before either fails: crash "at once"
    async with tractor.wait_for_actor(sibling):
        pass
    raise KeyError(f'{tag} failed')


async def main() -> None:
    async with tractor.open_nursery(debug_mode=True) as an:
        await an.run_in_actor(fail, tag='alpha', sibling='beta', name='alpha')
        await an.run_in_actor(fail, tag='beta', sibling='alpha', name='beta')


if __name__ == '__main__':
    trio.run(main)
