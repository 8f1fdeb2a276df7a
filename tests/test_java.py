"""The java preset: java.net.http.HttpClient with its trust from a JVM keystore.

Every verdict is a real handshake by a real JVM against the loopback origin. The keystore
faults are run in each trust mode as root (without capabilities) and as nobody; the reason
must carry the JDK's own wording. Without a JDK (java and javac) the tests skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

from pytest_tlsenv import NotApplicableError, TLSEnv, Verdict
from pytest_tlsenv.keystore import JKS_MAGIC, jks_truststore
from pytest_tlsenv.outcome import classify_run

pytestmark = [
    pytest.mark.nonroot,
    pytest.mark.skipif(
        shutil.which("java") is None or shutil.which("javac") is None,
        reason="no JDK on this machine (java and javac; Debian: default-jdk-headless)",
    ),
]

Maker = Callable[..., TLSEnv]
PKIX = "PKIX path building failed"
ANCHORS = "trustAnchors parameter must be non-empty"
ACCESS = "problem accessing trust store"

# What OpenJDK 17 does with each keystore fault, as measured here: (verdict, wording) in env
# and flags modes (the property names the broken store) and in system mode (it is the JDK's
# default cacerts, read without a password).
MEASURED = {
    # An unreadable or missing trustStore: silently the JDK's default cacerts instead (the
    # host's, which lacks the origin's CA); as the default itself: no anchor at all.
    "keystore-unreadable": ((Verdict.REJECTED, PKIX), (Verdict.FAILED, ANCHORS)),
    "keystore-dangling": ((Verdict.REJECTED, PKIX), (Verdict.FAILED, ANCHORS)),
    "keystore-empty": ((Verdict.FAILED, ANCHORS), (Verdict.FAILED, ANCHORS)),
    "keystore-corrupt": ((Verdict.FAILED, ACCESS), (Verdict.FAILED, ACCESS)),
    # No password declared (the default cacerts): JKS's digest is not checked.
    "keystore-wrong-password": ((Verdict.FAILED, ACCESS), (Verdict.OK, "")),
    # PKCS12 declared JKS: read anyway; without a password its certificates stay encrypted.
    "keystore-type-mismatch": ((Verdict.OK, ""), (Verdict.FAILED, ANCHORS)),
    "keystore-expired-anchor": ((Verdict.OK, ""), (Verdict.OK, "")),
}

USERS = [None, pytest.param("nobody", id="nobody")]


def _user(user: str | None) -> None:
    if user is not None and os.geteuid() != 0:
        pytest.skip("running the client as another user needs root (CI runs us as nobody)")


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("trust", ["env", "flags", "system"])
@pytest.mark.parametrize("scenario", sorted(MEASURED))
def test_each_keystore_fault_gives_the_measured_verdict_and_wording(
    make_tlsenv: Maker, scenario: str, trust: str, user: str | None
) -> None:
    _user(user)
    env = make_tlsenv(scenario, user=user)
    out = env.client("java", trust=trust).run()
    verdict, wording = MEASURED[scenario][trust == "system"]
    assert out.verdict is verdict, out.reason
    assert wording in out.reason
    assert out.verdict in env.scenario.expected, out.reason


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("trust", ["env", "system"])
def test_good_is_ok_and_an_untrusted_interceptor_is_rejected(
    make_tlsenv: Maker, trust: str, user: str | None
) -> None:
    _user(user)
    good = make_tlsenv("good", user=user).client("java", trust=trust).run()
    good.assert_ok()
    mitm = make_tlsenv("mitm-untrusted", user=user).client("java", trust=trust).run()
    assert mitm.verdict is Verdict.REJECTED, mitm.reason  # not LEAKED: nothing reached it
    assert PKIX in mitm.reason


def test_env_mode_uses_java_tool_options_and_flags_mode_the_command_line(
    make_tlsenv: Maker,
) -> None:
    env = make_tlsenv("good")
    keystore = env.store.sources["javax.net.ssl.trustStore"]
    in_env = env.client("java")
    assert f"-Djavax.net.ssl.trustStore={keystore}" in str(in_env.env["JAVA_TOOL_OPTIONS"])
    assert not any("trustStore" in a for a in in_env.argv or ())
    out = in_env.run()
    out.assert_ok()
    assert "Picked up JAVA_TOOL_OPTIONS" in out.stderr
    flags = env.client("java", trust="flags")
    assert flags.label == "java -Djavax.net.ssl.trustStore"
    assert f"-Djavax.net.ssl.trustStore={keystore}" in (flags.argv or ())
    assert flags.env["JAVA_TOOL_OPTIONS"] is None
    # The twin: the same command without the trust options (and none in the environment)
    # reads the host's default cacerts, which lacks the origin's CA.
    bare = [a for a in flags.argv or () if not a.startswith("-Djavax.net.ssl.")]
    refused = env.run(bare)
    assert refused.verdict is Verdict.REJECTED, refused.reason


def test_proxy_tunnel_goes_through_the_properties_never_https_proxy(make_tlsenv: Maker) -> None:
    env = make_tlsenv("proxy-tunnel")
    client = env.client("java")
    assert env.proxy is not None
    assert any(a.startswith("-Dhttps.proxyHost=") for a in client.argv or ())
    client.run().assert_ok()
    tunnelled = len(env.proxy.connects)
    assert tunnelled >= 1
    # The twin: HTTPS_PROXY alone (the scenario's environment has it) does not move Java: it
    # goes straight to the origin, and the proxy sees no CONNECT.
    assert "HTTPS_PROXY" in env.environ
    bare = [a for a in client.argv or () if not a.startswith("-Dhttps.proxy")]
    direct = env.run(bare, env=dict(client.env))
    direct.assert_ok()
    assert len(env.proxy.connects) == tunnelled


def test_the_layout_keystore_is_jks_and_its_faults_reach_only_java(make_tlsenv: Maker) -> None:
    env = make_tlsenv("good")
    keystore = env.store.keystore
    assert keystore is not None
    assert keystore.read_bytes().startswith(JKS_MAGIC)
    assert str(keystore).endswith("etc/ssl/certs/java/cacerts")
    mismatch = make_tlsenv("keystore-type-mismatch")
    assert mismatch.store.keystore is not None
    assert mismatch.store.keystore.read_bytes()[:2] == b"\x30\x82"  # PKCS12 (DER)
    with pytest.raises(NotApplicableError, match="keystore-empty cannot reach curl"):
        make_tlsenv("keystore-empty").client("curl")


def test_a_layout_without_keystore_is_not_applicable_to_java(make_tlsenv: Maker) -> None:
    env = make_tlsenv("good", layout="bundle-only")
    with pytest.raises(NotApplicableError, match="java's JAVA_TOOL_OPTIONS"):
        env.client("java")


def test_keytool_reads_the_jks_writer_and_refuses_a_wrong_password(
    tmp_path: os.PathLike[str], tlsenv: TLSEnv
) -> None:
    import subprocess

    ca = tlsenv.store.keystore_certs()[0]
    path = os.path.join(tmp_path, "cacerts")
    with open(path, "wb") as f:
        f.write(jks_truststore([ca], "changeit"))
    argv = ["keytool", "-list", "-keystore", path, "-storetype", "JKS"]
    ok = subprocess.run([*argv, "-storepass", "changeit"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "trustedCertEntry" in ok.stdout
    bad = subprocess.run([*argv, "-storepass", "wrong-pw"], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "password was incorrect" in bad.stdout + bad.stderr


def test_an_uncaught_java_exception_is_a_crash_and_a_caught_one_is_not() -> None:
    trace = 'Exception in thread "main" java.lang.StackOverflowError\n\tat X.main(X.java:1)\n'
    assert (
        classify_run(
            returncode=1, stderr=trace, stdout="", timed_out=False, timeout=10, reached_origin=False
        )[0]
        is Verdict.CRASHED
    )
    caught = "java.io.IOException: boom\ncaused by: java.net.ConnectException: null\n"
    assert (
        classify_run(
            returncode=1,
            stderr=caught,
            stdout="",
            timed_out=False,
            timeout=10,
            reached_origin=False,
        )[0]
        is Verdict.FAILED
    )


# The fallback group: the trust-store property names a broken file, the origin's CA is only in
# the default cacerts (shown at its real path). Java falls back silently when the file is
# missing or unreadable (OK: outside the expected set, the bug this group exists to show) and
# refuses a file that is there but no keystore.
FALLBACK = {
    "fallback-missing": (Verdict.OK, "origin got the request"),
    "fallback-unreadable": (Verdict.OK, "origin got the request"),
    "fallback-garbage": (Verdict.FAILED, ACCESS),
    "fallback-empty": (Verdict.FAILED, ACCESS),
}


@pytest.mark.parametrize("scenario", sorted(FALLBACK))
def test_java_falls_back_silently_to_the_default_cacerts(make_tlsenv: Maker, scenario: str) -> None:
    env = make_tlsenv(scenario)
    client = env.client("java")
    assert env.fallback is not None
    assert str(env.fallback.file) in str(client.env["JAVA_TOOL_OPTIONS"])
    out = client.run()
    verdict, wording = FALLBACK[scenario]
    assert out.verdict is verdict, out.reason
    assert wording in out.reason
    assert (out.verdict in env.scenario.expected) is (verdict is not Verdict.OK)


def test_an_admin_installed_proxy_ca_reaches_the_keystore_too(make_tlsenv: Maker) -> None:
    # update-ca-certificates' Java hook adds an admin's CA to cacerts as it does to the
    # bundle: the intercepting proxy of uv-5448 is trusted by Java as well.
    env = make_tlsenv("uv-5448")
    assert env.store.keystore is not None
    mitm = env.store.keystore_certs()[-1]
    assert "mitm" in mitm.subject.rfc4514_string().lower()
    env.client("java").run().assert_ok()


def test_a_leaf_without_server_auth_is_a_certificate_refusal() -> None:
    text = (
        "javax.net.ssl.SSLHandshakeException: Extended key usage does not permit use for TLS "
        "server authentication\ncaused by: sun.security.validator.ValidatorException: Extended "
        "key usage does not permit use for TLS server authentication\n"
    )
    verdict, reason = classify_run(
        returncode=1, stderr=text, stdout="", timed_out=False, timeout=10, reached_origin=False
    )
    assert verdict is Verdict.REJECTED
    assert "Extended key usage" in reason
