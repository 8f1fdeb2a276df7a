"""The ``go`` preset: Go's net/http (http.Get) against real scenarios.

The client is compiled from the source the package ships, once per Go version, into the
cache; every verdict here is a real handshake by that binary. Go reads SSL_CERT_FILE and the
SSL_CERT_DIR colon list (env mode), else its own default files and dirs (system mode); it reads
every entry of a cert dir, so a decoy FIFO blocks its root loading, which the client reports
as a hang naming root loading. Without go on PATH every test here skips with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_tlsenv import NotApplicableError, TLSEnv, Verdict
from pytest_tlsenv.clients import get_preset
from pytest_tlsenv.clients.gobuild import GO_SOURCE, go_builds, go_client, go_version
from pytest_tlsenv.errors import ClientUnavailableError
from pytest_tlsenv.namespace import probe as namespace_probe
from pytest_tlsenv.outcome import classify_run
from pytest_tlsenv.probe import probe
from pytest_tlsenv.survey import survey

pytestmark = [
    pytest.mark.nonroot,
    pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed on this machine"),
]

Maker = Callable[..., TLSEnv]

#: What go does in these scenarios, measured; the survey must show the same.
GO_VERDICTS = {
    "good": Verdict.OK,
    "mitm-untrusted": Verdict.REJECTED,
    "proxy-tunnel": Verdict.OK,
    "fifo": Verdict.HUNG,
}


def _go(env: TLSEnv, trust: str | None = None) -> Any:
    try:
        return env.client("go", trust=trust)
    except ClientUnavailableError as e:
        pytest.skip(str(e))


@pytest.fixture(params=["env", "system"])
def trust(request: pytest.FixtureRequest) -> str:
    """Both trust modes go has (system mode needs private mount namespaces)."""
    if request.param == "system":
        reason = namespace_probe()
        if reason is not None:
            pytest.skip(f"system paths unavailable: {reason}")
    return str(request.param)


def test_go_connects_in_good_and_refuses_an_untrusted_interceptor(
    make_tlsenv: Maker, trust: str
) -> None:
    good = make_tlsenv(trust=trust)
    client = _go(good)
    assert client.label == ("go" if trust == "env" else "go (system)")
    out = client.run()
    out.assert_ok()
    assert out.trust == trust
    assert ("SSL_CERT_FILE" in out.environ) is (trust == "env")
    # Twin: the interceptor's CA is in no store; go refuses it and sends nothing through.
    mitm = make_tlsenv(scenario="mitm-untrusted", trust=trust)
    out = _go(mitm).run()
    out.assert_rejected()
    assert "x509: certificate signed by unknown authority" in out.reason
    assert mitm.proxy is not None
    assert mitm.proxy.connects, "go did not go through HTTPS_PROXY"
    assert mitm.proxy.leaked == b""
    assert not mitm.origin.received


@pytest.mark.tlsenv(scenario="proxy-tunnel")
def test_go_goes_through_https_proxy_to_the_invented_name(tlsenv: TLSEnv) -> None:
    out = _go(tlsenv).run()
    out.assert_ok()
    assert tlsenv.proxy is not None
    # Go never proxies localhost: the origin is named origin.tlsenv.test behind a proxy.
    assert [c.target.split(":")[0] for c in tlsenv.proxy.connects] == ["origin.tlsenv.test"]


@pytest.mark.tlsenv(scenario="fifo")
def test_a_decoy_fifo_blocks_gos_root_loading(tlsenv: TLSEnv) -> None:
    out = _go(tlsenv).run()
    out.assert_verdict(Verdict.HUNG)
    assert "root loading blocked" in out.reason
    assert not tlsenv.origin.received


@pytest.mark.tlsenv(scenario="garbage-file")
def test_go_skips_a_decoy_it_can_read(tlsenv: TLSEnv) -> None:
    # Twin of the FIFO: any other junk in the dir is skipped silently.
    _go(tlsenv).run().assert_ok()


def test_go_reads_every_dir_of_the_ssl_cert_dir_list(tlsenv: TLSEnv, tmp_path: Path) -> None:
    empty = tmp_path / "no-certs"
    empty.mkdir()
    cert_dir = tlsenv.store.env["SSL_CERT_DIR"]
    exe = str(go_client())
    listed = tlsenv.run(
        [exe, tlsenv.origin.url],
        env={"SSL_CERT_FILE": None, "SSL_CERT_DIR": f"{empty}:{cert_dir}"},
    )
    listed.assert_ok()
    # Twin: only the empty dir; the store's dir is what made it trust the origin.
    only = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": str(empty)}
    alone = tlsenv.run([exe, tlsenv.origin.url], env=only)
    alone.assert_rejected()


def test_the_probe_measures_what_the_go_preset_says(tmp_path: Path) -> None:
    system = namespace_probe() is None
    report = probe([str(go_client()), "{url}"], root=tmp_path / "p", system_paths=system)
    assert report.valid, report.table()
    preset = get_preset("go")
    assert report.check_honours(preset.honours) == [], report.table()
    assert set(preset.env_vars) <= set(report.trusted)
    assert report.pair("SSL_CERT_FILE", "SSL_CERT_DIR").both, report.table()
    # Twin: none of the other clients' variables.
    assert not {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} & set(report.trusted)
    if system:
        defaults = {t for t in report.trusted if t.startswith("/")}
        # Every default it trusts is on its list, or inside a dir on it (a nested bundle).
        read = preset.system() if preset.system is not None else ()
        assert all(t in read or os.path.dirname(t) in read for t in defaults), defaults
        assert {"/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt"} <= defaults
        # The first default file that reads wins: Debian's is there, Alpine's is never read.
        assert "/etc/ssl/cert.pem" not in defaults, report.table()


def test_go_has_no_flags_mode(tlsenv: TLSEnv) -> None:
    with pytest.raises(NotApplicableError, match="go has no trust option"):
        tlsenv.client("go", trust="flags")


def test_go_version_is_detected() -> None:
    out = subprocess.run(["go", "version"], capture_output=True, text=True, check=True)
    version = go_version()
    assert version is not None
    assert f"go{version} " in out.stdout
    assert get_preset("go").detect() == version


def test_go_verdict_wordings() -> None:
    def verdict(stderr: str, returncode: int = 1) -> Verdict:
        return classify_run(
            returncode=returncode,
            stderr=stderr,
            stdout="",
            timed_out=False,
            timeout=5,
            reached_origin=False,
        )[0]

    url = 'Get "https://origin.tlsenv.test:4433/": '
    assert verdict(url + "x509: certificate signed by unknown authority") == Verdict.REJECTED
    assert verdict(url + "x509: certificate is valid for wrong.tlsenv.test, not x") == (
        Verdict.REJECTED
    )
    assert verdict(url + "x509: certificate relies on legacy Common Name field") == (
        Verdict.REJECTED
    )
    blocked = "tlsenv-go-get: root loading blocked: crypto/x509 was still reading"
    assert verdict(blocked, 124) == Verdict.HUNG
    # Twin: a plain network error is neither.
    assert verdict(url + "dial tcp 127.0.0.1:1: connect: connection refused") == Verdict.FAILED


def test_survey_cells_agree_with_the_per_preset_tests() -> None:
    cells = survey(["go"], list(GO_VERDICTS), timeout=10)
    seen = {c.scenario: c.verdicts["go"] for c in cells if c.placement == "decoy"}
    got = {name: (o.verdict if o is not None else None) for name, o in seen.items()}
    assert got == GO_VERDICTS


#: Where go 1.19 leaves the scenario's expected set (measured as root and as nobody, env and
#: system modes alike): the FIFO blocks its root loading, and it accepts an RSA-1024 leaf.
GO_OUTSIDE_EXPECTED = {"fifo": Verdict.HUNG, "fifo@shadow": Verdict.HUNG, "weak-key": Verdict.OK}


def test_the_survey_column_of_go_is_as_measured(trust: str) -> None:
    cells = survey(["go"], trust=trust, timeout=10)
    outside = {}
    for cell in cells:
        out = cell.verdicts["go"]
        if out is not None and out.verdict not in cell.expected:
            outside[cell.label] = out.verdict
    assert outside == GO_OUTSIDE_EXPECTED
    not_applied = {c.scenario for c in cells if c.verdicts["go"] is None}
    # Go reads no Java keystore; it reads both variables, so every other store fault reaches
    # it in env mode; system mode has no variable to break.
    keystores = {name for name in not_applied if name.startswith("keystore-")}
    no_variable = {"missing-file-env", "missing-dir-env", "dir-as-file"}
    no_variable |= {f"fallback-{kind}" for kind in ("missing", "empty", "unreadable", "garbage")}
    assert not_applied - keystores == (set() if trust == "env" else no_variable)


def test_go_is_compiled_once_per_session_and_version(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    # Reuse the compiled standard library of this session's build: the count is what matters.
    gocache = go_client().parent.parent / "gocache"
    if gocache.is_dir():
        shutil.copytree(gocache, cache / "go" / "gocache", copy_function=os.link)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_go(tlsenv, n):
            tlsenv.client("go").run().assert_ok()
        """
    )
    monkeypatch.setenv("TLSENV_CACHE_DIR", str(cache))
    # Two xdist workers start at once and race for the build: the lock makes it one.
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    assert go_client().parent.parent == cache / "go"  # later callers reuse it
    builds = go_builds()  # TLSENV_CACHE_DIR is set here too
    assert [b["go"] for b in builds] == [go_version()], builds
    assert re.fullmatch(r"[0-9a-f]{12}", builds[0]["source"])
    binaries = list((cache / "go").glob("go*/tlsenv-go-get"))
    assert [b.parent.name for b in binaries] == [f"go{go_version()}-{builds[0]['source']}"]
    # Nothing half-built is left beside it.
    assert not [p for p in (cache / "go").iterdir() if p.name.startswith(".")]
    assert GO_SOURCE.name == "tlsenv_go_get.go"
