"""astral-sh/uv#5448, reproduced as a user would write it.

uv 0.2.29 moved to rustls-native-certs 0.7.1, which reads *every* file of the cert dir and
treats one read error as fatal: with ``UV_NATIVE_TLS=1`` a single unreadable CA file made uv
panic ("Failed to build HTTP client ... PermissionDenied"). 0.2.28 did not read the dir that
way; recent uv (rustls-native-certs 0.8) skips the file with a warning. The uv versions are
installed by the suite into its cache (tests/conftest.py), never assumed.
"""

from __future__ import annotations

import pytest
from commands import uv_pip_install_argv

from pytest_tlsenv import TLSEnv, Verdict

pytestmark = [pytest.mark.slow, pytest.mark.nonroot]

KNOWN = {"0.2.28": Verdict.OK, "0.2.29": Verdict.CRASHED, "0.13.9": Verdict.OK}


def uv_install(tlsenv: TLSEnv, uv: str):  # type: ignore[no-untyped-def]
    return tlsenv.run(
        uv_pip_install_argv(tlsenv, uv),
        env={"UV_NATIVE_TLS": "1"},
    )


@pytest.mark.tlsenv(scenario="unreadable-file")
@pytest.mark.parametrize("version", list(KNOWN))
def test_uv_unreadable_file(tlsenv: TLSEnv, uv_pinned, version: str) -> None:  # type: ignore[no-untyped-def]
    out = uv_install(tlsenv, uv_pinned(version))
    out.assert_verdict(KNOWN[version])
    if KNOWN[version] is Verdict.OK:
        out.assert_expected()
        assert any(r.path.endswith(".whl") for r in tlsenv.origin.received)
        if version == "0.13.9":
            # Recent uv degrades gracefully and says so, naming the unreadable entry.
            (applied,) = tlsenv.applied
            assert "Permission denied" in out.stderr
            assert str(applied.paths[0]) in out.stderr
    else:
        assert "panicked" in out.stderr
        assert "PermissionDenied" in out.stderr or "Permission denied" in out.stderr
        with pytest.raises(AssertionError, match=r"expected \{OK\}, got CRASHED"):
            out.assert_expected()


@pytest.mark.parametrize("version", list(KNOWN))
def test_uv_healthy_store_control(tlsenv: TLSEnv, uv_pinned, version: str) -> None:  # type: ignore[no-untyped-def]
    # The control: the same command in a healthy store is OK for every version, so the
    # CRASHED above is the fault's doing.
    uv_install(tlsenv, uv_pinned(version)).assert_ok()
