"""Trust modes: how the scenario's store reaches a client, the way its users run it.

``env`` (the default) gives each client the variables its users set, pointing where the
scenario's SSL_CERT_FILE/SSL_CERT_DIR point (env faults included); ``flags`` gives explicit
options (a labelled variant, e.g. ``curl --cacert``); ``system`` gives no variable and shows
the store at the layout's real paths. A scenario that cannot reach a (client, mode) pair is
not applicable: never a run against a healthy store. Every verdict here is a real handshake
by a real client.
"""

from __future__ import annotations

import os
import shutil
import ssl
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tlsenv import LAYOUTS, PKI, NotApplicableError, Origin, TLSEnv, Verdict
from pytest_tlsenv.clients import PRESETS
from pytest_tlsenv.errors import ClientUnavailableError
from pytest_tlsenv.namespace import probe as namespace_probe
from pytest_tlsenv.probe import OpenWatch

pytestmark = pytest.mark.nonroot

Maker = Callable[..., TLSEnv]


def _need(exe: str) -> None:
    if shutil.which(exe) is None:
        pytest.skip(f"{exe} is not installed on this machine")


def _client(env: TLSEnv, name: str, trust: str | None = None) -> Any:
    try:
        return env.client(name, trust=trust)
    except NotApplicableError:
        raise
    except ClientUnavailableError as e:
        pytest.skip(str(e))


def _plain_curl(env: TLSEnv, *flags: str) -> Verdict:
    _need("curl")
    return env.run(["curl", "-fsS", "--max-time", "10", *flags, env.origin.url]).verdict


@pytest.fixture
def untrusted_origin(tlsenv_pki: PKI) -> Iterator[Origin]:
    """An origin presenting a leaf of the session's ``untrusted`` CA (in no store)."""
    origin = Origin(tlsenv_pki.server_context(tlsenv_pki.authorities["untrusted"].issue()))
    origin.start()
    try:
        yield origin
    finally:
        origin.stop()


# -- env faults reach every client that reads the faulted variable ----------------------------

# (client, mode, the variable or option that must carry the scenario's SSL_CERT_FILE)
REACHED = [
    ("curl", "flags", "--cacert"),
    ("openssl", "flags", "-CAfile"),
    ("requests", "env", "REQUESTS_CA_BUNDLE"),
    ("node", "env", "NODE_EXTRA_CA_CERTS"),
    ("git", "env", "GIT_SSL_CAINFO"),
    ("pip", "env", "PIP_CERT"),
]


@pytest.mark.tlsenv(scenario="missing-file-env")
@pytest.mark.parametrize(("name", "trust", "carrier"), REACHED)
def test_a_missing_ssl_cert_file_reaches_every_client_that_reads_it(
    tlsenv: TLSEnv, name: str, trust: str, carrier: str
) -> None:
    # What SSL_CERT_FILE names is gone: every variable or option copied from it names the
    # same missing file, and the client refuses or fails instead of a healthy OK.
    missing = tlsenv.store.env["SSL_CERT_FILE"]
    assert not os.path.exists(missing)
    client = _client(tlsenv, name, trust)
    out = client.run()
    if carrier.startswith("-"):
        assert carrier in client.argv[-1] if name == "openssl" else carrier in client.argv
        assert missing in " ".join(client.argv)
    else:
        assert out.environ[carrier] == missing
    assert out.verdict in {Verdict.FAILED, Verdict.REJECTED, Verdict.CRASHED}, out.reason
    # Twin: curl --cacert "$SSL_CERT_FILE" by hand fails the same way (77: cannot read it).
    if name == "curl":
        assert _plain_curl(tlsenv, "--cacert", missing) == out.verdict == Verdict.FAILED


@pytest.mark.parametrize(("name", "trust", "carrier"), REACHED)
def test_the_same_clients_connect_in_the_healthy_twin(
    tlsenv: TLSEnv, name: str, trust: str, carrier: str
) -> None:
    out = _client(tlsenv, name, trust).run()
    out.assert_ok()


# -- presets run clients the way users run them ---------------------------------------------


@pytest.mark.parametrize(
    "scenario", ["good", "garbage-in-bundle", "unreadable-bundle", "missing-dir-env"]
)
def test_curl_preset_agrees_with_plain_curl(make_tlsenv: Maker, scenario: str) -> None:
    env = make_tlsenv(scenario)
    preset = _client(env, "curl")
    assert "--cacert" not in preset.argv
    assert preset.label == "curl"
    plain = _plain_curl(env)
    assert preset.run().verdict == plain, f"{scenario}: preset vs plain curl -fsS URL"
    # The flags variant is the explicit command, cell by cell, and says so in its label.
    flagged = _client(env, "curl", "flags")
    assert flagged.label == "curl --cacert"
    store = env.store.env
    by_hand = _plain_curl(
        env, "--cacert", store["SSL_CERT_FILE"], "--capath", store["SSL_CERT_DIR"]
    )
    assert flagged.run().verdict == by_hand


