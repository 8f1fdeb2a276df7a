"""Bundles for reports: commands that name the scenario's trust paths by placeholder, and an
ISSUE.md whose title says whether the verdict is the bug or a confirmation."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from test_repro import needs_curl, run_bundle

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.placeholders import env_values, substitute
from pytest_tlsenv.repro import export
from pytest_tlsenv.repro.issue import title

pytestmark = pytest.mark.nonroot

Maker = Callable[..., TLSEnv]
CURL = ["curl", "-fsS", "--max-time", "10"]


def test_trust_placeholders_name_the_scenarios_paths(make_tlsenv: Maker) -> None:
    env = make_tlsenv("curl-6090")
    words = substitute(["{bundle}", "{cert_dir}", "{ssl_cert_file}", "{ssl_cert_dir}"],
                       env_values(env))  # fmt: skip
    assert words[0] == str(env.store.bundle)
    assert words[1] == str(env.store.cert_dir)
    # What the variables name here, faults included: SSL_CERT_FILE is the missing file.
    assert words[2] == env.store.env["SSL_CERT_FILE"] != words[0]
    assert not Path(words[2]).exists()
    assert words[3] == env.store.env["SSL_CERT_DIR"] == words[1]


def test_a_trust_placeholder_the_layout_lacks_is_refused_with_what_is_there(
    make_tlsenv: Maker,
) -> None:
    env = make_tlsenv(layout="bundle-only")
    with pytest.raises(ConfigError, match=r"\{cert_dir\} in '--capath=\{cert_dir\}' has no value"):
        substitute(["--capath={cert_dir}"], env_values(env))
    assert substitute(["{bundle}"], env_values(env)) == [str(env.store.bundle)]


@needs_curl
def test_curl_names_its_ca_file_by_placeholder_without_a_shell(make_tlsenv: Maker) -> None:
    env = make_tlsenv("good")
    env.run(
        substitute([*CURL, "--cacert", "{ssl_cert_file}", "{url}"], env_values(env))
    ).assert_ok()
    # The twin: the same command in the report's scenario, where SSL_CERT_FILE is missing.
    bad = make_tlsenv("curl-6090")
    out = bad.run(substitute([*CURL, "--cacert", "{ssl_cert_file}", "{url}"], env_values(bad)))
    assert out.returncode == 77, out.reason


def test_title_calls_a_verdict_outside_the_expected_set_the_bug() -> None:
    assert title("curl", "FAILED", ["OK"], "good") == (
        "curl: FAILED in a TLS trust environment where OK is expected"
    )
    confirmed = title("curl", "FAILED", ["FAILED", "OK", "REJECTED"], "curl-6090")
    assert confirmed.startswith("curl: FAILED in scenario curl-6090, as expected")
    assert "confirmation" in confirmed
    assert "not run" in title("curl", "(not run)", ["OK"], "good")


def _first_line(bundle: Path) -> str:
    return (bundle / "ISSUE.md").read_text().splitlines()[0]


@needs_curl
def test_bundle_of_an_expected_verdict_is_titled_a_confirmation(
    make_tlsenv: Maker, tmp_path: Path
) -> None:
    env = make_tlsenv("curl-6090")
    words = [*CURL, "--cacert", "{ssl_cert_file}", "--capath", "{cert_dir}", "{url}"]
    out = env.run(substitute(words, env_values(env)))
    assert out.verdict in env.scenario.expected
    bundle = export(env, tmp_path / "bundle")
    line = _first_line(bundle)
    assert line.startswith("# curl"), line
    assert line.endswith(
        ": FAILED in scenario curl-6090, as expected (FAILED, OK, REJECTED): a confirmation"
    ), line
    assert "CERT_DIR=" in (bundle / "repro.sh").read_text()
    verdict, text, _status = run_bundle(bundle, "invoker", tmp_path)
    assert verdict == "FAILED", text


@needs_curl
def test_bundle_of_an_unexpected_verdict_is_titled_the_bug(
    make_tlsenv: Maker, tmp_path: Path
) -> None:
    env = make_tlsenv("good")
    # A directory given as the CA file: curl stops (77) where OK is expected.
    out = env.run(substitute([*CURL, "--cacert", "{cert_dir}", "{url}"], env_values(env)))
    assert out.verdict not in env.scenario.expected
    bundle = export(env, tmp_path / "bundle")
    line = _first_line(bundle)
    assert line.startswith("# curl"), line
    assert line.endswith(": FAILED in a TLS trust environment where OK is expected"), line


@needs_curl
def test_bundle_of_a_leaf_anchored_scenario_anchors_its_own_leaf(
    make_tlsenv: Maker, tmp_path: Path
) -> None:
    # requests-6969's store holds the origin's self-signed leaf: the bundle's store must hold
    # the bundle's own leaf the same way, or curl --cacert {bundle} would be refused there.
    env = make_tlsenv("requests-6969")
    env.run(substitute([*CURL, "--cacert", "{bundle}", "{url}"], env_values(env))).assert_ok()
    bundle = export(env, tmp_path / "bundle")
    verdict, text, _status = run_bundle(bundle, "invoker", tmp_path)
    assert verdict == "OK", text


@needs_curl
def test_repro_sh_with_trust_paths_passes_shellcheck(make_tlsenv: Maker, tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed on this machine")
    env = make_tlsenv("curl-6090")
    env.run(substitute([*CURL, "--cacert", "{ssl_cert_file}", "{url}"], env_values(env)))
    bundle = export(env, tmp_path / "bundle")
    script = (bundle / "repro.sh").read_text()
    assert "SCENARIO_SSL_CERT_FILE=" in script
    done = subprocess.run(
        ["shellcheck", "-s", "sh", str(bundle / "repro.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout
