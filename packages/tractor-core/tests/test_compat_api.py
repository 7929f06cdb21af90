"""Names users of the established project reach for (issue 20): runtime
helpers, ``tractor.devx``, ``tractor.msg``, bind addresses, the registry
keyword, address attributes and the logging adapter.

Behaviour that crosses actors runs across real processes: subactors, and a
``run_daemon()`` program for the registrar another program joins.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

import tractor
import tractor_compat_testfns as fns
from tractor import MsgTypeError, RemoteActorError
from tractor.msg import NamespacePath

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / 'scripts'

TIMEOUT = 45


def fresh_addr(tpt_proto: str, reg_addr: tuple) -> tuple:
    """An unused address of ``tpt_proto`` beside ``reg_addr``."""
    if tpt_proto == 'tcp':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return ('127.0.0.1', s.getsockname()[1])
    return (reg_addr[0], f'mine@{uuid.uuid4().hex[:8]}.sock')


async def wait_accepting(tpt_proto: str, addr: tuple) -> None:
    """Wait (the caller bounds it) until something accepts at ``addr``."""
    while True:
        try:
            if tpt_proto == 'tcp':
                stream = await trio.open_tcp_stream(*addr)
            else:
                stream = await trio.open_unix_socket(os.path.join(*addr))
        except OSError:
            await trio.sleep(0.05)
            continue
        await stream.aclose()
        return


# -- logging -------------------------------------------------------------------


def test_log_levels_carry_the_known_numbers():
    assert (
        tractor.log.TRANSPORT,
        tractor.log.RUNTIME,
        tractor.log.DEVX,
        tractor.log.CANCEL,
        tractor.log.PDB,
    ) == (5, 15, 17, 22, 500)
    for name, num in [
        ('TRANSPORT', 5),
        ('RUNTIME', 15),
        ('DEVX', 17),
        ('CANCEL', 22),
        ('PDB', 500),
    ]:
        assert logging.getLevelName(num) == name
        assert tractor.log.level_from(name.lower()) == num


def test_get_logger_adapter(caplog):
    log = tractor.log.get_logger('compat.adapter')
    assert isinstance(log, logging.LoggerAdapter)
    assert isinstance(log.logger, logging.Logger)
    assert log.name == log.logger.name == 'tractor.compat.adapter'
    assert tractor.log.get_logger('tractor.compat.adapter') is log
    assert tractor.log.get_logger().name == 'tractor'
    assert tractor.log.get_logger('data.feed', pkg_name='piker').name == 'piker.data.feed'
    assert tractor.log.get_logger('piker.data', pkg_name='piker').name == 'piker.data'
    with pytest.raises(ValueError, match='pkg_name'):
        tractor.log.get_logger('x', pkg_name='')

    caplog.set_level(1, logger=log.name)
    for method in ('transport', 'runtime', 'devx', 'cancel', 'pdb', 'debug', 'info', 'warning'):
        getattr(log, method)('%s line %d', method, 7)
    got = [(r.levelname, r.getMessage(), r.filename) for r in caplog.records if r.name == log.name]
    assert [g[:2] for g in got] == [
        ('TRANSPORT', 'transport line 7'),
        ('RUNTIME', 'runtime line 7'),
        ('DEVX', 'devx line 7'),
        ('CANCEL', 'cancel line 7'),
        ('PDB', 'pdb line 7'),
        ('DEBUG', 'debug line 7'),
        ('INFO', 'info line 7'),
        ('WARNING', 'warning line 7'),
    ]
    # records name the caller's file, not the adapter's
    assert {g[2] for g in got} == {os.path.basename(__file__)}


def test_disabled_level_formats_nothing(caplog):
    log = tractor.log.get_logger('compat.quiet')
    caplog.set_level(logging.WARNING, logger=log.name)

    class Counting:
        calls = 0

        def __str__(self) -> str:
            Counting.calls += 1
            return 'counted'

    arg = Counting()
    for method in ('transport', 'runtime', 'devx', 'cancel', 'debug', 'info'):
        getattr(log, method)('%s', arg)
    assert Counting.calls == 0
    assert not [r for r in caplog.records if r.name == log.name]
    log.pdb('%s', arg)  # PDB is above WARNING: shown (formatted per handler)
    assert Counting.calls >= 1


# -- runtime helpers -----------------------------------------------------------


async def test_runtime_vars_and_debug_mode(runtime_kwargs, reg_addr):
    assert tractor.debug_mode() is False
    assert tractor.get_runtime_vars()['_is_root'] is False
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            me = tractor.current_actor()
            rv = tractor.get_runtime_vars()
            assert rv['_is_root'] is True and rv['_debug_mode'] is False
            assert rv['_root_mailbox'] == me.accept_addrs[0]
            assert rv['_registry_addrs'] == [reg_addr]
            assert rv['_enable_tpts'] == runtime_kwargs['enable_transports']
            rv['_is_root'] = False  # a snapshot: the runtime is not changed
            assert tractor.get_runtime_vars()['_is_root'] is True

            plain = await an.start_actor('plain', enable_modules=[fns.__name__])
            debugging = await an.start_actor(
                'debugging', enable_modules=[fns.__name__], debug_mode=True
            )
            for portal, debug in ((plain, False), (debugging, True)):
                child = await portal.run(fns.runtime_vars)
                assert child['_is_root'] is False
                assert child['debug_mode()'] is debug and child['_debug_mode'] is debug
                assert child['use_greenback'] is debug
                assert tuple(child['_root_mailbox']) == me.accept_addrs[0]
                assert [tuple(a) for a in child['_registry_addrs']] == [reg_addr]
            await an.cancel()
    assert tractor.debug_mode() is False


async def test_debug_mode_in_root(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_root_actor(debug_mode=True, **runtime_kwargs):
            assert tractor.debug_mode() is True
            assert tractor.get_runtime_vars()['_debug_mode'] is True


def test_run_daemon_rejects_bad_modules():
    with pytest.raises(TypeError, match='list of module names'):
        tractor.run_daemon('just_a_string')
    with pytest.raises(TypeError, match='list of module names'):
        tractor.run_daemon(None)


@pytest.mark.slow
async def test_run_daemon_serves_joiners(tpt_proto, reg_addr, tmp_path):
    """A ``run_daemon()`` program becomes the registrar and serves its
    modules; another program joins it (binding where ``tpt_bind_addrs``
    says), calls it, finds itself registered there at that address, reaches
    the registrar with ``get_registry(addr=...)``; Ctrl-C ends the daemon."""
    own = fresh_addr(tpt_proto, reg_addr)
    errfile = tmp_path / 'daemon.stderr'
    with trio.fail_after(TIMEOUT), open(errfile, 'wb') as errf:
        async with trio.open_nursery() as tn:
            proc = await tn.start(
                partial(
                    trio.run_process,
                    [sys.executable, str(SCRIPTS / 'daemon.py'), tpt_proto, json.dumps(reg_addr)],
                    stderr=errf,
                    check=False,
                )
            )
            try:
                await wait_accepting(tpt_proto, reg_addr)
                async with tractor.open_root_actor(
                    name='joiner',
                    enable_transports=[tpt_proto],
                    registry_addrs=[reg_addr],
                    tpt_bind_addrs=[own],
                ) as me:
                    assert not me.is_registrar
                    assert me.accept_addrs == [own]
                    async with tractor.find_actor('daemon') as portal:
                        assert portal is not None
                        assert await portal.run(fns.double, x=21) == 42
                        nsp = NamespacePath.from_ref(fns.double)
                        assert await portal.run_from_ns(*nsp.to_tuple(), x=4) == 8
                        # the text form crosses as a str and loads there
                        assert await portal.run(fns.call_path, path=str(nsp), x=5) == 10
                    async with tractor.query_actor('joiner') as (addr, _):
                        assert tuple(addr) == own
                    async with tractor.get_registry(addr=reg_addr) as reg:
                        table = await reg.run_from_ns('self', 'get_registry')
                        names = {uid[0] for uid in table}
                        assert {'daemon', 'joiner'} <= names
                    with pytest.raises(TypeError, match='not both'):
                        async with tractor.get_registry(reg_addr, addr=reg_addr):
                            pass
                proc.send_signal(signal.SIGINT)
                await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
    stderr = errfile.read_text()
    assert proc.returncode != 0, stderr
    assert 'KeyboardInterrupt' in stderr, stderr[-3000:]


# -- bind addresses ----------------------------------------------------------


async def test_tpt_bind_addrs_of_a_registrar(tpt_proto, reg_addr):
    """A root that becomes the registrar listens on ``tpt_bind_addrs`` and,
    still, on the registry addresses (the tree finds it there)."""
    own = fresh_addr(tpt_proto, reg_addr)
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(
            enable_transports=[tpt_proto], registry_addrs=[reg_addr], tpt_bind_addrs=[own]
        ) as an:
            me = tractor.current_actor()
            assert me.is_registrar
            assert set(me.accept_addrs) == {own, reg_addr}
            portal = await an.start_actor('child', enable_modules=[fns.__name__])
            child = await portal.run(fns.runtime_vars)
            assert tuple(child['_root_mailbox']) in {own, reg_addr}
            async with tractor.get_registry(addr=reg_addr) as reg:
                assert isinstance(reg, tractor.LocalPortal)
            await an.cancel()


async def test_tpt_bind_addrs_bad_input(runtime_kwargs, reg_addr):
    with pytest.raises(TypeError, match='tpt_bind_addrs'):
        async with tractor.open_root_actor(tpt_bind_addrs=('127.0.0.1', 0), **runtime_kwargs):
            pass
    other = 'uds' if runtime_kwargs['enable_transports'] == ['tcp'] else 'tcp'
    with pytest.raises(ValueError, match='not among enable_transports'):
        async with tractor.open_root_actor(
            tpt_bind_addrs=[
                fresh_addr(other, (reg_addr[0], 'x.sock') if other == 'uds' else reg_addr)
            ],
            **runtime_kwargs,
        ):
            pass


# -- address attributes ------------------------------------------------------


async def test_address_attributes(runtime_kwargs, tpt_proto):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('peer', enable_modules=[fns.__name__])
            mine = tractor.current_actor().listen_addrs[0]
            for addr in (mine, portal.channel.raddr):
                assert addr.proto_key == tpt_proto
                if tpt_proto == 'tcp':
                    assert addr.unwrap() == (addr.host, addr.port)
                else:
                    assert addr.unwrap() == (str(addr.filedir), addr.filename)
                    assert addr.sockpath == addr.filedir / addr.filename
                    assert addr.bindspace == addr.filedir
            if tpt_proto == 'uds':
                assert mine.sockpath.is_socket()
            await an.cancel()


# -- messages ----------------------------------------------------------------


def test_namespace_path():
    nsp = NamespacePath.from_ref(fns.double)
    assert isinstance(nsp, str)
    assert nsp == 'tractor_compat_testfns:double'
    assert nsp.to_tuple() == ('tractor_compat_testfns', 'double')
    assert nsp.load_ref() is fns.double
    assert NamespacePath('os.path:join').load_ref() is os.path.join
    assert NamespacePath.from_ref(NamespacePath.from_ref) == 'tractor.msg:NamespacePath.from_ref'
    assert NamespacePath('tractor.msg:NamespacePath.to_tuple').load_ref() is NamespacePath.to_tuple
    for bad in ('no_colon', 'a:', ':b', 'a:b:c', 'a b:c', 3):
        with pytest.raises(ValueError, match='NamespacePath'):
            NamespacePath(bad)
    with pytest.raises(AttributeError, match='no_such'):
        NamespacePath('os.path:no_such').load_ref()
    with pytest.raises(ModuleNotFoundError):
        NamespacePath('no_such_module_here:x').load_ref()

    def local() -> None: ...

    with pytest.raises(ValueError, match='local'):
        NamespacePath.from_ref(local).load_ref()
    with pytest.raises(TypeError, match='function or class'):
        NamespacePath.from_ref(42)


async def test_pld_spec_refused_by_the_sender(runtime_kwargs):
    """With a ``pld_spec``, a payload of another type raises ``MsgTypeError``
    in the *sender*, and nothing is sent: on the caller's stream, on the
    callee's ``started()`` and stream, and for the callee's return value."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('typed', enable_modules=[fns.__name__])

            # the caller's stream: refused here, the stream goes on
            async with portal.open_context(fns.int_ctx, start=1, ret=5) as (ctx, first):
                assert first == 1
                async with ctx.open_stream() as stream:
                    with pytest.raises(MsgTypeError, match='pld_spec') as info:
                        await stream.send('two')
                    assert isinstance(info.value, TypeError)
                    assert not info.value.unencodable
                    await stream.send(3)
                    assert await stream.receive() == 6
            assert await ctx.wait_for_result() == 5

            # the callee's started() and stream send: refused in the callee,
            # which reports it (the caller only ever receives ints)
            async with portal.open_context(fns.int_ctx, start='one') as (ctx, first):
                assert first == -1
                async with ctx.open_stream() as stream:
                    assert await stream.receive() == -2
                    await stream.send(4)
                    assert await stream.receive() == 8

            # the callee's return value: its MsgTypeError, boxed
            with pytest.raises(RemoteActorError) as info:
                async with portal.open_context(fns.int_ctx, ret='five') as (ctx, _):
                    async with ctx.open_stream():
                        pass
            assert info.value.boxed_type is MsgTypeError
            assert 'pld_spec' in str(info.value)
            await an.cancel()


