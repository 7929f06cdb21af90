"""``python -m tractor._forkserver --listen-fd N --control-fd M``: run a fork
server (see ``tractor._forkserver.server``); its owner, the spawn backend,
starts it with an inherited listener and control connection."""

from __future__ import annotations

import argparse
import gc
import signal
import socket
import sys

from tractor._forkserver.child import preload
from tractor._forkserver.server import ForkServer
from tractor._proctitle import ROOM_FLAG, command_title, set_title


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='tractor._forkserver')
    parser.add_argument('--listen-fd', type=int, required=True)
    parser.add_argument('--control-fd', type=int, required=True)
    # argv room for its children's titles (see tractor._proctitle)
    parser.add_argument(ROOM_FLAG, default='', help=argparse.SUPPRESS)
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)
    # first, before any import could call setproctitle (it sets up once)
    set_title(command_title('tractor: fork server', 'tractor._forkserver', argv))
    # Ctrl-C is the root actor's to handle; the server ends with its owner
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # an ignored SIGCHLD (inherited through exec) would reap children for us
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    listener = socket.socket(fileno=args.listen_fd)
    control = socket.socket(fileno=args.control_fd)
    preload()
    gc.collect()
    gc.freeze()  # children do not copy pages just to scan the warm objects
    return ForkServer(listener, control).run()


if __name__ == '__main__':
    sys.exit(main())
