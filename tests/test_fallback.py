"""The fallback group: the user's override names a broken store, the CA is only in the default.

Every verdict is a real client run in a private mount namespace that shows the scenario's
healthy store at the layout's real paths (/etc/ssl/certs...), while every trust variable or
option the client honours names a missing, empty, unreadable or garbage store. An inotify
watch on the default store's directories says whether the client opened it: the evidence that
an OK came from the store the user had overridden, and that a refusal did not.
"""

from __future__ import annotations

import os
import shutil
import ssl
import stat
import textwrap
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_tlsenv import CATALOGUE, GROUPS, NotApplicableError, TLSEnv, Verdict
from pytest_tlsenv.errors import ClientUnavailableError
from pytest_tlsenv.fallback import KINDS
from pytest_tlsenv.namespace import probe as namespace_probe
from pytest_tlsenv.probe import OpenWatch
from pytest_tlsenv.scenarios import resolve

pytestmark = pytest.mark.nonroot

Maker = Callable[..., TLSEnv]
SCENARIOS = [f"fallback-{kind}" for kind in KINDS]
UV = "0.13.9"


@pytest.fixture(autouse=True)
def namespaces() -> None:
    reason = namespace_probe()
    if reason is not None:
        pytest.skip(f"the fallback group needs mount namespaces: {reason}")


def _client(env: TLSEnv, name: str, *, version: str | None = None, trust: str | None = None) -> Any:
    try:
        return env.client(name, version=version, trust=trust)
    except NotApplicableError:
        raise
    except ClientUnavailableError as e:
        pytest.skip(str(e))


def _default_dirs(env: TLSEnv) -> list[Path]:
    """The default store's directories: the cert dir (bundle, links) and the CA files' dir."""
    dirs = [env.store.cert_dir]
    if env.store.layout.shared:
        dirs.append(env.store.root / env.store.layout.shared)
    return [d for d in dirs if d is not None]


def _watched(env: TLSEnv, run: Callable[[], Any]) -> tuple[Any, set[str]]:
    """``run()``'s result, and the default-store paths opened meanwhile."""
    with OpenWatch(_default_dirs(env)) as watch:
        watch.drain()
        result = run()
        return result, watch.drain()


def _urlopen(url: str) -> bytes:
    with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10) as r:
        data: bytes = r.read()
        return data


def _drop_default_ca(env: TLSEnv) -> None:
    """Take the trusted CA out of the default store: the bundle holds a decoy CA instead (an
    empty one would stop curl at setup), the CA's cert-dir entries are gone."""
    if env.store.bundle is not None:
        env.store.bundle.write_bytes(env.pki.decoy(7).cert_pem)
    trusted = env.pki.authorities["trusted"]
    assert env.store.cert_dir is not None
    for entry in env.store.cert_dir.iterdir():
        if entry.name.startswith(trusted.subject_hash) or entry.name == "tlsenv-trusted.pem":
            entry.unlink()


# -- the catalogue ---------------------------------------------------------------------------


def test_the_group_has_one_scenario_per_kind() -> None:
    # The construction's four kinds, then the reported bugs built on it (each also in reports).
    assert GROUPS["fallback"][: len(SCENARIOS)] == tuple(SCENARIOS)
    for name in GROUPS["fallback"][len(SCENARIOS) :]:
        assert "reports" in CATALOGUE[name].groups
        assert CATALOGUE[name].fallback in KINDS
    for kind, name in zip(KINDS, SCENARIOS, strict=True):
        sc = CATALOGUE[name]
        assert sc.fallback == kind
        assert sc.expected == {Verdict.FAILED, Verdict.REJECTED}
        assert (sc.source or "").startswith("https://github.com/astral-sh/uv/issues/")
    assert resolve("fallback-empty", layout="alpine").scenario.fallback == "empty"
    assert CATALOGUE["good"].fallback is None


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_variable_names_the_broken_store_and_the_default_is_healthy(
    make_tlsenv: Maker, name: str
) -> None:
    env = make_tlsenv(name)
    assert env.system_paths  # the default store is shown at its real paths
    assert env.fallback is not None
    broken = {str(env.fallback.file), str(env.fallback.directory)}
    assert {env.environ["SSL_CERT_FILE"], env.environ["SSL_CERT_DIR"]} == broken
    curl = _client(env, "curl")
    # curl also honours CURL_CA_BUNDLE, which its users rarely set: it names the store too.
    assert curl.env["CURL_CA_BUNDLE"] == str(env.fallback.file)
    assert {curl.env["SSL_CERT_FILE"], curl.env["SSL_CERT_DIR"]} == broken
    # The CA is in the default store, healthy.
    assert env.store.bundle is not None
    assert env.pki.authorities["trusted"].cert_pem in env.store.bundle.read_bytes()
    kind = env.fallback.kind
    if kind == "missing":
        assert not env.fallback.file.parent.exists()
    elif kind == "unreadable":
        for path in (env.fallback.file, env.fallback.directory):
            st = os.lstat(path)
            if os.geteuid() == 0:
                assert st.st_uid == env.settings.fault_uid
                assert stat.S_IMODE(st.st_mode) in (0o600, 0o700)
            else:
                assert stat.S_IMODE(st.st_mode) == 0


