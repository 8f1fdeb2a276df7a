"""Reproduction bundles: a scenario exported so that it runs without pytest.

Every bundle is *run* here: its repro.sh in a clean environment (``env -i PATH=/usr/bin:/bin``),
as the invoking user (root: the script drops CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH with
setpriv) and, when the suite runs as root, as uid 65534 from a world-traversable copy. Each
verdict that reproduces has a twin that gives another verdict in the same bundle (another
client version, another command), so "the bundle says CRASHED" cannot be a constant.
The Dockerfile is checked statically: no Docker engine runs here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from commands import uv_pip_install_argv
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pytest_tlsenv import TLSEnv, Verdict
from pytest_tlsenv.faults import FAULTS, PLACEMENTS
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.proxyenv import ENVIRONMENTS
from pytest_tlsenv.repro import parse_dockerfile_runs, parse_store_commands, stage
from pytest_tlsenv.scenarios import GROUPS, Spec, resolve
from pytest_tlsenv.store import LAYOUTS

IS_ROOT = os.geteuid() == 0
NOBODY = 65534
CLEAN_PATH = "/usr/bin:/bin"
HAS_CURL = shutil.which("curl") is not None
needs_curl = pytest.mark.skipif(not HAS_CURL, reason="curl is not installed")
# Who runs repro.sh: the invoking user (as root, repro.sh drops the DAC capabilities itself),
# and a real non-root user, which needs root to switch to.
WHO = [
    "invoker",
    pytest.param(
        "nobody",
        marks=pytest.mark.skipif(not IS_ROOT, reason="switching to uid 65534 needs root"),
    ),
]
KEY_MARKERS = (b"PRIVATE KEY-----",)


# -- running a bundle -------------------------------------------------------------------------


def _chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.chown(name, uid, uid, follow_symlinks=False)


def run_bundle(
    bundle: Path, who: str, tmp: Path, *, client: str | None = None
) -> tuple[str, str, int]:
    """Run ``bundle``'s repro.sh in a clean environment; return (verdict, output, status)."""
    if who == "invoker":
        home, tmpdir = tmp / "home", tmp / "tmpdir"
        home.mkdir(exist_ok=True)
        tmpdir.mkdir(exist_ok=True)
        env = {"PATH": CLEAN_PATH, "HOME": str(home), "TMPDIR": str(tmpdir)}
        if client:
            env["TLSENV_CLIENT"] = client
        argv = ["sh", str(bundle / "repro.sh")]
        return _finish(
            subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180), tmpdir
        )
    # uid 65534 gets its own world-traversable copy, as a maintainer downloading it would.
    box = Path(tempfile.mkdtemp(prefix="tlsenv-repro-test-"))
    try:
        os.chmod(box, 0o755)
        shutil.copytree(bundle, box / "bundle", symlinks=True)
        extra = []
        if client:
            shutil.copy2(client, box / "client")
            extra.append(f"TLSENV_CLIENT={box / 'client'}")
        _chown_tree(box, NOBODY)
        argv = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "env",
            "-i",
            f"PATH={CLEAN_PATH}",
            f"HOME={box}",
            f"TMPDIR={box}",
            *extra,
            "sh",
            str(box / "bundle" / "repro.sh"),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        return _finish(done, box)
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(box)], check=False)
        shutil.rmtree(box)


def _finish(done: subprocess.CompletedProcess[str], tmpdir: Path) -> tuple[str, str, int]:
    text = done.stdout + done.stderr
    verdicts = re.findall(r"^verdict: ([A-Z]+) - ", done.stdout, re.MULTILINE)
    assert verdicts, f"repro.sh printed no verdict (status {done.returncode}):\n{text}"
    # repro.sh removes its work dir (store, server logs, sandboxes) on the way out.
    left = [p.name for p in tmpdir.iterdir() if p.name.startswith("tlsenv-repro.")]
    assert not left, f"repro.sh left {left} behind"
    return verdicts[-1], text, done.returncode


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_tlsenv", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        check=False,
    )


# -- static checks every bundle passes ----------------------------------------------------------


