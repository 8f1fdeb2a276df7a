"""Nothing is left behind: permissions restored, trees removed, servers stopped."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from pytest_tlsenv import PKI, TLSEnv, resolve

pytestmark = pytest.mark.nonroot

INNER = """
import pytest

@pytest.mark.tlsenv(scenario="unreadable-file")
def test_passes(tlsenv):
    tlsenv.run(["true"])

@pytest.mark.tlsenv(scenario="unreadable-file", placement="shadow")
def test_fails(tlsenv):
    assert False, "on purpose"

def test_two(make_tlsenv):
    make_tlsenv("unreadable-file")
    make_tlsenv("unreadable-file")
"""


def _altered(base: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISFIFO(st.st_mode):
                found.append(f"fifo {p}")
            elif st.st_uid != os.geteuid():
                found.append(f"owner {st.st_uid} {p}")
            elif not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o400 == 0:
                found.append(f"mode {oct(st.st_mode)} {p}")
    return found


def test_session_leaves_no_altered_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(INNER)
    base = pytester.path / "bt"
    result = pytester.runpytest("--basetemp", str(base), "--tlsenv-root-dir=basetemp")
    result.assert_outcomes(passed=2, failed=1)
    assert _altered(base) == []
    assert not [p for p in base.rglob("store") if p.is_dir()], "scenario roots not removed"


def test_keep_keeps_failing_roots_with_permissions_restored(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(INNER)
    base = pytester.path / "bt"
    result = pytester.runpytest(
        "--basetemp", str(base), "--tlsenv-root-dir=basetemp", "--tlsenv-keep"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*tlsenv: kept unreadable-file@shadow at *"])
    kept = [p for p in base.rglob("store") if p.is_dir()]
    assert len(kept) == 1, "only the failing test's root is kept"
    assert _altered(base) == []


def test_close_restores_before_deleting(tmp_path: Path) -> None:
    pki = PKI(tmp_path / "pki")
    env = TLSEnv.build(resolve("unreadable-file"), pki=pki, root=tmp_path / "sc")
    entry = env.applied[0].paths[0]
    assert _altered(tmp_path), "negative twin: before close, the fault is there"
    env.close(keep=True)
    st = os.stat(entry)
    assert st.st_uid == os.geteuid()
    assert st.st_mode & 0o777 == 0o644
    assert _altered(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("tlsenv-origin")]


def test_a_private_dir_removed_by_another_session_between_make_and_check_is_made_again(
    tmp_path: Path,
) -> None:
    # xdist workers share one journal directory, and each removes it when empty at exit:
    # one worker's rmdir can land between another's mkdir and its ownership check.
    from pytest_tlsenv import privdir

    shared = tmp_path / "journal"
    stop = threading.Event()

    def tidy_up() -> None:
        while not stop.is_set():
            try:
                os.rmdir(shared)
            except OSError:
                continue

    other = threading.Thread(target=tidy_up)
    other.start()
    try:
        for _ in range(3000):
            assert privdir.ensure(shared, what="the journal") == shared
    finally:
        stop.set()
        other.join()
