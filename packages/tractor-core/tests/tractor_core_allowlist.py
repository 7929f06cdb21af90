"""An RPC module for the allowlist tests: what it defines is callable,
what it imports or keeps private is not."""

from os import getcwd  # noqa: F401  (imported: not callable by peers)
from subprocess import run  # noqa: F401


def public() -> str:
    return 'public'


def _private() -> str:
    return 'private'
