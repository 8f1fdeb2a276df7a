"""Where scenario roots live, and that they never pile up: a tmpfs by default, each root gone
at its test's teardown, a full tmpfs falls back to disk with one summary line, and a session
killed with roots on a tmpfs is repaired by the next one."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from leakcheck import altered_files

pytestmark = pytest.mark.nonroot
pytest_plugins = ["pytester"]

FALLBACK_LINE = "tlsenv: scenario roots went to disk (pytest's basetemp) instead of a tmpfs*"


def _dev_shm_is_tmpfs() -> bool:
    """Read independently of the code under test: /dev/shm's own mount entry."""
    with open("/proc/self/mounts") as f:
        return any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in f)


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A private directory on a tmpfs (/dev/shm), or a skip where there is none."""
    if not (os.path.isdir("/dev/shm") and _dev_shm_is_tmpfs()):
        pytest.skip("no tmpfs at /dev/shm on this machine")
    path = Path(tempfile.mkdtemp(prefix="tlsenv-test-roots-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _roots(directory: Path) -> list[Path]:
    """Scenario roots under a root dir: ``<dir>/session-*/tlsenv<N>``."""
    with contextlib.suppress(OSError):
        return [p for p in directory.glob("*/tlsenv*") if p.is_dir()]
    return []


MANY = """
import pytest

@pytest.mark.tlsenv(scenario="unreadable-file")
@pytest.mark.parametrize("i", range({n}))
def test_fault(tlsenv, i):
    assert tlsenv.applied
"""


def test_roots_on_disk_stay_bounded_under_xdist(pytester: pytest.Pytester, shm_dir: Path) -> None:
    pytester.makepyfile(test_many=MANY.format(n=400))
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append(len(_roots(shm_dir)))
            done.wait(0.002)

    sampler = threading.Thread(target=sample, name="roots-sampler")
    sampler.start()
    try:
        result = pytester.runpytest_subprocess(
            "-n", "2", "-p", "no:randomly", f"--tlsenv-root-dir={shm_dir}"
        )
    finally:
        done.set()
        sampler.join()
    result.assert_outcomes(passed=400)
    assert max(seen) > 0, "the sampler never saw a root: it measured nothing"
    # Two workers, one environment open per test: renamed-away or session-long roots
    # would count in the hundreds.
    assert max(seen) <= 4, f"up to {max(seen)} roots on disk at once"
    assert _roots(shm_dir) == []
    assert list(shm_dir.iterdir()) == [], "the session directories were not removed"


KEEP = """
import pytest

@pytest.mark.tlsenv(scenario="unreadable-file")
@pytest.mark.parametrize("i", range(3))
def test_fault(tlsenv, i):
    assert i != 1, "on purpose"
"""


def test_keep_leaves_only_the_failing_root(pytester: pytest.Pytester, shm_dir: Path) -> None:
    pytester.makepyfile(test_keep=KEEP)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", f"--tlsenv-root-dir={shm_dir}", "--tlsenv-keep"
    )
    result.assert_outcomes(passed=2, failed=1)
    kept = _roots(shm_dir)
    assert len(kept) == 1, kept
    result.stdout.fnmatch_lines([f"*tlsenv: kept unreadable-file at {kept[0]}"])
    assert altered_files(shm_dir) == [], "the kept root has its permissions restored"


KILLED = """
import os, signal, pytest

@pytest.mark.tlsenv(faults=["unreadable-file", "unreadable-dir", "fifo"])
def test_killed(tlsenv):
    os.kill(os.getpid(), signal.SIGKILL)
"""

LATER = """
def test_later(tlsenv):
    pass