def test_unreadable_store_is_given_back_at_close(make_tlsenv: Maker) -> None:
    env = make_tlsenv("fallback-unreadable")
    assert env.fallback is not None
    file = env.fallback.file
    env.close(keep=True)
    try:
        st = os.lstat(file)
        assert st.st_uid == os.geteuid()
        assert stat.S_IMODE(st.st_mode) == 0o644
    finally:
        shutil.rmtree(env.root, ignore_errors=True)


# -- measured verdicts, env mode -------------------------------------------------------------

#: What each client does in env mode, measured here (Debian 12: OpenSSL 3.0, curl 7.88).
ENV_VERDICTS = {
    # CURL_CA_BUNDLE names the broken file: curl stops at setup, exit 77.
    "curl": Verdict.FAILED,
    "python-ssl": Verdict.REJECTED,
    "uv": Verdict.REJECTED,
}


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("client", sorted(ENV_VERDICTS))
def test_env_mode_verdicts(make_tlsenv: Maker, name: str, client: str) -> None:
    env = make_tlsenv(name)
    ready = _client(env, client, version=UV if client == "uv" else None)
    out, opened = _watched(env, ready.run)
    assert out.verdict == ENV_VERDICTS[client], out.reason
    assert out.verdict in env.scenario.expected
    assert not opened, f"{client} opened the default store: {sorted(opened)}"
    if client == "uv":
        # uv says so itself: it keeps the override, even empty, and drops its defaults.
        assert "No default certificates will be trusted" in out.stderr, out.stderr


@pytest.mark.parametrize("client", sorted(ENV_VERDICTS))
def test_healthy_control_the_default_store_alone_trusts_the_origin(
    make_tlsenv: Maker, client: str
) -> None:
    # The twin of every refusal above: with no override, the same client in the same kind of
    # namespace reads the default store and connects. A refusal there is the override's doing.
    env = make_tlsenv(trust="system")
    ready = _client(env, client, version=UV if client == "uv" else None)
    out, opened = _watched(env, ready.run)
    out.assert_ok()
    assert opened, f"{client} connected without opening the default store"


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_client_that_keeps_its_default_bundle_is_ok_and_its_twin_is_rejected(
    make_tlsenv: Maker, name: str
) -> None:
    # Debian's curl with only SSL_CERT_DIR set (CURL_CA_BUNDLE and SSL_CERT_FILE unset) keeps
    # its compiled-in bundle: the default store. OK here is the fallback the group catches...
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    only_dir = {"SSL_CERT_FILE": None, "CURL_CA_BUNDLE": None}
    env = make_tlsenv(name)
    argv = ["curl", "-fsS", "--max-time", "10", env.origin.url]
    out, opened = _watched(env, lambda: env.run(argv, env=only_dir))
    assert out.verdict == Verdict.OK, out.reason
    assert out.verdict not in env.scenario.expected  # the grid's '!'
    assert any(p.endswith("ca-certificates.crt") for p in opened), sorted(opened)
    # ...and it came from the default store: without the CA there, the same run is refused
    # (garbage: the lookup then reaches the garbage HHHHHHHH.0 of SSL_CERT_DIR, a PEM error).
    twin = make_tlsenv(name)
    _drop_default_ca(twin)
    again = twin.run(argv, env=only_dir)
    want = Verdict.FAILED if name == "fallback-garbage" else Verdict.REJECTED
    assert again.verdict == want, again.reason


