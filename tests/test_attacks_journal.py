"""The fault journal and the client cache against another local user, and what a kill leaves.

The attacker is ``nobody``: it plants files where a root session would look. Every attack
test works in its own private TMPDIR and journal location, its payloads are non-executable
files (only their st_mode is checked, nothing is ever executed), and it cleans up in
``finally``. The kill tests SIGKILL a child that built a scenario and check that the next
recovery leaves no hung client, FIFO, store, root or key behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from leakcheck import altered_files

NOBODY = 65534
PAYLOAD_MODE = 0o4400  # setuid, not executable by anyone (never run, only stat'ed); the old
# repair chowned it to root and added u+w back with the setuid bit: root:root 04600

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the attacker is another user (nobody): planting files as them needs root",
)

RECOVER = "from pytest_tlsenv.journal import recover\nprint('\\n'.join(recover()))\n"


def _victim(
    code: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The next session of this user (root in the attack tests), in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )


def _as_nobody(code: str, *args: str) -> None:
    """Run stdlib-only ``code`` as nobody (uid and gid 65534, no supplementary groups)."""
    proc = subprocess.run(
        ["/usr/bin/python3", "-c", code, *args],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env={"PATH": os.defpath},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def arena() -> Iterator[Path]:
    """A private place nobody can reach: ``<dir 0711>/tmp`` (mode 1777, like /tmp)."""
    base = Path(tempfile.mkdtemp(prefix="tlsenv-attack-", dir="/tmp"))
    try:
        os.chmod(base, 0o711)
        (base / "tmp").mkdir()
        os.chmod(base / "tmp", 0o1777)
        (base / "state").mkdir(mode=0o700)
        (base / "home").mkdir(mode=0o700)
        (base / "afile").write_text("a regular file: no directory can be made below it\n")
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _env(arena: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TLSENV_", "XDG_"))}
    env.update(
        TMPDIR=str(arena / "tmp"),
        HOME=str(arena / "home"),
        XDG_STATE_HOME=str(arena / "state"),
        XDG_CACHE_HOME=str(arena / "home" / ".cache"),
    )
    env.update(extra)
    return env


PLANT_JOURNAL = """
import json, os, sys
journal, evil = sys.argv[1], sys.argv[2]
os.mkdir(journal, 0o700)
os.makedirs(os.path.join(evil, "tree"))
payload = os.path.join(evil, "payload")
with open(payload, "w") as f:
    f.write("not a program\\n")
os.chmod(payload, 0o4400)
os.chmod(os.path.join(evil, "tree"), 0o700)
with open(os.path.join(journal, "1-0.json"), "w") as f:
    json.dump({"pid": "x", "roots": [evil]}, f)
