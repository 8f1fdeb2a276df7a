"""Pinned clients: each (package, version) in its own environment, and that version is what runs.

The evidence comes from inside the run: the library's own ``__version__`` printed by the
out-of-process fetch, the User-Agent the origin received, or the client's own ``--version``.
Installs come from the package index into the suite's cache (once per machine); without the
index these tests skip, and only then.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from commands import uv_pip_install_argv

from pytest_tlsenv import TLSEnv, Verdict
from pytest_tlsenv.clients import pinned
from pytest_tlsenv.errors import ClientUnavailableError
from pytest_tlsenv.report import header_line, results_for, session_meta

pytestmark = pytest.mark.nonroot

# Two versions per installable preset, each with a wheel for Python 3.11 (checked with
# `pip download --only-binary :all: --no-deps`).
VERSIONS = {
    "pip": ("23.3.2", "24.0"),
    "uv": ("0.2.28", "0.2.29"),
    "requests": ("2.25.1", "2.31.0"),
    "httpx": ("0.27.2", "0.28.1"),
    "urllib3": ("1.26.20", "2.2.3"),
    "aiohttp": ("3.9.5", "3.10.11"),
}
PAIRS = [(name, v) for name, versions in VERSIONS.items() for v in versions]
LIBRARIES = ("requests", "httpx", "urllib3", "aiohttp")
# How each client names itself to the origin, where it does (urllib3 1.26 sends no agent).
AGENT = {
    "pip": "pip/{v} ",
    "uv": "uv/{v}",
    "requests": "python-requests/{v}",
    "httpx": "python-httpx/{v}",
    "aiohttp": "aiohttp/{v}",
    "urllib3": "python-urllib3/{v}",
}


def _pinned(package: str, version: str, executable: str | None = None) -> Path:
    try:
        return pinned(package, version, executable)
    except ClientUnavailableError as e:
        pytest.skip(str(e))


def _client(env: TLSEnv, name: str, version: str):  # type: ignore[no-untyped-def]
    try:
        return env.client(name, version=version)
    except ClientUnavailableError as e:
        pytest.skip(str(e))


def _agents(env: TLSEnv) -> list[str]:
    return [
        r.headers.get("User-Agent", r.headers.get("user-agent", "")) for r in env.origin.received
    ]


def _seen(env: TLSEnv) -> list[tuple[str, str | None]]:
    """(client, version) of each run, as the report records them."""
    (result,) = results_for("t::x", "t::x", [env])
    return [(o["client"], o["version"]) for o in result["outcomes"]]


@pytest.fixture
def shared_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache another user may enter: created exclusively by mkdtemp, then 0755."""
    base = Path(tempfile.mkdtemp(prefix="tlsenv-pinned-cache-"))
    try:
        os.chmod(base, 0o755)
        monkeypatch.setenv("TLSENV_CACHE_DIR", str(base))
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_pinned_pip_is_the_pinned_version_from_its_own_environment() -> None:
    pip = _pinned("pip", "24.0")
    env = pip.parent.parent
    done = subprocess.run(
        [str(pip), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"pip 24.0 from {env}/lib/python3"), done.stdout
    # Its interpreter imports the same pip (what a `python -m pip` client gets).
    same = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert same.stdout.startswith(f"pip 24.0 from {env}/"), same.stdout
    # Negative twin: the interpreter running the tests imports its own pip, elsewhere.
    host = subprocess.run(
        [sys.executable, "-m", "pip", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert str(env) not in host.stdout
    stamp = json.loads((env / "tlsenv-pinned.json").read_text())
    assert stamp["package"] == "pip"
    assert "pip==24.0" in stamp["installed"]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "version"), PAIRS)
def test_pinned_preset_runs_the_pinned_version(tlsenv: TLSEnv, name: str, version: str) -> None:
    out = _client(tlsenv, name, version).run()
    out.assert_ok()
    agents = _agents(tlsenv)
    assert agents, "the origin must have seen the request"
    if name in LIBRARIES:
        # The fetch printed the version it imported, from the pinned environment.
        env = _pinned(name, version, "python").parent.parent
        first = out.stderr.splitlines()[0]
        assert first.startswith(f"{name} {version} from {env}/lib/python3"), out.stderr
    if not (name == "urllib3" and version.startswith("1.")):
        wanted = AGENT[name].format(v=version)
        assert all(wanted in a for a in agents), agents
    assert _seen(tlsenv) == [(name, f"{name} {version}")]


@pytest.mark.slow
@pytest.mark.tlsenv(scenario="mitm-untrusted")
@pytest.mark.parametrize(("name", "version"), PAIRS)
def test_pinned_preset_rejects_an_untrusted_interceptor(
    tlsenv: TLSEnv, name: str, version: str
) -> None:
    # Negative twin: the same pinned client refuses the interceptor, and says why.
    out = _client(tlsenv, name, version).run()
    out.assert_rejected()
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.leaked == b""
    assert not tlsenv.origin.received
    if name in LIBRARIES:
        assert out.stderr.startswith(f"{name} {version} from "), out.stderr
        assert re.search(r"certificate verify failed", out.stderr, re.IGNORECASE), out.stderr


FETCH = """
import sys
import requests

print(requests.__version__, file=sys.stderr, flush=True)
requests.get(sys.argv[1], timeout=10).raise_for_status()
"""


@pytest.mark.slow
def test_pinned_requests_interpreter_runs_that_requests(tlsenv: TLSEnv) -> None:
    python = _pinned("requests", "2.25.1")
    assert python.name == "python"
    bundle = str(tlsenv.store.bundle)
    out = tlsenv.run(
        [str(python), "-c", FETCH, tlsenv.origin.url], env={"REQUESTS_CA_BUNDLE": bundle}
    )
    out.assert_ok()
    assert out.stderr.splitlines()[0] == "2.25.1"
    assert _agents(tlsenv) == ["python-requests/2.25.1"]
    # Negative twin: without the variable, requests 2.25.1 trusts its certifi, not the store.
    out = tlsenv.run([str(python), "-c", FETCH, tlsenv.origin.url])
    out.assert_rejected()
    assert out.stderr.splitlines()[0] == "2.25.1"


@pytest.mark.slow
def test_a_stale_cache_layout_is_rebuilt(shared_cache: Path) -> None:
    # An older layout (pip --target: the script's shebang is the host's interpreter, so it
    # imports the host's pip) sits where the pinned environment goes: it is replaced.
    stale = shared_cache / "clients" / "pip-24.0" / "bin"
    stale.mkdir(parents=True)
    (stale / "pip").write_text(f"#!{sys.executable}\nimport pip._internal.cli.main\n")
    os.chmod(stale / "pip", 0o755)
    pip = _pinned("pip", "24.0")
    assert pip == stale / "pip"
    done = subprocess.run([str(pip), "--version"], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith(f"pip 24.0 from {shared_cache}/clients/pip-24.0/"), done.stdout
    assert not [p for p in (shared_cache / "clients").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the nobody user needs root")
def test_another_user_can_run_a_pinned_client_from_a_readable_cache(
    shared_cache: Path, make_tlsenv
) -> None:  # type: ignore[no-untyped-def]
    pip = _pinned("pip", "24.0")
    env = make_tlsenv(user="nobody")  # a scenario made for that user (traversable root)
    out = env.run([str(pip), "--version"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"pip 24.0 from {shared_cache}/clients/pip-24.0/"), out.stdout
    # Every file is readable by others, none writable by them (links have no mode of their own).
    for root, dirs, files in os.walk(shared_cache / "clients" / "pip-24.0"):
        for name in dirs + files:
            mode = os.lstat(os.path.join(root, name)).st_mode
            assert stat.S_ISLNK(mode) or not mode & (stat.S_IWOTH | stat.S_IWGRP), name


def test_python_dash_m_pip_is_attributed_to_pip(tlsenv: TLSEnv) -> None:
    import importlib.metadata

    # The pip preset runs `python -m pip install`: the report names pip and its version.
    tlsenv.client("pip").run().assert_ok()
    # Negative twin: the same interpreter running a script is python, with Python's version.
    script = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)"
    tlsenv.run([sys.executable, "-c", script, tlsenv.origin.url]).assert_ok()
    python = f"Python {sys.version.split()[0]}"
    assert _seen(tlsenv) == [
        ("pip", f"pip {importlib.metadata.version('pip')}"),
        (os.path.basename(sys.executable), python),
    ]


def test_clients_seen_lists_every_version() -> None:
    versions = ["0.2.28", "0.2.29", "0.13.9", "0.4.0", "0.2.28", "0.1.39", "0.9.5"]
    results = [
        {
            "nodeid": f"t::uv[{v}]",
            "scenario": "good",
            "user_mode": "non-root (uid 1000)",
            "outcomes": [{"client": "uv", "version": f"uv {v}"}],
        }
        for v in versions
    ]
    meta = session_meta(results)
    assert [c["version"] for c in meta["clients"]] == [
        "uv 0.1.39", "uv 0.2.28", "uv 0.2.29", "uv 0.4.0", "uv 0.9.5", "uv 0.13.9",
    ]  # fmt: skip
    assert "clients seen: uv (uv 0.1.39), uv (uv 0.2.28), " in header_line(meta)


@pytest.mark.slow
def test_three_uv_versions_in_one_session_are_three_clients(tlsenv: TLSEnv) -> None:
    for version in ("0.2.28", "0.2.29", "0.13.9"):
        uv = str(_pinned("uv", version))
        tlsenv.run(uv_pip_install_argv(tlsenv, uv), env={"UV_NATIVE_TLS": "1"}).assert_verdict(
            Verdict.OK
        )
    meta = session_meta(results_for("t::uv", "t::uv", [tlsenv]))
    assert meta["clients"] == [
        {"client": "uv", "version": "uv 0.2.28"},
        {"client": "uv", "version": "uv 0.2.29"},
        {"client": "uv", "version": "uv 0.13.9"},
    ]


@pytest.mark.slow  # pip's retries take ~10 s
def test_unreachable_index_is_client_unavailable(
    shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The index behind a proxy that refuses every connection: a loopback port bound but not
    # listening. That is "unavailable" (tests skip on it), not a bad version.
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with pytest.raises(ClientUnavailableError, match=r"cannot install pip==24\.0: package"):
            pinned("pip", "24.0")
    # Nothing half-built is left in the cache.
    assert [p.name for p in (shared_cache / "clients").iterdir()] == ["pip-24.0.lock"]


# -- a store pip cannot load is its configuration refused, not the peer ----------------------


@pytest.mark.parametrize(
    ("scenario", "cause"),
    [("garbage-in-bundle", "PEM lib"), ("unreadable-bundle", "PermissionError(13")],
)
def test_pip_that_cannot_load_its_bundle_failed_and_judged_no_peer(
    make_tlsenv, scenario: str, cause: str
) -> None:  # type: ignore[no-untyped-def]
    # pip wraps OpenSSL's "[X509] PEM lib" (a garbage block stops the bundle loading) or the
    # OSError of opening it in "There was a problem confirming the ssl certificate": FAILED,
    # like curl's exit 77 for the same store.
    tlsenv = make_tlsenv(scenario)
    out = _client(tlsenv, "pip", "24.0").run(timeout=60)
    assert cause in out.stderr + out.stdout
    assert out.verdict == Verdict.FAILED, out.reason
    assert "could not load its trust store" in out.reason


@pytest.mark.tlsenv(scenario="untrusted-root")
def test_pip_that_refuses_the_origin_is_rejected(tlsenv: TLSEnv) -> None:
    # Twin: the same pip wording around a real verification failure stays REJECTED.
    out = _client(tlsenv, "pip", "24.0").run(timeout=60)
    assert "There was a problem confirming the ssl certificate" in out.stderr + out.stdout
    assert out.verdict == Verdict.REJECTED, out.reason
