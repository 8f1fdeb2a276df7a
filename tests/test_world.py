"""A scenario's world (store, faults, fallback store) is made by one `World.materialise`, which
TLSEnv and reproduction bundles share; the old `TLSEnv.materialise` still works, deprecated."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_tlsenv import PKI, TLSEnv, resolve
from pytest_tlsenv.journal import Journal
from pytest_tlsenv.repro import stage
from pytest_tlsenv.world import World

pytestmark = pytest.mark.nonroot


def _denied(path: Path) -> bool:
    """Whether a fault took ``path`` from this user (given away as root, mode 000 otherwise)."""
    st = os.lstat(path)
    return st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) == 0


def test_a_world_is_a_store_with_its_faults_and_no_servers(tmp_path: Path) -> None:
    pki = PKI(tmp_path / "pki")
    root = tmp_path / "sc"
    root.mkdir()
    world = World(resolve("unreadable-file"), pki=pki, root=root, fault_uid=65533)
    journal = Journal(tmp_path / "journal", fault_uid=65533)
    assert world.applied == []
    assert not list(world.store.root.rglob("*.pem")), "empty until materialised"
    try:
        world.materialise(journal)
        (applied,) = world.applied
        entry = applied.paths[0]
        assert _denied(entry)
        assert journal.roots == [str(root)], "recorded before the fault: a kill is repaired"
    finally:
        world.close()
        journal.discard()
    assert not _denied(entry), "close gives the entry back"


def test_a_healthy_world_needs_no_journal_record(tmp_path: Path) -> None:
    # The negative twin: nothing to give back, so nothing is recorded.
    root = tmp_path / "sc"
    root.mkdir()
    world = World(resolve("good"), pki=PKI(tmp_path / "pki"), root=root, fault_uid=65533)
    journal = Journal(tmp_path / "journal", fault_uid=65533)
    try:
        world.materialise(journal)
        assert world.applied == []
        assert journal.roots == []
    finally:
        world.close()


def test_tlsenv_and_bundles_build_their_store_with_a_world(tmp_path: Path) -> None:
    spec = resolve("unreadable-file")
    env = TLSEnv.build(spec, pki=PKI(tmp_path / "pki"), root=tmp_path / "sc")
    try:
        assert isinstance(env.world, World)
        assert env.store is env.world.store
        assert env.applied is env.world.applied
    finally:
        env.close()
    staged = stage(spec, tmp_path / "stage")
    try:
        assert isinstance(staged.world, World)
        assert [a.fault for a in staged.applied] == ["unreadable-file"]
        assert staged.store_root == staged.world.store.root
    finally:
        staged.close()
    assert not (tmp_path / "stage" / "scenario").exists(), "close removes the staging store"


def test_tlsenv_materialise_is_deprecated_and_still_fills_the_store(tmp_path: Path) -> None:
    env = TLSEnv(resolve("unreadable-file"), pki=PKI(tmp_path / "pki"), root=tmp_path / "sc")
    try:
        with pytest.warns(DeprecationWarning, match=r"TLSEnv\.materialise\(\) is deprecated"):
            env.materialise()
        (applied,) = env.applied
        assert applied is env.world.applied[0], "the same world's faults"
        assert _denied(applied.paths[0])
    finally:
        env.close()