"""


def _untouched(evil: Path) -> None:
    st = os.lstat(evil / "payload")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, PAYLOAD_MODE)
    assert os.lstat(evil / "tree").st_uid == NOBODY
    assert os.lstat(evil).st_uid == NOBODY


@needs_root
def test_journal_planted_in_tmp_is_never_read(arena: Path) -> None:
    # The old journal place: nobody makes it between two root sessions, with a record that
    # names nobody's own tree, holding a setuid payload.
    journal = arena / "tmp" / ".pytest-tlsenv-journal-0"
    evil = arena / "tmp" / "evil"
    _as_nobody(PLANT_JOURNAL, str(journal), str(evil))
    done = _victim(RECOVER, _env(arena))
    assert done.returncode == 0, done.stderr
    _untouched(evil)
    assert str(evil) not in done.stdout


@needs_root
def test_planted_journal_path_does_not_break_fault_tests(arena: Path) -> None:
    # A plain file where the old code made its journal: every fault test errored.
    _as_nobody(
        "import sys; open(sys.argv[1], 'w').close()",
        str(arena / "tmp" / ".pytest-tlsenv-journal-0"),
    )
    build = (
        "from pathlib import Path\n"
        "from pytest_tlsenv.pki import PKI\n"
        "from pytest_tlsenv.scenarios import resolve\n"
        "from pytest_tlsenv.tlsenv import TLSEnv\n"
        f"root = Path({str(arena / 'home')!r})\n"
        "with TLSEnv.build(resolve('unreadable-file'), pki=PKI(root / 'pki'), "
        "root=root / 'scenario') as env:\n"
        "    print(len(env.applied))\n"
    )
    done = _victim(build, _env(arena))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


@needs_root
@pytest.mark.parametrize("where", ["TLSENV_JOURNAL_DIR", "tmp-fallback"])
def test_journal_owned_by_another_user_is_refused_loudly(arena: Path, where: str) -> None:
    journal = arena / "tmp" / (".pytest-tlsenv-journal-0" if where != "TLSENV_JOURNAL_DIR" else "j")
    evil = arena / "tmp" / "evil"
    _as_nobody(PLANT_JOURNAL, str(journal), str(evil))
    if where == "TLSENV_JOURNAL_DIR":
        env = _env(arena, TLSENV_JOURNAL_DIR=str(journal))
    else:
        # A home where nothing can be made (below a regular file): the tmp fallback is used.
        env = _env(arena, XDG_STATE_HOME=str(arena / "afile" / "state"))
    done = _victim(RECOVER, env)
    _untouched(evil)
    assert done.returncode != 0
    assert "UnsafeDirectoryError" in done.stderr
    assert f"{journal} is owned by uid {NOBODY}" in done.stderr


@needs_root
def test_record_naming_a_tree_we_did_not_make_is_left_alone(arena: Path, tmp_path: Path) -> None:
    # Even a record in our own journal acts only on roots that carry its token in a marker
    # of ours: nobody copies the token into a marker of its own, in its own tree.
    evil = arena / "tmp" / "evil"
    _as_nobody(PLANT_JOURNAL, str(arena / "tmp" / "unused"), str(evil))
    token = "0123456789abcdef0123456789abcdef"
    _as_nobody(
        "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
        str(evil / ".tlsenv-journal"),
        token,
    )
    journal = tmp_path / "journal"
    journal.mkdir(mode=0o700)
    record = {
        "pid": 2**22 + 1,  # above pid_max: never alive
        "start": "1",
        "owner": [0, 0],
        "fault_uid": NOBODY,  # even a fault uid that is the attacker's
        "token": token,
        "roots": [str(evil)],
        "keep": [],
        "groups": [],
    }
    (journal / "4194305-0.json").write_text(json.dumps(record))
    done = _victim(RECOVER, _env(arena, TLSENV_JOURNAL_DIR=str(journal)))
    assert done.returncode == 0, done.stderr
    _untouched(evil)
    assert f"left {evil} alone" in done.stdout


@pytest.mark.nonroot
def test_repair_strips_setuid_and_never_follows_symlinks(tmp_path: Path) -> None:
    # A root of ours, kept (repaired, not removed): a setuid file the owner cannot read
    # comes back readable without the setuid bit; a symlink's target is not touched.
    from pytest_tlsenv.journal import recover

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "kept").mkdir(parents=True)
    outside.write_text("not ours to repair\n")
    os.chmod(outside, 0o000)
    token = "fedcba9876543210fedcba9876543210"
    (root / ".tlsenv-journal").write_text(token)
    suid = root / "kept" / "suid"
    suid.write_text("x\n")
    os.chmod(suid, 0o4000)
    (root / "kept" / "link").symlink_to(outside)
    journal = tmp_path / "journal"
    journal.mkdir(mode=0o700)
    record = {
        "pid": 2**22 + 1,
        "start": "1",
        "owner": [os.geteuid(), os.getegid()],
        "fault_uid": 65533,
        "token": token,
        "roots": [str(root)],
        "keep": [str(root / "kept")],
        "groups": [],
    }
    (journal / "4194305-0.json").write_text(json.dumps(record))
    try:
        recover(journal)
        assert stat.S_IMODE(os.lstat(suid).st_mode) == 0o600
        assert stat.S_IMODE(os.lstat(outside).st_mode) == 0o000
    finally:
        os.chmod(outside, 0o600)


# -- the client cache -----------------------------------------------------------------------

PLANT_CACHE = """
import os, sys
cache = sys.argv[1]
bindir = os.path.join(cache, "clients", "uv-0.2.29", "bin")
os.makedirs(bindir)
os.chmod(cache, 0o755)
with open(os.path.join(bindir, "uv"), "w") as f:
    f.write("not a program\\n")
