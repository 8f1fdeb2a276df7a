"""Every client preset against the healthy store, an untrusted interceptor and a store fault.

Verdicts are asserted per preset, as measured on this kind of machine (Debian 12: curl 7.88
with OpenSSL 3.0, wget 1.21 with GnuTLS, node 20, git 2.39, pip from the test venv, uv 0.13.9
from the cache). A client that is not installed is skipped with the reason; uv is installed
from PyPI by the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.clients import PRESETS, make_client
from pytest_tlsenv.errors import ClientUnavailableError, NotApplicableError

pytestmark = pytest.mark.nonroot

NAMES = sorted(PRESETS)
PINNED = {"uv": "0.13.9"}
# wget reads no trust variable, so the default (env) mode cannot apply to it (asserted below):
# these per-preset tests run it with its labelled flags variant.
MODE = {"wget": "flags"}
# Given only the bundle (REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, PIP_CERT), these never meet
# a fault in the cert dir: not applicable, never run against a healthy store.
BUNDLE_ONLY = {"requests", "node", "pip"}


def _client(env: TLSEnv, name: str):  # type: ignore[no-untyped-def]
    try:
        return make_client(env, name, PINNED.get(name), trust=MODE.get(name))
    except NotApplicableError:
        raise
    except ClientUnavailableError as e:  # not installed on this machine
        pytest.skip(str(e))


def test_wget_in_env_mode_is_not_applicable(tlsenv: TLSEnv) -> None:
    with pytest.raises(NotApplicableError, match="wget reads no trust variable"):
        make_client(tlsenv, "wget", trust="env")


@pytest.mark.parametrize("name", NAMES)
def test_preset_healthy_store_is_ok(tlsenv: TLSEnv, name: str) -> None:
    out = _client(tlsenv, name).run()
    out.assert_ok()
    assert tlsenv.origin.received, "the origin must have seen the request"


@pytest.mark.tlsenv(scenario="mitm-untrusted")
@pytest.mark.parametrize("name", NAMES)
def test_preset_rejects_untrusted_interceptor(tlsenv: TLSEnv, name: str) -> None:
    out = _client(tlsenv, name).run()
    out.assert_rejected()
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.leaked == b"", "not one byte of the request may reach the interceptor"
    assert not tlsenv.origin.received


@pytest.mark.tlsenv(scenario="mitm-trusted")
@pytest.mark.parametrize("name", NAMES)
def test_preset_goes_through_a_trusted_interceptor(tlsenv: TLSEnv, name: str) -> None:
    # Negative twin of the rejection: the same client, the interceptor's CA now trusted, goes
    # through the proxy to the origin - so REJECTED above is about trust, not plumbing.
    _client(tlsenv, name).run().assert_ok()
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.connects


@pytest.mark.tlsenv(scenario="unreadable-file")
@pytest.mark.parametrize("name", NAMES)
def test_preset_unreadable_decoy_is_ok(tlsenv: TLSEnv, name: str) -> None:
    # Every preset degrades gracefully here: OpenSSL-based ones never open the decoy, uv 0.13.9
    # reads it, warns and goes on; GnuTLS (wget --ca-directory) skips it.
    if name in BUNDLE_ONLY:
        with pytest.raises(NotApplicableError, match="cannot reach"):
            _client(tlsenv, name)
        return
    out = _client(tlsenv, name).run()
    out.assert_expected().assert_ok()
    if name == "uv":
        assert "Permission denied" in out.stderr


def test_unknown_preset_is_a_clear_error(tlsenv: TLSEnv) -> None:
    from pytest_tlsenv.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown client 'kurl'; known presets: .*curl"):
        tlsenv.client("kurl")


@pytest.mark.parametrize("system_paths", [False, True])
def test_missing_client_is_a_clear_error(make_tlsenv: Any, system_paths: bool) -> None:
    from pytest_tlsenv.errors import ClientNotFoundError

    env = make_tlsenv(system_paths=system_paths)
    with pytest.raises(
        ClientNotFoundError, match=r"'tlsenv-no-such-client' is not on the PATH "
    ) as e:
        env.run(["tlsenv-no-such-client", env.origin.url])
    assert isinstance(e.value, FileNotFoundError)  # what subprocess raises, for old callers
    assert e.value.filename == "tlsenv-no-such-client"
    with pytest.raises(ClientNotFoundError, match=r"^client '/nonexistent/curl' does not exist$"):
        env.run(["/nonexistent/curl", env.origin.url])
    # Twin: a client that exists runs and gets a verdict.
    assert (
        env.run(["curl", "-fsS", "--cacert", str(env.store.bundle), env.origin.url]).verdict == "OK"
    )


def test_missing_cwd_is_not_blamed_on_the_client(tlsenv: TLSEnv) -> None:
    from pytest_tlsenv.errors import ClientNotFoundError

    with pytest.raises(FileNotFoundError) as e:
        tlsenv.run(["curl", tlsenv.origin.url], cwd="/nonexistent-tlsenv-cwd")
    assert not isinstance(e.value, ClientNotFoundError)


@pytest.mark.slow
def test_pinned_version_that_does_not_exist_is_a_config_error() -> None:
    from pytest_tlsenv.clients import pinned
    from pytest_tlsenv.errors import ConfigError

    error: Exception | None = None
    try:
        pinned("uv", "0.0.0.999")
    except ClientUnavailableError as e:
        pytest.skip(str(e))
    except ConfigError as e:
        error = e
    assert error is not None, "uv 0.0.0.999 was installed"
    assert "uv==0.0.0.999: no such version on the package index" in str(error)
    assert re.search(r"the newest: \d+\.\d+", str(error)), str(error)


def test_only_installable_presets_take_a_version(tlsenv: TLSEnv) -> None:
    from pytest_tlsenv.errors import ConfigError

    with pytest.raises(ConfigError, match=r"client 'curl' cannot be pinned: .*: aiohttp, httpx, "):
        tlsenv.client("curl", version="8.0.1")
    # Twin: every installable preset is accepted (nothing is installed before a version is).
    pinnable = sorted(n for n, p in PRESETS.items() if p.installable is not None)
    assert pinnable == ["aiohttp", "httpx", "pip", "requests", "urllib3", "uv"]


def test_client_method_returns_a_ready_argv(tlsenv: TLSEnv) -> None:
    # Env mode (the default) runs curl as its users do: plain, with SSL_CERT_FILE/SSL_CERT_DIR.
    c = tlsenv.client("curl")
    assert c.argv is not None
    assert c.argv[-1] == tlsenv.origin.url
    assert "--cacert" not in c.argv
    assert c.env["SSL_CERT_DIR"] == str(tlsenv.store.cert_dir)
    # The flags variant carries the options, and its label says so.
    flagged = tlsenv.client("curl", trust="flags")
    assert flagged.argv is not None
    assert "--cacert" in flagged.argv
    assert flagged.label == "curl --cacert"


PLUGIN = """
from pytest_tlsenv.clients import Client, Preset


