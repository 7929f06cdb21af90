"""Functions the core tests run inside subactors.

They live apart from the test modules so a subactor that enables them
imports only this (not pytest): spawning stays cheap. ``conftest.py`` puts
this directory on ``sys.path``, and subactors inherit the parent's path.

Module-level dicts hold per-process state that a test reads back through a
second RPC (e.g. to see from the child's side that a task was cancelled).
"""

from __future__ import annotations

import logging
import os

import trio

import tractor

#: per-process state, read back with get_state()
STATE: dict[str, object] = {}


def get_state(key: str):
    return STATE.get(key)


# -- identity and addresses -----------------------------------------------


async def parent_socket() -> dict:
    """What this actor's channel to its parent runs over."""
    sock = tractor.current_actor().parent_channel.stream.socket
    return {'family': int(sock.family), 'peer': sock.getpeername()}


async def whoami() -> dict:
    actor = tractor.current_actor()
    return {
        'name': actor.name,
        'uid': list(actor.uid),
        'aid': [actor.aid.name, actor.aid.uuid, actor.aid.pid],
        'pid': os.getpid(),
        'ppid': os.getppid(),
        # the actor that spawned this one (its OS parent is the fork server
        # with start_method='forkserver')
        'parent_pid': parent.channel.aid.pid if (parent := actor.parent_portal) else None,
        'is_root': tractor.is_root_process(),
        'reg_addrs': actor.reg_addrs,
        'start_method': actor.start_method,
    }


async def addresses() -> dict:
    actor = tractor.current_actor()
    return {
        'accept_addrs': actor.accept_addrs,
        'reg_addrs': actor.reg_addrs,
        'all_tuples': all(type(a) is tuple for a in [*actor.accept_addrs, *actor.reg_addrs]),
    }


async def ping() -> str:
    return 'pong'


async def call_back(addr: list) -> str:
    """Dial ``addr`` afresh and call ``ping`` there."""
    chan = await tractor.current_actor().connect(tuple(addr))
    try:
        return await tractor.Portal(chan).run(ping)
    finally:
        await chan.aclose()


def log_level() -> str:
    return logging.getLevelName(logging.getLogger('tractor').getEffectiveLevel())


# -- results and errors ----------------------------------------------------


async def add(x: int, y: int) -> int:
    await trio.sleep(0)
    return x + y


async def add_over_the_callers_channel(x: int) -> int:
    """``add(x, 1)`` run back in the caller, over the channel this call came
    over: a request reaches the caller while it waits for this reply."""
    from tractor._invoke import current_channel

    chan = current_channel.get()
    assert chan is not None
    return await tractor.Portal(chan).run(add, x=x, y=1)


def sync_mul(x: int, y: int) -> int:
    return x * y


async def echo(value):
    return value


def payload_len(value: bytes) -> int:
    return len(value)


