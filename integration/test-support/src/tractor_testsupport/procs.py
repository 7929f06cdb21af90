"""Finding the processes a test started, through ``/proc`` (Linux)."""

from __future__ import annotations

import os


def children_of(pid: int | str = 'self') -> set[int]:
    """Direct children of ``pid`` (default: this process)."""
    pids: set[int] = set()
    try:
        tids = os.listdir(f'/proc/{pid}/task')
    except OSError:
        return pids
    for tid in tids:
        try:
            with open(f'/proc/{pid}/task/{tid}/children') as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def descendants(pid: int | str = 'self') -> set[int]:
    """Every process below ``pid``: children, theirs, and so on."""
    out: set[int] = set()
    todo = list(children_of(pid))
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(children_of(p))
    return out


def cmdline(pid: int) -> bytes:
    """The raw command line of ``pid`` (``b''`` once it is gone)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read()
    except OSError:
        return b''


def pid_alive(pid: int | str) -> bool:
    """Whether ``pid`` is a running process (a zombie has exited: it only
    waits for its parent to reap it)."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            state = f.read().rsplit(b')', 1)[1].split()[0]
    except OSError:
        return False
    return state != b'Z'


def pids_with_env(name: str, value: str) -> list[int]:
    """Live (not zombie) processes other than this one whose environment
    has ``name=value``: the processes a test marked with a token."""
    needle = f'{name}={value}'.encode()
    me = os.getpid()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f'/proc/{entry}/environ', 'rb') as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b'\0') and pid_alive(entry):
            found.append(int(entry))
    return found
