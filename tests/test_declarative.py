"""Declared clients: ``--tlsenv-client`` with no test file, the ``tlsenv_client`` marker,
accepted divergences, and their agreement with the survey. Real clients, real scenarios."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_tlsenv.declarative import client_points
from pytest_tlsenv.selection import parse_scenarios

pytest_plugins = ["pytester"]

FRAGILE = Path(__file__).parent / "clients" / "fragile.py"
FRAGILE_CMD = f"fragile={shlex.join([sys.executable, str(FRAGILE)])} {{url}}"
PYPROJECT = "[tool.pytest.ini_options]\n"


def _junit(path: Path) -> dict[str, str]:
    """test id -> passed/failed/skipped, from a JUnit XML file."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return out


#: Enough cells for the plumbing (a healthy store, a fault in both placements, the proxy);
#: the catalogue's size is the point only of collection, which is cheap.
FEW = "good,unreadable-file,mitm-untrusted"
SHADOW = "tlsenv::curl[unreadable-file-shadow-env]"
CAFILE_ONLY = (
    "import os, ssl, sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=10, "
    "context=ssl.create_default_context(cafile=os.environ['SSL_CERT_FILE'])).read()"
)


def test_no_file_run_collects_store_and_proxy_alike_serial_xdist_and_co(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    args = ["-p", "tlsenv", "--tlsenv-client", "curl -fsS {url}", "--tlsenv-timeout", "3"]
    listed = pytester.runpytest_subprocess(*args, "--co", "-q", "-p", "no:randomly")
    names = parse_scenarios("store proxy")
    want = [f"tlsenv::curl[{p.id}]" for p in client_points(names, "env")]
    assert [line for line in listed.outlines if line.startswith("tlsenv::")] == want
    assert "tlsenv::curl[unreadable-file-shadow-env]" in want
    assert "tlsenv::curl[mitm-untrusted-env]" in want
    few = [*args, "--tlsenv-scenarios", FEW]
    serial = pytester.runpytest_subprocess(
        *few, "-p", "no:randomly", "--junitxml", "a.xml", "--tlsenv-report", "r.html",
        "--tlsenv-baseline", "base.json", "--tlsenv-update-baseline",
    )  # fmt: skip
    parallel = pytester.runpytest_subprocess(*few, "-n", "2", "--junitxml", "b.xml")
    a, b = _junit(pytester.path / "a.xml"), _junit(pytester.path / "b.xml")
    assert sorted(a) == sorted(
        f"tlsenv::curl[{p.id}]" for p in client_points(parse_scenarios(FEW), "env")
    )
    assert a == b
    # curl is robust where the fragile client is not: its unreadable-file items pass.
    assert a["tlsenv::curl[unreadable-file-decoy-env]"] == "passed"
    assert serial.ret == parallel.ret == pytest.ExitCode.OK
    # The HTML report has the declared items like written tests'.
    page = (pytester.path / "r.html").read_text()
    for ident in a:
        assert ident in page
    # A baseline recorded by one run fails a later verdict that changed, though the new one
    # is in the scenario's expected set ({OK, REJECTED} in the shadow placement): curl
    # refuses where the cert dir's one copy of the CA is unreadable; a client that trusts
    # only $SSL_CERT_FILE connects.
    recorded = json.loads((pytester.path / "base.json").read_text())["verdicts"]
    assert recorded[SHADOW] == {"unreadable-file@shadow": "REJECTED"}
    cafile = f"curl={shlex.join([sys.executable, '-c', CAFILE_ONLY])} {{url}}"
    changed = pytester.runpytest_subprocess(
        "-p", "tlsenv", "--tlsenv-client", cafile, "--tlsenv-scenarios", "unreadable-file",
        "--tlsenv-baseline", "base.json", "-p", "no:randomly",
    )  # fmt: skip
    changed.assert_outcomes(passed=1, failed=1)
    changed.stdout.fnmatch_lines(["unreadable-file@shadow: REJECTED -> OK (baseline *base.json)"])
    assert f"FAILED {SHADOW} - " in changed.stdout.str()


def test_fragile_client_fails_with_evidence_and_its_repro_line_agrees(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    args = [
        "-p",
        "tlsenv",
        "--tlsenv-client",
        FRAGILE_CMD,
        "--tlsenv-scenarios",
        "good,unreadable-file",
    ]
    result = pytester.runpytest_subprocess(*args, "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    text = result.stdout.str()
    for needle in ("got CRASHED", "scenario: unreadable-file", "store:", "stderr (tail):"):
        assert needle in text
    assert "PermissionError" in text
    lines = [ln for ln in result.outlines if ln.startswith("reproduce without pytest: ")]
    decoy = next(ln for ln in lines if "--placement" not in ln)
    words = shlex.split(decoy.removeprefix("reproduce without pytest: "))
    assert words[:5] == ["python", "-m", "pytest_tlsenv", "repro", "unreadable-file"]
    words[0] = sys.executable
    dash = words.index("--")
    words[dash:dash] = ["--out", str(tmp_path / "bundle")]
    proc = subprocess.run(words, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("unreadable-file: CRASHED"), proc.stdout
    # --lf reruns exactly the failed items.
    again = pytester.runpytest_subprocess(*args, "-p", "no:randomly", "--lf", "-v")
    again.assert_outcomes(failed=2)
    assert "fragile[good-env]" not in again.stdout.str()


def test_accepted_divergences_pass_report_and_fail_once_stale(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject=PYPROJECT
        + "[tool.tlsenv.expect.fragile]\n"
        + '"unreadable-file" = {verdicts = ["CRASHED"], reason = "reads every file first"}\n'
        + '"good" = {verdicts = ["CRASHED"], reason = "was broken once"}\n',
    )
    result = pytester.runpytest_subprocess(
        "-p", "tlsenv", "--tlsenv-client", FRAGILE_CMD,
        "--tlsenv-scenarios", "good,unreadable-file", "--tlsenv-report", "r.json", "-rx",
    )  # fmt: skip
    result.assert_outcomes(xfailed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*accepted divergence no longer diverges: got OK*remove the entry (was broken once)*"]
    )
    assert "accepted divergence: CRASHED: reads every file first" in result.stdout.str()
    report = json.loads((pytester.path / "r.json").read_text())
    accepted = {r["scenario"]: r["accepted"] for r in report["results"]}
    assert accepted["unreadable-file"] == "accepted divergence: CRASHED: reads every file first"
    assert accepted["good"] is None
    # The HTML report (written from these same results) lists it as accepted, with why.
    from pytest_tlsenv.htmlreport import write_html

    write_html(report["results"], pytester.path / "r.html")
    page = (pytester.path / "r.html").read_text()
    assert "accepted divergence: CRASHED: reads every file first" in page


@pytest.mark.parametrize(
    ("args", "toml", "message"),
    [
        (["curl -fsS https://example.test/"], "", "*has no placeholder*give it {url}*"),
        (["curll"], "", "*unknown client 'curll' (did you mean 'curl'?)*"),
        (["no-such-tool-xyz {url}"], "", "*'no-such-tool-xyz' is not installed*"),
        (["curl -fsS {url}", "curl -s {url}"], "", "*two clients are labelled 'curl'*"),
        (["curl"], '"unreadabel-file" = {verdicts=["OK"], reason="x"}', "*unknown scenario*"),
        (["curl"], '"unreadable-file" = {verdicts=["CRASHED"]}', "*needs a reason*"),
        (["curl"], '"good" = {verdicts=["BROKEN"], reason="x"}', "*unknown verdict 'BROKEN'*"),
    ],
)
def test_bad_declarations_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], toml: str, message: str
) -> None:
    expect = f"[tool.tlsenv.expect.curl]\n{toml}\n" if toml else ""
    pytester.makefile(".toml", pyproject=PYPROJECT + expect)
    clients = [w for a in args for w in ("--tlsenv-client", a)]
    result = pytester.runpytest("-p", "tlsenv", *clients, "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_expect_file_without_reason_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", expect='[curl]\n"good" = {verdicts = ["OK"]}\n')
    result = pytester.runpytest("--tlsenv-client", "curl", "--tlsenv-expect", "expect.toml", "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*expect.toml*'good': an accepted divergence needs a reason*"])


def test_ini_clients_apply_only_without_test_paths(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\ntlsenv_clients = ["curl"]\n')
    pytester.makepyfile(test_other="def test_plain():\n    pass\n")
    alone = pytester.runpytest("--co", "-q", "--tlsenv-scenarios", "good")
    assert "tlsenv::curl[good-env]" in alone.outlines
    named = pytester.runpytest("test_other.py", "--co", "-q", "--tlsenv-scenarios", "good")
    assert "tlsenv::curl[good-env]" not in named.outlines
    assert "test_other.py::test_plain" in named.outlines


def test_marker_runs_the_client_and_pulls_in_its_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import sys
        import pytest

        FRAGILE = [sys.executable, {str(FRAGILE)!r}, "{{url}}"]

        @pytest.mark.tlsenv_client("curl")
        def test_curl_good():
            pass

        @pytest.mark.tlsenv_client("curl")
        def test_body_asserts_more(tlsenv_outcome):
            assert tlsenv_outcome.verdict == "OK" and tlsenv_outcome.reached_origin

        @pytest.mark.tlsenv("unreadable-file")
        @pytest.mark.tlsenv_client(FRAGILE)
        def test_fragile_crashes():
            pass

        @pytest.mark.tlsenv_client(FRAGILE, expect={{"unreadable-file": (["CRASHED"], "known")}})
        @pytest.mark.tlsenv_matrix("unreadable-file")
        def test_fragile_accepted():
            pass

        """
    )
    pytester.makepyfile(
        test_bad_reason="""
        import pytest

        @pytest.mark.tlsenv_client("curl", expect={"good": (["CRASHED"], "")})
        def test_no_reason():
            pass
        """,
        test_bad_preset="""
        import pytest

        @pytest.mark.tlsenv_client("curll")
        def test_unknown_preset():
            pass
        """,
    )
    # --tlsenv-scenarios deselects a marker test by its scenario, with a matrix or without.
    chosen = pytester.runpytest(
        "test_marker_runs_the_client_and_pulls_in_its_fixture.py", "--co", "-q",
        "--tlsenv-scenarios=-unreadable-file",
    )  # fmt: skip
    chosen.stdout.fnmatch_lines(["*2/4 tests collected (2 deselected)*"])
    assert not [ln for ln in chosen.outlines if "fragile" in ln]
    result = pytester.runpytest(
        "-p", "no:randomly", "-W", "error", "--continue-on-collection-errors"
    )
    result.assert_outcomes(passed=2, failed=1, xfailed=1, errors=2)
    result.stdout.fnmatch_lines(
        ["*_ test_fragile_crashes _*", "expected {OK}, got CRASHED: Python traceback*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_unknown_preset: bad @pytest.mark.tlsenv_client: unknown client 'curll'*",
            "*test_no_reason: bad @pytest.mark.tlsenv_client: *needs a reason*",
        ]
    )


def test_marker_and_no_file_run_agree_with_the_survey(pytester: pytest.Pytester) -> None:
    from pytest_tlsenv.survey import survey

    names = ["good", "unreadable-file", "missing-file-env", "mitm-untrusted", "proxy-tunnel"]
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.makepyfile(
        test_marker=f"""
        import pytest

        @pytest.mark.tlsenv_client("curl")
        @pytest.mark.tlsenv_matrix({names!r}, placement=["decoy", "shadow"])
        def test_curl():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "tlsenv", "--tlsenv-client", "curl", "--tlsenv-timeout", "4",
        "--tlsenv-scenarios", ",".join(names), "--tlsenv-report", "r.json",
    )  # fmt: skip
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    report = json.loads((pytester.path / "r.json").read_text())
    marker: dict[str, str] = {}
    nofile: dict[str, str] = {}
    for r in report["results"]:
        (nofile if r["nodeid"].startswith("tlsenv::") else marker)[r["scenario"]] = r["verdict"]
    cells = {c.label: c.verdicts["curl"] for c in survey(["curl"], names, timeout=4)}
    assert set(nofile) == set(cells)
    for label, outcome in cells.items():
        assert outcome is not None
        assert nofile[label] == outcome.verdict.value, label
        if label in marker:
            assert marker[label] == outcome.verdict.value, label
    assert len(set(marker) & set(cells)) >= 7


# Trusts the cert dir alone: in the shadow placement its only copy of the CA is unreadable.
CAPATH_ONLY = (
    "import os, ssl, sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=10, "
    "context=ssl.create_default_context(capath=os.environ['SSL_CERT_DIR'])).read()"
)


def _repro_verdict(line: str, out: Path) -> str:
    """Run a printed repro line (``python`` is this interpreter) and return its verdict."""
    words = shlex.split(line.splitlines()[0])
    assert words[:3] == ["python", "-m", "pytest_tlsenv"], line
    words[0] = sys.executable
    if words[3] == "repro":
        dash = words.index("--")
        words[dash:dash] = ["--out", str(out)]
    proc = subprocess.run(words, capture_output=True, text=True, cwd=out.parent, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    ("client", "scenario", "placement"),
    [
        (f"capath={shlex.join([sys.executable, '-c', CAPATH_ONLY])} {{url}}", "unreadable-file",
         "shadow"),
        ("curl", "mitm-untrusted", "decoy"),
    ],
    ids=["command-shadow", "preset-with-proxy"],
)  # fmt: skip
def test_repro_line_of_a_command_or_preset_gives_the_same_verdict(
    make_tlsenv: Any, tmp_path: Path, client: str, scenario: str, placement: str
) -> None:
    from pytest_tlsenv.declarative import parse_client_option, repro_line, run_client
    from pytest_tlsenv.scenarios import resolve

    spec = parse_client_option(client)
    env = make_tlsenv.from_spec(resolve(scenario, placement=placement))
    outcome, added = run_client(env, spec, "env", 20)
    assert outcome.verdict != "OK", outcome.explain("a failing cell")
    line = repro_line(outcome, scenario, placement, spec, added)
    stdout = _repro_verdict(line, tmp_path / "bundle")
    cell = scenario if placement == "decoy" else f"{scenario}@{placement}"
    assert stdout.startswith(f"{cell}: {outcome.verdict.value}"), (line, stdout)
    if placement == "shadow":
        # The placement is what fails: the same line in the decoy placement passes.
        assert "--placement shadow" in line
        decoy = line.replace(" --placement shadow", "")
        assert _repro_verdict(decoy, tmp_path / "decoy").startswith(f"{scenario}: OK")
    else:
        assert str(env.origin.port) not in line  # placeholders, not this session's ports
        assert "{url}" in line


def test_a_library_preset_has_no_command_and_its_repro_line_says_so(make_tlsenv: Any) -> None:
    from pytest_tlsenv.declarative import parse_client_option, repro_line, run_client
    from pytest_tlsenv.scenarios import resolve

    spec = parse_client_option("python-ssl")
    env = make_tlsenv.from_spec(resolve("mitm-untrusted"))
    outcome, added = run_client(env, spec, "env", 20)
    assert outcome.argv is None  # in this process: nothing to replay
    line = repro_line(outcome, "mitm-untrusted", "decoy", spec, added)
    first, why = line.splitlines()
    assert shlex.split(first) == [
        "python", "-m", "pytest_tlsenv", "survey", "--clients", "python-ssl",
        "--scenarios", "mitm-untrusted",
    ]  # fmt: skip
    assert "library call made in this process, so there is no command line" in why
    # The survey makes the same call without pytest and sees the same verdict.
    out = subprocess.run(
        [sys.executable, *shlex.split(first)[1:], "--timeout", "20"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    row = next(ln for ln in out.stdout.splitlines() if ln.startswith("mitm-untrusted "))
    assert row.split()[-1] == outcome.verdict.value, out.stdout


def test_a_command_naming_trust_paths_runs_in_flags_mode_and_says_so(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    result = pytester.runpytest_subprocess(
        "-p", "tlsenv", "--tlsenv-client", "curl -fsS --cacert {ssl_cert_file} {url}",
        "--tlsenv-client", "plain=curl -fsS {url}", "--tlsenv-scenarios", "good,mitm-untrusted",
        "--tlsenv-report", "r.json", "-v", "-p", "no:randomly",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    report = json.loads((pytester.path / "r.json").read_text())
    modes = {r["nodeid"]: r["trust"] for r in report["results"]}
    assert modes == {
        "tlsenv::curl[good-flags]": "flags",
        "tlsenv::curl[mitm-untrusted-flags]": "flags",
        "tlsenv::plain[good-env]": "env",
        "tlsenv::plain[mitm-untrusted-env]": "env",
    }
    # In flags mode the client gets no trust variable: the path is in its argv.
    flags = next(r for r in report["results"] if r["nodeid"] == "tlsenv::curl[good-flags]")
    assert "SSL_CERT_FILE" not in flags["environment"]
    assert "--cacert" in flags["argv"]


def test_a_pinned_preset_is_a_client_and_two_pins_need_labels(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    two = pytester.runpytest("--tlsenv-client", "uv@0.2.28", "--tlsenv-client", "uv@0.2.29", "--co")
    assert two.ret == pytest.ExitCode.USAGE_ERROR
    two.stderr.fnmatch_lines(["*two clients are labelled 'uv'*(e.g. uv2=uv@0.2.29)"])
    named = pytester.runpytest(
        "--tlsenv-client", "uv0228=uv@0.2.28", "--tlsenv-client", "uv0229=uv@0.2.29",
        "--co", "-q", "--tlsenv-scenarios", "good",
    )  # fmt: skip
    assert {"tlsenv::uv0228[good-env]", "tlsenv::uv0229[good-env]"} <= set(named.outlines)


def test_a_pinned_preset_repro_line_names_its_version_and_gives_the_same_verdict(
    make_tlsenv: Any, tmp_path: Path
) -> None:
    from pytest_tlsenv.declarative import parse_client_option, repro_line, run_client
    from pytest_tlsenv.errors import ClientUnavailableError
    from pytest_tlsenv.scenarios import resolve

    spec = parse_client_option("uv@0.2.29")
    env = make_tlsenv.from_spec(resolve("unreadable-file"))
    try:
        outcome, added = run_client(env, spec, "env", 30)
    except ClientUnavailableError as e:
        pytest.skip(str(e))
    assert outcome.verdict == "CRASHED", outcome.explain("uv 0.2.29's panic")
    line = repro_line(outcome, "unreadable-file", "decoy", spec, added)
    assert "--pip uv==0.2.29" in line
    stdout = _repro_verdict(line, tmp_path / "bundle")
    assert stdout.startswith("unreadable-file: CRASHED"), (line, stdout)
    assert "uv==0.2.29" in (tmp_path / "bundle" / "Dockerfile").read_text()