def test_python_keeps_openssls_default_file_when_only_the_dir_is_overridden(
    make_tlsenv: Maker,
) -> None:
    env = make_tlsenv("fallback-missing")
    out, opened = _watched(env, lambda: env.call(lambda: _urlopen(env.origin.url), env={
        "SSL_CERT_FILE": None
    }))  # fmt: skip
    out.assert_ok()
    assert opened
    twin = make_tlsenv("fallback-missing")
    _drop_default_ca(twin)
    twin.call(lambda: _urlopen(twin.origin.url), env={"SSL_CERT_FILE": None}).assert_rejected()


# -- not applicable --------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["requests", "node"])
def test_clients_with_their_own_bundle_are_not_applicable(make_tlsenv: Maker, client: str) -> None:
    env = make_tlsenv("fallback-missing")
    with pytest.raises(NotApplicableError, match="cannot reach"):
        env.client(client)


def test_why_requests_is_not_applicable_its_fallback_is_certifi(make_tlsenv: Maker) -> None:
    # With nothing naming a store, requests uses certifi: refused, and the default store
    # (which holds the CA) never opened. A refusal in the group would say nothing.
    pytest.importorskip("requests")

    def get() -> bytes:
        import requests

        with requests.Session() as s:
            r = s.get(env.origin.url, timeout=10)
            r.raise_for_status()
            return r.content

    env = make_tlsenv("fallback-missing")
    unset = {"REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": None}
    out, opened = _watched(env, lambda: env.call(get, env=unset))
    out.assert_rejected()
    assert not opened


def test_why_node_is_not_applicable_its_fallback_is_its_bundled_store(make_tlsenv: Maker) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed on this machine")
    env = make_tlsenv("fallback-missing")
    script = textwrap.dedent(
        """
        require('https').get(process.argv[1], r => { r.resume(); r.on('end', () => {}); })
          .on('error', e => { console.error(e.code || e.message); process.exit(1); });
        """
    )
    argv = ["node", "-e", script, env.origin.url]
    # NODE_EXTRA_CA_CERTS unset: node's bundled roots only. Refused, default store unopened.
    out, opened = _watched(env, lambda: env.run(argv, env={"NODE_EXTRA_CA_CERTS": None}))
    out.assert_rejected()
    assert not opened


def test_system_mode_is_not_applicable_nothing_overrides(make_tlsenv: Maker) -> None:
    env = make_tlsenv("fallback-garbage", trust="system")
    with pytest.raises(NotApplicableError, match="no variable or option overrides"):
        env.client("curl")
    # The plain run in system mode sees only the healthy default store.
    assert "SSL_CERT_FILE" not in env.environ
    assert env.client("curl", trust="env").run().verdict == Verdict.FAILED


# -- flags mode ------------------------------------------------------------------------------

#: python-ssl with cafile=/capath=: ssl.create_default_context raises OSError for a missing or
#: unreadable cafile, which escapes the caller's code: CRASHED, the grid's '!'.
FLAGS_PYTHON = {
    "missing": Verdict.CRASHED,
    "empty": Verdict.FAILED,
    "unreadable": Verdict.CRASHED,
    "garbage": Verdict.FAILED,
}


@pytest.mark.parametrize("kind", KINDS)
def test_flags_mode_verdicts(make_tlsenv: Maker, kind: str) -> None:
    env = make_tlsenv(f"fallback-{kind}", trust="flags")
    curl = _client(env, "curl")
    assert curl.label == "curl --cacert"
    out, opened = _watched(env, curl.run)
    assert out.verdict == Verdict.FAILED, out.reason
    assert not opened
    python = _client(env, "python-ssl").run()
    assert python.verdict == FLAGS_PYTHON[kind], python.reason
    with pytest.raises(NotApplicableError):
        env.client("node")
