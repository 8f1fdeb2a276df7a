"""The ``reports`` group: each reported bug reproduced on the versions its entry pins.

Each test runs the real client (pinned into the suite's cache, or this machine's where the
entry says so) in the report's scenario and asserts the verdict and the wording its entry
records (``pytest_tlsenv.reports.REPORTS``); each has a twin in a healthy setup that is OK,
so the verdict is the scenario's doing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest

from pytest_tlsenv import CATALOGUE, GROUPS, TLSEnv
from pytest_tlsenv.clients import pinned
from pytest_tlsenv.errors import ClientUnavailableError
from pytest_tlsenv.namespace import probe as namespace_probe
from pytest_tlsenv.reports import REPORTS
from pytest_tlsenv.scenarios import resolve

pytestmark = pytest.mark.nonroot

Maker = Callable[..., TLSEnv]


def _pinned(package: str, version: str) -> str:
    try:
        return str(pinned(package, version))
    except ClientUnavailableError as e:
        pytest.skip(str(e))


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed on this machine")


def _needs_namespaces() -> None:
    reason = namespace_probe()
    if reason is not None:
        pytest.skip(f"this report's scenario needs mount namespaces: {reason}")


# -- the entries as data ----------------------------------------------------------------


def test_every_reports_scenario_has_an_entry_and_a_natural_group() -> None:
    assert set(GROUPS["reports"]) == {"uv-5448", *REPORTS}
    for name, report in REPORTS.items():
        sc = CATALOGUE[name]
        assert report.scenario is sc
        assert sc.source == report.source
        assert report.source.startswith("https://github.com/")
        assert len(sc.groups) >= 2, f"{name} is in no group besides reports"
        assert report.measured
        assert report.reported
        assert set(report.evidence) <= set(report.measured)
        assert report.trust in ("env", "flags", "system")


# -- uv-18526: a missing SSL_CERT_FILE ----------------------------------------------------

UV = REPORTS["uv-18526"]


@pytest.mark.slow
@pytest.mark.parametrize("version", list(UV.measured))
def test_uv_18526(make_tlsenv: Maker, version: str) -> None:
    _needs_namespaces()
    _pinned("uv", version)
    env = make_tlsenv("uv-18526")
    out = env.client("uv", version=version).run()
    assert out.verdict == UV.measured[version], out.reason
    assert UV.evidence[version] in out.stderr, out.stderr
    # The override names a missing file: uv says so, whichever way it then goes.
    assert env.fallback is not None
    assert str(env.fallback.file) in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("version", list(UV.measured))
def test_uv_18526_twin_with_the_override_present(make_tlsenv: Maker, version: str) -> None:
    # The same uv with SSL_CERT_FILE naming the healthy store connects: the refusals above
    # are the missing file's doing.
    _pinned("uv", version)
    env = make_tlsenv("good")
    env.client("uv", version=version).run().assert_ok()


# -- npm-7135: NODE_EXTRA_CA_CERTS names a missing file ------------------------------------

NPM = REPORTS["npm-7135"]


def test_npm_7135_node_warns_and_the_ca_is_absent(make_tlsenv: Maker) -> None:
    _needs("node")
    env = make_tlsenv("npm-7135")
    ready = env.client("node")
    missing = ready.env["NODE_EXTRA_CA_CERTS"]
    assert missing is not None
    assert "missing" in missing
    out = ready.run()
    assert out.verdict == NPM.measured["machine"], out.reason
    assert out.verdict in env.scenario.expected
    assert NPM.evidence["machine"] in out.stderr, out.stderr
    assert missing in out.stderr, out.stderr


def test_npm_7135_twin_node_with_the_file_present_is_ok_and_silent(make_tlsenv: Maker) -> None:
    _needs("node")
    out = make_tlsenv("good").client("node").run()
    out.assert_ok()
    assert "Ignoring extra certs" not in out.stderr


def test_npm_7135_node_version_is_recorded() -> None:
    _needs("node")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    assert version.strip().lstrip("v") in NPM.notes, (version, NPM.notes)


# -- requests-6969: a self-signed CN-only certificate as its own anchor --------------------

REQ = REPORTS["requests-6969"]
_GET = "import requests, sys; print(requests.get(sys.argv[1], verify=sys.argv[2]).status_code)"


def _requests_python(client: str) -> str:
    """The pinned requests of an entry's key ``requests V (urllib3 X.x)``, its urllib3 checked."""
    _, requests, urllib3 = client.split(" ", 2)
    python = _pinned("requests", requests)
    have = subprocess.run(
        [python, "-c", "import urllib3; print(urllib3.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    wanted = urllib3.strip("()").split()[1].removesuffix("x")
    if not have.startswith(wanted):
        pytest.fail(f"requests {requests} resolved urllib3 {have}; the entry needs {urllib3}")
    return python


def _leaf_file(env: TLSEnv) -> str:
    path = env.root / "origin-leaf.pem"
    path.write_bytes(env.origin.leaf_pem)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("client", list(REQ.measured))
def test_requests_6969(make_tlsenv: Maker, client: str) -> None:
    env = make_tlsenv("requests-6969")
    assert b"BEGIN CERTIFICATE" in env.origin.leaf_pem
    leaf = _leaf_file(env)
    if client == "curl":
        _needs("curl")
        out = env.run(["curl", "-fsS", "--max-time", "10", "--cacert", leaf, env.origin.url])
    else:
        python = _requests_python(client)
        out = env.run([python, "-c", _GET, env.origin.url, leaf])
    assert out.verdict == REQ.measured[client], out.reason
    assert out.verdict in env.scenario.expected
    if client in REQ.evidence:
        assert REQ.evidence[client] in out.stderr, out.stderr


@pytest.mark.slow
def test_requests_6969_twin_a_san_makes_urllib3_2_ok(make_tlsenv: Maker) -> None:
    # The same self-signed anchor with the name in a subjectAltName: urllib3 2 connects, so
    # its Hostname mismatch above is about the CN-only name, not the self-signed anchor.
    spec = resolve("requests-6969", server="self-signed")
    assert spec.scenario.leaf_anchor
    env = make_tlsenv("requests-6969", server="self-signed")
    python = _requests_python("requests 2.31.0 (urllib3 2.x)")
    env.run([python, "-c", _GET, env.origin.url, _leaf_file(env)]).assert_ok()


def test_requests_6969_store_holds_the_leaf_as_its_own_anchor(make_tlsenv: Maker) -> None:
    env = make_tlsenv("requests-6969")
    assert env.store.bundle is not None
    assert env.origin.leaf_pem in env.store.bundle.read_bytes()
    # The plain self-signed scenario does not anchor its leaf: it is refused there.
    plain = make_tlsenv("self-signed")
    assert plain.store.bundle is not None
    assert plain.origin.leaf_pem not in plain.store.bundle.read_bytes()


# -- curl-6090: --cacert missing, --capath valid ------------------------------------------

CURL = REPORTS["curl-6090"]


def test_curl_6090_exit_77_instead_of_the_valid_capath(make_tlsenv: Maker) -> None:
    _needs("curl")
    env = make_tlsenv("curl-6090", trust="flags")
    ready = env.client("curl", trust="flags")
    cacert = ready.argv[ready.argv.index("--cacert") + 1]
    capath = ready.argv[ready.argv.index("--capath") + 1]
    assert env.store.cert_dir is not None
    assert capath == str(env.store.cert_dir)
    assert "missing" in cacert
    out = ready.run()
    assert out.verdict == CURL.measured["machine"], out.reason
    assert out.returncode == 77
    assert CURL.evidence["machine"] in out.stderr, out.stderr
    assert out.verdict in env.scenario.expected


def test_curl_6090_twin_the_capath_alone_is_ok(make_tlsenv: Maker) -> None:
    # The same --capath without the missing --cacert connects: the dir does hold the CA.
    _needs("curl")
    env = make_tlsenv("curl-6090", trust="flags")
    assert env.store.cert_dir is not None
    argv = ["curl", "-fsS", "--max-time", "10", "--capath", str(env.store.cert_dir)]
    # Debian's curl adds its compiled-in bundle when no --cacert is given: give it a file
    # holding only a decoy CA, so only the directory can trust the origin.
    decoy = env.root / "decoy.pem"
    decoy.write_bytes(env.pki.decoy(0).cert_pem)
    env.run([*argv, "--cacert", str(decoy), env.origin.url]).assert_ok()


# -- pip-12779: --use-feature=truststore ignores the system store --------------------------

PIP = REPORTS["pip-12779"]


def _pip_truststore(env: TLSEnv, pip: str) -> list[str]:
    return [pip, "--isolated", "install", "--use-feature=truststore", "--no-deps",
            "--no-cache-dir", "--disable-pip-version-check", "--retries", "0",
            "--target", str(env.root / "target"), "--index-url", env.origin.index_url,
            "tlsenv-probe"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("version", list(PIP.measured))
def test_pip_12779(make_tlsenv: Maker, version: str) -> None:
    _needs_namespaces()
    pip = _pinned("pip", version)
    env = make_tlsenv("pip-12779", trust="system")
    out = env.run(_pip_truststore(env, pip))
    assert out.verdict == PIP.measured[version], out.reason
    if version in PIP.evidence:
        assert PIP.evidence[version] in out.stderr + out.reason, out.stderr
    else:
        assert any(r.path.endswith(".whl") for r in env.origin.received)
