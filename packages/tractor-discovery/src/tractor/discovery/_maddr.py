"""Multiaddr helpers: transport endpoints as structured strings."""

from __future__ import annotations

from typing import Any

from tractor.plugin import Address, wrap_address


def mk_maddr(addr: Any) -> Address:
    """An address object for ``addr`` (a plain tuple such as
    ``('127.0.0.1', 1616)`` or an address); ``str()`` of it is the
    multiaddr text, e.g. ``/ip4/127.0.0.1/tcp/1616`` or ``/unix/<path>``."""
    if isinstance(addr, str):
        raise TypeError(f'mk_maddr() takes an address, not text; use parse_maddr({addr!r})')
    return wrap_address(addr)


def parse_maddr(text: str) -> Address:
    """Parse multiaddr text into an address with ``.proto_key`` and
    ``.unwrap()``; ``ValueError`` names the malformed part."""
    if not isinstance(text, str):
        raise TypeError(f'parse_maddr() takes multiaddr text, got {text!r}')
    return wrap_address(text)
