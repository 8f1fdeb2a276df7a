"""Evidence first: the servers' account of a handshake outranks what the client printed.

A client that refuses the certificate it was shown sends a TLS alert (``unknown ca``...); the
origin and the proxy record it. A run that the client's own words leave FAILED (curl with only
``--capath`` prints the CA loader's error, exit 35, after sending ``unknown ca``) is REJECTED
on that evidence. Nothing else changes: the same exit without such an alert stays FAILED.
"""

from __future__ import annotations

import shutil
import ssl
import urllib.request
from pathlib import Path

import pytest

from pytest_tlsenv import TLSEnv, Verdict
from pytest_tlsenv.outcome import classify_call, refine, trust_alert

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.mark.parametrize(
    ("errors", "alert"),
    [
        (["SSLError: [SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:1006)"],
         "unknown ca"),
        ([None, "SSLError: [SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"],
         "bad certificate"),
        (["tlsv1 alert certificate expired"], "certificate expired"),
        ([None, "ConnectionResetError: [Errno 104] Connection reset by peer"], None),
        (["SSLError: [SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"], None),
        ([], None),
    ],
)  # fmt: skip
def test_trust_alert_reads_only_certificate_alerts(
    errors: list[str | None], alert: str | None
) -> None:
    assert trust_alert(errors) == alert


def test_refine_changes_only_failed() -> None:
    assert refine(Verdict.FAILED, "exit 35: x", "unknown ca") == (
        Verdict.REJECTED,
        "the client refused the certificate (it sent 'unknown ca'); exit 35: x",
    )
    assert refine(Verdict.FAILED, "exit 35: x", None) == (Verdict.FAILED, "exit 35: x")
    for verdict in (Verdict.CRASHED, Verdict.HUNG, Verdict.LEAKED, Verdict.OK):
        assert refine(verdict, "r", "unknown ca") == (verdict, "r")


@needs_curl
@pytest.mark.nonroot
@pytest.mark.tlsenv(scenario="unreadable-file", placement="shadow")
def test_curl_capath_refusal_is_rejected_on_the_origins_evidence(tlsenv: TLSEnv) -> None:
    assert tlsenv.store.cert_dir is not None
    argv = ["curl", "-sS", "--capath", str(tlsenv.store.cert_dir), tlsenv.origin.url]
    out = tlsenv.run(argv)
    assert out.returncode == 35  # curl's own words: a connect error, not a verify error
    assert "Permission denied" in out.stderr
    out.assert_rejected()
    assert out.reason.startswith("the client refused the certificate (it sent 'unknown ca'); ")
    out.assert_expected()
    # Twin: the same exit 35 without a certificate alert (curl cannot even offer TLS 1.1 to
    # this OpenSSL, or the origin refuses it) stays FAILED.
    twin = tlsenv.run(["curl", "-sS", "--tls-max", "1.1", "--tlsv1.1", tlsenv.origin.url])
    assert twin.returncode == 35, twin.stderr
    assert twin.verdict is Verdict.FAILED, twin.reason


def test_in_process_refusal_hidden_by_the_client_is_rejected(tlsenv: TLSEnv) -> None:
    untrusted = tlsenv.pki.authorities["untrusted"].cert_pem.decode()

    def client() -> bytes:
        ctx = ssl.create_default_context(cadata=untrusted)
        try:
            return bytes(urllib.request.urlopen(tlsenv.origin.url, context=ctx, timeout=5).read())
        except OSError:
            pass
        # The client's own wording, with no trace of the SSL error (no __context__ either).
        raise ConnectionError("download failed")

    out = tlsenv.call(client)
    out.assert_rejected()
    assert "it sent 'unknown ca'" in out.reason
    assert "download failed" in out.reason

    # Twin: the same exception without a handshake at all stays FAILED.
    def no_connection() -> bytes:
        raise ConnectionError("download failed")

    tlsenv.call(no_connection).assert_verdict(Verdict.FAILED)


def test_a_library_refusing_a_missing_trust_path_is_a_clean_refusal(tmp_path: Path) -> None:
    import requests

    missing = str(tmp_path / "missing.pem")
    try:
        requests.get("https://localhost:1/", verify=missing, timeout=1)
    except OSError as e:
        raised: BaseException = e
    verdict, reason = classify_call(
        exception=raised, timed_out=False, timeout=1, reached_origin=False
    )
    assert verdict is Verdict.FAILED, reason
    assert "refused its trust configuration" in reason


def test_a_permission_error_while_loading_trust_is_still_a_crash(tmp_path: Path) -> None:
    # Twin: an accident while loading trust (the uv 5448 class) is not a deliberate refusal.
    try:
        raise PermissionError(13, "Permission denied", str(tmp_path / "ca.pem"))
    except OSError as e:
        raised: BaseException = e
    verdict, _ = classify_call(exception=raised, timed_out=False, timeout=1, reached_origin=False)
    assert verdict is Verdict.CRASHED


@pytest.mark.parametrize(
    ("stderr", "verdict"),
    [
        # pip 26.3, PIP_CERT naming a file it may not read (no retries): its own store failed.
        (
            "Could not fetch URL https://localhost:49277/simple/tlsenv-probe/: There was a "
            "problem confirming the ssl certificate: [Errno 13] Permission denied - skipping",
            Verdict.FAILED,
        ),
        # Twin: the same wording around a refused certificate is a rejection.
        (
            "Could not fetch URL https://localhost:49277/simple/tlsenv-probe/: There was a "
            "problem confirming the ssl certificate: HTTPSConnectionPool(...): Max retries "
            "exceeded (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
            "CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
            "certificate (_ssl.c:1006)'))) - skipping",
            Verdict.REJECTED,
        ),
    ],
)
def test_pips_wording_of_an_unreadable_store_is_not_a_rejection(
    stderr: str, verdict: Verdict
) -> None:
    from pytest_tlsenv.outcome import classify_run

    got, _reason = classify_run(
        returncode=1,
        stderr=stderr,
        stdout="",
        timed_out=False,
        timeout=10,
        reached_origin=False,
    )
    assert got == verdict
