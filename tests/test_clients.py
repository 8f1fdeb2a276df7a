"""Every client preset against the healthy store, an untrusted interceptor and a store fault.

Verdicts are asserted per preset, as measured on this kind of machine (Debian 12: curl 7.88
with OpenSSL 3.0, wget 1.21 with GnuTLS, node 20, git 2.39, pip from the test venv, uv 0.13.9
from the cache). A client that is not installed is skipped with the reason; uv is installed
from PyPI by the suite.
"""

from __future__ import annotations

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.clients import PRESETS, make_client
from pytest_tlsenv.errors import ClientUnavailableError

pytestmark = pytest.mark.nonroot

NAMES = sorted(PRESETS)
PINNED = {"uv": "0.13.9"}


def _client(env: TLSEnv, name: str):  # type: ignore[no-untyped-def]
    try:
        return make_client(env, name, PINNED.get(name))
    except ClientUnavailableError as e:
        pytest.skip(str(e))


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
    out = _client(tlsenv, name).run()
    out.assert_expected().assert_ok()
    if name == "uv":
        assert "Permission denied" in out.stderr


def test_unknown_preset_is_a_clear_error(tlsenv: TLSEnv) -> None:
    from pytest_tlsenv.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown client 'kurl'; known presets: .*curl"):
        tlsenv.client("kurl")


def test_client_method_returns_a_ready_argv(tlsenv: TLSEnv) -> None:
    c = tlsenv.client("curl")
    assert c.argv is not None
    assert c.argv[-1] == tlsenv.origin.url
    assert "--cacert" in c.argv