async def test_pld_spec_still_checked_by_the_receiver(runtime_kwargs):
    """A sender that skipped the check (here: a caller whose context lost
    its spec) still cannot hand the receiver a wrong type."""
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('typed', enable_modules=[fns.__name__])
            with pytest.raises(RemoteActorError) as info:
                async with portal.open_context(fns.int_ctx) as (ctx, _):
                    ctx._pld_dec = None  # as a peer without the check would send
                    async with ctx.open_stream() as stream:
                        await stream.send('two')
                        await trio.sleep_forever()
            assert info.value.boxed_type is MsgTypeError
            await an.cancel()


async def test_started_unencodable_reaches_caller_as_type_error(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(**runtime_kwargs) as an:
            portal = await an.start_actor('callee', enable_modules=[fns.__name__])
            with pytest.raises(RemoteActorError) as info:
                async with portal.open_context(fns.started_unencodable):
                    pytest.fail('must not open')
            assert info.value.boxed_type is TypeError
            assert 'object' in str(info.value)
            assert 'MsgTypeError' in info.value.tb_str  # what the callee raised
            await an.cancel()


# -- devx ----------------------------------------------------------------------


def test_crash_handler_without_a_terminal():
    """No terminal on stdin (the suite's stdin is /dev/null): the error
    propagates unchanged, and ``.value`` holds it."""
    with pytest.raises(ZeroDivisionError):
        with tractor.devx.maybe_open_crash_handler(pdb=True) as handler:
            1 / 0  # noqa: B018 (the division raises)
    assert isinstance(handler.value, ZeroDivisionError)
    with tractor.devx.maybe_open_crash_handler(pdb=True) as handler:
        pass
    assert handler.value is None
    with pytest.raises(TypeError, match='pdb takes'):
        tractor.devx.maybe_open_crash_handler(pdb='yes')


async def test_crash_handler_off_lets_errors_through(runtime_kwargs):
    with trio.fail_after(TIMEOUT):
        async with tractor.open_root_actor(**runtime_kwargs):
            with pytest.raises(KeyError):
                async with tractor.devx.maybe_open_crash_handler() as handler:
                    {}['missing']
            assert isinstance(handler.value, KeyError)
            # cancellation is not a crash, whatever pdb says
            with trio.move_on_after(0):
                async with tractor.devx.maybe_open_crash_handler(pdb=True) as handler:
                    await trio.sleep_forever()
            assert isinstance(handler.value, trio.Cancelled)


async def test_stack_dump_on_sigusr1(runtime_kwargs, capfd):
    """``enable_stack_on_sig=True``: on SIGUSR1 the root writes its task
    tree to stderr and passes the signal down, so its child (which inherits
    the option) writes its own; each shows where its tasks are parked. A
    child signalled directly dumps only itself."""
    err = []

    async def wait_for(*texts: str) -> str:
        while True:
            err.append(capfd.readouterr().err)
            text = ''.join(err)
            if all(t in text for t in texts):
                return text
            await trio.sleep(0.05)

    async def parked_in_the_root() -> None:
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with tractor.open_nursery(enable_stack_on_sig=True, **runtime_kwargs) as an:
            portal = await an.start_actor('stacky', enable_modules=[fns.__name__])
            async with trio.open_nursery() as tn:
                tn.start_soon(parked_in_the_root, name='parked-task')
                async with portal.open_context(fns.park) as (ctx, first):
                    assert first == 'stacky'
                    os.kill(os.getpid(), signal.SIGUSR1)
                    text = await wait_for(
                        "task tree of actor 'root'",
                        'parked_in_the_root',
                        "task tree of actor 'stacky'",
                        'park_here_for_the_stack_dump',
                    )
                    assert "task 'parked-task'" in text
                    err.clear()
                    os.kill(portal.channel.aid.pid, signal.SIGUSR1)
                    text = await wait_for(
                        "task tree of actor 'stacky'", 'park_here_for_the_stack_dump'
                    )
                    assert "actor 'root'" not in text
                    await ctx.cancel()
                tn.cancel_scope.cancel()
            await an.cancel()


async def test_dump_task_tree_text():
    async def leaf_marker() -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as tn:
        tn.start_soon(leaf_marker, name='leaf')
        await trio.testing.wait_all_tasks_blocked()
        text = tractor.devx.dump_task_tree('HEADER')
        tn.cancel_scope.cancel()
    assert text.startswith('HEADER\n')
    assert "task 'leaf'" in text and 'in leaf_marker' in text
    assert 'test_dump_task_tree_text' in text  # this task's own frame


def test_no_stack_dump_by_default(tpt_proto, reg_addr):
    """Without the option SIGUSR1 keeps its default action (nothing is
    installed), checked in a fresh interpreter."""
    code = (
        'import signal, trio, tractor, json, sys\n'
        'async def main():\n'
        '    async with tractor.open_root_actor(enable_transports=[sys.argv[1]],\n'
        '            registry_addrs=[tuple(json.loads(sys.argv[2]))]):\n'
        '        print(signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL)\n'
        '    async with tractor.open_root_actor(enable_transports=[sys.argv[1]],\n'
        '            registry_addrs=[tuple(json.loads(sys.argv[2]))], enable_stack_on_sig=True):\n'
        '        print(signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL)\n'
        '    print(signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL)\n'
        'trio.run(main)\n'
    )
    proc = subprocess.run(
        [sys.executable, '-c', code, tpt_proto, json.dumps(reg_addr)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['True', 'False', 'True']