def minor_faults() -> int:
    """This process's minor page faults so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


async def nothing() -> None:
    pass


async def raise_value_error(msg: str = 'child failed') -> None:
    raise ValueError(msg)


def sync_raise_key_error() -> None:
    raise KeyError('missing')


class Unprintable(Exception):
    def __str__(self) -> str:
        raise AttributeError('a buggy __str__')


async def raise_unprintable() -> None:
    raise Unprintable()


async def raise_huge(size: int) -> None:
    """An error whose message is ``size`` characters long."""
    raise ValueError('x' * size)


@tractor.context
async def return_after_one(ctx: tractor.Context) -> str:
    """Stream one value, close, return."""
    await ctx.started()
    async with ctx.open_stream() as stream:
        await stream.send('only')
    return 'done'


async def return_unencodable():
    return object()


async def wait_file_then_raise(wait_for: str) -> None:
    """Fail once ``wait_for`` exists (so the test decides when)."""
    while not os.path.exists(wait_for):
        await trio.sleep(0.02)
    raise ValueError('failed on cue')


async def fail_when_cancelled() -> None:
    """Sleep; when cancelled, fail while unwinding (a real second error)."""
    STATE['armed'] = True
    try:
        await trio.sleep(3600)
    finally:
        raise KeyError('failed while being cancelled')


# -- cancellation ------------------------------------------------------------


async def long_sleep(key: str = 'sleep') -> None:
    STATE[key] = 'sleeping'
    try:
        await trio.sleep(3600)
    except trio.Cancelled:
        STATE[key] = 'cancelled'
        raise


async def ignore_cancel() -> None:
    STATE['shielded'] = 'entered'
    with trio.CancelScope(shield=True):
        await trio.sleep(3600)


# -- trees -------------------------------------------------------------------


async def hold_tree() -> None:
    """Spawn a leaf, note its pid, keep the nursery open (a tree's middle)."""
    async with tractor.open_nursery() as an:
        leaf = await an.start_actor('leaf', enable_modules=[__name__])
        STATE['leaf_pid'] = leaf.channel.aid.pid
        await trio.sleep_forever()


async def spawn_grandchildren(n: int) -> dict:
    """Spawn ``n`` grandchildren, one daemon and the rest one-shot, and
    report what each of them says."""
    me = await whoami()
    async with tractor.open_nursery() as an:
        daemon = await an.start_actor('gc-daemon', enable_modules=[__name__])
        oneshots = [await an.run_in_actor(whoami, name=f'gc-{i}') for i in range(n - 1)]
        kids = [await daemon.run(whoami)]
        kids += [await p.wait_for_result() for p in oneshots]
        await daemon.cancel_actor()
    return {'me': me, 'kids': kids}


async def deep(levels: int) -> list[str]:
    """A chain ``levels`` deep below this actor; the names from here down."""
    name = tractor.current_actor().name
    if levels == 0:
        return [name]
    async with tractor.open_nursery() as an:
        portal = await an.run_in_actor(deep, name=f'level-{levels}', levels=levels - 1)
        below = await portal.wait_for_result()
    return [name, *below]


async def spawn_failing_grandchild() -> None:
    async with tractor.open_nursery() as an:
        await an.run_in_actor(raise_value_error, name='leaf', msg='deep')


def die(code: int = 3) -> None:
    """Exit the process on the spot, mid-call."""
    os._exit(code)


# -- side effects a test can check for --------------------------------------


def touch(path: str) -> str:
    """Create ``path``: proof that a request was decoded and run."""
    with open(path, 'a'):
        pass
    return path


async def secret_seen() -> dict:
    """Where this actor's secret is, and is not: its own argv/environment
    as the kernel shows them (``/proc/self``), and a hash of the secret."""
    import hashlib

    from tractor import _secret

    with open('/proc/self/cmdline', 'rb') as f:
        cmdline = f.read()
    with open('/proc/self/environ', 'rb') as f:
        environ = f.read()
    return {
        'pid': os.getpid(),
        'secret_sha': hashlib.sha256(_secret.current_secret()).hexdigest(),
        'cmdline': cmdline.decode(errors='replace'),
        'environ_has_secret_var': any(
            e.startswith(b'TRACTOR_SECRET=') for e in environ.split(b'\0')
        ),
    }


# -- debugging -----------------------------------------------------------------


@tractor.context
async def hold_terminal(ctx: tractor.Context) -> None:
    """Take the tree's terminal lock as a debugger session does, report our
    pid, and keep the lock until cancelled."""
    from tractor.debug._lock import acquire_tty

    hold = await acquire_tty(tractor.current_actor())
    try:
        await ctx.started(os.getpid())
        await trio.sleep_forever()
    finally:
        hold.release()


# -- nursery semantics ---------------------------------------------------------


@tractor.context
async def serve_forever(ctx: tractor.Context) -> None:
    await ctx.started('up')
    await trio.sleep_forever()


async def sibling_asks(name: str) -> str:
    """From inside one child: find a sibling by name and call it."""
    async with tractor.wait_for_actor(name) as portal:
        return await portal.run(ping)


# -- streams under races -------------------------------------------------------


@tractor.context
async def pong_server(ctx: tractor.Context, data: int) -> None:
    """Answer each 'ping' with 'pong' until the caller closes its end."""
    await ctx.started(data + 1)
    async with ctx.open_stream() as stream:
        async for msg in stream:
            assert msg == 'ping'
            await stream.send('pong')


@tractor.context
async def producer(ctx: tractor.Context, count: int) -> int:
    """Send ``count`` values, whether or not anyone still reads them."""
    await ctx.started()
    async with ctx.open_stream() as stream:
        for i in range(count):
            await stream.send(i)
    return count


@tractor.context
async def two_phase_echo(ctx: tractor.Context) -> list:
    """Echo on a stream until the caller closes it, then on a second one."""
    await ctx.started()
    phases = []
    for _ in range(2):
        got = []
        async with ctx.open_stream() as stream:
            async for msg in stream:
                got.append(msg)
                await stream.send(msg)
        phases.append(got)
    return phases


@tractor.context
async def cancel_myself(ctx: tractor.Context) -> None:
    await ctx.started()
    await ctx.cancel()
    await trio.sleep_forever()


# -- the established project's names -------------------------------------------


async def count_up(n: int, fail_at: int | None = None):
    """An async generator for Portal.open_stream_from()."""
    for i in range(n):
        if i == fail_at:
            raise ValueError(f'failed at {i}')
        yield i
    STATE['gen_done'] = True


async def count_forever():
    """Until stopped; records that it was closed."""
    i = 0
    try:
        while True:
            yield i
            i += 1
            await trio.sleep(0)
    finally:
        STATE['gen_closed'] = True


@tractor.context
async def flood_until_overrun(ctx: tractor.Context, n: int) -> dict:
    """Send ``n`` values without waiting for the reader; report how far it
    got before the reader's bound refused more."""
    await ctx.started()
    sent = 0
    async with ctx.open_stream() as stream:
        assert await stream.receive() == 'go'  # the reader's end is open
        try:
            for i in range(n):
                await stream.send(i)
                sent += 1
        except tractor.StreamOverrun:
            return {'sent': sent, 'overrun': True}
        assert await stream.receive() == 'done'  # the reader read it all
    return {'sent': sent, 'overrun': False}


@tractor.context
async def report_ipc_ctx(ctx: tractor.Context) -> list:
    cur = tractor.current_ipc_ctx()
    await ctx.started([cur is ctx, cur.side])
    return [cur is ctx, cur.side, list(cur.chan.uid)]


async def ipc_ctx_in_plain_call() -> str:
    try:
        tractor.current_ipc_ctx()
    except RuntimeError as err:
        return str(err)
    return 'no error'


@tractor.context
async def fan_out(ctx: tractor.Context, n: int) -> None:
    await ctx.started()
    async with ctx.open_stream() as stream:
        assert await stream.receive() == 'go'  # every reader subscribed
        for i in range(n):
            await stream.send(i)


def record(path: str, token: str) -> str:
    """Append ``token`` to the file ``path``: a call that ran leaves a line."""
    with open(path, 'a') as f:
        f.write(token + '\n')
    return token


async def call_via(relay: list, target: list, path: str, tokens: list[str]) -> dict:
    """Call ``record(path, token)`` in the actor at ``target`` for every
    token at once, over one connection that physically goes through
    ``relay`` although it was meant for ``target`` (as an on-path attacker
    between the two would see it). Returns token -> 'ok' or the error's
    type name."""
    from tractor._dial import HANDSHAKE_TIMEOUT, handshake
    from tractor._ipc import Channel
    from tractor._transport import wrap_address

    actor = tractor.current_actor()
    via = wrap_address(tuple(relay))
    stream = await via.transport.connect(via)
    chan = Channel(stream, raddr=wrap_address(tuple(target)), initiator=True)
    await handshake(chan, actor.aid, HANDSHAKE_TIMEOUT, actor.listen_addrs)
    actor._serve_soon(chan)
    portal = tractor.Portal(chan)
    out: dict[str, str] = {}

    async def one(token: str) -> None:
        try:
            out[token] = (
                'ok' if await portal.run(record, path=path, token=token) == token else 'wrong'
            )
        except Exception as err:
            out[token] = type(err).__name__

    try:
        async with trio.open_nursery() as tn:
            for token in tokens:
                tn.start_soon(one, token)
    finally:
        await chan.aclose()
    return out


# -- stuck processes ---------------------------------------------------------


def spin() -> None:
    """Hold the GIL forever: the actor's event loop never runs again."""
    while True:
        pass


def ignore_sigterm() -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)


