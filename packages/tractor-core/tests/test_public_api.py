"""The public surface of ``tractor`` is exactly this: renaming, dropping or
leaking a name must fail here first, not in a user's program."""

from __future__ import annotations

import importlib

import pytest

import tractor

EXPECTED_ALL = {
    # runtime
    'Actor',
    'ActorNursery',
    'Channel',
    'Context',
    'MsgStream',
    'Portal',
    'context',
    'current_actor',
    'current_ipc_ctx',
    'is_root_process',
    'open_nursery',
    'open_root_actor',
    'register_plugin',
    'run_daemon',
    'unregister_plugin',
    # runtime state
    'debug_mode',
    'get_runtime_vars',
    # supervision
    'ChildInfo',
    'SupervisedPortal',
    'Supervisor',
    'TooManyRestarts',
    'open_supervisor',
    # debugging
    'pause',
    'pause_from_sync',
    'post_mortem',
    # errors
    'ActorFailure',
    'AuthenticationError',
    'ContextCancelled',
    'MissingDistribution',
    'ModuleNotExposed',
    'MsgTypeError',
    'NoRuntime',
    'NoTransportInstalled',
    'RemoteActorError',
    'StreamOverrun',
    'TractorError',
    'TransportClosed',
    # public submodules
    'log',
    'msg',
    'trionics',
    # provided by tractor-discovery
    'Arbiter',
    'LocalPortal',
    'Registrar',
    'find_actor',
    'get_registry',
    'query_actor',
    'wait_for_actor',
    # provided by tractor-cluster
    'open_actor_cluster',
}

#: names resolved lazily from another distribution -> the module providing them
LAZY = {
    'Arbiter': 'tractor.discovery',
    'LocalPortal': 'tractor.discovery',
    'Registrar': 'tractor.discovery',
    'find_actor': 'tractor.discovery',
    'get_registry': 'tractor.discovery',
    'query_actor': 'tractor.discovery',
    'wait_for_actor': 'tractor.discovery',
    'open_actor_cluster': 'tractor.cluster',
}


def test_exact_exported_names():
    assert len(tractor.__all__) == len(set(tractor.__all__)), 'duplicates in __all__'
    assert set(tractor.__all__) == EXPECTED_ALL


def test_no_private_names_exported():
    private = [n for n in tractor.__all__ if n.startswith('_')]
    assert not private


@pytest.mark.parametrize('name', sorted(EXPECTED_ALL - set(LAZY)))
def test_core_name_resolves(name):
    assert getattr(tractor, name) is not None


@pytest.mark.parametrize('name', sorted(LAZY))
def test_lazy_name_resolves(name):
    """With the whole workspace installed every re-export resolves to the
    providing distribution's own object."""
    modname = LAZY[name]
    assert getattr(tractor, name) is getattr(importlib.import_module(modname), name)


@pytest.mark.parametrize('modname', ['tractor.discovery', 'tractor.cluster', 'tractor.devx'])
def test_public_subpackages_resolve(modname):
    short = modname.rpartition('.')[2]
    assert getattr(tractor, short) is importlib.import_module(modname)


def test_submodule_surfaces():
    assert set(tractor.trionics.__all__) == {
        'BroadcastReceiver',
        'Lagged',
        'broadcast_receiver',
        'collapse_eg',
        'gather_contexts',
        'is_multi_cancelled',
        'maybe_open_context',
        'maybe_open_nursery',
        'maybe_raise_from_masking_exc',
    }
    for name in ('get_logger', 'get_console_log'):
        assert callable(getattr(tractor.log, name))
    assert set(tractor.msg.__all__) == {'MsgTypeError', 'NamespacePath', 'context'}
    assert set(tractor.devx.__all__) == {
        'dump_task_tree',
        'maybe_open_crash_handler',
        'pause',
        'pause_from_sync',
        'post_mortem',
    }
    # the devx names are the debugger's own objects, not copies
    for name in ('pause', 'post_mortem', 'pause_from_sync', 'maybe_open_crash_handler'):
        assert getattr(tractor.devx, name) is getattr(tractor.debug, name)
    for name in tractor.trionics.__all__:
        assert callable(getattr(tractor.trionics, name))
    # the seeds reach these through the `tractor` namespace
    for name in ('mk_maddr', 'parse_maddr'):
        assert callable(getattr(tractor.discovery, name))


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError):
        tractor.no_such_name  # noqa: B018
