"""``system_paths=True``: the fake store at /etc/ssl, for clients that ignore the variables.

Every client here runs with SSL_CERT_FILE and SSL_CERT_DIR *unset*, so it can only find trust
at the system paths. Under ``system_paths=True`` those show the scenario's store (a private
mount namespace, namespace.py); without it they show the host's store, which does not hold
the session's CA: the negative twins are REJECTED. The host must never see any of it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from commands import uv_pip_install_argv
from test_faults import BITES, DESIGN_STORE_FAULTS  # tests/ is on sys.path (rootdir conftest)

import pytest_tlsenv
from pytest_tlsenv import FAULTS, TLSEnv, Verdict
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.namespace import SYSTEM_TRUST_PATHS, RemoteError, call_in_namespace, probe
from pytest_tlsenv.runner import CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, caps_of

pytestmark = pytest.mark.nonroot

NO_VARS: dict[str, str | None] = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}
# The paths a Debian-layout store is shown at, and their parents (a graft changes a parent).
HOST_PATHS = (
    "/etc/ssl",
    "/usr/local/share/ca-certificates",
    "/usr/share/ca-certificates",
    "/etc/pki",
)
IS_ROOT = os.geteuid() == 0
DAC = (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH)


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    reason = probe()
    if reason is not None:
        pytest.skip(f"system paths unavailable: {reason}")


Maker = Callable[..., TLSEnv]


# -- a client that ignores the variables: wget (GnuTLS) ------------------------------------


def test_wget_honours_the_fake_store_only_under_system_paths(make_tlsenv: Maker) -> None:
    # Debian's wget is built with GnuTLS, whose system trust is the compiled-in file
    # /etc/ssl/certs/ca-certificates.crt; no --ca-* flag is given.
    inside = make_tlsenv(system_paths=True)
    out = inside.run(["wget", "-O", "-", inside.origin.url], env=NO_VARS)
    out.assert_ok()
    assert out.reached_origin
    # Negative twin: the very same command, without system paths, meets the host's store.
    outside = make_tlsenv()
    twin = outside.run(["wget", "-O", "-", outside.origin.url], env=NO_VARS)
    twin.assert_rejected()
    assert "not trusted" in twin.stderr
    assert not twin.reached_origin


# -- uv without SSL_CERT_* (rustls-native-certs probes /etc/ssl/certs) -----------------------


def uv_install(env: TLSEnv, uv: str) -> Any:
    return env.run(
        uv_pip_install_argv(env, uv),
        env={**NO_VARS, "UV_NATIVE_TLS": "1"},
    )


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.2.29", "0.13.9"])
def test_uv_honours_the_fake_store_only_under_system_paths(
    make_tlsenv: Maker, uv_pinned: Callable[[str], str], version: str
) -> None:
    uv = uv_pinned(version)
    inside = make_tlsenv(system_paths=True)
    uv_install(inside, uv).assert_ok()
    assert any(r.path.endswith(".whl") for r in inside.origin.received)
    twin = uv_install(make_tlsenv(), uv)
    twin.assert_rejected()
    assert not twin.reached_origin


@pytest.mark.slow
@pytest.mark.tlsenv(scenario="unreadable-file", system_paths=True)
def test_uv_5448_at_the_real_path(tlsenv: TLSEnv, uv_pinned: Callable[[str], str]) -> None:
    # The seed case where it happened: an unreadable file in /etc/ssl/certs as uv sees it.
    (applied,) = tlsenv.applied
    assert tlsenv.store.cert_dir is not None
    seen = "/etc/ssl/certs/" + os.path.relpath(applied.paths[0], tlsenv.store.cert_dir)
    denied = tlsenv.run(["cat", seen])
    assert denied.returncode == 1
    assert "Permission denied" in denied.stderr

    crashed = uv_install(tlsenv, uv_pinned("0.2.29"))
    crashed.assert_verdict(Verdict.CRASHED)
    assert "panicked" in crashed.stderr
    assert "PermissionDenied" in crashed.stderr or "Permission denied" in crashed.stderr

    # Newest uv skips the entry and connects. (Measured with strace: it opens
    # /etc/ssl/certs/tlsenv-unreadable-file.pem, gets EACCES and, having found the dir by
    # probing rather than through SSL_CERT_DIR, says nothing; with SSL_CERT_DIR it warns.)
    newest = uv_install(tlsenv, uv_pinned("0.13.9"))
    newest.assert_ok()
    newest.assert_expected()


@pytest.mark.slow
@pytest.mark.tlsenv(scenario="unreadable-file")
def test_uv_5448_twin_without_system_paths(tlsenv: TLSEnv, uv_pinned: Callable[[str], str]) -> None:
    # Same fault, same uv, no variables, no namespace: uv reads the host's healthy
    # /etc/ssl/certs, so it does not crash; it rejects the origin it cannot verify.
    uv_install(tlsenv, uv_pinned("0.2.29")).assert_rejected()


# -- composition: store faults and the capability drop ------------------------------------------


@pytest.mark.tlsenv(scenario="unreadable-file", system_paths=True)
def test_run_fault_bites_and_caps_stay_dropped(tlsenv: TLSEnv) -> None:
    out = tlsenv.run(["sh", "-c", "cat /proc/self/status; id -u"])
    caps = caps_of(out.stdout)
    # Mounting needed CAP_SYS_ADMIN (as non-root: a new user namespace grants every capability
    # there); the setup empties every set and sets no_new_privs before the exec.
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapInh"] == 0
    assert caps["CapBnd"] == caps["CapAmb"] == 0
    assert "NoNewPrivs:\t1" in out.stdout
    assert out.stdout.split()[-1] == str(os.geteuid())  # the caller's own uid, mapped
    # The fault bites at the real path (the negative twin: the bundle there reads fine).
    (applied,) = tlsenv.applied
    name = applied.paths[0].name
    assert "Permission denied" in tlsenv.run(["cat", f"/etc/ssl/certs/{name}"]).stderr
    bundle = tlsenv.run(["cat", "/etc/ssl/certs/ca-certificates.crt"])
    assert tlsenv.store.bundle is not None
    assert bundle.stdout == tlsenv.store.bundle.read_text()


@pytest.mark.parametrize("placement", ["decoy", "shadow"])
@pytest.mark.parametrize("name", DESIGN_STORE_FAULTS)
def test_every_store_fault_bites_at_the_system_path(
    make_tlsenv: Maker, name: str, placement: str
) -> None:
    # The same bite as test_faults.py, at the path the client sees: /etc/ssl/certs/...
    bite = BITES[name]
    env = make_tlsenv(scenario=name, placement=placement, system_paths=True, timeout=1)
    entry = env.applied[0].paths[0] if env.applied[0].paths else env.store.root
    seen = "/" + os.path.relpath(entry, env.store.root)
    argv = [a.format(entry=seen) for a in bite.argv]
    out = env.run(argv, timeout=1 if bite.returncode is None else 10)
    if bite.returncode is None:
        assert out.verdict is Verdict.HUNG, out.explain("a blocking open")
    else:
        assert out.returncode == bite.returncode, out.explain(f"exit {bite.returncode}")
        assert bite.text in out.stderr + out.stdout, out.explain(repr(bite.text))
    if FAULTS[name].kind == "env":
        return  # the variables point into the scenario root, with or without system paths
    # Negative twin: without system paths that path is the host's: absent, or healthy.
    host = make_tlsenv(scenario=name, placement=placement, timeout=1)
    if os.path.lexists(seen):
        twin = host.run([a.format(entry=seen) for a in bite.argv], timeout=5)
        assert twin.returncode == 0, twin.explain("the host's own file to be healthy")
    else:
        absent = host.run(["sh", "-c", 'test -e "$1" || test -L "$1"', "sh", seen])
        assert absent.returncode == 1, absent.explain(f"{seen} absent outside")


@pytest.mark.skipif(not IS_ROOT, reason="switching to another user needs root")
@pytest.mark.tlsenv(scenario="unreadable-file", system_paths=True, user="nobody")
def test_run_as_another_user(tlsenv: TLSEnv) -> None:
    # The helper mounts as root, then becomes nobody before exec.
    (applied,) = tlsenv.applied
    out = tlsenv.run(["sh", "-c", f"id -u; cat /etc/ssl/certs/{applied.paths[0].name}"])
    assert out.stdout.split()[0] == "65534"
    assert "Permission denied" in out.stderr
    tlsenv.run(["wget", "-O", "-", tlsenv.origin.url], env=NO_VARS).assert_ok()


@pytest.mark.tlsenv(system_paths=True)
def test_openssl_cnf_is_the_hosts_inside(tlsenv: TLSEnv) -> None:
    out = tlsenv.run(["sh", "-c", "sha256sum /etc/ssl/openssl.cnf; ls /usr/share/ca-certificates"])
    host = hashlib.sha256(Path("/etc/ssl/openssl.cnf").read_bytes()).hexdigest()
    assert out.stdout.split()[0] == host
    # The grafted parent keeps the host's entries beside the store's.
    listing = out.stdout.split()[2:]
    assert "tlsenv" in listing
    assert set(os.listdir("/usr/share/ca-certificates")) <= set(listing)


# -- other layouts: grafts and masks -------------------------------------------------------------


@pytest.mark.parametrize("layout", ["rhel", "alpine", "bundle-only", "dir-only"])
def test_other_layouts_show_only_the_fake_store(make_tlsenv: Maker, layout: str) -> None:
    env = make_tlsenv(system_paths=True, layout=layout)
    plan = env.mount_plan()
    store = env.store
    script = (
        'for p in "$@"; do if [ -d "$p" ]; then echo "$p: $(ls -A "$p" | wc -l) entries"; '
        'elif [ -e "$p" ]; then echo "$p: $(sha256sum < "$p" | cut -c1-64)"; '
        'else echo "$p: absent"; fi; done'
    )
    paths = [f"/{p}" for p in (*SYSTEM_TRUST_PATHS, store.layout.bundle) if p]
    seen = env.run(["sh", "-c", script, "sh", *paths])
    assert seen.returncode == 0, seen.explain("a listing of the trust paths")
    lines = dict(line.split(": ", 1) for line in seen.stdout.splitlines())
    if store.layout.bundle:
        digest = hashlib.sha256(store.bundle.read_bytes()).hexdigest()  # type: ignore[union-attr]
        assert lines["/" + store.layout.bundle] == digest
    for host in plan.masks:
        assert lines[host] in ("0 entries", hashlib.sha256(b"").hexdigest()), host
    # Nothing of the host's store anywhere a client looks: every trust path is the store's,
    # masked, or absent.
    for rel in SYSTEM_TRUST_PATHS:
        host = "/" + rel
        shown = os.path.lexists(store.root / rel)
        if not shown and host not in plan.masks:
            assert lines[host] == "absent" or not os.path.lexists(host), (host, lines[host])
    # The negative twin: without system paths, the host's /etc/ssl/certs is full.
    full = make_tlsenv(layout=layout).run(["sh", "-c", "ls -A /etc/ssl/certs | wc -l"])
    assert int(full.stdout) > 10


@pytest.mark.slow
def test_bundle_only_layout_serves_an_openssl_probe_client(
    make_tlsenv: Maker, uv_pinned: Callable[[str], str]
) -> None:
    # openssl-probe takes the first bundle that exists: /etc/ssl/certs/ca-certificates.crt is
    # masked away, /etc/ssl/cert.pem is the store's.
    env = make_tlsenv(system_paths=True, layout="bundle-only")
    assert "/etc/ssl/certs" in env.mount_plan().masks
    uv_install(env, uv_pinned("0.13.9")).assert_ok()
    # wget (GnuTLS: only /etc/ssl/certs/ca-certificates.crt) finds nothing: no host fallback.
    env.run(["wget", "-O", "-", env.origin.url], env=NO_VARS).assert_rejected()


# -- the host never changes ------------------------------------------------------------------


def host_snapshot() -> dict[str, str]:
    """Every entry under the bound paths with kind, owner, mode and content hash."""
    snap: dict[str, str] = {}

    def record(path: str) -> None:
        try:
            st = os.lstat(path)
        except OSError as e:
            snap[path] = f"lstat error {e.errno}"
            return
        head = f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"
        if stat.S_ISLNK(st.st_mode):
            snap[path] = f"{head} -> {os.readlink(path)}"
        elif stat.S_ISREG(st.st_mode):
            try:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError as e:
                digest = f"unreadable {e.errno}"
            snap[path] = f"{head} {st.st_size} {digest}"
        else:
            snap[path] = head

    for top in HOST_PATHS:
        record(top)
        for dirpath, dirnames, filenames in os.walk(top, onerror=lambda e: record(e.filename)):
            for name in dirnames + filenames:
                record(os.path.join(dirpath, name))
    with open("/proc/self/mountinfo") as f:
        snap["mountinfo"] = f.read()
    return snap


@pytest.mark.parametrize("layout", ["debian", "rhel", "alpine", "bundle-only"])
def test_host_untouched_before_during_after(
    make_tlsenv: Maker, tmp_path: Path, layout: str
) -> None:
    before = host_snapshot()
    env = make_tlsenv(system_paths=True, layout=layout)
    os.chmod(tmp_path, 0o777)  # the client (any uid) leaves its marks here
    seen, ready, mounts = tmp_path / "seen", tmp_path / "ready", tmp_path / "mounts"
    bundle = "/" + str(env.store.layout.bundle)
    script = (
        f'cat {bundle} > "{seen}"; cat /proc/self/mountinfo > "{mounts}"; : > "{ready}"; sleep 3'
    )
    box: dict[str, Any] = {}
    client = threading.Thread(
        target=lambda: box.update(out=env.run(["sh", "-c", script], timeout=30)),
        name="test-client",
    )
    client.start()
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline, "the client never got going"
            time.sleep(0.01)
        during = host_snapshot()
    finally:
        client.join()
    after = host_snapshot()
    # The client saw the fake bundle at the system path while the host saw its own.
    assert env.store.bundle is not None
    assert seen.read_bytes() == env.store.bundle.read_bytes()
    assert box["out"].returncode == 0, box["out"].stderr
    assert during == before
    assert after == before
    # The client's mount table holds the mounts; ours (in the snapshots) never did.
    plan = env.mount_plan()
    mounted = {h for _s, h in plan.binds} | set(plan.masks) | {p for p, _s, _a in plan.grafts}
    assert mounted <= {line.split()[4] for line in mounts.read_text().splitlines()}
    assert not mounted & {line.split()[4] for line in before["mountinfo"].splitlines()}


# -- call: a forked child in the namespace ------------------------------------------------------


def fetch(url: str) -> bytes:
    """A client that relies on OpenSSL's defaults (/usr/lib/ssl -> /etc/ssl/certs)."""
    with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10) as r:
        data: bytes = r.read()
        return data


