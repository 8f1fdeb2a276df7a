"""The version detector: real clients, fake programs that answer, lie, fail or hang."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_tlsenv import report
from pytest_tlsenv.clients import get_preset
from pytest_tlsenv.versions import version_of

pytestmark = pytest.mark.nonroot

TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed")
    return path


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("curl", r"curl \d+\.\d+\.\d+ "),
        ("openssl", r"OpenSSL \d+\.\d+\.\d+"),
        ("node", r"v\d+\.\d+\.\d+"),
        ("wget", r"GNU Wget \d+\.\d+"),
        ("git", r"git version \d+\.\d+"),
    ],
)
def test_real_clients(program: str, expected: str) -> None:
    path = _need(program)
    line = version_of(program)
    assert line is not None
    assert re.match(expected, line), line
    assert version_of(path) == line  # by path as by name


def test_real_pip_and_python() -> None:
    pip = version_of(sys.executable, "-m", "pip", "--version")
    assert pip is not None
    assert re.match(r"pip \d+\.\d+", pip), pip
    assert version_of(sys.executable) == f"Python {sys.version.split()[0]}"
    assert report.client_of([sys.executable, "-m", "pip", "install", "x"]) == (
        "pip",
        pip.split(" from ")[0],
    )


def test_pinned_uv(uv_0_13_9: str) -> None:
    assert version_of(uv_0_13_9) is not None
    assert str(version_of(uv_0_13_9)).startswith("uv 0.13.9")
    assert report.client_version(uv_0_13_9) == "uv 0.13.9"


def test_fake_program_answers_and_is_asked_the_known_way(tmp_path: Path) -> None:
    # A program named like a known client is asked that client's way ("openssl version").
    fake = _script(tmp_path / "openssl", 'echo "FakeSSL 9.8.7 asked: $*"\n')
    assert version_of(str(fake)) == "FakeSSL 9.8.7 asked: version"
    other = _script(tmp_path / "tool", 'echo "tool 1.2.3 asked: $*"\n')
    assert version_of(str(other), "--info") == "tool 1.2.3 asked: --info"


def test_unknown_program_is_never_started(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    fake = _script(tmp_path / "tool", f'touch "{marker}"\necho "tool 1.2.3"\n')
    assert version_of(str(fake)) is None
    assert not marker.exists()
    # The twin: asked explicitly, the same program runs and answers.
    assert version_of(str(fake), "--version") == "tool 1.2.3"
    assert marker.exists()


def test_garbage_answer_is_none(tmp_path: Path) -> None:
    garbage = _script(tmp_path / "curl", 'echo "no idea what you mean"\n')
    assert version_of(str(garbage)) is None
    assert report.client_version(str(garbage)) is None
    # The twin: a version in the line is an answer.
    (tmp_path / "good").mkdir()
    good = _script(tmp_path / "good" / "curl", 'echo "curl 8.1.2 (fake)"\n')
    assert report.client_version(str(good)) == "curl 8.1.2"


def test_failing_program_is_none(tmp_path: Path) -> None:
    failing = _script(tmp_path / "curl", 'echo "curl 8.1.2"\nexit 3\n')
    assert version_of(str(failing)) is None
    empty = _script(tmp_path / "wget", "exit 0\n")
    assert version_of(str(empty)) is None
    stderr_only = _script(tmp_path / "node", 'echo "v1.2.3" >&2\n')
    assert version_of(str(stderr_only)) == "v1.2.3"


def test_missing_or_not_executable_is_none(tmp_path: Path) -> None:
    assert version_of(str(tmp_path / "curl")) is None
    plain = tmp_path / "git"
    plain.write_text('#!/bin/sh\necho "git version 1.2.3"\n')  # mode 0644: not executable
    assert version_of(str(plain)) is None
    plain.chmod(0o755)
    assert version_of(str(plain)) == "git version 1.2.3"


def test_hanging_program_is_none_within_the_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    hang = _script(
        tmp_path / "curl",
        f'sleep 60 &\necho $! > "{pidfile}"\necho "curl 1.2.3"\nwait\n',
    )
    start = time.monotonic()
    assert version_of(str(hang), timeout=0.5) is None
    assert time.monotonic() - start < 3
    # The whole group is gone, the grandchild that held the pipe included.
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    # The twin: the same program, with time enough, is asked nothing it cannot answer.
    quick = _script(tmp_path / "wget", 'sleep 0.2\necho "GNU Wget 1.2.3"\n')
    assert version_of(str(quick), timeout=5) == "GNU Wget 1.2.3"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_host_trust_variables_never_reach_the_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TRUST_VARIABLES:
        monkeypatch.setenv(name, f"/host/{name}")
    monkeypatch.setenv("HOME", str(tmp_path))
    env_dump = _script(tmp_path / "curl", 'echo "curl 1.2.3 $(env | sort | tr "\\n" " ")"\n')
    line = version_of(str(env_dump))
    assert line is not None
    assert "/host/" not in line
    assert "HOME=" not in line
    assert "LC_ALL=C" in line
    # The twin: the same program run the ordinary way sees them all.
    inherited = subprocess.run([str(env_dump)], capture_output=True, text=True, check=True)
    for name in TRUST_VARIABLES:
        assert f"{name}=/host/{name}" in inherited.stdout


def test_answers_are_cached_per_executable_file(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    path = tmp_path / "uv"
    _script(path, f'echo x >> "{counter}"\necho "uv 0.1.0"\n')
    assert version_of(str(path)) == "uv 0.1.0"
    assert version_of(str(path)) == "uv 0.1.0"
    assert counter.read_text().count("x") == 1
    # Upgraded in place (another file at the same path): asked again.
    replacement = tmp_path / "uv.new"
    _script(replacement, f'echo x >> "{counter}"\necho "uv 0.2.0"\n')
    os.replace(replacement, path)
    assert version_of(str(path)) == "uv 0.2.0"
    assert counter.read_text().count("x") == 2


def test_presets_detect_through_it() -> None:
    _need("curl")
    version = get_preset("curl").detect()
    assert version is not None
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    line = version_of("curl")
    assert line is not None
    assert line.startswith(f"curl {version} ")


def test_a_preset_asks_its_version_without_the_host_trust_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A curl first on PATH that answers with what it sees of SSL_CERT_FILE.
    _script(tmp_path / "curl", 'echo "curl 1.2.3-${SSL_CERT_FILE:-unset} (fake)"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SSL_CERT_FILE", "/host/bundle.pem")
    assert get_preset("curl").detect() == "1.2.3-unset"
    # The twin: the host's variable is there to be leaked.
    seen = subprocess.run(["curl"], capture_output=True, text=True, check=True)
    assert seen.stdout.startswith("curl 1.2.3-/host/bundle.pem ")
