"""Entry point of a spawned subactor: ``python -m tractor._child``."""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any, NamedTuple, NoReturn

import trio

from . import _msg, _settings, _state
from ._boxing import pack_error
from ._dial import HANDSHAKE_TIMEOUT, dial, receive_hello, send_hello, spawn_socket_channel
from ._lifetime import open_runtime
from ._plugins import get_plugin_manager, load_plugin_path
from ._proctitle import ROOM_FLAG, actor_title, set_title
from ._runtime import Actor
from ._spawn_trio import CHILD_MODULE
from ._transport import wrap_address
from .log import get_console_log, get_logger

log = get_logger('child')


async def _child_main(
    name: str,
    uuid: str,
    parent: str,
    spawn_token: bytes | None = None,
    parent_fd: int | None = None,
) -> int:
    actor = Actor(name, uuid)
    _state._set_actor(actor)
    get_plugin_manager()
    if parent_fd is not None and spawn_token is not None:
        # the parent connected us before we started: its Hello and our
        # SpawnSpec are already waiting on the socket
        # (moved to the lowest free number, as a socket of our own would
        # get: the fd table does not depend on the number the parent had)
        fd = os.dup(parent_fd)
        os.close(parent_fd)
        chan = spawn_socket_channel(
            socket.socket(fileno=fd), spawn_token, child=True, raddr=wrap_address(parent)
        )
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            await send_hello(chan, actor.aid, ())
            await receive_hello(chan)
    else:
        chan = await dial(parent, actor.aid, spawn_token=spawn_token)
    spec = await chan.recv()
    if not isinstance(spec, _msg.SpawnSpec):
        log.error('expected a SpawnSpec from the parent, got %s', type(spec).__name__)
        return 2
    try:
        _settings.check()
        if spec.loglevel:
            get_console_log(spec.loglevel)
        sys.path[:] = spec.sys_path
        actor._take_spawn_spec(spec, parent_uid=chan.uid)
        # plugins take what their parent side handed down before user code loads
        get_plugin_manager().hook.tractor_spawn_spec_ext_received(actor=actor, ext=spec.ext)
        actor.load_modules()
        binds = [wrap_address(a) for a in spec.bind_addrs]
    except Exception as err:
        await chan.send(pack_error(0, err, actor.uid))
        await chan.aclose()
        return 1
    try:
        async with open_runtime(actor, binds):
            await chan.send(_msg.Ready(accept_addrs=[a.to_wire() for a in actor.listen_addrs]))
            actor._serve_parent(chan)
            await actor.wait_cancelled()
    except Exception as err:
        if actor.parent_channel is None:  # failed before Ready: tell the parent
            try:
                await chan.send(pack_error(0, err, actor.uid))
            except Exception:
                pass
            await chan.aclose()
            return 1
        raise
    return 0


class ChildArgs(NamedTuple):
    """A subactor's command line (what ``tractor._spawn_trio.child_command``
    builds)."""

    name: str
    uuid: str
    parent: str
    #: an inherited pipe carrying the tree's secret (absent: the default one)
    secret_fd: int | None = None
    #: infected asyncio mode: an asyncio loop hosts the trio run as a guest
    asyncio: bool = False
    #: plugins the parent registered in code (tractor.register_plugin)
    plugin: tuple[str, ...] = ()
    #: an inherited socket already connected to the parent (absent: dial
    #: ``parent``)
    parent_fd: int | None = None


USAGE = (
    'usage: python -m tractor._child --name NAME --uuid UUID --parent ADDR '
    '[--secret-fd FD] [--parent-fd FD] [--asyncio] [--plugin PATH]...'
)
_VALUED = {
    '--name': 'name',
    '--uuid': 'uuid',
    '--parent': 'parent',
    '--secret-fd': 'secret_fd',
    '--parent-fd': 'parent_fd',
}
#: the flags whose value is an fd number
_FDS = ('--secret-fd', '--parent-fd')


def parse_args(argv: list[str]) -> ChildArgs:
    """Parse a subactor's command line; exits 2 with the usage and what is
    wrong on a bad one. (By hand, not with argparse: its first use costs a
    forked child about half a millisecond on the spawn's critical path.)"""
    got: dict[str, Any] = {}
    plugins: list[str] = []
    words = iter(argv)
    for word in words:
        flag, eq, inline = word.partition('=')
        if flag == ROOM_FLAG:  # argv room for the process title
            continue
        if word == '--asyncio':
            got['asyncio'] = True
            continue
        if flag != '--plugin' and flag not in _VALUED:
            _usage_error(f'unrecognized argument: {word}')
        value = inline if eq else next(words, None)
        if value is None:
            _usage_error(f'argument {flag}: expected one value')
        if flag == '--plugin':
            plugins.append(value)
        elif flag in _FDS:
            try:
                got[_VALUED[flag]] = int(value)
            except ValueError:
                _usage_error(f'argument {flag}: not a file descriptor number: {value!r}')
        else:
            got[_VALUED[flag]] = value
    missing = [flag for flag, key in _VALUED.items() if flag not in _FDS and key not in got]
    if missing:
        _usage_error(f'the following arguments are required: {", ".join(missing)}')
    return ChildArgs(plugin=tuple(plugins), **got)


def _usage_error(problem: str) -> NoReturn:
    print(f'{USAGE}\ntractor._child: error: {problem}', file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    args = parse_args(argv)
    set_title(actor_title(args.name, args.uuid, CHILD_MODULE, argv))
    for path in args.plugin:
        try:
            load_plugin_path(path)
        except Exception as err:
            print(
                f'tractor: actor {args.name!r} cannot load the plugin {path!r} its '
                f'parent registered: {type(err).__name__}: {err}',
                file=sys.stderr,
                flush=True,
            )
            sys.exit(3)
    spawn_token = None
    if args.secret_fd is not None:
        from . import _secret

        secret, spawn_token = _secret.read_secret_fd(args.secret_fd)
        _secret.set_secret(secret)
    # Ctrl-C goes to the whole foreground process group; the root decides
    # how the tree shuts down, so children leave SIGINT to it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a child shares its parent's stdout/stderr (often one pipe for a whole
    # tree): emit whole lines, as they are printed, so sibling actors' output
    # neither interleaves mid-line nor waits for the process to exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True, write_through=False)  # type: ignore[union-attr]  # see except
        except (AttributeError, ValueError):
            pass
    if args.asyncio:
        # imported only here: asyncio costs a trio actor nothing
        from .to_asyncio import run_as_asyncio_guest

        sys.exit(
            run_as_asyncio_guest(
                _child_main, args.name, args.uuid, args.parent, spawn_token, args.parent_fd
            )
        )
    sys.exit(trio.run(_child_main, args.name, args.uuid, args.parent, spawn_token, args.parent_fd))


if __name__ == '__main__':
    main()