def test_call_honours_the_fake_store_only_under_system_paths(make_tlsenv: Maker) -> None:
    inside = make_tlsenv(system_paths=True)
    out = inside.call(lambda: fetch(inside.origin.url), env=NO_VARS)
    out.assert_ok()
    assert isinstance(out.value, bytes)
    assert out.value
    outside = make_tlsenv()
    outside.call(lambda: fetch(outside.origin.url), env=NO_VARS).assert_rejected()


def _status() -> str:
    return Path("/proc/self/status").read_text()


@pytest.mark.tlsenv(scenario="unreadable-file", system_paths=True)
def test_call_fault_bites_and_caps_dropped(tlsenv: TLSEnv) -> None:
    caps = caps_of(tlsenv.call(_status).value)
    if IS_ROOT:
        assert caps["CapEff"] & DAC == 0
        assert caps["CapBnd"] & DAC == 0
    else:
        assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == 0
    (applied,) = tlsenv.applied
    path = f"/etc/ssl/certs/{applied.paths[0].name}"
    out = tlsenv.call(lambda: Path(path).read_bytes())
    assert isinstance(out.exception, PermissionError)
    assert out.exception.errno == 13
    assert out.verdict is Verdict.CRASHED
    assert "namespace child" in "".join(getattr(out.exception, "__notes__", []))
    # Negative twin: the healthy bundle at its system path comes back as the value.
    assert tlsenv.store.bundle is not None
    got = tlsenv.call(lambda: Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    assert got.value == tlsenv.store.bundle.read_bytes()
    # And the drop is what makes the fault bite: the same child keeping its capabilities
    # (root's DAC ones; as non-root, all of them in its new user namespace) reads the file.
    kept = call_in_namespace(
        lambda: Path(path).read_bytes(), tlsenv.mount_plan(), timeout=10, drop="none"
    )
    assert kept.exception is None
    assert kept.value.startswith(b"-----BEGIN")


class _Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no pickling")


@pytest.mark.tlsenv(system_paths=True)
def test_call_brings_back_what_does_not_pickle(tlsenv: TLSEnv) -> None:
    def raise_chain() -> None:
        try:
            # A handshake with a context that trusts nothing: verification fails.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            origin = tlsenv.origin
            with socket.create_connection((origin.host, origin.port), timeout=10) as sock:
                ctx.wrap_socket(sock, server_hostname=origin.host).close()
        except ssl.SSLError as e:
            raise _Unpicklable("wrapped") from e

    out = tlsenv.call(raise_chain)
    assert isinstance(out.exception, RemoteError)
    assert "_Unpicklable('wrapped')" in str(out.exception)
    # The pickled cause still decides the verdict.
    assert isinstance(out.exception.__cause__, ssl.SSLCertVerificationError)
    out.assert_rejected()

    value = tlsenv.call(lambda: threading.Lock())
    assert isinstance(value.value, str)
    assert "lock" in value.value
    with pytest.raises(TypeError):
        pickle.dumps(threading.Lock())


@pytest.mark.tlsenv(scenario="proxy-refuses", trust="system")
def test_a_network_error_that_does_not_pickle_keeps_its_verdict(tlsenv: TLSEnv) -> None:
    # aiohttp's proxy error holds multidicts that do not pickle: it crosses back from the
    # namespace child by its class names, and is still the network error it was (FAILED,
    # as in env mode), not an exception escaping the client.
    pytest.importorskip("aiohttp")
    out = tlsenv.client("aiohttp").run(timeout=10)
    assert isinstance(out.exception, RemoteError)
    assert "aiohttp.client_exceptions.ClientHttpProxyError" in out.exception.remote_mro
    assert out.verdict == Verdict.FAILED, out.reason


@pytest.mark.tlsenv(system_paths=True)
def test_an_unpicklable_error_of_the_code_itself_is_still_a_crash(tlsenv: TLSEnv) -> None:
    # Twin: a non-network exception that does not pickle stays CRASHED.
    def fail() -> None:
        raise _Unpicklable("a bug in the code under test")

    out = tlsenv.call(fail)
    assert isinstance(out.exception, RemoteError)
    out.assert_verdict(Verdict.CRASHED)


@pytest.mark.tlsenv(system_paths=True)
def test_call_child_death_and_hang(tlsenv: TLSEnv) -> None:
    died = tlsenv.call(lambda: os._exit(3))
    died.assert_verdict(Verdict.CRASHED)
    assert isinstance(died.exception, RemoteError)
    assert "exit 3" in str(died.exception)
    hung = tlsenv.call(lambda: time.sleep(60), timeout=0.5)
    hung.assert_verdict(Verdict.HUNG)
    # (the leak checker fails this test if the killed child was not reaped)


# -- errors ----------------------------------------------------------------------------------


def test_bad_value_is_a_config_error() -> None:
    from pytest_tlsenv.scenarios import resolve

    with pytest.raises(ConfigError, match="system_paths must be True or False"):
        resolve(system_paths="yes")
    assert resolve(system_paths=True).system_paths


@pytest.mark.tlsenv(system_paths=True)
def test_missing_client_raises_like_popen(tlsenv: TLSEnv) -> None:
    with pytest.raises(FileNotFoundError):
        tlsenv.run(["tlsenv-no-such-client"])


def _mount_namespaces(settle: set[str] | None = None) -> set[str]:
    """The mount namespace of every thread of this process.

    With ``settle``, for up to 2 s until it is that set: a joined thread's task may outlive
    ``join()`` by a moment (the join returns when its Python state goes, before the exit).
    """
    deadline = time.monotonic() + (2.0 if settle is not None else 0.0)
    while True:
        seen = set()
        for tid in os.listdir("/proc/self/task"):
            try:
                seen.add(os.readlink(f"/proc/self/task/{tid}/ns/mnt"))
            except FileNotFoundError:  # that thread ended meanwhile
                continue
        if settle is None or seen == settle or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)


