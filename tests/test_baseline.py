"""Regression baselines: --tlsenv-baseline and --tlsenv-update-baseline (pytester, black-box)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_tlsenv.report import Baseline, BaselineError

pytest_plugins = ["pytester"]

# The client is chosen by client.txt, as a tox env would pick a client version: "ok" is curl
# (OK), "crash" a Rust-style panic (CRASHED). Tests never assert the verdict themselves: the
# baseline is what fails them.
SUITE = """
import pathlib

import pytest


def client(tlsenv):
    mode = pathlib.Path("client.txt").read_text().strip()
    if mode == "crash":
        return ["sh", "-c", "echo 'thread main panicked at src/lib.rs:1:1' >&2; exit 101"]
    return ["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url]


@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_a(tlsenv):
    tlsenv.run(client(tlsenv))


def test_b(tlsenv):
    tlsenv.run(client(tlsenv))
"""

FORMAT = "pytest-tlsenv baseline 1"


def _suite(pytester: pytest.Pytester, mode: str) -> str:
    module = pytester.makepyfile(test_suite=SUITE)
    (pytester.path / "client.txt").write_text(mode)
    return module.name


def _verdicts(path: Path) -> dict[str, dict[str, str]]:
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT
    verdicts: dict[str, dict[str, str]] = data["verdicts"]
    return verdicts


ALL_OK = {
    "test_suite.py::test_a[good]": {"good": "OK"},
    "test_suite.py::test_a[unreadable-file]": {"unreadable-file": "OK"},
    "test_suite.py::test_b": {"good": "OK"},
}


def test_update_creates_the_baseline(pytester: pytest.Pytester) -> None:
    _suite(pytester, "ok")
    result = pytester.runpytest("--tlsenv-baseline", "b.json", "--tlsenv-update-baseline")
    result.assert_outcomes(passed=3)
    assert _verdicts(pytester.path / "b.json") == ALL_OK
    result.stdout.fnmatch_lines(
        ["tlsenv: baseline *b.json updated (3 verdict(s) added or changed)"]
    )


def test_same_verdicts_pass(pytester: pytest.Pytester) -> None:
    _suite(pytester, "ok")
    (pytester.path / "b.json").write_text(json.dumps({"format": FORMAT, "verdicts": ALL_OK}))
    result = pytester.runpytest("--tlsenv-baseline", "b.json")
    result.assert_outcomes(passed=3)
    assert "differ from the baseline" not in result.stdout.str()


def test_changed_verdicts_fail_their_tests(pytester: pytest.Pytester) -> None:
    # Negative twin of the above: same baseline, the client now panics.
    _suite(pytester, "crash")
    baseline = pytester.path / "b.json"
    baseline.write_text(json.dumps({"format": FORMAT, "verdicts": ALL_OK}))
    result = pytester.runpytest("--color=no", "--tlsenv-baseline", "b.json")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*_ test_a[[]unreadable-file[]] _*",
            f"unreadable-file: OK -> CRASHED (baseline {baseline})",
            "*= tlsenv =*",
            "scenario         test_a     test_b",
            "good             CRASHED!*  CRASHED!*",
            "unreadable-file  CRASHED!*",
            "tlsenv: 3 verdict(s) differ from the baseline:",
            f"  test_suite.py::test_a[[]good[]]: good: OK -> CRASHED (baseline {baseline})",
            "  test_suite.py::test_a[[]unreadable-file[]]: unreadable-file: OK -> CRASHED (*",
            "  test_suite.py::test_b: good: OK -> CRASHED (*",
            "*short test summary info*",
        ]
    )
    # Comparing never rewrites the baseline.
    assert _verdicts(baseline) == ALL_OK


def test_change_on_a_failing_test_is_added_to_its_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fails(tlsenv):
            tlsenv.run(["true"])
            assert False, "its own reason"
        """
    )
    baseline = pytester.path / "b.json"
    verdicts = {
        "test_change_on_a_failing_test_is_added_to_its_report.py::test_fails": {"good": "OK"}
    }
    baseline.write_text(json.dumps({"format": FORMAT, "verdicts": verdicts}))
    result = pytester.runpytest("--tlsenv-baseline", str(baseline))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: its own reason*",
            "*- tlsenv baseline -*",
            f"good: OK -> FAILED (baseline {baseline})",
        ]
    )


