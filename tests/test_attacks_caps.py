"""A root client attacks its own containment: capabilities, mounts, users.

As root, a subprocess client is uid 0 with no capability at all and no_new_privs set, so it
can neither chmod a fault away (CAP_FOWNER), nor unmount the store under system paths to see
the host's (CAP_SYS_ADMIN), nor write a host file the namespace shows it (those mounts are
read-only). Each attack is harmless if it succeeds on old code: it changes a file of the
scenario, a mount of a private namespace, or opens a file for appending and writes nothing.
Each has a twin that shows the same operation succeeding where it should.

Where this ends: uid 0 still owns root-owned files (a 0644 /etc/passwd, a cached client) and
may write them, capabilities or not. The route around that is a real unprivileged user
(``user=``, ini ``tlsenv_user``, ``--tlsenv-user``); uid 0 is refused there, and a path that
user cannot use is named up front.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.namespace import probe
from pytest_tlsenv.runner import caps_of

IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="a uid-0 client exists only as root")
Maker = Callable[..., TLSEnv]

# Prints the errno of one syscall made by the client itself (0: it succeeded).
UMOUNT = (
    "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
    "print(0 if libc.umount2(sys.argv[1].encode(), 2) == 0 else ctypes.get_errno())"
)
OPEN_APPEND = (
    "import os, sys\n"
    "try:\n"
    "    os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))\n"
    "except OSError as e:\n"
    "    print(e.errno)\n"
    "else:\n"
    "    print(0)\n"
)
CREATE = (
    "import os, sys\n"
    "try:\n"
    "    os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))\n"
    "except OSError as e:\n"
    "    print(e.errno)\n"
    "else:\n"
    "    print(0)\n"
)


def python() -> str:
    """An interpreter every client of these tests can run (root here)."""
    return sys.executable


def needs_namespaces() -> None:
    reason = probe()
    if reason is not None:
        pytest.skip(f"system paths unavailable: {reason}")


# -- chmod of the fault ----------------------------------------------------------------------


@root_only
@pytest.mark.tlsenv(scenario="unreadable-file")
def test_root_client_cannot_chmod_its_fault_away(tlsenv: TLSEnv) -> None:
    (applied,) = tlsenv.applied
    fault = applied.paths[0]
    out = tlsenv.run(["sh", "-c", 'chmod 644 "$0" || exit 3; cat "$0"', str(fault)])
    assert out.returncode == 3, out.explain("chmod refused")
    assert "Operation not permitted" in out.stderr
    assert stat.S_IMODE(fault.stat().st_mode) == 0o600
    # The same with os.chmod: EPERM, not EACCES.
    chmod = (
        "import os, sys\ntry:\n os.chmod(sys.argv[1], 0o644)\nexcept OSError as e:\n print(e.errno)"
    )
    assert tlsenv.run([python(), "-c", chmod, str(fault)]).stdout.strip() == str(errno.EPERM)
    assert stat.S_IMODE(fault.stat().st_mode) == 0o600


@root_only
def test_test_process_can_chmod_a_scratch_copy(tlsenv: TLSEnv, tmp_path: Path) -> None:
    # Twin: root with its capabilities (this process) changes the mode of a file owned by the
    # fault uid, so the refusal above comes from the client's missing CAP_FOWNER.
    scratch = tmp_path / "scratch.pem"
    scratch.write_text("not a certificate\n")
    try:
        os.chown(scratch, tlsenv.settings.fault_uid, tlsenv.settings.fault_uid)
        scratch.chmod(0o600)
        scratch.chmod(0o644)
        assert stat.S_IMODE(scratch.stat().st_mode) == 0o644
    finally:
        scratch.unlink()


# -- capability sets of every kind of subprocess client ---------------------------------------


def _assert_nothing_left(status: str) -> None:
    caps = caps_of(status)
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapInh"] == caps["CapAmb"] == 0, caps
    assert caps["CapBnd"] == 0, "an empty bounding set: no exec brings a capability back"
    assert "NoNewPrivs:\t1" in status


@root_only
@pytest.mark.parametrize("system_paths", [False, True], ids=["plain", "system-paths"])
def test_switched_user_keeps_no_capability(make_tlsenv: Maker, system_paths: bool) -> None:
    # Popen(user=...) needs CAP_SETUID/CAP_SETGID in the forked child; the uid change clears
    # them, and the spawner thread emptied the bounding and ambient sets before.
    if system_paths:
        needs_namespaces()
    env = make_tlsenv(user="nobody", system_paths=system_paths)
    out = env.run(["sh", "-c", "cat /proc/self/status; id -u"])
    _assert_nothing_left(out.stdout)
    assert out.stdout.split()[-1] == "65534"


@root_only
def test_root_client_in_system_paths_keeps_no_capability(make_tlsenv: Maker) -> None:
    needs_namespaces()
    out = make_tlsenv(system_paths=True).run(["cat", "/proc/self/status"])
    _assert_nothing_left(out.stdout)


# -- system paths: unmounting the store, writing the host's files ----------------------------


@root_only
@pytest.mark.tlsenv(system_paths=True)
def test_root_client_cannot_unmount_the_store(tlsenv: TLSEnv) -> None:
    needs_namespaces()
    assert tlsenv.store.bundle is not None
    cert_dir = "/etc/ssl/certs"
    script = f'"$0" -c "$1" {cert_dir}; cat {cert_dir}/ca-certificates.crt'
    out = tlsenv.run(["sh", "-c", script, python(), UMOUNT])
    first, _, rest = out.stdout.partition("\n")
    assert first == str(errno.EPERM), out.explain("umount2 refused")
    # Still the scenario's store, not the host's.
    assert rest == tlsenv.store.bundle.read_text()


@pytest.fixture
def graft_entry(tlsenv: TLSEnv) -> Iterator[tuple[str, str]]:
    """A host file a graft binds back into the client's view, and the grafted parent."""
    needs_namespaces()
    for parent, _stage, adds in tlsenv.mount_plan().grafts:
        added = {name for name, _src in adds}
        for name in sorted(os.listdir(parent)):
            entry = os.path.join(parent, name)
            if name in added or os.path.islink(entry):
                continue
            files = [entry] if os.path.isfile(entry) else []
            if os.path.isdir(entry):
                files = [os.path.join(entry, n) for n in sorted(os.listdir(entry))]
            for path in files:
                if os.path.isfile(path) and not os.path.islink(path):
                    yield path, parent
                    return
    pytest.skip("this host's layout needs no graft with a host file in it")


@root_only
@pytest.mark.tlsenv(system_paths=True)
def test_root_client_cannot_write_a_host_file_of_a_graft(
    tlsenv: TLSEnv, graft_entry: tuple[str, str]
) -> None:
    host_file, parent = graft_entry
    before = os.stat(host_file)
    # Opened for appending, nothing written: harmless even where it succeeds.
    out = tlsenv.run([python(), "-c", OPEN_APPEND, host_file])
    assert out.stdout.strip() in {str(errno.EROFS), str(errno.EACCES)}, out.explain("refused")
    # Nor can it add an entry to the grafted directory (a tmpfs of the namespace).
    new = os.path.join(parent, f"tlsenv-attack-{os.getpid()}")
    created = tlsenv.run([python(), "-c", CREATE, new])
    assert created.stdout.strip() in {str(errno.EROFS), str(errno.EACCES)}
    after = os.stat(host_file)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not os.path.lexists(new)
    # Twin: the store's own bundle, shown at its system path by a plain bind, opens fine, so
    # the probe can tell a read-only mount from a writable one.
    twin = tlsenv.run([python(), "-c", OPEN_APPEND, "/etc/ssl/certs/ca-certificates.crt"])
    assert twin.stdout.strip() == "0"


# -- uid 0 as a client user is refused --------------------------------------------------------


