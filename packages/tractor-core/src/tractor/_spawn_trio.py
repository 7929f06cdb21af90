"""The ``'trio'`` spawn backend: a fresh interpreter running ``tractor._child``."""
from __future__ import annotations

import sys

import trio

from ._plugins import hookimpl


async def spawn_trio(*, name: str, uuid: str, parent_addr: str) -> trio.Process:
    cmd = [
        sys.executable, '-m', 'tractor._child',
        '--name', name, '--uuid', uuid, '--parent', parent_addr,
    ]
    return await trio.lowlevel.open_process(cmd)


@hookimpl
def tractor_spawn_methods() -> dict:
    return {'trio': spawn_trio}
