"""``python -m tractor._forkserver --listen-fd N --control-fd M``: run a fork
server (see ``tractor._forkserver.server``); its owner, the spawn backend,
starts it with an inherited listener and control connection."""

from __future__ import annotations

import argparse
import gc
import signal
import socket
import sys

from tractor._child import _set_process_name
from tractor._forkserver.child import preload, set_cmdline
from tractor._forkserver.server import ForkServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='tractor._forkserver')
    parser.add_argument('--listen-fd', type=int, required=True)
    parser.add_argument('--control-fd', type=int, required=True)
    parser.add_argument('--title-room', default='', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # keep the reserved room, show it as trailing NULs rather than spaces
    set_cmdline(
        [
            sys.executable,
            '-m',
            'tractor._forkserver',
            '--listen-fd',
            str(args.listen_fd),
            '--control-fd',
            str(args.control_fd),
        ]
    )
    # Ctrl-C is the root actor's to handle; the server ends with its owner
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # an ignored SIGCHLD (inherited through exec) would reap children for us
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    listener = socket.socket(fileno=args.listen_fd)
    control = socket.socket(fileno=args.control_fd)
    preload()
    _set_process_name('forkserver')
    gc.collect()
    gc.freeze()  # children do not copy pages just to scan the warm objects
    return ForkServer(listener, control).run()


if __name__ == '__main__':
    sys.exit(main())
