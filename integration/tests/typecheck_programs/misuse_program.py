"""Calls a type checker must refuse: each line marked `# error` is wrong."""

import tractor


async def main() -> None:
    async with tractor.open_nursery(bogus_option=True):  # error
        pass
    async with tractor.find_actor(42):  # error
        pass
    async with tractor.open_actor_cluster(modules='not-a-list', count='4'):  # error
        pass
