"""Security properties of what the plugin generates, each with a twin that breaks it."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pytest_tlsenv import PKI, TLSEnv
from pytest_tlsenv.pki import Authority

pytestmark = pytest.mark.nonroot


def _verify(tmp_path: Path, ca: Authority, host: str) -> subprocess.CompletedProcess[str]:
    leaf = ca.issue([host])
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem)
    check = "-verify_ip" if host[0].isdigit() or ":" in host else "-verify_hostname"
    return subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.pem", check, host, "leaf.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )


@pytest.mark.parametrize("host", ["evil.example", "www.python.org", "192.0.2.10"])
def test_ca_cannot_sign_outside_its_constraints(tmp_path: Path, host: str) -> None:
    out = _verify(tmp_path, Authority.create("constrained"), host)
    assert out.returncode != 0
    # Code 47 is X509_V_ERR_PERMITTED_VIOLATION: the constraint refused it, not a hostname
    # mismatch (62) nor an unknown issuer (20).
    assert "error 47" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "permitted subtree violation" in out.stdout + out.stderr


def test_unconstrained_ca_would_sign_anything(tmp_path: Path) -> None:
    # Broken on purpose: the same leaf from a CA without the constraint verifies fine, so the
    # test above fails for the right reason (the constraint), not for something else.
    ca = Authority.create("unconstrained", constrained=False)
    out = _verify(tmp_path, ca, "evil.example")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("host", ["localhost", "origin.tlsenv.test", "127.0.0.1"])
def test_ca_signs_test_names(tmp_path: Path, host: str) -> None:
    assert _verify(tmp_path, Authority.create("constrained"), host).returncode == 0


def test_ca_is_short_lived() -> None:
    ca = Authority.create("x")
    lifetime = ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc
    assert lifetime.total_seconds() <= 3 * 86400


def _private_key_files(root: Path) -> list[Path]:
    found = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            try:
                if b"PRIVATE KEY-----" in p.read_bytes():
                    found.append(p)
            except PermissionError:
                continue
    return found


def _key_problems(root: Path, pki: PKI) -> list[str]:
    """Keys under ``root`` that are not 0600, outside a PKI's directory, or a CA's own key."""
    ca_keys = [
        a.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for a in pki.authorities.values()
    ]
    problems = []
    # The private-key-file fault puts a throwaway key *into a store* on purpose (a trust
    # store entry that is not a certificate); it protects nothing and is not checked here.
    for key in _private_key_files(root):
        if key.name == "tlsenv-private-key-file.pem":
            continue
        if stat.S_IMODE(key.stat().st_mode) != 0o600:
            problems.append(f"mode {oct(stat.S_IMODE(key.stat().st_mode))}: {key}")
        # Only a PKI's own directory holds keys (this session's, or a test's own PKI), or a
        # reproduction bundle's throwaway-keys/ (its own fresh PKI).
        known = ("pki", "tlsenv-pki", "throwaway-keys")
        if not any(p.name.startswith(known) for p in key.parents):
            problems.append(f"stray key: {key}")
        if any(ca in key.read_bytes() for ca in ca_keys):
            problems.append(f"a CA private key was written: {key}")
    return problems


def test_key_files_are_private_and_ca_keys_never_written(
    tlsenv: TLSEnv, tlsenv_pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    basetemp = tmp_path_factory.getbasetemp()
    assert _private_key_files(basetemp), "the origin's key must be on disk for its server context"
    assert _key_problems(basetemp, tlsenv_pki) == []


def test_key_check_catches_broken_keys(tlsenv_pki: PKI, tmp_path: Path) -> None:
    # Broken on purpose: a world-readable key, a key outside any PKI directory, and a CA's own
    # key on disk are each reported by the check above.
    leaky = tmp_path / "pki" / "leaf.key"
    leaky.parent.mkdir()
    leaky.write_bytes(Authority.create("x").issue(["localhost"]).key_pem)
    leaky.chmod(0o644)
    stray = tmp_path / "elsewhere.key"
    stray.write_bytes(leaky.read_bytes())
    stray.chmod(0o600)
    ca = tmp_path / "pki" / "ca.key"
    ca.write_bytes(
        tlsenv_pki.authorities["trusted"].key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca.chmod(0o600)
    problems = "\n".join(_key_problems(tmp_path, tlsenv_pki))
    assert f"mode 0o644: {leaky}" in problems
    assert f"stray key: {stray}" in problems
    assert f"a CA private key was written: {ca}" in problems
    for p in (leaky, stray, ca):
        p.unlink()  # the suite's own check must not see these