os.chmod(os.path.join(bindir, "uv"), 0o644)
"""

PINNED = "from pytest_tlsenv.clients import pinned\nprint(pinned('uv', '0.2.29'))\n"


@needs_root
@pytest.mark.parametrize("where", ["tmp-fallback", "TLSENV_CACHE_DIR", "XDG_CACHE_HOME"])
def test_planted_client_cache_is_refused(arena: Path, where: str) -> None:
    if where == "tmp-fallback":
        cache = arena / "tmp" / "pytest-tlsenv-cache-0"
        # No cache can be made in the home (below a regular file): the tmp fallback is used.
        env = _env(arena, XDG_CACHE_HOME=str(arena / "afile" / "cache"))
    elif where == "TLSENV_CACHE_DIR":
        cache = arena / "tmp" / "cache"
        env = _env(arena, TLSENV_CACHE_DIR=str(cache))
    else:
        cache = arena / "tmp" / "xdg" / "pytest-tlsenv"
        (arena / "tmp" / "xdg").mkdir(mode=0o755)
        os.chown(arena / "tmp" / "xdg", NOBODY, NOBODY)
        env = _env(arena, XDG_CACHE_HOME=str(arena / "tmp" / "xdg"))
    _as_nobody(PLANT_CACHE, str(cache))
    planted = cache / "clients" / "uv-0.2.29" / "bin" / "uv"
    done = _victim(PINNED, env)
    assert str(planted) not in done.stdout
    assert done.returncode != 0
    assert "UnsafeDirectoryError" in done.stderr
    assert f"uid {NOBODY}" in done.stderr
    st = os.lstat(planted)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o644)


@pytest.mark.nonroot
@pytest.mark.parametrize("kind", ["group-writable", "symlink"])
def test_cache_dir_others_could_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from pytest_tlsenv.clients import cache_dir
    from pytest_tlsenv.errors import TLSEnvError

    real = tmp_path / "real"
    real.mkdir()
    if kind == "group-writable":
        os.chmod(real, 0o775)
        cache = real
    else:
        cache = tmp_path / "link"
        cache.symlink_to(real)
    monkeypatch.setenv("TLSENV_CACHE_DIR", str(cache))
    with pytest.raises(TLSEnvError, match="refusing to use it") as info:
        cache_dir()
    assert isinstance(info.value, PermissionError)
    assert str(cache) in str(info.value)
    # The twin: the same directory made private is accepted.
    monkeypatch.setenv("TLSENV_CACHE_DIR", str(real))
    os.chmod(real, 0o700)
    assert cache_dir() == real


# -- what a SIGKILL leaves ------------------------------------------------------------------

FIFO_CHILD = """
import os, stat, subprocess, sys
from pathlib import Path
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.scenarios import resolve
from pytest_tlsenv.tlsenv import Settings, TLSEnv

root = Path(sys.argv[1])
env = TLSEnv.build(
    resolve(faults=["fifo"]), pki=PKI(root / "pki"), root=root / "scenario",
    settings=Settings(timeout=300),
)
(fifo,) = [p for a in env.applied for p in a.paths if stat.S_ISFIFO(os.lstat(p).st_mode)]
print(fifo, flush=True)
if sys.argv[2] == "run":
    env.run(["cat", str(fifo)])
else:  # a reader that is in no recorded process group: only the FIFO's writer frees it
    subprocess.Popen(["cat", str(fifo)], start_new_session=True).wait()
"""


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _running(pid: int, start: str) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[19] == start and fields[0] not in "ZX"


def _find_cat(fifo: str) -> tuple[int, str] | None:
    want = f"cat\0{fifo}\0".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read() != want:
                    continue
        except OSError:
            continue
        fields = _stat(int(entry))
        if fields is not None:
            return int(entry), fields[19]
    return None


def _wait(predicate: Callable[[], object], seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


@pytest.mark.nonroot
@pytest.mark.parametrize("how", ["run", "outside"])
def test_reader_of_a_killed_sessions_fifo_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("TLSENV_JOURNAL_DIR", str(tmp_path / "journal"))
    cat: tuple[int, str] | None = None
    child = subprocess.Popen(
        [sys.executable, "-c", FIFO_CHILD, str(tmp_path / "area"), how],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        fifo = child.stdout.readline().strip()
        assert fifo, "the child built no FIFO scenario"
        found = _wait(lambda: _find_cat(fifo), 30)
        assert isinstance(found, tuple), "cat never started"
        cat = found
        child.kill()
        child.wait()
        # Negative twin: its parent is gone, cat is still blocked on the FIFO.
        time.sleep(0.2)
        assert _running(*cat)
        done = _victim(RECOVER, dict(os.environ))
        assert done.returncode == 0, done.stderr
        assert _wait(lambda: not _running(*cat), 10), f"cat still hangs; recovery: {done.stdout}"
        assert not os.path.lexists(fifo)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        if cat is not None and _running(*cat):
            os.kill(cat[0], signal.SIGKILL)
        shutil.rmtree(tmp_path / "area", ignore_errors=True)


KILLED = """
import os, signal, pytest

