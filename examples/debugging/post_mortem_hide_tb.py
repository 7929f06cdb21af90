"""``post_mortem(hide_tb=...)``: by default the session leaves the frames
of the runtime (tractor, trio) out of the traceback it prints and of the
stack ``where`` walks, so what you see is your code and the code it called;
``--all-frames`` passes ``hide_tb=False`` and shows every frame."""

import sys

import trio

import tractor
from tractor.msg import NamespacePath


async def load(path: str):
    try:
        return NamespacePath(path).load_ref()
    except ModuleNotFoundError:
        await tractor.post_mortem(hide_tb='--all-frames' not in sys.argv)
        return None


async def main() -> None:
    async with tractor.open_root_actor():
        print('loaded:', await load('no_such_module_here:handler'))


if __name__ == '__main__':
    trio.run(main)