def check_dockerfile(bundle: Path, *, client_install: str) -> None:
    text = (bundle / "Dockerfile").read_text()
    lines = text.splitlines()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms
    assert froms[0].split()[1].startswith(("debian:", "ubuntu:")), froms
    copied: set[str] = set()
    for line in lines:
        if line.startswith("COPY "):
            words = [w for w in line.split()[1:] if not w.startswith("--")]
            for src in words[:-1]:
                assert (bundle / src).exists(), f"COPY source {src} is not in the bundle"
                copied.add(src.rstrip("/"))
    # Everything repro.sh needs is in the image.
    needed = {p.name for p in bundle.iterdir()} - {"Dockerfile", "ISSUE.md"}
    assert needed <= copied, f"not copied into the image: {needed - copied}"
    # The store is built by the same commands as repro.sh's, from the same single list.
    repro = (bundle / "repro.sh").read_text()
    commands = json.loads((bundle / "scenario.json").read_text())["store"]["commands"]
    assert parse_dockerfile_runs(text) == parse_store_commands(repro) == "\n".join(commands)
    assert any(c.startswith("mkdir -p") for c in commands)
    # A non-root user runs the reproduction, with the client installed.
    users = [i for i, line in enumerate(lines) if line.startswith("USER ")]
    cmd = [i for i, line in enumerate(lines) if line.startswith("CMD ")]
    assert users
    assert cmd
    assert users[-1] < cmd[-1]
    assert lines[users[-1]].split()[1] not in ("root", "0")
    assert "repro.sh" in lines[cmd[-1]]
    assert client_install in text


