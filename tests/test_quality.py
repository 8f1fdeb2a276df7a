"""Lint, format and types run as part of the test command (ruff, mypy --strict)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    # Installed by the `test` extra next to this interpreter; a missing tool is a failure,
    # not a skip, so a broken install cannot turn this green.
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


# The project's own paths, not ".": a checkout may hold venvs, caches or a HOME.
PATHS = ["pytest_tlsenv", "tests", "benchmarks", "examples", "conftest.py"]


@pytest.mark.parametrize(
    "args",
    [
        ["ruff", "check", "--no-cache", *PATHS],
        ["ruff", "format", "--no-cache", "--check", *PATHS],
    ],
    ids=["ruff-lint", "ruff-format"],
)
def test_ruff(args: list[str]) -> None:
    proc = subprocess.run(
        [_tool(args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy"), "pytest_tlsenv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the shell a reproduction bundle ships ------------------------------------------------------

SHELLCHECK = shutil.which("shellcheck")
needs_shellcheck = pytest.mark.skipif(
    SHELLCHECK is None, reason="shellcheck is not installed (Debian: apt-get install shellcheck)"
)


def _bundle_script(trust: str) -> str:
    """repro.sh as export writes it, for a bundle with every optional part: a proxy with
    credentials, a secret, a {venv}, a stand-in run, a heredoc store command."""
    from pytest_tlsenv.repro.common import Run
    from pytest_tlsenv.repro.script import repro_sh

    data = {
        "scenario": {"name": "it's", "description": "quotes ' \" $HOME `id` and @NAME@"},
        "expected": ["OK", "REJECTED"],
        "servers": {
            "origin": {"host": "localhost"},
            "proxy": {"mode": "auth", "credentials": 'u:p$"w'},
        },
        "leak_is_bad": True,
        "spec": {"timeout": 20},
        "secrets": ["API_TOKEN"],
        "client": {"name": "uv", "pip": "uv==0.2.29"},
        "trust": trust,
        "system_paths": trust == "system",
        "generator": "pytest-tlsenv test",
    }
    runs = [
        Run(
            ["uv", "pip", "install", "--python", "{venv}", "--index-url", "{index_url}", "x"],
            {"SSL_CERT_FILE": "{store}/etc/ssl/cert.pem", "HTTPS_PROXY": "{proxy_auth_url}"},
            "CRASHED",
            "panic",
            101,
            "",
        ),
        Run(["python3", "-c", "print(1)", "{url}", "{$API_TOKEN}"], {}, "", "", None, "", True),
    ]
    commands = [
        'mkdir -p "$STORE/etc/ssl/certs"',
        'cp "$CERTS/trusted.pem" "$STORE/etc/ssl/certs/ca-certificates.crt"',
        "cat > \"$STORE/etc/ssl/x.pem\" <<'EOF'\n-----BEGIN\nEOF",
    ]
    return repro_sh(data, runs, commands)


def _shellcheck(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SHELLCHECK is not None
    path = tmp_path / "repro.sh"
    path.write_text(script)
    return subprocess.run(
        [SHELLCHECK, "--shell=sh", "--severity=style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@needs_shellcheck
@pytest.mark.parametrize("trust", ["env", "system", "flags"])
def test_repro_sh_passes_shellcheck(tmp_path: Path, trust: str) -> None:
    script = _bundle_script(trust)
    assert f"# Trust mode: {trust}: " in script
    proc = _shellcheck(script, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_shellcheck
def test_shellcheck_finds_what_it_should(tmp_path: Path) -> None:
    # Twin: the check is not green by construction; an unquoted expansion is reported.
    script = _bundle_script("env").replace('rm -rf "$WORK"', "rm -rf $WORK")
    proc = _shellcheck(script, tmp_path)
    assert proc.returncode == 1
    assert "SC2086" in proc.stdout