@pytest.mark.tlsenv(scenario="unreadable-file")
def test_killed(tlsenv):
    os.kill(os.getpid(), signal.SIGKILL)
"""

LATER = """
def test_later(tlsenv):
    pass
"""


@pytest.mark.nonroot
def test_killed_session_leaves_no_keys_or_stores(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TLSENV_JOURNAL_DIR", str(tmp_path / "journal"))
    pytester.makepyfile(test_killed=KILLED)
    base = pytester.path / "bt1"
    killed = pytester.runpytest_subprocess("--basetemp", str(base), "--tlsenv-root-dir=basetemp")
    assert killed.ret != 0
    # Negative twin: the kill left the session's 0600 keys and its scenario roots.
    assert list(base.rglob("*.key"))
    assert list(base.glob("tlsenv-roots*/tlsenv*"))
    pytester.makepyfile(test_later=LATER)
    later = pytester.runpytest_subprocess("--basetemp", str(pytester.path / "bt2"), "test_later.py")
    later.assert_outcomes(passed=1)
    assert not list(base.rglob("*.key"))
    assert [p for p in base.glob("tlsenv-*") if not p.is_symlink()] == []


LEFT_CHILD = """
import os, signal, sys, tempfile
from pathlib import Path

how = sys.argv[1]
if how == "probe":
    from pytest_tlsenv.probe import Probe

    probe = Probe(["true", "{url}"]).__enter__()
    left = probe.root
elif how == "stage":
    from pytest_tlsenv.repro import stage
    from pytest_tlsenv.scenarios import resolve

    left = Path(tempfile.mkdtemp(prefix="tlsenv-stage-")) / "scenario"
    stage(resolve("unreadable-file"), left.parent)
else:
    from pytest_tlsenv.pki import PKI
    from pytest_tlsenv.scenarios import resolve
    from pytest_tlsenv.tlsenv import TLSEnv

    env = TLSEnv.build(
        resolve("unreadable-file", user="nobody"), pki=PKI(Path(sys.argv[2])), root=Path("/x")
    )
    left = env.root
print(left, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.nonroot
@pytest.mark.parametrize(
    "how",
    [
        "probe",
        "stage",
        pytest.param("user", marks=needs_root),
        "survey",
    ],
)
def test_killed_tmp_roots_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TLSENV_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("TMPDIR", str(tmp))
    try:
        if how == "survey":
            argv = [sys.executable, "-m", "pytest_tlsenv", "survey", "--clients", "curl"]
            argv += ["--scenarios", "good", "unreadable-file"]
            with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as p:
                # Past the point where its work dir is recorded: its PKI is being made.
                made = _wait(lambda: list(tmp.glob("tlsenv-survey-*/pki")), 60)
                p.kill()
                p.wait()
            assert made, "the survey never made its work dir"
            left = Path(str(made[0])).parent  # type: ignore[index]
        else:
            out = subprocess.run(
                [sys.executable, "-c", LEFT_CHILD, how, str(tmp_path / "pki")],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == -signal.SIGKILL, out.stderr
            left = Path(out.stdout.strip())
        # Negative twin: the kill left it (a store with its faults, or keys) in tmp.
        assert left.is_dir()
        done = _victim(RECOVER, dict(os.environ))
        assert done.returncode == 0, done.stderr
        assert not os.path.lexists(left), done.stdout
        assert altered_files(tmp) == []
    finally:
        for p in tmp.iterdir():
            subprocess.run(["chmod", "-R", "u+rwX", str(p)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


ZOMBIE_CHILD = """
import sys
from pathlib import Path
from pytest_tlsenv.journal import Journal

Journal(Path(sys.argv[1])).write([sys.argv[2]])
"""


@pytest.mark.nonroot
def test_record_of_a_zombie_is_recovered(tmp_path: Path) -> None:
    from pytest_tlsenv.journal import recover

    journal, root = tmp_path / "journal", tmp_path / "root"
    root.mkdir()
    child = subprocess.Popen([sys.executable, "-c", ZOMBIE_CHILD, str(journal), str(root)])
    try:
        # Not reaped yet: a zombie, with its pid and start time still in /proc.
        assert _wait(lambda: (_stat(child.pid) or ["?"])[0] == "Z", 30)
        assert list(journal.glob("*.json"))
        recover(journal)
        assert not root.exists()
    finally:
        child.wait()
