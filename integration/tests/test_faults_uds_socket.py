"""A UDS listener's socket file deleted under a live actor.

What happens (``tractor_uds.UDSListener``): connections already made keep
working (a socket file is only a name; the connections never used it
again). Nobody can reach the actor by that path until the listener next
looks at its file (within ``TRACTOR_UDS_REBIND_INTERVAL``, 1 s) and binds a
fresh socket at the same path; from then on its registered address works
again, for direct dials and for lookups by name. A lookup that dialed in
between found no file and dropped that address from the registry as stale,
like any dead address. A file that another process put at the path is
never taken over, nor deleted when the actor exits.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest
import trio

import tractor

pytestmark = pytest.mark.slow

BOUND = 30


async def ping() -> str:
    return 'pong'


async def find_and_ping(name: str) -> str:
    async with tractor.find_actor(name) as portal:
        assert portal is not None, f'{name} is not registered'
        return await portal.run(ping)


def inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def uds_kwargs() -> dict:
    reg = (os.environ['TRACTOR_RUNTIME_DIR'], f'registry@{uuid.uuid4().hex[:8]}.sock')
    return {'enable_transports': ['uds'], 'registry_addrs': [reg]}


async def test_deleted_socket_file_is_recreated():
    with trio.fail_after(BOUND):
        async with tractor.open_nursery(**uds_kwargs()) as an:
            victim = await an.start_actor('victim', enable_modules=[__name__])
            addr = victim.channel.raddr.unwrap()
            path = os.path.join(*addr)
            old = inode(path)
            os.unlink(path)
            # the connection we already have is unaffected
            assert await victim.run(ping) == 'pong'
            # the actor notices and listens at the same path again
            while inode(path) is None:
                await trio.sleep(0.05)
            assert inode(path) != old
            chan = await tractor.current_actor().connect(addr)
            try:
                assert chan.uid == victim.channel.uid
                assert await tractor.Portal(chan).run(ping) == 'pong'
            finally:
                await chan.aclose()
            # and an actor that never met it finds it by name
            looker = await an.start_actor('looker', enable_modules=[__name__])
            assert await looker.run(find_and_ping, name='victim') == 'pong'
            await an.cancel()
    assert inode(path) is None  # removed at exit, as usual


async def test_socket_file_taken_over_is_left_alone():
    """Another socket renamed over the actor's path: the actor keeps its
    existing connections, does not fight for the path, and does not delete
    the other socket's file when it exits."""
    with trio.fail_after(BOUND):
        async with tractor.open_nursery(**uds_kwargs()) as an:
            victim = await an.start_actor('victim', enable_modules=[__name__])
            path = os.path.join(*victim.channel.raddr.unwrap())
            squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                tmp = f'{path}.other'
                squatter.bind(tmp)
                squatter.listen(1)
                os.rename(tmp, path)  # atomically replaces the actor's file
                theirs = inode(path)
                assert await victim.run(ping) == 'pong'
                await an.cancel()
                assert inode(path) == theirs
            finally:
                squatter.close()
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass


@pytest.mark.parametrize('kind', ['regular-file', 'symlink', 'directory'])
async def test_bind_replaces_only_a_socket(kind, tmp_path_factory):
    """Binding a UDS address where something other than a socket sits (a
    regular file, a symlink, a directory) refuses with a clear error and
    leaves it alone: only a dead actor's socket file is replaced."""
    from tractor._transport import get_transport, wrap_address

    rundir = os.environ['TRACTOR_RUNTIME_DIR']
    name = f'not-a-socket-{uuid.uuid4().hex[:8]}.sock'
    path = os.path.join(rundir, name)
    target = tmp_path_factory.mktemp('precious') / 'data'
    target.write_text('keep me')
    if kind == 'regular-file':
        with open(path, 'w') as f:
            f.write('keep me')
    elif kind == 'symlink':
        os.symlink(target, path)
    else:
        os.mkdir(path)
    try:
        tpt = get_transport('uds')
        with pytest.raises(OSError, match='is not a unix socket'):
            await tpt.listen(wrap_address((rundir, name)))
        assert os.path.lexists(path)
        if kind == 'regular-file':
            with open(path) as f:
                assert f.read() == 'keep me'
        assert target.read_text() == 'keep me'
    finally:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
