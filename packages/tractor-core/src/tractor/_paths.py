"""The per-user runtime directory: where UDS socket files and the auth
cookie live.

``$TRACTOR_RUNTIME_DIR`` if set, else ``$XDG_RUNTIME_DIR/tractor``, else
``/tmp/tractor-<uid>``. It is created mode 0700; an existing one must be a
real directory (not a symlink) owned by this user, and is tightened to 0700
if it is more open. Core owns this so the UDS transport and the cookie agree
on one place.
"""

from __future__ import annotations

import errno
import os
import stat

ENV_RUNTIME_DIR = 'TRACTOR_RUNTIME_DIR'


def runtime_dir_path() -> str:
    """Where the runtime directory is (not created, not checked)."""
    path = os.environ.get(ENV_RUNTIME_DIR)
    if path:
        return path
    xdg = os.environ.get('XDG_RUNTIME_DIR')
    if xdg:
        return os.path.join(xdg, 'tractor')
    return os.path.join('/tmp', f'tractor-{os.getuid()}')


def runtime_dir() -> str:
    """The per-user runtime directory, created mode 0700 and checked.

    Raises ``PermissionError`` when the path is a symlink, not a directory,
    or owned by another user (someone may be squatting it, e.g. in ``/tmp``).
    """
    path = runtime_dir_path()
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        # a missing parent (a custom TRACTOR_RUNTIME_DIR): create it as usual
        os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise PermissionError(
            errno.EPERM, f'tractor runtime dir {path!r} is not a plain directory (a symlink?)'
        )
    if st.st_uid != os.getuid():
        raise PermissionError(
            errno.EPERM,
            f'tractor runtime dir {path!r} belongs to uid {st.st_uid}, not to us '
            f'(uid {os.getuid()}); set TRACTOR_RUNTIME_DIR to a directory of ours',
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path