"""


def test_killed_session_on_tmpfs_is_repaired_by_the_next(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shm_dir: Path
) -> None:
    monkeypatch.setenv("TLSENV_JOURNAL_DIR", str(tmp_path / "journal"))
    pytester.makepyfile(test_killed=KILLED)
    killed = pytester.runpytest_subprocess(f"--tlsenv-root-dir={shm_dir}", "test_killed.py")
    assert killed.ret != 0
    # Negative twin: SIGKILL left the faults (a FIFO, fault-owned or mode-000 entries) there.
    left = altered_files(shm_dir)
    assert any(s.startswith("FIFO ") for s in left), left
    assert len([s for s in left if not s.startswith("FIFO ")]) >= 2, left
    assert _roots(shm_dir)
    pytester.makepyfile(test_later=LATER)
    # The next session keeps its roots elsewhere: recovery follows the journal, not a place.
    later = pytester.runpytest_subprocess("--tlsenv-root-dir=basetemp", "test_later.py")
    later.assert_outcomes(passed=1)
    assert altered_files(shm_dir) == []
    assert list(shm_dir.iterdir()) == []
    assert not (tmp_path / "journal").exists()


# -- a small tmpfs: roots go to disk, with one line in the summary ----------------------------

WHERE = """
import os
from pathlib import Path
import pytest

@pytest.mark.tlsenv(scenario="unreadable-file")
def test_where(tlsenv):
    assert tlsenv.root.is_relative_to(Path(os.environ["ROOTS_EXPECTED_UNDER"])), tlsenv.root

@pytest.mark.tlsenv(extra_cas=int(os.environ.get("ROOTS_EXTRA_CAS", "0")))
def test_big_store(tlsenv):
    assert tlsenv.store.cert_dir is not None