def test_plain_curl_uses_ssl_cert_dir_and_ignores_ssl_cert_file(make_tlsenv: Maker) -> None:
    # Debian's curl with both variables set reads SSL_CERT_DIR only: a missing dir is REJECTED
    # (its compiled-in bundle is the host's), garbage in the bundle is OK. The flags variant
    # reads both and flips each verdict: the modes are different measurements.
    assert _plain_curl(make_tlsenv("missing-dir-env")) == Verdict.REJECTED
    assert _plain_curl(make_tlsenv("garbage-in-bundle")) == Verdict.OK
    assert _client(make_tlsenv("missing-dir-env"), "curl", "flags").run().verdict == Verdict.OK
    env = make_tlsenv("garbage-in-bundle")
    assert _client(env, "curl", "flags").run().verdict == Verdict.FAILED


# -- layouts look like the machines they name ------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_plain_clients_connect_in_every_healthy_layout(
    make_tlsenv: Maker, untrusted_origin: Origin, layout: str
) -> None:
    env = make_tlsenv(layout=layout)
    lay = LAYOUTS[layout]
    # Only the variables such a machine has.
    assert ("SSL_CERT_FILE" in env.environ) == bool(lay.bundle or lay.cert_file)
    assert ("SSL_CERT_DIR" in env.environ) == bool(lay.cert_dir)
    assert _plain_curl(env) == Verdict.OK
    env.call(lambda: _urlopen(env.origin.url)).assert_ok()
    if shutil.which("node"):
        node = ["node", "--use-openssl-ca", "-e", NODE_GET, env.origin.url]
        env.run(node).assert_ok()
    if shutil.which("git"):
        _client(env, "git").run().assert_ok()
    # Twin: an origin whose CA is in no store is refused, by curl and by python's ssl: the
    # host's store that an unset variable lets in does not trust it either.
    out = env.run(["curl", "-fsS", "--max-time", "10", untrusted_origin.url])
    out.assert_rejected()
    env.call(lambda: _urlopen(untrusted_origin.url)).assert_rejected()


NODE_GET = (
    "require('https').get(process.argv[1], r => process.exit(r.statusCode < 400 ? 0 : 1))"
    ".on('error', e => {console.error(e.message); process.exit(1)})"
)


def _urlopen(url: str) -> bytes:
    with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10) as r:
        data: bytes = r.read()
        return data


# -- call trusts requests-based code in the healthy control ----------------------------------


def test_call_trusts_requests_in_good(tlsenv: TLSEnv) -> None:
    requests = pytest.importorskip("requests")

    def get() -> int:
        status: int = requests.get(tlsenv.origin.url, timeout=10).status_code
        return status

    out = tlsenv.call(get)
    out.assert_ok()
    assert out.environ["REQUESTS_CA_BUNDLE"] == tlsenv.store.env["SSL_CERT_FILE"]
    # Twin: without the requests variables it falls back to certifi and is refused; the
    # reason names the variables the libraries read.
    refused = tlsenv.call(get, env={"REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": None})
    refused.assert_rejected()
    assert "REQUESTS_CA_BUNDLE" in refused.reason
    assert "SSL_CERT_FILE" in refused.reason


# -- every outcome names its mode ----------------------------------------------------------


def test_an_outcome_names_its_trust_mode(tlsenv: TLSEnv) -> None:
    _need("curl")
    argv = ["curl", "-fsS", "--cacert", tlsenv.store.env["SSL_CERT_FILE"], tlsenv.origin.url]
    out = tlsenv.run(argv)
    assert out.trust == "env"
    assert "trust='env'" in repr(out)
    assert "trust mode: env" in out.explain("expected something else")
    # Twin: the same command in flags mode (no variable set) says flags, everywhere.
    flagged = tlsenv.run(argv, trust="flags")
    assert flagged.trust == "flags"
    assert "SSL_CERT_FILE" not in flagged.environ
    assert "trust='flags'" in repr(flagged)
    assert "trust mode: flags" in flagged.explain("expected something else")
    # A client's run and an in-process call carry theirs too.
    assert tlsenv.client("curl", trust="flags").run().trust == "flags"
    called = tlsenv.call(lambda: _urlopen(tlsenv.origin.url))
    assert called.trust == "env"
    called.assert_ok()


@pytest.mark.tlsenv(trust="flags")
def test_an_outcome_takes_the_environments_mode(tlsenv: TLSEnv) -> None:
    _need("curl")
    argv = ["curl", "-fsS", "--cacert", tlsenv.store.env["SSL_CERT_FILE"], tlsenv.origin.url]
    out = tlsenv.run(argv)
    assert out.trust == "flags"
    with pytest.raises(AssertionError, match="trust mode: flags"):
        out.assert_rejected()