async def hold_stuck_tree(how: str) -> None:
    """A tree's middle whose leaf gets stuck: ``'spinning'`` (a GIL-holding
    loop), ``'deaf'`` (ignores SIGTERM and its cancel) or ``'stopped'``
    (the test SIGSTOPs it); note the leaf's pid and keep the nursery open."""
    async with tractor.open_nursery() as an:
        leaf = await an.start_actor('leaf', enable_modules=[__name__])
        async with trio.open_nursery() as tn:
            if how == 'spinning':
                tn.start_soon(leaf.run, spin)
            elif how == 'deaf':
                await leaf.run(ignore_sigterm)
                tn.start_soon(leaf.run, ignore_cancel)
            STATE['leaf_pid'] = leaf.channel.aid.pid
            await trio.sleep_forever()


async def keep_terminal() -> None:
    """Take the tree's terminal lock (as a debugger session does) and keep
    it forever; ``STATE['terminal']`` says when it is ours."""
    from tractor.debug._lock import acquire_tty

    hold = await acquire_tty(tractor.current_actor())
    STATE['terminal'] = True
    try:
        await trio.sleep_forever()
    finally:
        hold.release()


# -- the reaper leaves what it did not adopt alone ---------------------------


async def fork_then_spawn_one() -> int:
    """Fork a plain child (no exec: it keeps this actor's title, as a
    ``multiprocessing`` worker would) that waits on a pipe, then spawn and
    cancel one actor, so this actor's reaper sweeps. Returns the fork's pid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    STATE['forked'] = (pid, w)
    async with tractor.open_nursery() as an:
        brief = await an.start_actor('brief')
        await brief.cancel_actor()
    return pid


def release_forked() -> int:
    """End the fork; returns its exit code (-9 had the reaper killed it,
    and a ChildProcessError had it reaped it)."""
    pid, w = STATE.pop('forked')
    os.write(w, b'x')
    os.close(w)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