@pytest.mark.parametrize("user", ["root", "0"])
def test_uid_0_is_refused_as_a_client_user(make_tlsenv: Maker, user: str) -> None:
    with pytest.raises(ConfigError, match=f"user '{user}' has uid 0.*reads every file"):
        make_tlsenv(scenario="unreadable-file", user=user)
    env = make_tlsenv(scenario="unreadable-file")
    with pytest.raises(ConfigError, match=f"user '{user}' has uid 0"):
        env.run(["true"], user=user)
    assert env.outcomes == []
    # Twin: without a user the fault bites (as root: uid 0 without capabilities).
    (applied,) = env.applied
    denied = env.run(["cat", str(applied.paths[0])])
    assert "Permission denied" in denied.stderr


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--tlsenv-user", "root"], "", "*--tlsenv-user root: user 'root' has uid 0*"),
        (["--tlsenv-user", "0"], "", "*--tlsenv-user 0: user '0' has uid 0*reads every file*"),
        ([], "tlsenv_user = root", "*ini tlsenv_user = root: user 'root' has uid 0*"),
        ([], "tlsenv_user = tlsenv-no-such-user", "*tlsenv-no-such-user: *does not exist*"),
    ],
)
def test_uid_0_option_or_ini_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x(tlsenv): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_uid_0_marker_is_an_error_at_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(user="root")
        def test_x(tlsenv):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*user 'root' has uid 0*"])


# -- the unprivileged-user route ------------------------------------------------------------


@root_only
def test_ini_user_is_the_session_default_and_its_paths_work(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntlsenv_user = nobody\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(scenario="unreadable-file")
        def test_as_user(tlsenv):
            script = (
                'id -u; for d in "$HOME" "$TMPDIR" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME" '
                '"$XDG_DATA_HOME"; do touch "$d/w" || exit 3; done; '
                '"$0" -c "import sys; print(sys.prefix)"; cat "$1"'
            )
            (applied,) = tlsenv.applied
            py = tlsenv.venv()
            out = tlsenv.run(["sh", "-c", script, py, str(applied.paths[0])])
            lines = out.stdout.splitlines()
            assert lines[0] == "65534", out.explain("uid of nobody")
            assert lines[1] == py.rsplit("/bin/", 1)[0], out.explain("the venv runs")
            assert "Permission denied" in out.stderr  # the fault bites the real user
            tlsenv.run(["curl", "-fsS", "--cacert", str(tlsenv.store.bundle),
                        tlsenv.origin.url]).assert_ok()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    # Twin: the option overrides nothing here, and without the ini key clients are uid 0.
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        """
        def test_as_root(tlsenv):
            assert tlsenv.run(["id", "-u"]).stdout.strip() == "0"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.fixture
def private_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory only root can enter, holding an executable script."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    script = closed / "client.sh"
    script.write_text("#!/bin/sh\nid -u\n")
    script.chmod(0o755)
    try:
        yield closed
    finally:
        shutil.rmtree(closed, ignore_errors=True)


@root_only
def test_paths_the_user_cannot_use_are_named(make_tlsenv: Maker, private_dir: Path) -> None:
    env = make_tlsenv(user="nobody")
    script = private_dir / "client.sh"
    with pytest.raises(ConfigError, match=rf"client '{script}' is not usable by user 'nobody'"):
        env.run([str(script)])
    with pytest.raises(ConfigError, match=rf"working directory '{private_dir}' is not usable"):
        env.run(["true"], cwd=str(private_dir))
    assert env.outcomes == []
    # Twin: the same script where that user can reach it runs, as that user.
    reachable = Path(tempfile.mkdtemp(dir=env.root))
    try:
        reachable.chmod(0o755)
        shutil.copy2(script, reachable / "client.sh")
        out = env.run([str(reachable / "client.sh")], cwd=str(reachable))
        assert out.stdout.strip() == "65534"
    finally:
        shutil.rmtree(reachable)


@root_only
def test_a_run_user_the_scenario_was_not_made_for_is_named(make_tlsenv: Maker) -> None:
    # The scenario lives under pytest's 0700 tmp dirs: nobody cannot reach its store.
    env = make_tlsenv()
    with pytest.raises(ConfigError, match=r"scenario '.*' is not usable by user 'nobody'.*"
                       r"where the scenario is made"):  # fmt: skip
        env.run(["curl", "-fsS", env.origin.url], user="nobody")
    # Twin: made for that user, the same run reaches the origin.
    made = make_tlsenv(user="nobody")
    made.run(["curl", "-fsS", "--cacert", str(made.store.bundle), made.origin.url]).assert_ok()
