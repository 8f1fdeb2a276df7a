"""The verdict grid, the header line and the JSON/Markdown reports (pytester, black-box)."""

from __future__ import annotations

import json
import os
import pwd
import re

import pytest

from pytest_tlsenv.report import redact, redact_environ

pytest_plugins = ["pytester"]

# Two tests over a two-scenario matrix, plus one whose verdict is outside the expected set.
SUITE = """
import ssl
import urllib.request

import pytest


def fetch(env):
    def get():
        ctx = ssl.create_default_context()
        with urllib.request.urlopen(env.origin.url, context=ctx, timeout=5) as r:
            return r.read()

    return env.call(get)


@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_python(tlsenv):
    fetch(tlsenv).assert_expected()


@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_curl(tlsenv):
    tlsenv.run(
        ["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url],
        env={"MY_API_TOKEN": "hunter2", "INDEX_URL": "https://alice:hunter2@localhost/simple"},
    ).assert_expected()


@pytest.mark.tlsenv("unreadable-file")
def test_crashing_client(tlsenv):
    # A Rust-style panic: CRASHED, outside the expected {OK}. Not asserted: the grid shows it.
    tlsenv.run(["sh", "-c", "echo 'thread main panicked at src/lib.rs:1:1' >&2; exit 101"])
"""

UNRELATED = """
def test_plain(tmp_path):
    assert tmp_path.is_dir()
"""

MODE = "root without any capability" if os.geteuid() == 0 else f"non-root (uid {os.geteuid()})"


def test_grid_and_header_in_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--color=no")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "*= tlsenv =*",
            f"tlsenv: OpenSSL *; trust: env (default); clients ran as {MODE}; clients seen: "
            "curl (curl *), python (in-process) (Python *), sh",
            "scenario         test_crashing_client  test_curl  test_python",
            "good                                   OK         OK",
            "unreadable-file  CRASHED!              OK         OK",
            "OK connected, CRASHED crashed, ! outside expected set, * changed vs baseline,",
            "- no client ran",
        ]
    )
    assert "\x1b[" not in result.stdout.str()


def test_grid_colours_when_the_terminal_allows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--color=yes")
    out = result.stdout.str()
    red_bold, green = "\x1b[31m\x1b[1m", "\x1b[32m"
    assert re.search(re.escape(red_bold) + r"  CRASHED!", out)
    assert re.search(re.escape(green) + r"  OK", out)


def test_silent_without_tlsenv_fixtures(pytester: pytest.Pytester) -> None:
    # Negative twin of the grid test: the plugin is loaded (autoload) but no test used it.
    pytester.makepyfile(UNRELATED)
    result = pytester.runpytest("--tlsenv-report", "r.json")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "= tlsenv =" not in out
    assert "tlsenv:" not in out
    assert "OpenSSL" not in out
    assert "scenario " not in out
    assert not (pytester.path / "r.json").exists()


def test_json_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--tlsenv-report", "out/r.json")
    result.assert_outcomes(passed=5)
    path = pytester.path / "out" / "r.json"
    result.stdout.fnmatch_lines([f"tlsenv: report written to out{os.sep}r.json"])
    text = path.read_text()
    assert "hunter2" not in text
    report = json.loads(text)
    assert report["format"] == "pytest-tlsenv report 1"
    assert report["openssl"].startswith("OpenSSL ")
    assert report["user_modes"] == [MODE]
    assert report["trust_modes"] == ["env"]
    assert {r["trust"] for r in report["results"]} == {"env"}
    assert {o["trust"] for r in report["results"] for o in r["outcomes"]} == {"env"}
    assert {c["client"] for c in report["clients"]} == {"curl", "python (in-process)", "sh"}
    by_key = {(r["nodeid"], r["scenario"]): r for r in report["results"]}
    assert sorted(by_key) == sorted(
        [
            ("test_json_report.py::test_crashing_client", "unreadable-file"),
            ("test_json_report.py::test_curl[good]", "good"),
            ("test_json_report.py::test_curl[unreadable-file]", "unreadable-file"),
            ("test_json_report.py::test_python[good]", "good"),
            ("test_json_report.py::test_python[unreadable-file]", "unreadable-file"),
        ]
    )
    curl = by_key[("test_json_report.py::test_curl[unreadable-file]", "unreadable-file")]
    assert curl["test"] == "test_json_report.py::test_curl"
    assert curl["verdict"] == "OK"
    assert curl["expected"] == ["OK"]
    assert curl["mismatch"] is False
    assert curl["test_outcome"] == "passed"
    assert curl["client"] == "curl"
    assert curl["argv"][:2] == ["curl", "-fsS"]
    assert curl["version"].startswith("curl ")
    assert curl["reason"] == "exit 0 and the origin got the request"
    assert isinstance(curl["duration"], float)
    assert curl["duration"] > 0
    env = curl["environment"]
    assert env["SSL_CERT_FILE"].endswith("ca-certificates.crt")
    assert env["MY_API_TOKEN"] == "<redacted>"
    assert env["INDEX_URL"] == "https://<redacted>@localhost/simple"
    assert any("tlsenv-unreadable-file.pem" in line for line in curl["store"])
    assert curl["user_mode"] == MODE

    crash = by_key[("test_json_report.py::test_crashing_client", "unreadable-file")]
    assert crash["verdict"] == "CRASHED"
    assert crash["mismatch"] is True
    assert "panicked at" in crash["reason"]
    assert crash["client"] == "sh"
    assert crash["version"] is None

    python = by_key[("test_json_report.py::test_python[good]", "good")]
    assert python["client"] == "python (in-process)"
    assert python["argv"] is None
    assert python["version"].startswith("Python ")