# -- node --use-openssl-ca: the variant that reads OpenSSL's variables -----------------------


def test_node_use_openssl_ca_reads_the_openssl_variables(tlsenv: TLSEnv) -> None:
    _need("node")
    client = _client(tlsenv, "node-openssl")
    assert client.label == "node --use-openssl-ca"
    assert client.argv[:2] == ("node", "--use-openssl-ca")
    out = client.run()
    out.assert_ok()
    assert out.environ["SSL_CERT_FILE"] == tlsenv.store.env["SSL_CERT_FILE"]
    assert out.environ["SSL_CERT_DIR"] == tlsenv.store.env["SSL_CERT_DIR"]
    assert "NODE_EXTRA_CA_CERTS" not in out.environ  # the OpenSSL variables alone did it
    # Twin: plain node in the very same environment trusts only its bundled store: refused.
    plain = tlsenv.run(["node", *client.argv[2:]], env=client.env)
    plain.assert_rejected()


@pytest.mark.tlsenv(scenario="untrusted-root")
def test_node_use_openssl_ca_rejects_a_ca_absent_from_the_store(tlsenv: TLSEnv) -> None:
    _need("node")
    out = _client(tlsenv, "node-openssl").run()
    out.assert_rejected()
    assert out.trust == "env"
    assert not tlsenv.origin.received


def test_node_use_openssl_ca_has_no_flags_mode(tlsenv: TLSEnv) -> None:
    _need("node")
    with pytest.raises(NotApplicableError, match="node-openssl has no trust option"):
        tlsenv.client("node-openssl", trust="flags")


# -- not applicable -------------------------------------------------------------------------


def test_wget_reads_no_variable_so_env_mode_is_not_applicable(tlsenv: TLSEnv) -> None:
    _need("wget")
    with pytest.raises(NotApplicableError, match="wget reads no trust variable"):
        tlsenv.client("wget")
    # Twin: its flags variant runs, labelled.
    flagged = tlsenv.client("wget", trust="flags")
    assert flagged.label == "wget --ca-certificate"
    flagged.run().assert_ok()


@pytest.mark.tlsenv(scenario="unreadable-file")
def test_a_cert_dir_fault_is_not_applicable_to_a_client_given_only_the_bundle(
    tlsenv: TLSEnv,
) -> None:
    pytest.importorskip("requests")
    with pytest.raises(NotApplicableError, match="cannot reach requests"):
        tlsenv.client("requests")
    # Twin: a client given the cert dir meets it.
    assert tlsenv.client("python-ssl").env["SSL_CERT_DIR"] == str(tlsenv.store.cert_dir)


@pytest.mark.tlsenv(scenario="missing-dir-env")
def test_a_redirected_variable_is_not_applicable_in_system_mode(tlsenv: TLSEnv) -> None:
    _need("curl")
    with pytest.raises(NotApplicableError, match="no variable is set"):
        tlsenv.client("curl", trust="system")


def test_the_plugin_skips_a_not_applicable_pair(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tlsenv(scenario="unreadable-file")
        def test_requests(tlsenv):
            tlsenv.client("requests").run().assert_ok()

        @pytest.mark.tlsenv(scenario="unreadable-file")
        def test_python_ssl(tlsenv):
            tlsenv.client("python-ssl").run().assert_ok()
        """
    )
    result = pytester.runpytest("-p", "tlsenv", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*not applicable: unreadable-file cannot reach requests*"])


def test_trust_option_and_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_default(tlsenv):
            assert tlsenv.trust == "flags"
            assert "SSL_CERT_FILE" not in tlsenv.environ

        @pytest.mark.tlsenv(trust="env")
        def test_marker_wins(tlsenv):
            assert tlsenv.trust == "env"
            assert "SSL_CERT_FILE" in tlsenv.environ
        """
    )
    pytester.makeini("[pytest]\ntlsenv_trust = flags\n")
    pytester.runpytest("-p", "tlsenv").assert_outcomes(passed=2)
    bad = pytester.runpytest("-p", "tlsenv", "--tlsenv-trust", "nope")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


# -- system mode ----------------------------------------------------------------------------


@pytest.fixture
def namespaces() -> None:
    reason = namespace_probe()
    if reason is not None:
        pytest.skip(f"system paths unavailable: {reason}")


