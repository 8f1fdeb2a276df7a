"""Security properties of what the plugin generates (issue 9), each with a twin that breaks it."""

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


def test_key_files_are_private_and_ca_keys_never_written(
    tlsenv: TLSEnv, tlsenv_pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    basetemp = tmp_path_factory.getbasetemp()
    keys = _private_key_files(basetemp)
    assert keys, "the origin's key must be on disk for its server context"
    # The private-key-file fault puts a throwaway key *into a store* on purpose (a trust
    # store entry that is not a certificate); it protects nothing and is not checked here.
    keys = [k for k in keys if k.name != "tlsenv-private-key-file.pem"]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        # Only a PKI's own directory holds keys (this session's, or a test's own PKI), or a
        # reproduction bundle's throwaway-keys/ (its own fresh PKI, issue 7).
        known = ("pki", "tlsenv-pki", "throwaway-keys")
        assert any(p.name.startswith(known) for p in key.parents), f"stray key: {key}"
    ca_keys = [
        a.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for a in tlsenv_pki.authorities.values()
    ]
    for key in keys:
        data = key.read_bytes()
        assert not any(ca in data for ca in ca_keys), f"a CA private key was written: {key}"