def _build(env, version):
    return Client("my-curl", env, argv=("curl", "-fsS", "--cacert", str(env.store.bundle),
                                        env.origin.url), version=version)


PRESET = Preset("my-curl", "curl, by a third-party package", ("CURL_CA_BUNDLE",),
                lambda: "1.0", _build)
"""


def test_presets_from_an_entry_point(tmp_path: Path) -> None:
    # A third-party package declares a preset in the "pytest_tlsenv.presets" group; the survey
    # (no pytest involved) finds and runs it.
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text(PLUGIN)
    dist = tmp_path / "mypkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pytest_tlsenv.presets]\nmy-curl = mypkg:PRESET\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "pytest_tlsenv", "survey", "--clients", "my-curl",
         "--scenarios", "good", "mitm-untrusted"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "my-curl" in out.stdout
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.strip()}
    assert lines["good"][-1] == "OK"
    assert lines["mitm-untrusted"][-1] == "REJECTED"
    # Negative twin: without the package on the path, the name is unknown (a usage error).
    # (Another cwd: `python -m` puts the cwd on sys.path, where the dist-info would be found.)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare = subprocess.run(
        [sys.executable, "-m", "pytest_tlsenv", "survey", "--clients", "my-curl"],
        capture_output=True, text=True, cwd=elsewhere, timeout=120, check=False,
    )  # fmt: skip
    assert bare.returncode == 2
    assert "survey: --clients: unknown client 'my-curl'" in bare.stderr


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.2.28", ("SSL_CERT_FILE",)),
        ("0.1.39", ("SSL_CERT_FILE",)),
        ("0.2.29", ("SSL_CERT_FILE", "SSL_CERT_DIR")),
        ("0.13.9", ("SSL_CERT_FILE", "SSL_CERT_DIR")),
        ("0.2.29-dev (abc 2024-07-22)", ("SSL_CERT_FILE", "SSL_CERT_DIR")),
        (None, ("SSL_CERT_FILE", "SSL_CERT_DIR")),
        ("unknown", ("SSL_CERT_FILE", "SSL_CERT_DIR")),
    ],
)
def test_honours_for_picks_the_list_measured_for_a_version(
    version: str | None, expected: tuple[str, ...]
) -> None:
    # What tests/test_probe.py measured: uv reads SSL_CERT_DIR from 0.2.29 on.
    assert PRESETS["uv"].honours_for(version) == expected
    # A preset without older lists answers its own for every version.
    assert PRESETS["curl"].honours_for(version) == PRESETS["curl"].honours
