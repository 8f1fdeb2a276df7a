"""The runner: capability drop, hermetic environment, timeouts, process groups."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tlsenv import TLSEnv, Verdict
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.runner import CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, caps_of

DAC = (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH)
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="capabilities matter only as root")

SHOW_CAPS = "grep '^Cap' /proc/self/status"


def no_new_privs(status: str) -> int:
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("NoNewPrivs:")))


def test_run_child_has_no_capability_and_no_new_privs(tlsenv: TLSEnv) -> None:
    # Every set empty, so a root client can neither bypass a fault's mode (DAC), nor chmod it
    # away (CAP_FOWNER), nor regain anything through a setuid or file-capability binary.
    out = tlsenv.run(["cat", "/proc/self/status"])
    caps = caps_of(out.stdout)
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapInh"] == caps["CapAmb"] == 0
    if os.geteuid() == 0:
        assert caps["CapBnd"] == 0, "bounding set: exec of a setuid binary must not regain any"
    # (As non-root the bounding set cannot be emptied without CAP_SETPCAP; no_new_privs
    # keeps exec from using it.)
    assert no_new_privs(out.stdout) == 1


@root_only
def test_plain_child_of_root_has_dac_capabilities() -> None:
    # Negative twin: without the runner, a child of this root process reads any file.
    out = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True, check=True)
    assert caps_of(out.stdout)["CapEff"] & DAC == DAC
    assert caps_of(out.stdout)["CapBnd"] != 0
    assert no_new_privs(out.stdout) == 0


@root_only
def test_call_grandchild_lacks_dac_capabilities(tlsenv: TLSEnv) -> None:
    # A subprocess spawned by the client inside `call` (here a grandchild: sh -> sh) cannot
    # regain them either, because the calling thread dropped them from its bounding set.
    cmd = ["sh", "-c", f'sh -c "{SHOW_CAPS}"']
    out = tlsenv.call(lambda: subprocess.run(cmd, capture_output=True, text=True, check=True))
    caps = caps_of(out.value.stdout)
    assert caps["CapEff"] & DAC == 0
    assert caps["CapBnd"] & DAC == 0


@root_only
def test_call_leaves_the_test_thread_its_capabilities(tlsenv: TLSEnv) -> None:
    tlsenv.call(lambda: None)
    status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    assert caps_of(status)["CapEff"] & DAC == DAC


def test_run_environment_is_an_allow_list(tlsenv: TLSEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    host = {
        "SSL_CERT_FILE": "/host/bundle.pem",
        "REQUESTS_CA_BUNDLE": "/host/bundle.pem",
        "PIP_CERT": "/host/bundle.pem",
        "PIP_FIND_LINKS": "/host/wheels",
        "NODE_EXTRA_CA_CERTS": "/host/bundle.pem",
        "HTTPS_PROXY": "http://192.0.2.1:3128",
        "SOME_RANDOM_VAR": "x",
    }
    for k, v in host.items():
        monkeypatch.setenv(k, v)
    out = tlsenv.run(["env"])
    seen = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    for k, v in host.items():
        assert seen.get(k) != v, f"{k} leaked from the host"
    assert seen["SSL_CERT_FILE"] == str(tlsenv.store.bundle)
    assert seen["SSL_CERT_DIR"] == str(tlsenv.store.cert_dir)
    assert seen["PIP_CONFIG_FILE"] == os.devnull
    assert seen["UV_NO_CONFIG"] == "1"
    assert seen["HOME"].startswith(str(tlsenv.root))
    assert out.environ == seen


def test_run_env_and_passenv(tlsenv: TLSEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLSENV_OUTER", "outer")
    out = tlsenv.run(["env"], env={"EXTRA": "1", "SSL_CERT_DIR": None}, passenv=["TLSENV_OUTER"])
    assert "EXTRA=1" in out.stdout.splitlines()
    assert "TLSENV_OUTER=outer" in out.stdout.splitlines()
    assert not any(line.startswith("SSL_CERT_DIR=") for line in out.stdout.splitlines())
    # Negative twin: without passenv the outer variable stays out.
    assert "TLSENV_OUTER=outer" not in tlsenv.run(["env"]).stdout.splitlines()


def test_each_run_gets_a_fresh_home(tlsenv: TLSEnv) -> None:
    first = tlsenv.run(["sh", "-c", 'touch "$HOME/mark"; echo "$HOME"']).stdout.strip()
    second = tlsenv.run(["sh", "-c", 'ls "$HOME"; echo "$HOME"']).stdout.split()
    assert first != second[-1]
    assert "mark" not in second


def test_call_scrubs_and_restores_os_environ(
    tlsenv: TLSEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/host/bundle.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://192.0.2.1:3128")
    monkeypatch.setenv("SSL_CERT_FILE", "/host/bundle.pem")
    out = tlsenv.call(lambda: dict(os.environ))
    inside = out.value
    # The host's values are gone; in env mode the libraries' own variables name the store.
    assert inside["REQUESTS_CA_BUNDLE"] == str(tlsenv.store.bundle)
    assert "HTTPS_PROXY" not in inside
    assert inside["SSL_CERT_FILE"] == str(tlsenv.store.bundle)
    # Restored afterwards.
    assert os.environ["REQUESTS_CA_BUNDLE"] == "/host/bundle.pem"
    assert os.environ["SSL_CERT_FILE"] == "/host/bundle.pem"


def test_run_timeout_is_hung_and_kills_the_group(tlsenv: TLSEnv, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    start = time.monotonic()
    out = tlsenv.run(["sh", "-c", script], timeout=0.5)
    assert time.monotonic() - start < 5
    assert out.verdict is Verdict.HUNG
    assert "0.5 s" in out.reason
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # A zombie still answers kill(0); it is gone once its state is Z or it vanishes.
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split()[2] == "Z":
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"grandchild {pid} survived the timeout")


def test_run_quick_exit_is_not_hung(tlsenv: TLSEnv) -> None:
    out = tlsenv.run(["true"], timeout=5)
    assert out.verdict is not Verdict.HUNG
    assert out.returncode == 0


def test_call_timeout_is_hung(tlsenv: TLSEnv) -> None:
    release = threading.Event()
    out = tlsenv.call(lambda: release.wait(30), timeout=0.3)
    release.set()
    assert out.verdict is Verdict.HUNG


def test_missing_executable_is_a_clear_error(tlsenv: TLSEnv) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-client"):
        tlsenv.run(["no-such-client-tlsenv"])


def test_run_uses_interpreter(tlsenv: TLSEnv) -> None:
    out = tlsenv.run([sys.executable, "-c", "print('hi')"])
    assert out.stdout.strip() == "hi"


@pytest.mark.parametrize(
    ("use", "error", "message"),
    [
        (lambda env: env.run("curl " + env.origin.url), TypeError,
         r"argv must be a list of words such as \['curl', url\], not a str: 'curl https://"),
        (lambda env: env.run([]), ConfigError, r"argv is empty"),
        (lambda env: env.run(["curl", 3]), TypeError, r"expected str, bytes or os.PathLike"),
        (lambda env: env.run(["true"], timeout=-1), ConfigError,
         r"timeout must be a positive number of seconds, got -1"),
        (lambda env: env.call(lambda: None, timeout=0), ConfigError, r"got 0"),
        (lambda env: env.call("urlopen"), TypeError, r"call\(\) takes a callable, got str"),
        (lambda env: env.call(lambda url: url), TypeError,
         r"call\(\) calls fn\(\) with no arguments, but .* needs some: wrap it in a lambda"),
    ],
)  # fmt: skip
def test_api_misuse_is_an_error_not_a_verdict(
    tlsenv: TLSEnv, use: Callable[[TLSEnv], object], error: type[Exception], message: str
) -> None:
    # Before these checks, call(lambda url: ...) came back as a CRASHED client and
    # run("curl URL") as a missing program 'c': blamed on the client, not on the test.
    with pytest.raises(error, match=message):
        use(tlsenv)
    assert tlsenv.outcomes == []  # nothing ran


def test_api_accepts_what_it_documents(tlsenv: TLSEnv) -> None:
    # Twin: path-like words, functools.partial, a bound method and defaults are fine.
    import functools

    assert tlsenv.run([Path("/bin/true")], timeout=5).returncode == 0
    assert tlsenv.call(functools.partial(int, "7")).value == 7
    assert tlsenv.call("tlsenv".upper).value == "TLSENV"
    assert tlsenv.call(lambda retries=3: retries).value == 3
    assert len(tlsenv.outcomes) == 4