def check_keys(bundle: Path, session: PKI) -> None:
    """Private keys: only under throwaway-keys/, only for the bundle's own server leaves, and
    none of them (nor any CA) is the session's."""
    session_keys = {
        a.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for a in [*session.authorities.values(), *session._decoys]
    }
    for keyfile in session.directory.rglob("*.key"):
        key = serialization.load_pem_private_key(keyfile.read_bytes(), None)
        session_keys.add(
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    assert len(session_keys) >= 4
    session_cas = {a.cert_pem for a in session.authorities.values()}
    found = []
    for path in bundle.rglob("*"):
        if path.is_file() and any(m in path.read_bytes() for m in KEY_MARKERS):
            found.append(path)
    assert found, "the servers need their throwaway keys"
    leaves = {}
    for cert_path in (bundle / "certs").glob("*.pem"):
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        assert cert_path.read_bytes() not in session_cas, f"{cert_path.name} is a session CA"
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        leaves[spki] = (cert_path.name, is_ca)
    for path in found:
        assert path.parent.name == "throwaway-keys", f"private key outside throwaway-keys: {path}"
        assert stat_mode(path) == 0o600
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert spki not in session_keys, f"{path.name} is a key of the session's PKI"
        assert spki in leaves, f"{path.name} belongs to no certificate of the bundle"
        assert leaves[spki][1] is False, f"{path.name} is the key of a CA"
    readme = (bundle / "throwaway-keys" / "README").read_text()
    assert "THROWAWAY TEST KEYS" in readme


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def check_issue(bundle: Path, forbidden: list[str]) -> str:
    text = (bundle / "ISSUE.md").read_text()
    for needle in [*forbidden, "/root", "/tmp/pytest-of-", str(Path.home())]:
        assert needle not in text, f"ISSUE.md shows a path of this machine: {needle}"
    for heading in ("## Environment", "## Steps to reproduce", "## Expected", "## Actual"):
        assert heading in text
    return text


# -- uv 0.2.29: the seed bug --------------------------------------------------------------------


def uv_install(tlsenv: TLSEnv, uv: str):  # type: ignore[no-untyped-def]
    # The command of tests/test_uv_5448.py.
    return tlsenv.run(
        uv_pip_install_argv(tlsenv, uv),
        env={"UV_NATIVE_TLS": "1"},
    )


@pytest.mark.slow
@pytest.mark.nonroot
@pytest.mark.tlsenv(scenario="unreadable-file")
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("source", ["tlsenv.repro", "cli"])
def test_uv_0_2_29_crash_reproduces_without_pytest(  # type: ignore[no-untyped-def]
    tlsenv: TLSEnv, uv_pinned, tmp_path: Path, tmp_path_factory, who: str, source: str
) -> None:
    uv = uv_pinned("0.2.29")
    if source == "tlsenv.repro":  # from a test, after its failing run
        uv_install(tlsenv, uv).assert_verdict(Verdict.CRASHED)
        bundle = tlsenv.repro(tmp_path / "bundle")
    else:  # from the command line, the cached uv binary in CMD
        argv = ["pip", "install", "--python", "{venv}", "--index-url", "{index_url}"]
        done = cli(
            "repro", "unreadable-file", "--env", "UV_NATIVE_TLS=1", "--out", "bundle",
            "--", uv, *argv, "tlsenv-probe",
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("unreadable-file: CRASHED - "), done.stdout
        bundle = tmp_path / "bundle"

    verdict, text, status = run_bundle(bundle, who, tmp_path, client=uv)
    assert verdict == "CRASHED", text
    assert "panicked at" in text
    assert "Permission denied" in text or "PermissionDenied" in text
    assert status == 1  # CRASHED is outside the expected {OK}
    # Twin: the very same bundle with uv 0.2.28 connects, so CRASHED is 0.2.29's doing.
    verdict, text, status = run_bundle(bundle, who, tmp_path, client=uv_pinned("0.2.28"))
    assert (verdict, status) == ("OK", 0), text

    check_dockerfile(bundle, client_install="pip install --no-cache-dir uv==0.2.29")
    assert 'TLSENV_CLIENT="uv" ' in (bundle / "Dockerfile").read_text()
    check_keys(bundle, tlsenv.pki)
    basetemp = str(tmp_path_factory.getbasetemp())
    issue = check_issue(bundle, [basetemp, str(tlsenv.root), uv])
    assert "uv 0.2.29" in issue
    assert "CRASHED" in issue
    assert "panicked at" in issue
    assert "UV_NATIVE_TLS=1" in issue
    data = json.loads((bundle / "scenario.json").read_text())
    assert data["expected"] == ["OK"]
    assert data["spec"]["faults"] == ["unreadable-file"]
    assert data["faults"][0]["placement"] == "decoy"
    (run,) = data["runs"]
    assert run["verdict"] == "CRASHED"
    assert run["argv"][1:] == [
        "pip",
        "install",
        "--python",
        "{venv}",
        "--index-url",
        "{index_url}",
        "tlsenv-probe",
    ]
    assert run["env"]["UV_NATIVE_TLS"] == "1"
    assert run["env"]["SSL_CERT_DIR"] == "{store}/etc/ssl/certs"
    assert data["client"]["pip"] == "uv==0.2.29"


# -- store faults with curl, from the command line ------------------------------------------------

CURL_CAPATH = ["curl", "-fsS", "--max-time", "10", "--capath", "{store}/etc/ssl/certs", "{url}"]


@needs_curl
@pytest.mark.nonroot
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(
    ("fault", "verdicts"),
    [
        # OpenSSL stops at the first slot that fails to load: the CA is not found.
        ("dangling-symlink", {"REJECTED"}),
        # The uv 5448 file on the CA's own slot. curl 7.88/OpenSSL 3.0 (measured here) exit 35
        # with "system library::Permission denied", but it sent the origin "unknown ca": the
        # session and repro.sh both take the server's account, REJECTED.
        ("unreadable-file", {"REJECTED"}),
    ],
)
def test_store_fault_with_curl_reproduces(
    tmp_path: Path, fault: str, verdicts: set[str], who: str
) -> None:
    done = cli(
        "repro", fault, "--placement", "shadow", "--out", "b", "--", *CURL_CAPATH, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    recorded = re.match(rf"{fault}@shadow: ([A-Z]+) - ", done.stdout)
    assert recorded, done.stdout
    assert recorded.group(1) in verdicts
    bundle = tmp_path / "b"
    verdict, text, _ = run_bundle(bundle, who, tmp_path)
    assert verdict == recorded.group(1), text
    check_dockerfile(bundle, client_install=" curl ")
    check_issue(bundle, [str(tmp_path)])
    # Twin: the same command in the healthy store is OK, in the bundle as well.
    good = tmp_path / "good"
    assert cli("repro", "good", "--out", "good", "--", *CURL_CAPATH, cwd=tmp_path).returncode == 0
    verdict, text, status = run_bundle(good, who, tmp_path)
    assert (verdict, status) == ("OK", 0), text


# -- interception: mitm-untrusted with curl -------------------------------------------------------


@needs_curl
@pytest.mark.parametrize("who", WHO)
def test_mitm_untrusted_with_curl_reproduces(tmp_path: Path, who: str) -> None:
    store_flags = ["--cacert", "{store}/etc/ssl/certs/ca-certificates.crt"]
    done = cli(
        "repro",
        "mitm-untrusted",
        "--out",
        "b",
        "--",
        "curl",
        "-fsS",
        *store_flags,
        "{url}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("mitm-untrusted: REJECTED - "), done.stdout
    bundle = tmp_path / "b"
    verdict, text, status = run_bundle(bundle, who, tmp_path)
    assert (verdict, status) == ("REJECTED", 0), text
    data = json.loads((bundle / "scenario.json").read_text())
    assert data["servers"]["proxy"]["mode"] == "intercept"
    assert data["runs"][0]["env"]["https_proxy"] == "{proxy_url}"
    assert (bundle / "throwaway-keys" / "forged-origin-leaf.key").exists()
    check_dockerfile(bundle, client_install=" curl ")
    # Twin: curl -k sends its request through the forged certificate: the bundle's proxy logs
    # it and the verdict is LEAKED, as in the session.
    done = cli(
        "repro", "mitm-untrusted", "--out", "k", "--", "curl", "-fsSk", "{url}", cwd=tmp_path
    )
    assert done.stdout.startswith("mitm-untrusted: LEAKED - "), done.stdout
    verdict, text, status = run_bundle(tmp_path / "k", who, tmp_path)
    assert (verdict, status) == ("LEAKED", 1), text


@needs_curl
# The proxy environment (HTTPS and SOCKS proxies, NO_PROXY) has no bundle: test_proxyenv.py.
@pytest.mark.parametrize(
    "scenario", [*GROUPS["server"], *(p for p in GROUPS["proxy"] if p not in ENVIRONMENTS)]
)
def test_server_and_proxy_scenarios_reproduce_with_curl(tmp_path: Path, scenario: str) -> None:
    # Each server variant's leaf and each proxy mode, rebuilt with the bundle's own PKI by
    # server.py, gives curl the verdict it gave in the session.
    argv = ["curl", "-fsS", "--cacert", "{store}/etc/ssl/certs/ca-certificates.crt", "{url}"]
    done = cli("repro", scenario, "--out", "b", "--", *argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    recorded = re.match(rf"{scenario}: ([A-Z]+) - ", done.stdout)
    assert recorded, done.stdout
    verdict, text, _ = run_bundle(tmp_path / "b", "invoker", tmp_path)
    assert verdict == recorded.group(1), text
    if scenario == "proxy-auth-required":
        # Twin: with the credentials the same proxy lets curl through.
        argv[1:1] = ["--proxy", "{proxy_auth_url}"]
        cli("repro", scenario, "--out", "auth", "--", *argv, cwd=tmp_path)
        verdict, text, _ = run_bundle(tmp_path / "auth", "invoker", tmp_path)
        assert (recorded.group(1), verdict) == ("FAILED", "OK"), text


# -- system paths: the store at /etc/ssl, in the bundle too ---------------------------------------

HAS_WGET = shutil.which("wget") is not None


def _host_trust_listing() -> dict[str, tuple[int, int, int]]:
    found = {}
    for top in ("/etc/ssl/certs", "/usr/local/share/ca-certificates"):
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                st = os.lstat(os.path.join(dirpath, name))
                found[os.path.join(dirpath, name)] = (st.st_mode, st.st_uid, st.st_size)
    return found


@pytest.mark.skipif(not HAS_WGET, reason="wget is not installed")
@pytest.mark.parametrize("who", WHO)
def test_system_paths_bundle_shows_the_store_at_the_real_paths(tmp_path: Path, who: str) -> None:
    # Debian's wget (GnuTLS) reads only /etc/ssl/certs/ca-certificates.crt and no variable: a
    # bundle reproduces what it did only by showing the store there, as the session did.
    wget = ["wget", "-O", "-", "{url}"]
    done = cli("repro", "good", "--system-paths", "--out", "b", "--", *wget, cwd=tmp_path)
    assert done.stdout.startswith("good: OK - "), done.stdout + done.stderr
    bundle = tmp_path / "b"
    assert {"nsplan.py", "nsexec.py"} <= {p.name for p in bundle.iterdir()}
    before = _host_trust_listing()
    verdict, text, status = run_bundle(bundle, who, tmp_path)
    assert (verdict, status) == ("OK", 0), text
    assert _host_trust_listing() == before  # the host never saw the mounts
    check_dockerfile(bundle, client_install=" wget ")
    assert "--cap-add SYS_ADMIN" in (bundle / "Dockerfile").read_text()
    assert "through a private mount namespace; `repro.sh` does the same" in check_issue(
        bundle, [str(tmp_path)]
    )
    # Twin: the same command exported without system paths meets the host's store instead.
    done = cli("repro", "good", "--out", "host", "--", *wget, cwd=tmp_path)
    assert done.stdout.startswith("good: REJECTED - "), done.stdout + done.stderr
    assert not (tmp_path / "host" / "nsplan.py").exists()
    verdict, text, status = run_bundle(tmp_path / "host", who, tmp_path)
    assert (verdict, status) == ("REJECTED", 1), text


@pytest.mark.skipif(not HAS_WGET, reason="wget is not installed")
@pytest.mark.parametrize(
    ("trust", "verdict"),
    # Debian's wget reads no variable, only /etc/ssl/certs/ca-certificates.crt: OK only when
    # the store is shown there (system mode), REJECTED with the variables (the twin).
    [("system", "OK"), ("env", "REJECTED")],
)
def test_bundle_records_and_replays_the_trust_mode(
    make_tlsenv: Callable[..., TLSEnv], tmp_path: Path, trust: str, verdict: str
) -> None:
    env = make_tlsenv("good", trust=trust)
    wget = ["wget", "-O", "-", env.origin.url]
    assert env.run(wget).verdict == verdict
    bundle = env.repro(tmp_path / "b")
    data = json.loads((bundle / "scenario.json").read_text())
    assert data["trust"] == trust
    # The system mode needs the namespace in the bundle as in the session; env mode does not.
    assert data["system_paths"] is (trust == "system")
    assert (bundle / "nsplan.py").exists() is (trust == "system")
    script = (bundle / "repro.sh").read_text()
    assert f"# Trust mode: {trust}: " in script
    assert f"- trust mode: `{trust}`: " in check_issue(bundle, [str(tmp_path)])
    replayed, text, status = run_bundle(bundle, "invoker", tmp_path)
    assert f"tlsenv: trust mode {trust}\n" in text
    # repro.sh's status says whether the verdict is in the expected set (OK, for good).
    assert (replayed, status) == (verdict, 0 if verdict == "OK" else 1), text


def test_cli_repro_takes_the_trust_mode(tmp_path: Path) -> None:
    done = cli(
        "repro", "good", "--trust", "flags", "--out", "b", "--",
        "curl", "-fsS", "--cacert", "{store}/etc/ssl/certs/ca-certificates.crt", "{url}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.stdout.startswith("good: OK - "), done.stdout + done.stderr
    data = json.loads((tmp_path / "b" / "scenario.json").read_text())
    assert (data["trust"], data["spec"]["trust"]) == ("flags", "flags")
    # No trust variable reaches a flags-mode client, in the session or in the bundle.
    assert not {"SSL_CERT_FILE", "SSL_CERT_DIR"} & set(data["runs"][-1]["env"])
    verdict, text, status = run_bundle(tmp_path / "b", "invoker", tmp_path)
    assert (verdict, status) == ("OK", 0), text
    # Twin: the same command without its option meets no store and is refused.
    done = cli("repro", "good", "--trust", "flags", "--out", "c", "--", "curl", "-fsS", "{url}",
               cwd=tmp_path)  # fmt: skip
    assert done.stdout.startswith("good: REJECTED - "), done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.nonroot
@pytest.mark.tlsenv(scenario="unreadable-file", system_paths=True)
@pytest.mark.parametrize("who", WHO)
def test_uv_5448_at_the_real_path_reproduces_without_pytest(  # type: ignore[no-untyped-def]
    tlsenv: TLSEnv, uv_pinned, tmp_path: Path, who: str
) -> None:
    # The seed report exactly: no SSL_CERT_* at all, uv finds /etc/ssl/certs by itself and
    # meets the unreadable file there. The bundle rebuilds that on the maintainer's host.
    uv = uv_pinned("0.2.29")
    no_vars = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None, "UV_NATIVE_TLS": "1"}
    tlsenv.run(uv_pip_install_argv(tlsenv, uv), env=no_vars).assert_verdict(Verdict.CRASHED)
    bundle = tlsenv.repro(tmp_path / "bundle")
    (run,) = json.loads((bundle / "scenario.json").read_text())["runs"]
    assert "SSL_CERT_DIR" not in run["env"]
    assert "SSL_CERT_FILE" not in run["env"]
    verdict, text, status = run_bundle(bundle, who, tmp_path, client=uv)
    assert (verdict, status) == ("CRASHED", 1), text
    assert "panicked at" in text
    # Twin: the newest uv skips the entry in the very same bundle.
    verdict, text, status = run_bundle(bundle, who, tmp_path, client=uv_pinned("0.13.9"))
    assert (verdict, status) == ("OK", 0), text


# -- the client on the maintainer's machine ------------------------------------------------------

CURL_BUNDLE_ARGS = ["-fsS", "--cacert", "{store}/etc/ssl/certs/ca-certificates.crt", "{url}"]


def _raw_bundle_run(bundle: Path, tmp: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": CLEAN_PATH, "HOME": str(tmp), "TMPDIR": str(tmp), **extra}
    argv = ["sh", str(bundle / "repro.sh")]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)


def _exported_then_removed(tmp_path: Path, relative: str) -> tuple[Path, Path]:
    """A bundle recorded with a copy of curl at tmp_path/relative, which is then deleted (the
    maintainer's machine does not have the reporter's paths)."""
    client = tmp_path / relative
    client.parent.mkdir(parents=True)
    shutil.copy2(shutil.which("curl") or "curl", client)
    done = cli("repro", "good", "--out", "b", "--", str(client), *CURL_BUNDLE_ARGS, cwd=tmp_path)
    assert done.stdout.startswith("good: OK - "), done.stdout + done.stderr
    client.unlink()
    return tmp_path / "b", client


@needs_curl
def test_bundle_falls_back_to_the_clients_name_on_path(tmp_path: Path) -> None:
    bundle, gone = _exported_then_removed(tmp_path, "elsewhere/curl")
    verdict, text, status = run_bundle(bundle, "invoker", tmp_path)
    assert (verdict, status) == ("OK", 0), text
    assert f"tlsenv: {gone} is not on this machine: using /usr/bin/curl" in text
    # Twins: an explicit TLSENV_CLIENT that does not exist is an error, never a fallback; a
    # client found neither at its path nor by name tells how to point at one.
    done = _raw_bundle_run(bundle, tmp_path, TLSENV_CLIENT=str(gone))
    assert done.returncode == 2
    assert f"tlsenv: TLSENV_CLIENT={gone} is not an executable" in done.stderr
    assert "verdict:" not in done.stdout
    bundle, gone = _exported_then_removed(tmp_path / "x", "elsewhere/tlsenv-no-such-client")
    done = _raw_bundle_run(bundle, tmp_path)
    assert done.returncode == 2
    assert f"client {gone} not found; set TLSENV_CLIENT=/path/to/tlsenv-no-such-client" in (
        done.stderr
    )


def _script_wheel(directory: Path, project: str, version: str, script: str, body: bytes) -> None:
    """A wheel of ``project`` that installs ``bin/script`` (executable), as uv's does."""
    import base64
    import hashlib
    import zipfile

    dist = f"{project.replace('-', '_')}-{version}"
    files = {
        f"{dist}.data/scripts/{script}": body,
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{name},sha256="
        f"{base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}"
        for name, data in files.items()
    ]
    files[f"{dist}.dist-info/RECORD"] = (
        "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    ).encode()
    with zipfile.ZipFile(directory / f"{dist}-py3-none-any.whl", "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if "/scripts/" in name else 0o100644) << 16
            zf.writestr(info, data)


@needs_curl
def test_bundle_installs_a_pinned_client_it_does_not_find(tmp_path: Path) -> None:
    # Recorded with a client pinned the way pinned() caches them (<cache>/clients/NAME-VERSION/
    # bin/EXE): the bundle knows its requirement and installs it with pip when the path is not
    # there. The package is a wheel from a local directory (no index is contacted).
    bundle, _ = _exported_then_removed(tmp_path, "clients/tlsenv-fakecurl-1.0/bin/fakecurl")
    data = json.loads((bundle / "scenario.json").read_text())
    assert data["client"]["pip"] == "tlsenv-fakecurl==1.0"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _script_wheel(wheels, "tlsenv-fakecurl", "1.0", "fakecurl", b'#!/bin/sh\nexec curl "$@"\n')
    offline = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
    done = _raw_bundle_run(bundle, tmp_path, PIP_FIND_LINKS=str(wheels), **offline)
    assert "installing tlsenv-fakecurl==1.0 into the work dir" in done.stdout, done.stderr
    assert re.search(r"^verdict: OK - ", done.stdout, re.MULTILINE), done.stdout + done.stderr
    assert done.returncode == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tlsenv-repro.")]
    # Twin: where pip cannot get it, the bundle says so and how to proceed; no verdict.
    done = _raw_bundle_run(bundle, tmp_path, **offline)
    assert done.returncode == 2
    assert "could not install tlsenv-fakecurl==1.0; set TLSENV_CLIENT=/path/to/fakecurl" in (
        done.stderr
    )
    assert "verdict:" not in done.stdout


# -- the store commands are the store ------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            item: tuple[object, ...] = (oct(st.st_mode), st.st_uid, st.st_gid)
            if os.path.islink(path):
                item += (os.readlink(path),)
            elif path.is_file() and os.access(path, os.R_OK):
                data = path.read_bytes()
                # A fresh throwaway key each time: compare what it is, not its bytes.
                item += (data.splitlines()[0] if b"PRIVATE KEY" in data else data,)
            out[str(path.relative_to(root))] = item
    return out


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Outside the basetemp: fault-owned files and FIFOs exist here until the end of the test.
    path = Path(tempfile.mkdtemp(prefix="tlsenv-stage-test-"))
    yield path
    subprocess.run(["chmod", "-R", "u+rwX", str(path)], check=False)
    shutil.rmtree(path)


def _rebuild_matches(spec: Spec, scratch: Path) -> None:
    # The bundle's store is built by shell lines (Applied.shell and the healthy-store walk);
    # run them, and compare with the store the Python code built: kind, mode, owner, target,
    # content.
    staged = stage(spec, scratch / "stage")
    try:
        expected = _snapshot(staged.store_root)
        certs = scratch / "certs"
        certs.mkdir()
        for name, data in staged.certs.items():
            (certs / name).write_bytes(data)
        replay = scratch / "replay"
        done = subprocess.run(
            ["sh", "-c", "set -e\n" + "\n".join(staged.commands)],
            env={"PATH": CLEAN_PATH, "STORE": str(replay), "CERTS": str(certs)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert _snapshot(replay) == expected
        # Not vacuous: at least the bundle and its two parents (bundle-only has nothing else).
        assert len(expected) >= 3
    finally:
        staged.close()


@pytest.mark.nonroot
@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("fault", [*FAULTS, "scenario:uv-5448", "scenario:mitm-trusted"])
def test_store_commands_rebuild_the_same_store(scratch: Path, fault: str, placement: str) -> None:
    if fault.startswith("scenario:"):
        spec = resolve(fault.removeprefix("scenario:"), placement=placement)
    else:
        spec = resolve(faults=[fault], placement=placement)
    _rebuild_matches(spec, scratch)


@pytest.mark.nonroot
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_store_commands_rebuild_every_layout(scratch: Path, layout: str) -> None:
    faults = ["unreadable-file"] if LAYOUTS[layout].cert_dir else ["unreadable-bundle"]
    _rebuild_matches(resolve(faults=faults, layout=layout, extra_cas=3), scratch)


def test_big_store_is_one_docker_layer(tlsenv_pki: PKI, tmp_path: Path) -> None:
    # 200 filler CAs: one RUN heredoc (Docker allows 127 layers), still the same commands.
    with TLSEnv.build(resolve(extra_cas=200), pki=tlsenv_pki, root=tmp_path / "s") as env:
        bundle = env.repro(tmp_path / "b")
    dockerfile = (bundle / "Dockerfile").read_text()
    assert sum(line.startswith("RUN ") for line in dockerfile.splitlines()) < 10
    assert dockerfile.startswith("# syntax=docker/dockerfile:1\n")
    check_dockerfile(bundle, client_install="python3")


# -- the bundle's server -------------------------------------------------------------------------


def test_server_script_needs_only_the_standard_library(tlsenv: TLSEnv, tmp_path: Path) -> None:
    bundle = tlsenv.repro(tmp_path / "b")
    tree = ast.parse((bundle / "server.py").read_text())
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}, modules
    assert "ssl" in modules  # the parse is real


@pytest.mark.parametrize("who", WHO)
def test_bundle_without_runs_uses_python_as_a_stand_in(
    tlsenv: TLSEnv, tmp_path: Path, who: str
) -> None:
    # A test that only used tlsenv.call: the bundle runs python3's ssl instead.
    def fetch() -> bytes:
        ctx = ssl.create_default_context()
        with urllib.request.urlopen(tlsenv.origin.url, context=ctx, timeout=10) as r:
            data: bytes = r.read()
            return data

    tlsenv.call(fetch).assert_ok()
    bundle = tlsenv.repro(tmp_path / "b")
    verdict, text, status = run_bundle(bundle, who, tmp_path)
    assert (verdict, status) == ("OK", 0), text
    assert "Python's ssl stands in" in (bundle / "repro.sh").read_text()
    check_keys(bundle, tlsenv.pki)


def test_serve_starts_the_bundles_origin(
    tlsenv: TLSEnv, tlsenv_pki: object, tmp_path: Path
) -> None:
    bundle = tlsenv.repro(tmp_path / "b")
    state = tmp_path / "state"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_tlsenv",
            "serve",
            "--bundle",
            str(bundle),
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            deadline = time.monotonic() + 20
            while not (state / "ports.sh").exists():
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
            port = int((state / "ports.sh").read_text().split("ORIGIN_PORT=")[1].split()[0])
            url = f"https://localhost:{port}/"
            ctx = ssl.create_default_context(cafile=str(bundle / "certs" / "trusted.pem"))
            with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
                assert r.read() == b"tlsenv origin: ok\n"
            with urllib.request.urlopen(url + "simple/tlsenv-probe/", context=ctx, timeout=10) as r:
                assert b"tlsenv_probe-0.1-py3-none-any.whl" in r.read()
            log = (state / "origin.log").read_text().splitlines()
            assert [json.loads(line)["path"] for line in log] == ["/", "/simple/tlsenv-probe/"]
            # Twin: the session's CA does not open it: the bundle has its own PKI.
            session_ctx = ssl.create_default_context(
                cadata=tlsenv.pki.authorities["trusted"].cert_pem.decode()
            )
            with pytest.raises(urllib.error.URLError) as refused:
                urllib.request.urlopen(url, context=session_ctx, timeout=10).close()
            assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert proc.returncode == 0


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["repro", "good"], "give the client command after --"),
        (["repro", "no-such-scenario", "--", "curl", "{url}"], "unknown scenario"),
        (["repro", "good", "--env", "NOEQUALS", "--", "curl"], "--env takes NAME=VALUE"),
        (["repro", "good", "--placement", "sideways", "--", "curl"], "placement"),
        (["repro", "good", "--", "curl", "{proxy_url}"], "has no proxy"),
        (["repro", "good", "--", "curl", "{ur}"], "unknown placeholder {ur}"),
        (["repro", "good", "--out", "taken", "--", "curl"], "is not an empty directory"),
        (["repro", "good", "--", "/nonexistent/client", "{url}"], "cannot run"),
        (["repro", "good", "--timeout", "0", "--", "curl"], "--timeout must be positive"),
        (["serve", "--bundle", "."], "not a reproduction bundle"),
    ],
)
def test_cli_mistakes_are_usage_messages(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "usage:" in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


# -- the plugin: --tlsenv-repro-dir ---------------------------------------------------------------


@needs_curl
def test_repro_dir_writes_a_bundle_for_each_failing_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(scenario="dangling-symlink", placement="shadow")
        def test_fails(tlsenv):
            argv = ["curl", "-fsS", "--capath", str(tlsenv.store.cert_dir), tlsenv.origin.url]
            tlsenv.run(argv).assert_ok()

        def test_passes(tlsenv):
            argv = ["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url]
            tlsenv.run(argv).assert_ok()
        """
    )
    result = pytester.runpytest("--tlsenv-repro-dir", "bundles", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*tlsenv reproduction bundle*", "dangling-symlink@shadow: sh */repro.sh (see ISSUE.md)"]
    )
    (bundle,) = (pytester.path / "bundles").iterdir()  # the passing test wrote none
    assert bundle.name.endswith("__test_fails")
    verdict, text, status = run_bundle(bundle, "invoker", pytester.path)
    assert (verdict, status) == ("REJECTED", 0), text


@needs_curl
def test_repro_dir_writes_a_bundle_for_a_baseline_regression(pytester: pytest.Pytester) -> None:
    # The tox/CI use: a test that passes by its own asserts but whose verdict changed against
    # the baseline fails, and that failure gets its bundle like any other.
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(scenario="dangling-symlink", placement="shadow")
        def test_records(tlsenv):
            argv = ["curl", "-fsS", "--capath", str(tlsenv.store.cert_dir), tlsenv.origin.url]
            tlsenv.run(argv)
        """
    )
    common = ["--tlsenv-baseline", "baseline.json", "-p", "no:cacheprovider"]
    pytester.runpytest(*common, "--tlsenv-update-baseline").assert_outcomes(passed=1)
    data = json.loads((pytester.path / "baseline.json").read_text())
    (verdicts,) = data["verdicts"].values()
    assert verdicts == {"dangling-symlink@shadow": "REJECTED"}
    # Twin: unchanged verdicts pass and write no bundle.
    result = pytester.runpytest(*common, "--tlsenv-repro-dir", "bundles")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "bundles").exists()
    # The baseline said OK: the same REJECTED is now a regression, with its bundle.
    (nodeid,) = data["verdicts"]
    data["verdicts"][nodeid] = {"dangling-symlink@shadow": "OK"}
    (pytester.path / "baseline.json").write_text(json.dumps(data))
    result = pytester.runpytest(*common, "--tlsenv-repro-dir", "bundles")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*dangling-symlink@shadow: OK -> REJECTED*", "*sh */repro.sh (see ISSUE.md)"]
    )
    (bundle,) = (pytester.path / "bundles").iterdir()
    verdict, text, _ = run_bundle(bundle, "invoker", pytester.path)
    assert verdict == "REJECTED", text


def test_repro_dir_that_cannot_be_made_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_passes(tlsenv):\n    pass\n")
    (pytester.path / "afile").write_text("")
    for bad in ("afile", "afile/bundles"):
        result = pytester.runpytest("--tlsenv-repro-dir", bad, "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: --tlsenv-repro-dir */{bad}: *"])
    # Twin: a directory that can be made is fine, and a session without failures leaves none.
    result = pytester.runpytest("--tlsenv-repro-dir", "new/bundles", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "new").exists()