def test_update_after_k_keeps_the_other_tests(pytester: pytest.Pytester) -> None:
    _suite(pytester, "crash")
    baseline = pytester.path / "b.json"
    stale = {"test_suite.py::test_gone": {"fifo": "HUNG"}}
    baseline.write_text(json.dumps({"format": FORMAT, "verdicts": {**ALL_OK, **stale}}))
    result = pytester.runpytest(
        "-k", "test_b", "--tlsenv-baseline", "b.json", "--tlsenv-update-baseline"
    )
    # Updating records instead of comparing: nothing fails for the change.
    result.assert_outcomes(passed=1, deselected=2)
    assert _verdicts(baseline) == {
        **ALL_OK,
        **stale,
        "test_suite.py::test_b": {"good": "CRASHED"},
    }
    result.stdout.fnmatch_lines(["tlsenv: baseline *updated (1 verdict(s) added or changed)"])


def test_update_replaces_a_tests_scenarios(pytester: pytest.Pytester) -> None:
    _suite(pytester, "ok")
    baseline = pytester.path / "b.json"
    old = {"test_suite.py::test_b": {"good": "OK", "removed-scenario": "FAILED"}}
    baseline.write_text(json.dumps({"format": FORMAT, "verdicts": old}))
    pytester.runpytest(
        "-k", "test_b", "--tlsenv-baseline", "b.json", "--tlsenv-update-baseline"
    ).assert_outcomes(passed=1, deselected=2)
    assert _verdicts(baseline) == {"test_suite.py::test_b": {"good": "OK"}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline *b.json does not exist; create it with --tlsenv-update-baseline"),
        ("{not json", "baseline *b.json is not valid JSON: *"),
        ('{"verdicts": {}}', "baseline *b.json is not a pytest-tlsenv baseline*"),
        ("[]", "baseline *b.json is not a pytest-tlsenv baseline*"),
        (
            json.dumps({"format": FORMAT, "verdicts": {"t::x": {"good": "MAYBE"}}}),
            'baseline *b.json: "verdicts" must map test ids to {scenario: verdict}*CRASHED*',
        ),
        (
            json.dumps({"format": FORMAT, "trust": "sytem", "verdicts": {}}),
            'baseline *b.json: "trust" must be one of env, system, flags, got *sytem*',
        ),
        (
            json.dumps(
                {
                    "format": FORMAT,
                    "verdicts": {"t::x": {"good": "OK"}},
                    "trust_by_result": {"t::x": {"good": "environment"}},
                }
            ),
            'baseline *b.json: "trust_by_result" must map test ids to {scenario: mode}*flags',
        ),
        ("DIR", "cannot read baseline *b.json: *Is a directory*"),
        (b"\xff\xfe\x00", "cannot read baseline *b.json: *codec can't decode*"),
    ],
)
def test_bad_baseline_is_a_usage_error(
    pytester: pytest.Pytester, content: str | bytes | None, message: str
) -> None:
    _suite(pytester, "ok")
    path = pytester.path / "b.json"
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = pytester.runpytest("--tlsenv-baseline", "b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--tlsenv-baseline: {message}"])
    assert "passed" not in result.stdout.str()


def test_update_without_a_baseline_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    _suite(pytester, "ok")
    result = pytester.runpytest("--tlsenv-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tlsenv-update-baseline needs --tlsenv-baseline PATH*"])


def test_keep_keeps_roots_of_tests_the_baseline_failed(pytester: pytest.Pytester) -> None:
    _suite(pytester, "crash")
    baseline = pytester.path / "b.json"
    baseline.write_text(json.dumps({"format": FORMAT, "verdicts": ALL_OK}))
    result = pytester.runpytest(
        "-k",
        "test_b or good",
        "--tlsenv-baseline",
        "b.json",
        "--tlsenv-keep",
        f"--tlsenv-root-dir={pytester.path / 'roots'}",  # kept roots stay in this test's tmp
    )
    result.assert_outcomes(failed=2, deselected=1)
    kept = [line for line in result.stdout.lines if line.startswith("tlsenv: kept good at ")]
    assert len(kept) == 2
    for line in kept:
        assert (Path(line.rsplit(" at ", 1)[1]) / "store").is_dir()


def test_without_keep_roots_are_removed(pytester: pytest.Pytester) -> None:
    # Negative twin: the same failures, no --tlsenv-keep, nothing kept.
    _suite(pytester, "crash")
    (pytester.path / "b.json").write_text(json.dumps({"format": FORMAT, "verdicts": ALL_OK}))
    result = pytester.runpytest("-k", "test_b or good", "--tlsenv-baseline", "b.json")
    result.assert_outcomes(failed=2, deselected=1)
    assert "tlsenv: kept" not in result.stdout.str()


# -- trust modes: a baseline records the mode its verdicts were measured in -------------------


