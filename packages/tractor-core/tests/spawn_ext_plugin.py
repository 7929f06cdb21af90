"""A plugin for ``test_spawn_backends``: every parent hands each child a
record through ``SpawnSpec.ext`` and every child keeps what it received, for
a test to read back (``received``). A child named ``refuse`` fails its boot
in the child-side hook. Registered in code by ``scripts/spawn_ext_root.py``,
so children load it by its import path."""

from __future__ import annotations

import os

from tractor._plugins import hookimpl

KEY = 'spawn-ext-test'
REFUSED = 'the spawn-ext test plugin refuses this child'

_received: dict = {}


@hookimpl
def tractor_spawn_spec_ext(actor, child_uid, start_method) -> dict:
    return {
        KEY: {
            'parent': actor.name,
            'parent_pid': os.getpid(),
            'child': child_uid[0],
            'start_method': start_method,
        }
    }


@hookimpl
def tractor_spawn_spec_ext_received(actor, ext) -> None:
    if actor.name == 'refuse':
        raise RuntimeError(REFUSED)
    _received.update(ours=ext.get(KEY), keys=sorted(ext))


def received() -> dict:
    return dict(_received)
