"""The runtime's own entry-point scan lists what ``importlib.metadata``
lists (it replaces it on the boot path for speed)."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import pytest

from tractor._plugins import ENTRY_POINT_GROUP, installed_entry_points


@pytest.mark.parametrize('group', [ENTRY_POINT_GROUP, 'console_scripts', 'pytest11'])
def test_same_as_importlib_metadata(group):
    want = [(ep.name, ep.value) for ep in entry_points(group=group)]
    assert installed_entry_points(group) == want


def test_sections_comments_and_shadowed_distributions(tmp_path, monkeypatch):
    first, second = tmp_path / 'first', tmp_path / 'second'
    for where, value in ((first, 'mine_mod'), (second, 'shadowed_mod')):
        dist = where / 'Some.Plugin-1.0.dist-info'
        dist.mkdir(parents=True)
        (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: Some.Plugin\nVersion: 1.0\n')
        (dist / 'entry_points.txt').write_text(
            f'# a comment\n[console_scripts]\nx = y:z\n\n[{ENTRY_POINT_GROUP}]\n'
            f'# another comment\nmine = {value}:hooks.obj\n'
        )
    # the same distribution later on the path is shadowed, as importlib says
    monkeypatch.setattr(sys, 'path', [str(first), str(second), *sys.path])
    got = installed_entry_points(ENTRY_POINT_GROUP)
    assert ('mine', 'mine_mod:hooks.obj') in got
    assert ('mine', 'shadowed_mod:hooks.obj') not in got
    assert got == [(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]