def test_update_records_the_trust_mode(pytester: pytest.Pytester) -> None:
    _suite(pytester, "ok")
    path = pytester.path / "b.json"
    pytester.runpytest(
        "--tlsenv-baseline", "b.json", "--tlsenv-update-baseline", "--tlsenv-trust", "flags"
    ).assert_outcomes(passed=3)
    data = json.loads(path.read_text())
    assert data["trust"] == "flags"
    assert "trust_by_result" not in data  # one mode: one line says it
    assert data["verdicts"] == ALL_OK
    # Twin: the default mode is recorded as env.
    path.unlink()
    pytester.runpytest("--tlsenv-baseline", "b.json", "--tlsenv-update-baseline")
    assert json.loads(path.read_text())["trust"] == "env"


def test_a_baseline_of_another_trust_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    # A baseline from before modes were recorded was measured in env mode; comparing flags
    # verdicts with it would compare two environments, even when the verdicts agree.
    _suite(pytester, "ok")
    (pytester.path / "b.json").write_text(json.dumps({"format": FORMAT, "verdicts": ALL_OK}))
    result = pytester.runpytest("--tlsenv-baseline", "b.json", "--tlsenv-trust", "flags")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "tlsenv baseline: baseline *b.json: test_suite.py::test_b in good was recorded in "
            "trust mode 'env', this run used trust mode 'flags'; verdicts of different modes "
            "are not comparable*",
        ]
    )
    assert "differ from the baseline" not in result.stdout.str()


def test_a_baseline_of_the_same_trust_mode_compares(pytester: pytest.Pytester) -> None:
    # Twin: recorded in flags, compared in flags: the same verdicts pass, a changed one fails.
    _suite(pytester, "ok")
    baseline = {"format": FORMAT, "trust": "flags", "verdicts": ALL_OK}
    (pytester.path / "b.json").write_text(json.dumps(baseline))
    pytester.runpytest("--tlsenv-baseline", "b.json", "--tlsenv-trust", "flags").assert_outcomes(
        passed=3
    )
    (pytester.path / "client.txt").write_text("crash")
    result = pytester.runpytest("--tlsenv-baseline", "b.json", "--tlsenv-trust", "flags")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*good: OK -> CRASHED (baseline *b.json)*"])
    assert "not comparable" not in result.stdout.str()


MIXED = """
import pytest


@pytest.mark.tlsenv_matrix("good", trust=["env", "flags"])
def test_m(tlsenv):
    tlsenv.run(["curl", "-fsS", "--cacert", tlsenv.store.env["SSL_CERT_FILE"], tlsenv.origin.url])
"""


def test_a_matrix_over_modes_records_each_entrys_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    path = pytester.path / "b.json"
    pytester.runpytest("--tlsenv-baseline", "b.json", "--tlsenv-update-baseline").assert_outcomes(
        passed=2
    )
    data = json.loads(path.read_text())
    assert data["trust"] == "env"
    assert data["trust_by_result"] == {"test_mixed.py::test_m[good-trust=flags]": {"good": "flags"}}
    loaded = Baseline.load(path)
    assert loaded.mode("test_mixed.py::test_m[good-trust=flags]", "good") == "flags"
    assert loaded.mode("test_mixed.py::test_m[good-trust=env]", "good") == "env"
    # Each entry is compared in its own mode: the rerun passes.
    pytester.runpytest("--tlsenv-baseline", "b.json").assert_outcomes(passed=2)


def _result(trust: str | None, verdict: str = "OK") -> dict[str, object]:
    result: dict[str, object] = {"nodeid": "t.py::test_x", "scenario": "good", "verdict": verdict}
    if trust is not None:
        result["trust"] = trust
    return result


def test_an_old_baseline_is_env_mode(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"format": FORMAT, "verdicts": {"t.py::test_x": {"good": "OK"}}}))
    baseline = Baseline.load(path)
    assert baseline.mode("t.py::test_x", "good") == "env"
    assert baseline.changes([_result("env", "REJECTED")])[0].new == "REJECTED"
    assert baseline.changes([_result(None)]) == []  # a result without a mode is env too
    with pytest.raises(BaselineError, match=r"recorded in trust mode 'env', this run used "
                       r"trust mode 'system'"):  # fmt: skip
        baseline.changes([_result("system")])


def test_update_then_dump_round_trips_modes(tmp_path: Path) -> None:
    baseline = Baseline(tmp_path / "b.json")
    assert baseline.update([_result("system")]) == 1
    assert baseline.update([_result("system")]) == 0
    assert baseline.update([_result("flags")]) == 1  # same verdict, another mode: a change
    baseline.dump()
    again = Baseline.load(tmp_path / "b.json")
    assert again.mode("t.py::test_x", "good") == "flags"
    assert json.loads((tmp_path / "b.json").read_text())["trust"] == "flags"
