"""No secret value is ever printed or exported: failure texts, reports, bundles, the survey.

Each test sets secret-looking variables (by name: GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY,
API_PASSWORD; and a URL with credentials), hands them to a real client with ``passenv``/
``env=``, makes the client echo them, and then searches everything we write for the values.
The twins show the values were there to leak: the client really saw them, and the names (never
the values) are still shown so a reader knows what was set.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tlsenv import TLSEnv, Verdict
from pytest_tlsenv.cli.survey import write_report
from pytest_tlsenv.outcome import Outcome
from pytest_tlsenv.redact import Redactor, is_secret_name, redact, redact_environ
from pytest_tlsenv.survey import Cell

pytestmark = pytest.mark.nonroot

CLEAN_PATH = "/usr/bin:/bin"


def _values() -> dict[str, str]:
    return {
        "GITHUB_TOKEN": "ghp_" + secrets.token_hex(12),
        "AWS_SECRET_ACCESS_KEY": "aws" + secrets.token_hex(12),
        "API_PASSWORD": "hunter2-" + secrets.token_hex(6),
    }


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = _values()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TLSENV_TEST_UNRELATED", "an-unrelated-host-variable")
    return values


# A client that shows what it got: its environment's secrets and its own argument, on stderr.
ECHO = 'echo "token=$GITHUB_TOKEN password=$API_PASSWORD argument=$1" >&2; exit 3'


def _assert_clean(text: str, values: dict[str, str]) -> None:
    for name, value in values.items():
        assert value not in text, f"the value of {name} leaked:\n{text}"


def test_failing_run_prints_no_secret(tlsenv: TLSEnv, secret_env: dict[str, str]) -> None:
    url = "https://reporter:" + secrets.token_hex(8) + "@index.test/simple/"
    out = tlsenv.run(
        ["sh", "-c", ECHO, "sh", secret_env["AWS_SECRET_ACCESS_KEY"]],
        passenv=["GITHUB_TOKEN"],
        env={"API_PASSWORD": secret_env["API_PASSWORD"], "PIP_INDEX_URL": url},
    )
    # The client really got them (so there was something to leak).
    assert secret_env["GITHUB_TOKEN"] in out.stderr
    assert secret_env["API_PASSWORD"] in out.stderr
    assert out.verdict is Verdict.FAILED
    with pytest.raises(AssertionError) as failed:
        out.assert_ok()
    message = str(failed.value)
    _assert_clean(message, {**secret_env, "URL": url.split("@")[0].split(":")[-1]})
    _assert_clean(repr(out), secret_env)
    assert "GITHUB_TOKEN=<redacted>" in message
    assert "API_PASSWORD=<redacted>" in message
    assert "PIP_INDEX_URL=https://<redacted>@index.test/simple/" in message
    assert "token=<redacted> password=<redacted> argument=<redacted>" in message


def test_failing_call_prints_no_secret_and_not_the_host_environment(
    tlsenv: TLSEnv, secret_env: dict[str, str]
) -> None:
    def client() -> None:
        raise RuntimeError(f"boom with {os.environ['GITHUB_TOKEN']} {os.environ['API_PASSWORD']}")

    # env= sets a value the host does not have: the call changed it.
    secret_env = {**secret_env, "CALL_PASSWORD": "called-" + secrets.token_hex(6)}
    out = tlsenv.call(client, env={"API_PASSWORD": secret_env["CALL_PASSWORD"]})
    assert out.verdict is Verdict.CRASHED
    assert secret_env["GITHUB_TOKEN"] in str(out.exception)  # the call saw them
    assert secret_env["CALL_PASSWORD"] in str(out.exception)
    with pytest.raises(AssertionError) as failed:
        out.assert_ok()
    message = str(failed.value)
    _assert_clean(message, secret_env)
    _assert_clean(repr(out), secret_env)
    # What the call changed is shown (the scenario's variables, env=, what was unset); the rest
    # of the host environment is not.
    assert "API_PASSWORD=<redacted>" in message
    assert f"SSL_CERT_FILE={tlsenv.store.env['SSL_CERT_FILE']}" in message
    assert "TLSENV_TEST_UNRELATED" not in message
    assert "boom with <redacted> <redacted>" in message


def test_pytest_failure_text_and_reports_have_no_secret(
    pytester: pytest.Pytester, secret_env: dict[str, str]
) -> None:
    # The values come from the environment (the subprocess inherits it), never from the test's
    # source, which pytest prints.
    pytester.makepyfile(
        f"""
        import os
        from pytest_tlsenv import Verdict

        ECHO = {ECHO!r}

        def test_run(tlsenv):
            out = tlsenv.run(
                ["sh", "-c", ECHO, "sh", os.environ["AWS_SECRET_ACCESS_KEY"]],
                passenv=["GITHUB_TOKEN"],
                env={{"API_PASSWORD": os.environ["API_PASSWORD"]}},
            )
            assert out.verdict is Verdict.OK

        def test_call(tlsenv):
            def client():
                raise RuntimeError("boom " + os.environ["DEPLOY_PASSWORD"])

            password = os.environ["API_PASSWORD"][::-1]
            tlsenv.call(client, env={{"DEPLOY_PASSWORD": password}}).assert_ok()
        """
    )
    values = {**secret_env, "DEPLOY_PASSWORD": secret_env["API_PASSWORD"][::-1]}
    result = pytester.runpytest_subprocess(
        "--tlsenv-report",
        "report.json",
        "--tlsenv-repro-dir",
        "bundles",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=2)
    _assert_clean("\n".join(result.outlines + result.errlines), values)
    assert "DEPLOY_PASSWORD=<redacted>" in result.stdout.str()
    assert "argument=<redacted>" in result.stdout.str()
    report = (pytester.path / "report.json").read_text()
    _assert_clean(report, values)
    assert "<redacted>" in report
    written = [p for p in (pytester.path / "bundles").rglob("*") if p.is_file()]
    assert len(written) > 10
    for path in written:
        _assert_clean(path.read_bytes().decode("utf-8", "replace"), values)


# -- bundles ------------------------------------------------------------------------------------


def _bundle_files(bundle: Path) -> dict[str, str]:
    return {
        str(p.relative_to(bundle)): p.read_bytes().decode("utf-8", "replace")
        for p in bundle.rglob("*")
        if p.is_file()
    }


def _run_bundle(bundle: Path, tmp: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": CLEAN_PATH, "HOME": str(tmp), "TMPDIR": str(tmp), **extra}
    return subprocess.run(
        ["sh", str(bundle / "repro.sh")], env=env, capture_output=True, text=True, timeout=120
    )


# A client that needs the secrets to do what it did: exit 3 when the password and its argument
# hash to $2, 7 otherwise.
NEEDS = (
    'h=$(printf %s "$API_PASSWORD$1" | sha256sum | cut -c1-16); [ "$h" = "$2" ] || exit 7; '
    'echo "pw=$API_PASSWORD" >&2; exit 3'
)


@pytest.mark.parametrize("source", ["tlsenv.repro", "cli"])
def test_bundle_carries_no_secret_and_says_what_to_set(
    tlsenv: TLSEnv, secret_env: dict[str, str], tmp_path: Path, source: str
) -> None:
    password, aws = secret_env["API_PASSWORD"], secret_env["AWS_SECRET_ACCESS_KEY"]
    # The client checks a hash of both (no secret): the bundle must pass the real values on.
    digest = hashlib.sha256((password + aws).encode()).hexdigest()[:16]
    argv = ["sh", "-c", NEEDS, "sh", aws, digest]
    if source == "tlsenv.repro":
        out = tlsenv.run(argv, env={"API_PASSWORD": password})
        assert (out.verdict, out.returncode) == (Verdict.FAILED, 3)
        bundle = tlsenv.repro(tmp_path / "b")
    else:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pytest_tlsenv", "repro", "good", "--out", "b"),
                *("--env", f"API_PASSWORD={password}", "--", *argv),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        _assert_clean(done.stdout + done.stderr, secret_env)
        bundle = tmp_path / "b"
    files = _bundle_files(bundle)
    assert {"repro.sh", "scenario.json", "ISSUE.md", "Dockerfile"} <= set(files)
    for name, text in files.items():
        for var, value in secret_env.items():
            assert value not in text, f"{name} carries the value of {var}"
    data = json.loads(files["scenario.json"])
    assert data["secrets"] == ["API_PASSWORD", "AWS_SECRET_ACCESS_KEY"]
    assert data["runs"][-1]["env"]["API_PASSWORD"] == "{$API_PASSWORD}"
    for var in data["secrets"]:
        assert (
            f': "${{{var}:?set {var} to reproduce (its value was not exported)}}"'
            in (files["repro.sh"])
        )
        assert f"`{var}`" in files["ISSUE.md"]
        assert f"-e {var} " in files["Dockerfile"]
    assert "the bundle does not contain" in files["ISSUE.md"]

    # Without the secrets repro.sh stops and names them; with them it reproduces exit 3; with a
    # wrong password the client takes the other branch (exit 7): the reference is used.
    done = _run_bundle(bundle, tmp_path)
    assert done.returncode != 0
    assert "set API_PASSWORD to reproduce (its value was not exported)" in done.stderr
    assert "verdict:" not in done.stdout
    done = _run_bundle(bundle, tmp_path, API_PASSWORD=password, AWS_SECRET_ACCESS_KEY=aws)
    assert "verdict: FAILED - exit 3: pw=" in done.stdout, done.stdout + done.stderr
    done = _run_bundle(bundle, tmp_path, API_PASSWORD="wrong-one", AWS_SECRET_ACCESS_KEY=aws)
    assert "verdict: FAILED - exit 7: (no output)" in done.stdout, done.stdout + done.stderr


# -- the survey's report --------------------------------------------------------------------------


def test_survey_report_has_no_secret(tmp_path: Path, secret_env: dict[str, str]) -> None:
    token = secret_env["GITHUB_TOKEN"]
    outcome = Outcome(
        Verdict.FAILED,
        f"exit 22: 401 for https://bot:{token}@index.test/ (token {token})",
        argv=["curl"],
        returncode=22,
        environ={"PATH": CLEAN_PATH},
    )
    cell = Cell("good", "decoy", frozenset({Verdict.OK}), {"curl": outcome})
    write_report(tmp_path / "survey.json", [cell], {"curl": "curl 8"}, 1.0)
    text = (tmp_path / "survey.json").read_text()
    _assert_clean(text, secret_env)
    assert "https://<redacted>@index.test/ (token <redacted>)" in text


# -- the rules themselves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "API_PASSWORD",
        "DB_PASSWD",
        "DB_PASS",
        "DB_PW",
        "GPG_PASSPHRASE",
        "NPM_CONFIG__AUTH",
        "proxy_auth",
        "HTTP_AUTHORIZATION",
        "SSLKEYLOGFILE",
        "APIKEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SESSION_COOKIE",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PWD",
        "OLDPWD",
        "XAUTHORITY",
        "GIT_AUTHOR_NAME",
        "SSL_CERT_FILE",
        "PATH",
        "PASSENGER_ROOT",
        "KEYBOARD",
        "PIP_INDEX_URL",
    ],
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_values_are_redacted_wherever_they_appear() -> None:
    value = "s3cr3t-" + secrets.token_hex(4)
    env = {"MY_TOKEN": value, "SHORT_TOKEN": "abc", "NOTE": f"uses {value}"}
    assert redact_environ(env) == {
        "MY_TOKEN": "<redacted>",
        "NOTE": "uses <redacted>",
        "SHORT_TOKEN": "<redacted>",
    }
    red = Redactor(env)
    assert (
        red.text(f"curl -u me:{value} https://a:b@h/")
        == "curl -u me:<redacted> https://<redacted>@h/"
    )
    # A short value is not searched for elsewhere (it would blank out ordinary words).
    assert red.text("abc def") == "abc def"
    assert red.references(f"--password={value}") == "--password={$MY_TOKEN}"
    assert redact(f"x {value} y", [value]) == "x <redacted> y"