@pytest.mark.usefixtures("namespaces")
@pytest.mark.parametrize("layout", ["debian", "alpine"])
def test_system_mode_plain_curl_connects(
    make_tlsenv: Maker, untrusted_origin: Origin, layout: str
) -> None:
    env = make_tlsenv(layout=layout, trust="system")
    assert "SSL_CERT_FILE" not in env.environ
    assert "SSL_CERT_DIR" not in env.environ
    assert _plain_curl(env) == Verdict.OK
    env.call(lambda: _urlopen(env.origin.url)).assert_ok()
    # Twin: a CA in no store is refused.
    out = env.run(["curl", "-fsS", "--max-time", "10", untrusted_origin.url])
    out.assert_rejected()


@pytest.mark.usefixtures("namespaces")
def test_system_mode_node_use_openssl_ca_connects(make_tlsenv: Maker) -> None:
    _need("node")
    env = make_tlsenv(trust="system")
    client = _client(env, "node-openssl")
    assert client.label == "node --use-openssl-ca (system)"
    out = client.run()
    out.assert_ok()
    assert out.trust == "system"
    assert "SSL_CERT_FILE" not in out.environ
    # Twin: plain node never reads the system store, so system mode cannot apply to it.
    with pytest.raises(NotApplicableError, match="never reads the system trust store"):
        env.client("node")


@pytest.mark.usefixtures("namespaces")
@pytest.mark.parametrize("layout", ["rhel", "bundle-only"])
def test_system_mode_is_not_applicable_where_debian_clients_do_not_look(
    make_tlsenv: Maker, layout: str
) -> None:
    _need("curl")
    env = make_tlsenv(layout=layout)
    with pytest.raises(NotApplicableError, match="was built to read"):
        env.client("curl", trust="system")
    # Twin: env mode runs it there.
    env.client("curl").run().assert_ok()


# -- the walk: presets x modes x env faults -------------------------------------------------

WALK_CLIENTS = ("curl", "python-ssl", "requests", "node", "git", "pip")
ENV_FAULTS = ("unreadable-bundle", "missing-file-env", "missing-dir-env", "dir-as-file")


def _read_through(paths: list[Path]) -> set[str]:
    """The faulted paths and, for a faulted directory, the real files its entries resolve to
    (inotify reports an open through a symlink in the target's directory)."""
    out = {str(p) for p in paths}
    for p in paths:
        if p.is_dir():
            out |= {os.path.realpath(q) for q in p.iterdir()}
    return out


@pytest.mark.parametrize("trust", ["env", "flags"])
@pytest.mark.parametrize("fault", ENV_FAULTS)
def test_every_applicable_cell_meets_its_fault(make_tlsenv: Maker, fault: str, trust: str) -> None:
    # Shadow placement: the faulted source is the only one holding the CA. Each applicable
    # (client, mode) cell must either give another verdict than its healthy twin, or have
    # read through the faulted path: never a healthy store under a faulty name.
    healthy = make_tlsenv(trust=trust)
    env = make_tlsenv(fault, placement="shadow", trust=trust)
    faulted = [p for a in env.applied for p in a.paths]
    targets = _read_through(faulted)
    watched = sorted({os.path.dirname(t) for t in targets if os.path.isdir(os.path.dirname(t))})
    ran = []
    for name in WALK_CLIENTS:
        try:
            client = env.client(name)
        except ClientUnavailableError:  # NotApplicableError included
            continue
        twin = healthy.client(name).run().verdict
        with OpenWatch([Path(d) for d in watched]) as watch:
            verdict = client.run().verdict
            opened = watch.drain()
        assert verdict != twin or opened & targets, (name, verdict, sorted(opened))
        ran.append(name)
    assert ran, f"no client met {fault} with trust={trust!r}"


@pytest.mark.usefixtures("namespaces")
def test_system_mode_env_faults(make_tlsenv: Maker) -> None:
    _need("curl")
    # No variable is set in system mode: a fault that only redirects one reaches nobody.
    for fault in ("missing-file-env", "missing-dir-env", "dir-as-file"):
        env = make_tlsenv(fault, trust="system")
        for name in WALK_CLIENTS:
            with pytest.raises(ClientUnavailableError):
                env.client(name)
    # An unreadable bundle does reach a client that reads it by its compiled-in path:
    # Debian's curl cannot load its CA file and fails (77), where its healthy twin connects.
    env = make_tlsenv("unreadable-bundle", trust="system")
    assert env.client("curl").run().verdict == Verdict.FAILED
    assert make_tlsenv(trust="system").client("curl").run().verdict == Verdict.OK


def test_env_vars_are_variables_the_client_honours() -> None:
    # The env table never invents a variable: each is one the client honours (the honours
    # lists are checked against the probe's measurements in tests/test_probe.py).
    for preset in PRESETS.values():
        assert set(preset.env_vars) <= set(preset.honours), preset.name
    # Twin: requests is not given SSL_CERT_FILE (it ignores it).
    assert "SSL_CERT_FILE" not in PRESETS["requests"].env_vars