"""

# Runs the inner pytest in a private mount namespace (a user namespace too, as non-root)
# with a fresh tmpfs mounted at argv[1] with options argv[2]. Mounting needs a capability
# only until the exec; the inner session runs with this process's uid.
MOUNTER = textwrap.dedent(
    """
    import ctypes, os, sys
    CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
    MS_REC, MS_PRIVATE = 0x4000, 1 << 18
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS if uid == 0 else CLONE_NEWNS | CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        sys.exit(f"NAMESPACES-UNAVAILABLE unshare: {os.strerror(ctypes.get_errno())}")
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        sys.exit(f"NAMESPACES-UNAVAILABLE private: {os.strerror(ctypes.get_errno())}")
    target, options = sys.argv[1].encode(), sys.argv[2].encode()
    if libc.mount(b"tlsenv-test", target, b"tmpfs", 0, options) != 0:
        sys.exit(f"NAMESPACES-UNAVAILABLE mount: {os.strerror(ctypes.get_errno())}")
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *sys.argv[3:]])
    """
)


def _in_small_tmpfs(
    pytester: pytest.Pytester, options: str, expected_under: str, extra_cas: int = 0
) -> subprocess.CompletedProcess[str]:
    pytester.makepyfile(test_where=WHERE)
    mnt = pytester.path / "mnt"
    mnt.mkdir(mode=0o700)
    env = {
        **os.environ,
        "ROOTS_EXPECTED_UNDER": expected_under.format(mnt=mnt, bt=pytester.path / "bt"),
        "ROOTS_EXTRA_CAS": str(extra_cas),
    }
    argv = [sys.executable, "-c", MOUNTER, str(mnt), options]
    argv += ["-p", "no:randomly", "-p", "no:cacheprovider", "--basetemp", str(pytester.path / "bt")]
    argv += [f"--tlsenv-root-dir={mnt}", "test_where.py"]
    proc = subprocess.run(
        argv, cwd=pytester.path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if "NAMESPACES-UNAVAILABLE" in proc.stderr:
        pytest.skip(f"private mount namespaces are unavailable here: {proc.stderr.strip()}")
    return proc


def _fallback_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("tlsenv: scenario roots went")]


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no libc to call unshare")
def test_small_tmpfs_sends_roots_to_disk_with_one_line(pytester: pytest.Pytester) -> None:
    proc = _in_small_tmpfs(pytester, "size=1m,mode=0700", "{bt}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = _fallback_lines(proc.stdout)
    assert len(lines) == 1, proc.stdout[-3000:]
    assert "KiB and" in lines[0], lines


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no libc to call unshare")
def test_ample_tmpfs_holds_the_roots_and_says_nothing(pytester: pytest.Pytester) -> None:
    proc = _in_small_tmpfs(pytester, "size=64m,mode=0700", "{mnt}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _fallback_lines(proc.stdout) == []


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no libc to call unshare")
def test_tmpfs_filling_up_mid_session_moves_to_disk(pytester: pytest.Pytester) -> None:
    # Enough inodes for statvfs and the first test, not for a store of 3,000 CAs (three inodes
    # each): ENOSPC while materialising, and that store is built on disk instead.
    proc = _in_small_tmpfs(pytester, "size=64m,nr_inodes=5000,mode=0700", "{mnt}", extra_cas=3000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = _fallback_lines(proc.stdout)
    assert len(lines) == 1, proc.stdout[-3000:]
    assert "No space left on device" in lines[0], lines


# -- the choice itself ------------------------------------------------------------------------


def test_auto_never_uses_a_planted_shared_dir(
    monkeypatch: pytest.MonkeyPatch, shm_dir: Path, tmp_path: Path
) -> None:
    """Someone else's pytest-tlsenv-<uid> in the shared tmpfs (here a symlink, standing for
    a planted one) is refused, and the roots go to the basetemp, saying why."""
    from pytest_tlsenv import rootdir
    from pytest_tlsenv.rootdir import choose

    monkeypatch.setattr(rootdir, "SHARED_TMPFS", shm_dir)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    (shm_dir / f"pytest-tlsenv-{os.geteuid()}").symlink_to(tmp_path)
    location = choose("auto")
    assert location.base is None
    assert location.kind == "basetemp"
    assert location.note is not None
    assert "a symlink" in location.note
    assert list(tmp_path.iterdir()) == [], "nothing was made through the symlink"


def test_auto_uses_the_shared_tmpfs_safely(monkeypatch: pytest.MonkeyPatch, shm_dir: Path) -> None:
    from pytest_tlsenv import rootdir
    from pytest_tlsenv.rootdir import choose

    # Negative twin of the planted directory: made by us, it is used.
    monkeypatch.setattr(rootdir, "SHARED_TMPFS", shm_dir)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    location = choose("auto")
    assert location.base is not None
    assert location.kind == "tmpfs"
    assert location.note is None
    own = location.base.parent
    assert own == shm_dir / f"pytest-tlsenv-{os.geteuid()}"
    st = os.lstat(own)
    assert st.st_uid == os.geteuid()
    assert st.st_mode & 0o777 == 0o700
    assert os.lstat(location.base).st_mode & 0o777 == 0o700


def test_basetemp_setting_keeps_the_old_place() -> None:
    from pytest_tlsenv.rootdir import choose

    location = choose("basetemp")
    assert (location.base, location.kind, location.note) == (None, "basetemp", None)


# -- each store owns its files -----------------------------------------------------------------


def test_a_store_edited_in_place_leaves_the_others_alone(make_tlsenv, tlsenv_pki) -> None:  # type: ignore[no-untyped-def]
    # Two stores of one session, one edited in place the way a test takes the CA out of its
    # store: the other keeps the trusted CA and still connects. (Hard links between the
    # healthy stores of a session carried such an edit into every store.)
    pem = tlsenv_pki.authorities["trusted"].cert_pem
    first = make_tlsenv()
    second = make_tlsenv()
    assert first.store.bundle is not None
    assert second.store.bundle is not None
    assert not os.path.samefile(first.store.bundle, second.store.bundle)
    second.store.bundle.write_bytes(tlsenv_pki.decoy(3).cert_pem)
    assert first.store.bundle.read_bytes() == pem
    url = first.origin.url
    argv = ["curl", "-fsS", "--max-time", "10", "--cacert", str(first.store.bundle), url]
    first.run(argv).assert_ok()
    # Twin: the edited store no longer trusts the origin.
    argv = ["curl", "-fsS", "--max-time", "10", "--cacert", str(second.store.bundle), url]
    second.run(argv).assert_rejected()


BUILD_FAILS = """
import pytest
from pytest_tlsenv.errors import ConfigError

