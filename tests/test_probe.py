"""The trust-discovery probe: where each client looks, measured with canary CAs.

Every fact asserted here was found by running the client on this machine: a source is
"trusted" when the client fetched from an origin signed by that source's canary CA, and the
probe's own control run (no source, an unknown CA) was refused. Each positive fact has its
negative twin in the same report: a source the client does not read is REJECTED ("ignored").
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import ssl
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.cli import main
from pytest_tlsenv.clients import PRESETS, pinned
from pytest_tlsenv.clients.fetchers import httpx_fetch, requests_fetch, urllib_fetch
from pytest_tlsenv.errors import ClientUnavailableError, ConfigError
from pytest_tlsenv.namespace import probe as namespace_probe
from pytest_tlsenv.outcome import Verdict
from pytest_tlsenv.probe import (
    SYSTEM_SOURCES,
    TRUST_VARIABLES,
    OpenWatch,
    ProbeReport,
    probe,
)

pytestmark = pytest.mark.nonroot

CURL = ["curl", "-fsS", "--max-time", "10", "{url}"]
NODE_GET = (
    "require('https').get(process.argv[1], r => process.exit(r.statusCode < 400 ? 0 : 1))"
    ".on('error', e => {console.error(e.message); process.exit(1)})"
)
NODE = ["node", "-e", NODE_GET, "{url}"]
NODE_OPENSSL = ["node", "--use-openssl-ca", "-e", NODE_GET, "{url}"]
UV_INSTALL = ["pip", "install", "--python", "{venv}", "--index-url", "{index_url}", "tlsenv-probe"]
# The variables a package manager run is worth its time on (uv 0.2.28 retries a refused
# handshake with back-off: ~3 s a REJECTED run).
UV_VARIABLES = ["SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]


def _need(exe: str) -> None:
    if shutil.which(exe) is None:
        pytest.skip(f"{exe} is not installed on this machine")


def _requests(url: str) -> bytes:
    return requests_fetch(url)


def _httpx(url: str) -> bytes:
    return httpx_fetch(url)


@pytest.fixture
def requests_installed() -> None:
    pytest.importorskip("requests")


@pytest.fixture
def httpx_installed() -> None:
    pytest.importorskip("httpx")


_REPORTS: dict[str, ProbeReport] = {}


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ProbeReport]]:
    """``probed(key, client, **kw)``: one probe per key per module (several tests read one)."""
    _REPORTS.clear()

    def run(key: str, client: Any, **kw: Any) -> ProbeReport:
        if key not in _REPORTS:
            root = tmp_path_factory.mktemp("probe")
            _REPORTS[key] = probe(client, root=root / "p", **kw)
            # Everything the probe wrote is gone: canaries, keys, sandboxes, venvs.
            assert not (root / "p").exists()
            print(_REPORTS[key].table())
        return _REPORTS[key]

    yield run
    _REPORTS.clear()


def _ignored_except(report: ProbeReport, trusted: set[str]) -> None:
    """Every other candidate variable: refused and never opened."""
    __tracebackhide__ = True
    for name in TRUST_VARIABLES:
        if name not in trusted:
            assert report.status(name) == "ignored", report.table()


# -- python's ssl, in-process --------------------------------------------------------------------


def test_python_ssl_uses_file_and_dir_together(probed: Callable[..., ProbeReport]) -> None:
    report = probed("python-ssl", urllib_fetch)
    assert report.valid, report.table()
    assert report.control_verdict == Verdict.REJECTED
    assert set(report.trusted) == {"SSL_CERT_FILE", "SSL_CERT_DIR"}, report.table()
    pair = report.pair("SSL_CERT_FILE", "SSL_CERT_DIR")
    assert pair.both, report.table()  # OpenSSL: both at once
    _ignored_except(report, {"SSL_CERT_FILE", "SSL_CERT_DIR"})
    # inotify saw this very process open the canary files (in-process client).
    assert report.result("SSL_CERT_FILE").opened == ("ca.pem",)
    assert any(f.endswith(".pem") for f in report.result("SSL_CERT_DIR").opened)


# -- curl ------------------------------------------------------------------------------------


def test_curl_prefers_curl_ca_bundle_then_dir_then_file(
    probed: Callable[..., ProbeReport],
) -> None:
    _need("curl")
    report = probed("curl", CURL)
    assert report.valid, report.table()
    assert set(report.trusted) == {"CURL_CA_BUNDLE", "SSL_CERT_DIR", "SSL_CERT_FILE"}
    # Only one of them is used: the first set of CURL_CA_BUNDLE, SSL_CERT_DIR, SSL_CERT_FILE.
    assert report.wins("CURL_CA_BUNDLE", "SSL_CERT_FILE"), report.table()
    assert report.wins("CURL_CA_BUNDLE", "SSL_CERT_DIR"), report.table()
    assert report.wins("SSL_CERT_DIR", "SSL_CERT_FILE"), report.table()
    # Disabled means not even opened (inotify), not read and discarded.
    assert not report.pair("CURL_CA_BUNDLE", "SSL_CERT_FILE").read("SSL_CERT_FILE")
    assert report.pair("CURL_CA_BUNDLE", "SSL_CERT_FILE").read("CURL_CA_BUNDLE")
    assert report.order == ["CURL_CA_BUNDLE", "SSL_CERT_DIR", "SSL_CERT_FILE"]
    assert report.order_text == "CURL_CA_BUNDLE > SSL_CERT_DIR > SSL_CERT_FILE"
    _ignored_except(report, {"CURL_CA_BUNDLE", "SSL_CERT_DIR", "SSL_CERT_FILE"})
    print(f"whole curl probe: {report.runs} runs in {report.duration:.2f} s")


def test_a_client_that_does_not_verify_makes_the_probe_inconclusive() -> None:
    """The negative twin of every "trusted": with -k the control run is OK, so nothing is."""
    _need("curl")
    report = probe(["curl", "-fsSk", "{url}"], variables=["SSL_CERT_FILE", "PIP_CERT"])
    assert not report.valid
    assert report.control_verdict == Verdict.OK
    assert report.trusted == []
    assert report.pairs == []
    assert {r.status for r in report.results} == {"inconclusive"}
    assert "WARNING: the control run was not refused" in report.table()


# -- requests (in-process) --------------------------------------------------------------------


@pytest.mark.usefixtures("requests_installed")
def test_requests_ignores_ssl_cert_file(probed: Callable[..., ProbeReport]) -> None:
    report = probed("requests", _requests)
    assert report.valid, report.table()
    assert set(report.trusted) == {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}, report.table()
    assert report.wins("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"), report.table()
    # requests passes certifi's bundle explicitly: OpenSSL's variables are never looked at.
    assert report.status("SSL_CERT_FILE") == "ignored"
    assert report.status("SSL_CERT_DIR") == "ignored"


@pytest.mark.usefixtures("requests_installed")
def test_requests_without_requests_ca_bundle_falls_back_to_curl_ca_bundle(
    probed: Callable[..., ProbeReport],
) -> None:
    variables = [v for v in TRUST_VARIABLES if v != "REQUESTS_CA_BUNDLE"]
    report = probed("requests-no-rcb", _requests, variables=variables)
    assert report.valid, report.table()
    assert "REQUESTS_CA_BUNDLE" not in report.names
    assert report.trusted == ["CURL_CA_BUNDLE"], report.table()
    assert report.status("SSL_CERT_FILE") == "ignored"


# -- httpx (in-process) -----------------------------------------------------------------------


@pytest.mark.usefixtures("httpx_installed")
def test_httpx_ssl_cert_file_disables_ssl_cert_dir(probed: Callable[..., ProbeReport]) -> None:
    report = probed("httpx", _httpx)
    assert report.valid, report.table()
    assert set(report.trusted) == {"SSL_CERT_FILE", "SSL_CERT_DIR"}, report.table()
    assert report.wins("SSL_CERT_FILE", "SSL_CERT_DIR"), report.table()
    assert report.status("REQUESTS_CA_BUNDLE") == "ignored"
    assert report.check_honours(PRESETS["httpx"].honours) == []


# -- node -------------------------------------------------------------------------------------


def test_node_reads_node_extra_ca_certs_only(probed: Callable[..., ProbeReport]) -> None:
    _need("node")
    report = probed("node", NODE)
    assert report.valid, report.table()
    assert report.trusted == ["NODE_EXTRA_CA_CERTS"], report.table()
    assert report.status("SSL_CERT_FILE") == "ignored"  # its bundled store, not OpenSSL's
    assert report.status("SSL_CERT_DIR") == "ignored"


def test_node_use_openssl_ca_adds_openssl_variables(probed: Callable[..., ProbeReport]) -> None:
    _need("node")
    report = probed("node-openssl", NODE_OPENSSL)
    assert report.valid, report.table()
    assert set(report.trusted) == {"SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS"}
    for a, b in (
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"),
        ("SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS"),
    ):
        pair = report.pair(a, b)
        assert pair.both, report.table()  # all three together


# -- uv, old and new ------------------------------------------------------------------------------


def test_uv_0_2_28_reads_ssl_cert_file_only(
    probed: Callable[..., ProbeReport], uv_pinned: Callable[[str], str]
) -> None:
    uv = uv_pinned("0.2.28")
    report = probed("uv-0.2.28", [uv, *UV_INSTALL], variables=UV_VARIABLES)
    assert report.valid, report.table()
    assert report.trusted == ["SSL_CERT_FILE"], report.table()
    assert report.status("SSL_CERT_DIR") == "ignored"
    assert report.status("REQUESTS_CA_BUNDLE") == "ignored"
    assert report.check_honours(PRESETS["uv"].honours_for("0.2.28")) == []
    # Twin: the newest uv's list (SSL_CERT_FILE, SSL_CERT_DIR) does not hold for 0.2.28.
    assert report.check_honours(PRESETS["uv"].honours) == [
        "SSL_CERT_DIR: the preset says honoured, the probe found it ignored"
    ]


def test_uv_0_13_9_reads_file_and_dir_together(
    probed: Callable[..., ProbeReport], uv_pinned: Callable[[str], str]
) -> None:
    uv = uv_pinned("0.13.9")
    report = probed("uv-0.13.9", [uv, *UV_INSTALL], variables=UV_VARIABLES)
    assert report.valid, report.table()
    assert set(report.trusted) == {"SSL_CERT_FILE", "SSL_CERT_DIR"}, report.table()
    pair = report.pair("SSL_CERT_FILE", "SSL_CERT_DIR")
    assert pair.both, report.table()
    # rustls-native-certs reads the whole directory: it lists it.
    assert "." in report.result("SSL_CERT_DIR").opened
    assert report.status("REQUESTS_CA_BUNDLE") == "ignored"
    assert report.check_honours(PRESETS["uv"].honours_for("0.13.9")) == []


# -- pip: the venv's own (< 24.2), and 24.3.1 (truststore) -------------------------------------

PIP_INSTALL = [
    "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--retries", "0", "--timeout", "10",
    "--target", "{venvdir}/target", "--index-url", "{index_url}", "tlsenv-probe",
]  # fmt: skip
PIP_VARIABLES = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"]


def test_pip_requests_variables_override_pip_cert(probed: Callable[..., ProbeReport]) -> None:
    version = importlib.metadata.version("pip")
    if tuple(int(x) for x in version.split(".")[:2]) >= (24, 2):
        pytest.skip(f"this interpreter's pip {version} has truststore (see the 24.3.1 test)")
    report = probed("pip", [sys.executable, *PIP_INSTALL], variables=PIP_VARIABLES)
    assert report.valid, report.table()
    # pip sets session.verify from PIP_CERT, and requests lets its variables override it.
    assert set(report.trusted) == {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"}
    assert report.order == ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"], report.table()
    assert not report.pair("REQUESTS_CA_BUNDLE", "PIP_CERT").read("PIP_CERT")
    # This pip has no truststore: SSL_CERT_FILE is ignored.
    assert report.status("SSL_CERT_FILE") == "ignored"
    assert report.check_honours(PRESETS["pip"].honours) == []
    # Twin: the order ../shared/CLIENT-FACTS.md gives (PIP_CERT first) is refuted.
    assert report.check_honours(("PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")) == [
        "the preset ranks PIP_CERT above REQUESTS_CA_BUNDLE, but REQUESTS_CA_BUNDLE wins over "
        "PIP_CERT",
        "the preset ranks PIP_CERT above CURL_CA_BUNDLE, but CURL_CA_BUNDLE wins over PIP_CERT",
    ]


def test_pip_24_truststore_adds_ssl_cert_file_to_everything(
    probed: Callable[..., ProbeReport],
) -> None:
    try:
        python = pinned("pip", "24.3.1").parent / "python"  # imports pip 24.3.1
    except ClientUnavailableError as e:
        pytest.skip(str(e))
    report = probed("pip-24.3.1", [str(python), *PIP_INSTALL], variables=PIP_VARIABLES)
    assert report.valid, report.table()
    assert set(report.trusted) == set(PIP_VARIABLES), report.table()
    assert report.wins("REQUESTS_CA_BUNDLE", "PIP_CERT")
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"):
        assert report.pair("SSL_CERT_FILE", var).both, report.table()
    assert report.order_text == (
        "REQUESTS_CA_BUNDLE > CURL_CA_BUNDLE > PIP_CERT; with all: SSL_CERT_FILE"
    )


# -- presets against measurements -------------------------------------------------------------

PRESET_CLIENTS: dict[str, tuple[Any, str | None]] = {
    "python-ssl": (urllib_fetch, None),
    "curl": (CURL, "curl"),
    "requests": (_requests, None),
    "node": (NODE, "node"),
    "node-openssl": (NODE_OPENSSL, "node"),
}


@pytest.mark.parametrize("name", sorted(PRESET_CLIENTS))
def test_preset_honours_what_the_probe_measures(
    name: str, probed: Callable[..., ProbeReport]
) -> None:
    client, exe = PRESET_CLIENTS[name]
    if exe is not None:
        _need(exe)
    if name == "requests":
        pytest.importorskip("requests")
    report = probed(name, client)
    assert report.valid, report.table()
    assert report.check_honours(PRESETS[name].honours) == [], report.table()
    # trust="env" gives the client only variables it was measured to trust.
    assert set(PRESETS[name].env_vars) <= set(report.trusted), report.table()
    # Twin: OpenSSL's variables are not among them for requests and node (never trusted).
    if name in ("requests", "node"):
        assert not {"SSL_CERT_FILE", "SSL_CERT_DIR"} & set(report.trusted)


def test_check_honours_names_each_disagreement(probed: Callable[..., ProbeReport]) -> None:
    _need("curl")
    report = probed("curl", CURL)
    problems = report.check_honours(("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))
    assert "REQUESTS_CA_BUNDLE: the preset says honoured, the probe found it ignored" in problems
    assert "SSL_CERT_DIR: trusted by the client, missing from the preset" in problems
    assert (
        "the preset ranks SSL_CERT_FILE above CURL_CA_BUNDLE, but CURL_CA_BUNDLE wins over "
        "SSL_CERT_FILE" in problems
    )


# -- read, but not trusted --------------------------------------------------------------------


def _reads_ssl_cert_file(url: str) -> bytes:
    path = os.environ.get("SSL_CERT_FILE")
    if path is not None:
        with open(path, "rb") as f:
            f.read()
    # Trust nothing: an empty store, so every server is refused.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with urllib.request.urlopen(url, context=ctx, timeout=5) as r:  # pragma: no cover
        data: bytes = r.read()
        return data


def test_read_but_not_trusted_is_read_only() -> None:
    report = probe(_reads_ssl_cert_file, variables=["SSL_CERT_FILE", "SSL_CERT_DIR"])
    assert report.valid, report.table()
    assert report.status("SSL_CERT_FILE") == "read-only"
    assert report.result("SSL_CERT_FILE").opened == ("ca.pem",)
    assert report.status("SSL_CERT_DIR") == "ignored"  # the twin: never opened
    assert report.result("SSL_CERT_DIR").opened == ()
    assert report.trusted == []
    assert report.order_text == "(no source trusted)"


def test_open_watch_reports_opens_in_watched_dirs_only(tmp_path: Path) -> None:
    watched, other = tmp_path / "watched", tmp_path / "other"
    watched.mkdir()
    other.mkdir()
    (watched / "a.pem").write_text("a")
    (other / "b.pem").write_text("b")
    with OpenWatch([watched]) as w:
        assert w.drain() == set()
        (other / "b.pem").read_text()
        assert w.drain() == set()  # the twin: an unwatched directory
        (watched / "a.pem").read_text()
        os.listdir(watched)
        assert w.drain() == {str(watched / "a.pem"), str(watched)}
        seen: list[set[str]] = []
        t = threading.Thread(target=lambda: (watched / "a.pem").read_text())
        t.start()
        t.join()
        seen.append(w.drain())
        assert seen == [{str(watched / "a.pem")}]  # any thread, any process
    assert w.fd == -1


# -- system paths -----------------------------------------------------------------------------


@pytest.fixture
def namespaces() -> None:
    reason = namespace_probe()
    if reason is not None:
        pytest.skip(f"system paths unavailable: {reason}")


def test_system_sources_come_from_the_layouts() -> None:
    # The layouts' paths, plus Go's other default files (root_linux.go).
    assert SYSTEM_SOURCES == {
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem": "file",
        "/etc/pki/tls/cacert.pem": "file",
        "/etc/pki/tls/cert.pem": "file",
        "/etc/pki/tls/certs": "dir",
        "/etc/pki/tls/certs/ca-bundle.crt": "file",
        "/etc/ssl/ca-bundle.pem": "file",
        "/etc/ssl/cert.pem": "file",
        "/etc/ssl/certs": "dir",
        "/etc/ssl/certs/ca-certificates.crt": "file",
        "/etc/pki/ca-trust/extracted/java/cacerts": "keystore",
        "/etc/ssl/certs/java/cacerts": "keystore",
    }


@pytest.mark.usefixtures("namespaces")
def test_curl_system_paths_compiled_in_defaults_stay_loaded(
    probed: Callable[..., ProbeReport],
) -> None:
    _need("curl")
    report = probed(
        "curl-system",
        CURL,
        system_paths=True,
        variables=["SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE"],
    )
    assert report.valid, report.table()
    bundle, certs = "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs"
    # Debian's curl: its compiled-in bundle and directory, nothing of RHEL's or Alpine's.
    assert set(report.trusted) == {"SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", bundle, certs}
    for path in SYSTEM_SOURCES:
        if path not in (bundle, certs):
            assert report.status(path) == "ignored", report.table()
    # A variable replaces only its own half: the compiled-in other half stays loaded.
    assert report.wins("SSL_CERT_FILE", bundle)
    assert report.wins("CURL_CA_BUNDLE", bundle)
    assert report.wins("SSL_CERT_DIR", certs)
    for var in ("SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        pair = report.pair(var, certs)
        assert pair.both, report.table()
    pair = report.pair("SSL_CERT_DIR", bundle)
    assert pair.both, report.table()


@pytest.mark.usefixtures("namespaces")
def test_python_ssl_system_paths_in_process(probed: Callable[..., ProbeReport]) -> None:
    report = probed(
        "python-ssl-system",
        urllib_fetch,
        system_paths=True,
        variables=["SSL_CERT_FILE", "SSL_CERT_DIR"],
    )
    assert report.valid, report.table()
    bundle, certs = "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs"
    assert set(report.trusted) == {"SSL_CERT_FILE", "SSL_CERT_DIR", bundle, certs}
    assert report.wins("SSL_CERT_FILE", bundle)
    assert report.wins("SSL_CERT_DIR", certs)
    assert report.result(bundle).opened == ("ca-certificates.crt",)


# -- TLSEnv.probe and the command line -------------------------------------------------------------


def test_tlsenv_probe_uses_its_root_and_cleans_up(tlsenv: TLSEnv) -> None:
    _need("curl")
    report = tlsenv.probe(CURL, variables=["CURL_CA_BUNDLE", "PIP_CERT"])
    assert report.trusted == ["CURL_CA_BUNDLE"]
    assert report.status("PIP_CERT") == "ignored"
    assert not list(tlsenv.root.glob("probe-*"))


def test_probe_argument_errors() -> None:
    with pytest.raises(ConfigError, match=r"must contain \{url\}"):
        probe(["curl", "https://localhost/"])
    with pytest.raises(ConfigError, match="unknown trust variable"):
        probe(CURL, variables=["NOPE"])
    with pytest.raises(ConfigError, match="sets SSL_CERT_FILE"):
        probe(CURL, env={"SSL_CERT_FILE": "/x"})
    with pytest.raises(ConfigError, match="argv list"):
        probe("curl {url}")


def test_probe_never_takes_over_a_directory_with_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an empty directory"):
        probe(CURL, root=tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_cli_probe_writes_json_and_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("curl")
    js, md = tmp_path / "p.json", tmp_path / "p.md"
    args = ["probe", "--only", "SSL_CERT_FILE", "--only", "CURL_CA_BUNDLE", "--json", str(js)]
    assert main([*args, "--md", str(md), "--", *CURL]) == 0
    out = capsys.readouterr().out
    assert "precedence: CURL_CA_BUNDLE > SSL_CERT_FILE" in out
    data = json.loads(js.read_text())
    assert data["valid"] is True
    assert data["order"] == ["CURL_CA_BUNDLE", "SSL_CERT_FILE"]
    assert {s["source"]: s["status"] for s in data["sources"]} == {
        "SSL_CERT_FILE": "trusted",
        "CURL_CA_BUNDLE": "trusted",
    }
    assert "| `CURL_CA_BUNDLE` | file | **trusted** |" in md.read_text()


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["probe"], "give the client command after --"),
        (["probe", "--", "curl", "https://localhost/"], "must contain {url}"),
        (["probe", "--only", "NOPE", "--", *CURL], "unknown trust variable 'NOPE'"),
        (["probe", "--env", "X", "--", *CURL], "--env takes NAME=VALUE"),
        (["probe", "--timeout", "0", "--", *CURL], "--timeout must be positive"),
        (["probe", "--", "/nonexistent/client", "{url}"], "cannot run '/nonexistent/client'"),
        (["probe", "--json", "/nonexistent/dir/x.json", "--", *CURL], "is not a directory"),
    ],
)
def test_cli_mistakes_are_usage_messages(
    words: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(words)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.startswith("usage: python -m pytest_tlsenv probe")


@pytest.mark.usefixtures("namespaces")
def test_node_system_paths_bundled_store_unless_use_openssl_ca(
    probed: Callable[..., ProbeReport],
) -> None:
    _need("node")
    plain = probed(
        "node-system", NODE, system_paths=True, variables=["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"]
    )
    assert plain.valid, plain.table()
    assert plain.trusted == ["NODE_EXTRA_CA_CERTS"], plain.table()
    for path in SYSTEM_SOURCES:  # its bundled Mozilla store: no default path is even opened
        assert plain.status(path) == "ignored", plain.table()
    openssl = probed(
        "node-openssl-system",
        NODE_OPENSSL,
        system_paths=True,
        variables=["SSL_CERT_FILE", "SSL_CERT_DIR"],
    )
    assert openssl.valid, openssl.table()
    # This node bundles its own OpenSSL (OPENSSLDIR /etc/ssl, not Debian's /usr/lib/ssl): its
    # default file is /etc/ssl/cert.pem, which Debian does not have; Debian's bundle is unread.
    assert set(openssl.trusted) == {
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "/etc/ssl/cert.pem",
        "/etc/ssl/certs",
    }, openssl.table()
    assert openssl.status("/etc/ssl/certs/ca-certificates.crt") == "ignored"
    assert openssl.wins("SSL_CERT_FILE", "/etc/ssl/cert.pem")
    assert openssl.wins("SSL_CERT_DIR", "/etc/ssl/certs")


@pytest.mark.usefixtures("namespaces")
def test_uv_0_13_9_system_certs_read_whole_dirs_and_variables_drop_them(
    probed: Callable[..., ProbeReport], uv_pinned: Callable[[str], str]
) -> None:
    uv = uv_pinned("0.13.9")
    report = probed(
        "uv-0.13.9-system",
        [uv, *UV_INSTALL],
        system_paths=True,
        variables=["SSL_CERT_FILE", "SSL_CERT_DIR"],
        env={"UV_SYSTEM_CERTS": "1"},
    )
    assert report.valid, report.table()
    defaults = {"/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs"}
    # rustls-native-certs via openssl-probe: the first bundle found, and every file of both
    # cert dirs (RHEL's ca-bundle.crt is read as a file *of* /etc/pki/tls/certs).
    defaults.add("/etc/pki/tls/certs/ca-bundle.crt")
    assert set(report.trusted) == {"SSL_CERT_FILE", "SSL_CERT_DIR", *defaults}, report.table()
    assert "." in report.result("/etc/ssl/certs").opened
    for path in set(SYSTEM_SOURCES) - defaults:
        assert report.status(path) == "ignored", report.table()
    # Either variable set: only the variables, no default at all (never opened).
    for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        for path in defaults:
            assert report.wins(var, path), report.table()
            assert not report.pair(var, path).read(path)


def test_a_hanging_client_is_bounded_by_the_timeout() -> None:
    report = probe(["sh", "-c", "sleep 30", "{url}"], variables=["SSL_CERT_FILE"], timeout=0.5)
    assert report.control_verdict == Verdict.HUNG
    assert not report.valid
    assert report.status("SSL_CERT_FILE") == "inconclusive"
    assert report.control_reason == "no exit within 0.5 s; process group killed"


def test_cli_system_paths_unavailable_is_a_usage_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pytest_tlsenv.namespace as namespace

    # What a container without mount namespaces answers (namespace.probe's real attempt).
    monkeypatch.setattr(namespace, "probe", lambda: "unshare: Operation not permitted")
    with pytest.raises(SystemExit) as exc:
        main(["probe", "--system-paths", "--", *CURL])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "system_paths=True needs a private mount namespace" in err
    assert "unshare: Operation not permitted" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("namespaces")
def test_java_trusts_its_trust_store_property_else_the_default_cacerts(
    probed: Callable[..., ProbeReport],
) -> None:
    if shutil.which("java") is None or shutil.which("javac") is None:
        pytest.skip("no JDK on this machine (java and javac)")
    from pytest_tlsenv.clients.jvm import JVM_OPTIONS, compiled

    argv = ["java", *JVM_OPTIONS, "-cp", str(compiled()), "TlsenvGet", "{url}"]
    report = probed(
        "java-system", argv, system_paths=True, variables=["JAVA_TOOL_OPTIONS", "SSL_CERT_FILE"]
    )
    assert report.valid, report.table()
    cacerts = "/etc/ssl/certs/java/cacerts"  # where Debian's lib/security/cacerts link points
    assert set(report.trusted) == {"JAVA_TOOL_OPTIONS", cacerts}, report.table()
    assert report.status("SSL_CERT_FILE") == "ignored", report.table()
    # The property replaces the default store: the default's CA is no longer trusted.
    assert report.wins("JAVA_TOOL_OPTIONS", cacerts), report.table()