def test_markdown_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    pytester.runpytest("--tlsenv-report", "r.md").assert_outcomes(passed=5)
    text = (pytester.path / "r.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# pytest-tlsenv results"
    assert "- trust: env (default)" in lines
    start = lines.index("| scenario | test_crashing_client | test_curl | test_python |")
    assert lines[start + 1] == "|---|---|---|---|"
    assert lines[start + 2] == "| good |  | OK | OK |"
    assert lines[start + 3] == "| unreadable-file | CRASHED! | OK | OK |"
    failures = text.split("## Failures", 1)[1]
    # Only the mismatch is listed, with what an issue needs.
    assert failures.count("### ") == 1
    assert "### `test_markdown_report.py::test_crashing_client` in `unreadable-file`" in failures
    assert "- verdict: **CRASHED** (expected OK)" in failures
    assert "panicked at src/lib.rs:1:1" in failures
    assert "- trust mode: env" in failures
    assert "tlsenv-unreadable-file.pem" in failures  # the store listing


def test_markdown_report_without_failures(pytester: pytest.Pytester) -> None:
    # Negative twin: nothing outside the expected sets, so nothing listed.
    pytester.makepyfile(SUITE.split("@pytest.mark.tlsenv(")[0])
    pytester.runpytest("--tlsenv-report", "r.md").assert_outcomes(passed=4)
    failures = (pytester.path / "r.md").read_text().split("## Failures", 1)[1]
    assert "### " not in failures
    assert "None: every verdict is in its scenario's expected set." in failures


def test_last_outcome_gives_the_cell(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_two_runs(tlsenv):
            tlsenv.run(["true"])  # FAILED: the origin got nothing
            tlsenv.run(["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url])
        """
    )
    result = pytester.runpytest("--color=no", "--tlsenv-report", "r.json")
    result.stdout.fnmatch_lines(["scenario  test_two_runs", "good      OK"])
    (entry,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert entry["verdict"] == "OK"
    assert [o["verdict"] for o in entry["outcomes"]] == ["FAILED", "OK"]
    assert [o["client"] for o in entry["outcomes"]] == ["true", "curl"]


FLAGS_SUITE = """
def test_cacert(tlsenv):
    tlsenv.run(["curl", "-fsS", "--cacert", tlsenv.store.env["SSL_CERT_FILE"], tlsenv.origin.url])
"""


def test_the_header_names_another_trust_mode(pytester: pytest.Pytester) -> None:
    # Twin of the env header: the session's mode is what every cell was measured in.
    pytester.makepyfile(FLAGS_SUITE)
    result = pytester.runpytest("--color=no", "--tlsenv-trust", "flags", "--tlsenv-report", "r.md")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["tlsenv: OpenSSL *; trust: flags; clients ran as *"])
    assert "(default)" not in result.stdout.str()
    assert "- trust: flags" in (pytester.path / "r.md").read_text().splitlines()


def test_the_last_outcome_gives_the_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_two_modes(tlsenv):
            argv = ["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url]
            assert tlsenv.run(argv).trust == "env"
            assert tlsenv.run(argv, trust="flags").trust == "flags"
        """
    )
    result = pytester.runpytest("--color=no", "--tlsenv-report", "r.json")
    result.assert_outcomes(passed=1)
    (entry,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert entry["trust"] == "flags"
    assert [o["trust"] for o in entry["outcomes"]] == ["env", "flags"]


def test_test_without_client_run_shows_a_dash(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_looks_only(tlsenv):
            assert tlsenv.origin.url.startswith("https://")
        """
    )
    result = pytester.runpytest("--color=no")
    result.stdout.fnmatch_lines(
        ["tlsenv: *clients seen: none", "scenario  test_looks_only", "good      -"]
    )


@pytest.mark.parametrize("name", ["r.txt", "r", "r.JSON.bak"])
def test_unknown_report_suffix_is_a_usage_error(pytester: pytest.Pytester, name: str) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--tlsenv-report", name)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--tlsenv-report {name}: unknown suffix *; use .json (machine-readable), .md *"
            " or .html *"
        ]
    )
    assert not (pytester.path / name).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tlsenv-report", "afile/r.json"], "*--tlsenv-report */afile/r.json: File exists: *"),
        (["--tlsenv-report", "adir.md"], "*--tlsenv-report */adir.md: is a directory"),
        (["--tlsenv-update-baseline", "--tlsenv-baseline", "afile/b.json"],
         "*--tlsenv-baseline */afile/b.json: File exists: *"),
    ],
)  # fmt: skip
def test_unwritable_report_or_baseline_is_a_usage_error_before_the_run(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    # Found at startup: before, the whole session ran and then ended in a traceback.
    pytester.makepyfile(SUITE)
    (pytester.path / "afile").write_text("")
    (pytester.path / "adir.md").mkdir()
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*passed*")


def test_report_and_baseline_go_into_new_directories(pytester: pytest.Pytester) -> None:
    # Twin: directories that do not exist yet are created when the files are written.
    pytester.makepyfile(SUITE)
    args = ["--tlsenv-report", "out/r.json", "--tlsenv-update-baseline"]
    result = pytester.runpytest(*args, "--tlsenv-baseline", "bl/b.json")
    result.assert_outcomes(passed=5)
    assert json.loads((pytester.path / "out" / "r.json").read_text())
    assert json.loads((pytester.path / "bl" / "b.json").read_text())["verdicts"]


def test_report_header_in_a_subprocess(pytester: pytest.Pytester) -> None:
    # Subprocess mode: the plugin as users load it, terminal and all.
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("--color=no", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["tlsenv: OpenSSL *", "unreadable-file  CRASHED!  *"])


# -- the engine side, directly ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://alice:pw@localhost:8443/x", "https://<redacted>@localhost:8443/x"),
        ("http://token@127.0.0.1/", "http://<redacted>@127.0.0.1/"),
        (
            "a https://u:p@h/ and socks5://v:q@h2/",
            "a https://<redacted>@h/ and socks5://<redacted>@h2/",
        ),
        ("https://localhost/simple/a@b", "https://localhost/simple/a@b"),  # no credentials
        ("mailto-ish user@example", "mailto-ish user@example"),
    ],
)
def test_redact_urls(value: str, expected: str) -> None:
    assert redact(value) == expected


def test_redact_environ_by_name() -> None:
    env = {
        "GITHUB_TOKEN": "t",
        "DB_PASSWORD": "p",
        "AWS_SECRET_ACCESS_KEY": "s",
        "proxy_auth": "a",
        "SSL_CERT_FILE": "/store/bundle.crt",
        "HTTPS_PROXY": "http://u:p@127.0.0.1:3128",
    }
    assert redact_environ(env) == {
        "AWS_SECRET_ACCESS_KEY": "<redacted>",
        "DB_PASSWORD": "<redacted>",
        "GITHUB_TOKEN": "<redacted>",
        "HTTPS_PROXY": "http://<redacted>@127.0.0.1:3128",
        "SSL_CERT_FILE": "/store/bundle.crt",
        "proxy_auth": "<redacted>",
    }


# -- the options that shape the runs, seen through the grid -----------------------------------


def test_timeout_option_makes_a_hung_cell(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_sleeps(tlsenv):
            out = tlsenv.run(["sleep", "30"])
            assert out.reason == "no exit within 0.5 s; process group killed"
        """
    )
    result = pytester.runpytest("--color=no", "--tlsenv-timeout", "0.5")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["scenario  test_sleeps", "good      HUNG!"])


@pytest.mark.parametrize("value", ["-1", "0", "soon"])
def test_bad_timeout_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_x(tlsenv): pass")
    result = pytester.runpytest(f"--tlsenv-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("tlsenv_fault_uid = 0", "*tlsenv_fault_uid must be a uid other than root's, got 0"),
        ("tlsenv_fault_uid = -5", "*tlsenv_fault_uid must be a uid other than root's, got -5"),
        ("tlsenv_fault_uid = nobody", "*bad ini value tlsenv_fault_uid = 'nobody': not an integer"),
        ("tlsenv_timeout = abc", "*bad ini value tlsenv_timeout = 'abc': not a number"),
        ("tlsenv_grid_max_tests = many", "*bad ini value tlsenv_grid_max_tests: invalid literal*"),
        ("tlsenv_grid_max_tests = -3", "*tlsenv_grid_max_tests: it must not be negative"),
        ("tlsenv_timeout = 0", "*: ini tlsenv_timeout must be positive"),
    ],
)
def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester, ini: str, message: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x(tlsenv): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    # Twin: a sound value of the same key runs.
    key = ini.split(" = ")[0]
    pytester.makeini(f"[pytest]\n{key} = {'3' if 'timeout' in key else '65533'}\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_bad_user_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(tlsenv): pass")
    result = pytester.runpytest("--tlsenv-user", "tlsenv-no-such-user")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--tlsenv-user tlsenv-no-such-user: user * does not exist on this machine"]
    )
    # An existing user: fine as root (the twin below switches to it); as non-root, naming
    # yourself is no switch (fine), naming another user is a usage error.
    result = pytester.runpytest("--tlsenv-user", "nobody")
    if os.geteuid() == 0 or pwd.getpwnam("nobody").pw_uid == os.geteuid():
        result.assert_outcomes(passed=1)
    if os.geteuid() != 0:
        other = "daemon" if pwd.getpwnam("nobody").pw_uid == os.geteuid() else "nobody"
        result = pytester.runpytest("--tlsenv-user", other)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--tlsenv-user {other}: switching users needs root"])


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root (probed: euid != 0)")
def test_user_option_switches_user_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_who(tlsenv):
            script = "id -u; curl -fsS --cacert $SSL_CERT_FILE $0"
            out = tlsenv.run(["sh", "-c", script, tlsenv.origin.url])
            out.assert_ok()
            assert out.stdout.splitlines()[0] == "65534"
        """
    )
    result = pytester.runpytest("--color=no", "--tlsenv-user", "nobody")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["tlsenv: OpenSSL *; clients ran as switched user nobody; clients seen: sh", "good      OK"]
    )


def test_plain_session_imports_no_engine(pytester: pytest.Pytester) -> None:
    # The plugin loads everywhere it is installed: options are checked without the engine.
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            loaded = sorted(m for m in ("pytest_tlsenv.tlsenv", "pytest_tlsenv.report",
                                        "pytest_tlsenv.scenarios") if m in sys.modules)
            print("ENGINE:", loaded)
        """
    )
    pytester.makepyfile(UNRELATED)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "--tlsenv-timeout=3")
    result.assert_outcomes(passed=1)
    assert "ENGINE: []" in result.stdout.str()
    # Its twin: a tlsenv test does load it.
    pytester.makepyfile("def test_x(tlsenv): pass")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    assert "ENGINE: ['pytest_tlsenv.report', 'pytest_tlsenv.scenarios', " in result.stdout.str()


def test_large_sessions_get_a_summary_line_instead_of_the_grid(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntlsenv_grid_max_tests = 1\n")
    pytester.makepyfile(
        """
        def test_a(tlsenv):
            tlsenv.run(["true"])

        def test_b(tlsenv):
            tlsenv.run(["true"])
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "tlsenv: 2 verdicts (2 tests x 1 scenario), * outside their expected set; grid not "
            "shown (more than tlsenv_grid_max_tests=1 columns)*"
        ]
    )
    # Negative twin: under the limit, the grid is printed.
    pytester.makeini("[pytest]\ntlsenv_grid_max_tests = 2\n")
    again = pytester.runpytest()
    assert "not shown" not in again.stdout.str()
    again.stdout.fnmatch_lines(["*scenario*test_a*test_b*"])
