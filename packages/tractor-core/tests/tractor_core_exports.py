"""An RPC module with an explicit export list: exactly those names are
callable, an imported one and a private one included."""

from os import getpid  # noqa: F401

__tractor_exports__ = ('getpid', '_helper')


def _helper() -> str:
    return 'helper'


def unlisted() -> str:
    return 'unlisted'