def test_no_such_client_user(make_tlsenv):
    with pytest.raises(ConfigError, match="no-such-user-tlsenv"):
        make_tlsenv("good", user="no-such-user-tlsenv")

def test_healthy(tlsenv):
    pass
"""


def test_a_scenario_that_fails_to_build_leaves_no_root(
    pytester: pytest.Pytester, shm_dir: Path
) -> None:
    pytester.makepyfile(test_build_fails=BUILD_FAILS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", f"--tlsenv-root-dir={shm_dir}")
    result.assert_outcomes(passed=2)
    assert _roots(shm_dir) == []
    assert list(shm_dir.iterdir()) == [], "the session directory goes when its roots do"


MIXED = """
import pytest
from pytest_tlsenv.errors import ConfigError

@pytest.mark.parametrize("i", range(12))
def test_healthy(tlsenv, i):
    assert tlsenv.origin.port

@pytest.mark.tlsenv(scenario="unreadable-file")
@pytest.mark.parametrize("i", range(12))
def test_fault(tlsenv, i):
    assert tlsenv.applied

def test_refused_by_the_constructor(make_tlsenv):
    with pytest.raises(ConfigError, match="no-such-user-tlsenv"):
        make_tlsenv("good", user="no-such-user-tlsenv")

@pytest.mark.tlsenv(scenario="unreadable-file")
def test_fails(tlsenv):
    assert False, "on purpose"

def test_runs_a_client(tlsenv):
    tlsenv.run(["curl", "-fsS", tlsenv.origin.url]).assert_ok()

def test_writes_its_own_files(tlsenv):
    (tlsenv.root / "mine").mkdir()
    (tlsenv.root / "mine" / "data").write_text("x")
    (tlsenv.store.root / "etc" / "extra").write_text("x")

def test_two_environments(make_tlsenv):
    make_tlsenv("good"), make_tlsenv("dangling-symlink")
"""


def test_a_whole_xdist_session_on_the_default_path_leaves_no_root(
    pytester: pytest.Pytester, shm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No root option: the default place, a tmpfs runtime directory (here a private one, so
    # only this session's directories are looked at). Healthy and fault scenarios, one the
    # constructor refused, a failed test, a client's sandbox, files the test added, two
    # environments in one test: after the session nothing of it is left.
    runtime = shm_dir / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    pytester.makepyfile(test_mixed=MIXED)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=28, failed=1)
    assert "tlsenv: scenario roots went" not in result.stdout.str()  # they went to the tmpfs
    left = [str(p.relative_to(runtime)) for p in runtime.rglob("*")]
    assert left == [], f"left behind: {left}"


def test_removing_a_store_never_goes_through_a_link_the_test_put_in_it(
    make_tlsenv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    # A healthy store goes by name at teardown (unlink, rmdir): a directory the test replaced
    # by a link to files elsewhere must not lead those names to the files there. Twin: the
    # root itself is gone all the same.
    outside = tmp_path / "outside"
    outside.mkdir()
    names = ["1232050e.0", "ca-certificates.crt", "tlsenv-trusted.pem"]
    for name in names:
        (outside / name).write_text("not the store's")
    env = make_tlsenv("good")
    assert env.store.cert_dir is not None
    shutil.rmtree(env.store.cert_dir)
    env.store.cert_dir.symlink_to(outside)
    env.close()
    assert sorted(p.name for p in outside.iterdir()) == names
    assert not os.path.lexists(env.root)