@pytest.mark.tlsenv(scenario="unreadable-file", system_paths=True)
def test_run_leaves_this_process_in_its_own_namespace(tlsenv: TLSEnv) -> None:
    # As root the namespace is made by the thread that forks the client: it must go with
    # that thread, and no other thread of pytest may ever see the store at /etc/ssl.
    before = {os.readlink("/proc/thread-self/ns/mnt")}
    assert _mount_namespaces(settle=before) == before
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # a thread that lives through the run, as the servers' threads do
        while not stop.wait(0.001):
            seen.append(os.readlink("/proc/thread-self/ns/mnt"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        out = tlsenv.run(["readlink", "/proc/self/ns/mnt"])
    finally:
        stop.set()
        watcher.join()
    assert out.returncode == 0, out.stderr
    # The twin: the client was in another mount namespace.
    assert out.stdout.strip() not in before
    assert _mount_namespaces(settle=before) == before
    assert set(seen) <= before
    (applied,) = tlsenv.applied
    assert not os.path.lexists(f"/etc/ssl/certs/{applied.paths[0].name}")


def test_setup_failure_raises_and_names_the_step(tmp_path: Path) -> None:
    from pytest_tlsenv.errors import TLSEnvError
    from pytest_tlsenv.namespace import MountPlan
    from pytest_tlsenv.runner import run_process

    target = tmp_path / "target"
    target.mkdir()
    good = MountPlan(binds=((str(target), str(target)),), stage=str(tmp_path / "stage"))
    done = run_process(
        ["true"], environ={"PATH": "/usr/bin:/bin"}, timeout=20, launcher=good.launcher
    )
    assert done.returncode == 0, done.stderr  # the twin: the same plan with a real source
    bad = MountPlan(binds=((str(tmp_path / "absent"), str(target)),), stage=str(tmp_path / "stage"))
    before = {os.readlink("/proc/thread-self/ns/mnt")}
    # No client ran, so there is no exit status to judge: an error, naming the mount.
    with pytest.raises(TLSEnvError, match=r"namespace setup failed: .*mount\(.*absent"):
        run_process(["true"], environ={"PATH": "/usr/bin:/bin"}, timeout=20, launcher=bad.launcher)
    assert _mount_namespaces(settle=before) == before


UNAVAILABLE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_tlsenv.namespace import SystemPathsUnavailableError, probe
    from pytest_tlsenv.scenarios import resolve
    from pytest_tlsenv.tlsenv import TLSEnv
    print("reason:", probe())
    try:
        TLSEnv(resolve(system_paths=True), pki=None, root=Path(sys.argv[1]))
    except SystemPathsUnavailableError as e:
        print("error:", e)
    """
)


def test_unavailable_namespaces_fail_clearly(tmp_path: Path) -> None:
    # A real machine without user namespaces for us: cap them at one below the current user
    # namespace (a limit applies to all nested ones), then run as a non-root uid inside.
    script = tmp_path / "probe.py"
    script.write_text(UNAVAILABLE)
    inner = (
        "echo 1 > /proc/sys/user/max_user_namespaces && "
        f'exec unshare --user --map-user=1000 --map-group=1000 "$0" "{script}" "{tmp_path}"'
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", inner, sys.executable],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.returncode == 0, done.stderr
    reason = done.stdout.split("reason: ", 1)[1].splitlines()[0]
    assert reason != "None"
    assert "unshare" in reason
    assert "error: system_paths=True needs a private mount namespace" in done.stdout
    assert "host store is never used instead" in done.stdout
    assert not list(tmp_path.glob("store"))  # nothing was built


# -- the plugin option ---------------------------------------------------------------------

OPTION_TEST = """
import pytest

NO_VARS = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}

def test_x(tlsenv, request):
    out = tlsenv.run(["wget", "-O", "-", tlsenv.origin.url], env=NO_VARS)
    if request.config.getoption("tlsenv_system_paths"):
        assert tlsenv.system_paths
        out.assert_ok()
    else:
        assert not tlsenv.system_paths
        out.assert_rejected()
"""


@pytest.mark.parametrize("option", [True, False])
def test_option_turns_system_paths_on(pytester: pytest.Pytester, option: bool) -> None:
    pytester.makepyfile(OPTION_TEST)
    result = pytester.runpytest(*(["--tlsenv-system-paths"] if option else []))
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "usage: nsplan.py --scenario JSON --store DIR --stage DIR -- ARGV..."),
        (["--scenario", "x", "--", "true"], 2, "usage: nsplan.py"),
        (["--scenario", "{tmp}/none.json", "--store", "{tmp}", "--stage", "{tmp}/s", "--", "true"],
         125, "tlsenv-nsplan: [Errno 2] No such file or directory"),
    ],
)  # fmt: skip
def test_bundle_plan_helper_says_what_is_wrong(
    tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    # What repro.sh runs for a system-paths bundle (pytest_tlsenv/_nsplan.py as nsplan.py).
    helper = Path(pytest_tlsenv.__file__).parent / "_nsplan.py"
    argv = [sys.executable, "-I", "-S", str(helper), *(a.format(tmp=tmp_path) for a in args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == status
    assert message in done.stderr
