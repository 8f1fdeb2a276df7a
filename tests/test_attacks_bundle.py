"""Hostile input to reproduction bundles: client paths that try to inject shell or Dockerfile
lines, and a scenario.json whose paths point out of the bundle.

The clients are symlinks to the system's ``sh`` under strange names; the file the server must
not serve is a plain 0600 file (nothing here is executable). Everything lives under tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.errors import ConfigError

pytestmark = pytest.mark.nonroot

CLEAN_PATH = "/usr/bin:/bin"
SH = shutil.which("sh") or "/bin/sh"


def _client(tmp_path: Path, relative: str) -> Path:
    link = tmp_path / relative
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(SH)
    return link


# -- the client's path in repro.sh and the Dockerfile --------------------------------------------


def test_client_path_with_a_newline_is_refused(tlsenv: TLSEnv, tmp_path: Path) -> None:
    client = _client(tmp_path, "bin/sh\nRUN touch /tlsenv-injected\n#")
    out = tlsenv.run([str(client), "-c", "exit 3"])
    assert out.returncode == 3  # it ran: the path is a real client
    with pytest.raises(ConfigError, match="line break") as refused:
        tlsenv.repro(tmp_path / "b")
    assert "Dockerfile cannot carry" in str(refused.value)
    dockerfile = tmp_path / "b" / "Dockerfile"
    assert not dockerfile.exists() or "RUN touch" not in dockerfile.read_text()


def test_strange_client_name_stays_one_dockerfile_word(tlsenv: TLSEnv, tmp_path: Path) -> None:
    # Twin of the newline: what quoting can carry is carried, quoted.
    client = _client(tmp_path, 'bin/my sh$HOME"x')
    tlsenv.run([str(client), "-c", "exit 3"])
    bundle = tlsenv.repro(tmp_path / "b")
    lines = (bundle / "Dockerfile").read_text().splitlines()
    (env_line,) = [line for line in lines if "TLSENV_CLIENT=" in line]
    assert 'TLSENV_CLIENT="my sh\\$HOME\\"x" ' in env_line


def test_brace_in_client_path_keeps_the_exact_path(tlsenv: TLSEnv, tmp_path: Path) -> None:
    client = _client(tmp_path, "we}ird/sh")
    out = tlsenv.run([str(client), "-c", "echo marker-from-client >&2; exit 3"])
    assert out.returncode == 3
    bundle = tlsenv.repro(tmp_path / "b")
    script = bundle / "repro.sh"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    env = {"PATH": CLEAN_PATH, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    text = done.stdout + done.stderr
    assert f"tlsenv: run 1: {client} -c " in done.stdout, text
    assert "is not on this machine" not in text
    assert "verdict: FAILED - exit 3: marker-from-client" in done.stdout, text
    # Twin: TLSENV_CLIENT still wins over the recorded path.
    other = _client(tmp_path, "other/sh")
    env["TLSENV_CLIENT"] = str(other)
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert f"tlsenv: run 1: {other} -c " in done.stdout, done.stdout + done.stderr


# -- serve --bundle: only the bundle's own regular files -----------------------------------------


SECRET = b"root-only content, never served\n"


def _outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    payload = directory / "secret.whl"
    payload.write_bytes(SECRET)
    os.chmod(payload, 0o600)
    assert not payload.stat().st_mode & 0o111
    return directory


def _point(bundle: Path, **origin: str) -> None:
    path = bundle / "scenario.json"
    data = json.loads(path.read_text())
    data["servers"]["origin"].update(origin)
    path.write_text(json.dumps(data))


def _serve(bundle: Path, state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "pytest_tlsenv", "serve", "--bundle", str(bundle)),
            *("--state", str(state), "--max-seconds", "60"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _fetch(bundle: Path, port: int, path: str) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(bundle / "certs" / "trusted.pem"))
    try:
        with urllib.request.urlopen(
            f"https://localhost:{port}{path}", context=ctx, timeout=10
        ) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink-in-index", "none"])
def test_serve_only_serves_files_inside_the_bundle(
    tlsenv: TLSEnv, tmp_path: Path, how: str
) -> None:
    bundle = tlsenv.repro(tmp_path / "b")
    outside = _outside(tmp_path)
    if how == "absolute":
        _point(bundle, index=str(outside))
    elif how == "dotdot":
        _point(bundle, index="../outside")
    elif how == "symlink-in-index":
        (bundle / "index" / "secret.whl").symlink_to(outside / "secret.whl")
    else:  # the twin: a real file in the bundle's index is served
        shutil.copy(outside / "secret.whl", bundle / "index" / "secret.whl")
    state = tmp_path / "state"
    with _serve(bundle, state) as proc:
        try:
            deadline = time.monotonic() + 20
            while not (state / "ports.sh").exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
            port = int((state / "ports.sh").read_text().split("ORIGIN_PORT=")[1].split()[0])
            status, body = _fetch(bundle, port, "/files/secret.whl")
            _, listing = _fetch(bundle, port, "/simple/tlsenv-probe/")
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    if how == "none":
        assert (status, body) == (200, SECRET)
        assert b"secret.whl" in listing
    else:
        assert (status, body) == (404, b"not found\n")
        assert b"secret.whl" not in listing
        assert "not served" in (state / "errors.log").read_text()


@pytest.mark.parametrize("field", ["key", "cert"])
def test_serve_refuses_a_key_or_cert_outside_the_bundle(
    tlsenv: TLSEnv, tmp_path: Path, field: str
) -> None:
    bundle = tlsenv.repro(tmp_path / "b")
    original = json.loads((bundle / "scenario.json").read_text())["servers"]["origin"][field]
    outside = _outside(tmp_path)
    # A valid copy outside: only where it is makes it wrong.
    shutil.copy(bundle / original, outside / "copy.pem")
    _point(bundle, **{field: str(outside / "copy.pem")})
    try:
        with _serve(bundle, tmp_path / "state") as proc:
            try:
                out, err = proc.communicate(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    proc.communicate(timeout=10)
    finally:
        # A key copied out of the bundle must not outlive the test (the session's key audit
        # would rightly call it a stray key).
        (outside / "copy.pem").unlink()
    assert proc.returncode != 0, out + err
    assert "is not a relative path inside the bundle" in err
