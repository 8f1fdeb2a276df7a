"""Bisecting releases against a package index the test builds and serves on loopback.

``tinyclient`` (tests/pkgindex.py) breaks at 1.6 (it stops loading any CA) and starts
warning on stderr at 1.2; a pre-release and a yanked release are broken too, one release has
no wheel for this platform and one is an sdist only. Every install is real (pip, a venv per
release, into a private cache shared by this module's tests); every verdict comes from a
real handshake with the scenario's origin.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pkgindex
import pytest

import pytest_tlsenv
from pytest_tlsenv import BisectResult, ConfigError, Verdict
from pytest_tlsenv.bisection import max_evaluations
from pytest_tlsenv.cli import main
from pytest_tlsenv.clients import cache_entries, clear_cache, is_pinned, pinned, pinned_dir
from pytest_tlsenv.clients.index import releases
from pytest_tlsenv.errors import ClientUnavailableError

pytestmark = [pytest.mark.nonroot]

CMD = ["tinyclient", "{url}"]


@pytest.fixture(scope="module")
def cache() -> Iterator[Path]:
    """A private cache for this module: installs are shared by its tests, never by others."""
    base = Path(tempfile.mkdtemp(prefix="tlsenv-bisect-cache-"))
    old = os.environ.get("TLSENV_CACHE_DIR")
    os.environ["TLSENV_CACHE_DIR"] = str(base)
    try:
        yield base
    finally:
        if old is None:
            del os.environ["TLSENV_CACHE_DIR"]
        else:
            os.environ["TLSENV_CACHE_DIR"] = old
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.fixture(scope="module")
def index(cache: Path) -> Iterator[pkgindex.Index]:
    del cache
    with pkgindex.serve() as served:
        yield served


def _bisect(index: pkgindex.Index, good: str, bad: str, **kw: object) -> BisectResult:
    return pytest_tlsenv.bisect("tinyclient", good, bad, "good", CMD, index_url=index.url, **kw)  # type: ignore[arg-type]


# -- the index -----------------------------------------------------------------------------


def test_releases_are_read_the_same_from_json_and_html() -> None:
    with pkgindex.serve(json_api=True) as j, pkgindex.serve(json_api=False) as h:
        from_json = releases("tinyclient", j.url)
        from_html = releases("tinyclient", h.url)
    assert [(r.version, r.yanked, r.wheels, r.sdists) for r in from_json] == [
        (r.version, r.yanked, r.wheels, r.sdists) for r in from_html
    ]
    by = {r.version: r for r in from_json}
    assert [r.version for r in from_json][:5] == ["1.0", "1.1", "1.2", "1.3", "1.3.1"]
    assert by["1.5.1"].yanked == "broken trust"
    assert by["1.5rc1"].prerelease
    assert not by["1.5"].prerelease
    assert by["1.3.1"].wheels == []


def test_unknown_package_and_unreachable_index_are_told_apart() -> None:
    with pkgindex.serve() as served:
        with pytest.raises(ConfigError, match="unknown package 'nosuch'"):
            releases("nosuch", served.url)
        port = served.url.split(":")[2].split("/")[0]
    # The same port, closed now: nothing listens.
    with pytest.raises(ClientUnavailableError, match="unreachable"):
        releases("tinyclient", f"http://127.0.0.1:{port}/simple")


def test_a_plain_http_index_off_loopback_is_refused() -> None:
    with pytest.raises(ConfigError, match="plain http only on loopback"):
        releases("tinyclient", "http://example.org/simple")


# -- the search ------------------------------------------------------------------------------


def test_bisect_finds_the_release_that_broke_it(index: pkgindex.Index) -> None:
    lines: list[str] = []
    result = _bisect(index, "1.0", "2.0", progress=lines.append)
    assert (result.last_good.version, result.first_bad.version) == ("1.5", "1.6")
    assert result.good.verdict is Verdict.OK
    assert result.first_bad.verdict is Verdict.REJECTED
    assert "CERTIFICATE_VERIFY_FAILED" in result.first_bad.stderr
    assert result.unresolved == []
    # Left out before the search, each with why; 1.4.5 tried and skipped (no wheel for here).
    assert result.excluded == {
        "1.3.1": "no wheel (only wheels are installed)",
        "1.5rc1": "pre-release",
        "1.5.1": "yanked: broken trust",
    }
    skipped = {e.version: e.skipped for e in result.evaluations if e.skipped}
    assert list(skipped) == ["1.4.5"]
    assert "skipping tinyclient 1.4.5:" in "\n".join(lines)
    n = len(result.candidates)
    assert n == 8
    assert result.evaluated <= math.ceil(math.log2(n + 1)) + 2 == max_evaluations(n)
    assert any(line.startswith("[3/6] tinyclient ") for line in lines), lines
    assert "first bad: tinyclient 1.6 (REJECTED" in result.summary()
    # The installs went to this index's part of the cache, wheels only.
    assert is_pinned("tinyclient", "1.6", index.url)
    assert not is_pinned("tinyclient", "1.6")


def test_prereleases_and_yanked_releases_only_when_asked(index: pkgindex.Index) -> None:
    # The twins of the default (narrow ranges: each install costs seconds): included, the
    # broken pre-release / yanked release is the first bad one.
    plain = _bisect(index, "1.4", "1.6")
    assert (plain.last_good.version, plain.first_bad.version) == ("1.5", "1.6")
    pre = _bisect(index, "1.4", "1.6", prereleases=True)
    assert (pre.last_good.version, pre.first_bad.version) == ("1.4", "1.5rc1")
    yanked = _bisect(index, "1.5", "1.6", yanked=True)
    assert (yanked.last_good.version, yanked.first_bad.version) == ("1.5", "1.5.1")


def test_stderr_pattern_counts_a_new_warning(index: pkgindex.Index) -> None:
    result = _bisect(index, "1.0", "1.4", stderr=r"SSL_CERT_DIR is set but empty")
    assert (result.last_good.version, result.first_bad.version) == ("1.1", "1.2")
    assert result.first_bad.verdict is Verdict.OK
    assert result.first_bad.matched
    # Without the pattern, the verdicts are the same: nothing to bisect.
    with pytest.raises(ConfigError, match="give the same verdict in good"):
        _bisect(index, "1.0", "1.4")


def test_repro_dir_gets_the_first_bad_release(index: pkgindex.Index, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = _bisect(index, "1.5", "1.7", repro_dir=out)
    assert result.first_bad.version == "1.6"
    assert result.repro == out
    assert (out / "repro.sh").is_file()
    assert "tinyclient==1.6" in (out / "Dockerfile").read_text()
    # The bundle runs `tinyclient`, not this machine's cache path.
    assert str(pinned_dir("tinyclient", "1.6", index.url)) not in (out / "repro.sh").read_text()


# -- the command line: bad input is one usage error, exit 2 ----------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(["bisect", *args])
    err = capsys.readouterr().err
    return int(exc.value.code or 0), err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch", "--good", "1.0", "--bad", "2.0", "--scenario", "good", "--", *CMD],
         "unknown package 'nosuch'"),
        (["tinyclient", "--good", "0.9", "--bad", "2.0", "--scenario", "good", "--", *CMD],
         "--good 0.9: tinyclient has no such release (nearest: "),
        (["tinyclient", "--good", "1.0", "--bad", "2.0", "--scenario", "good", "--",
          "tinyclient", "https://example.org/"], "has no placeholder"),
        (["tinyclient", "--good", "1.0", "--bad", "2.0", "--scenario", "good", "--",
          "curl", "{url}"], "command runs 'curl', not tinyclient"),
        (["tinyclient", "--good", "1.0", "--bad", "1.1", "--scenario", "good", "--", *CMD],
         "give the same verdict"),
        (["tinyclient", "--good", "2.0", "--bad", "1.0", "--scenario", "good", "--", *CMD],
         "must be an older release"),
        (["tinyclient", "--good", "1.0", "--bad", "2.0", "--scenario", "goood", "--", *CMD],
         "did you mean 'good'"),
        (["tinyclient", "--good", "1.0", "--bad", "2.0", "--scenario", "good"],
         "give the client command after --"),
    ],
    ids=["unknown-package", "no-such-version", "no-placeholder", "other-program",
         "same-verdict", "reversed", "unknown-scenario", "no-command"],
)  # fmt: skip
def test_bad_input_is_a_one_line_usage_error(
    index: pkgindex.Index, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = sorted(p.name for p in cache_entries_paths())
    code, err = _cli(capsys, *args[:1], "--index-url", index.url, *args[1:])
    assert code == 2
    error = [line for line in err.splitlines() if "error:" in line]
    assert len(error) == 1, err
    assert message in error[0]
    assert not [line for line in err.splitlines() if line.startswith("Traceback")]
    # Nothing half-written: only complete environments are in the cache.
    assert all(p.name.startswith("tinyclient-") for p in cache_entries_paths())
    assert set(before) <= {p.name for p in cache_entries_paths()}


def cache_entries_paths() -> list[Path]:
    return [p for p, _ in cache_entries()]


def test_no_network_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pkgindex.serve() as served:
        url = served.url
    code, err = _cli(
        capsys, "tinyclient", "--index-url", url, "--good", "1.0", "--bad", "2.0",
        "--scenario", "good", "--", *CMD,
    )  # fmt: skip
    assert code == 2
    assert "unreachable" in err.splitlines()[-1]


def test_cli_bisect_prints_the_result(
    index: pkgindex.Index, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    code = main(
        ["bisect", "tinyclient", "--index-url", index.url, "--good", "1.5", "--bad", "1.7",
         "--scenario", "good", "--json", str(report), "--", *CMD]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0
    assert "first bad: tinyclient 1.6 (REJECTED" in out.out
    assert "last good: tinyclient 1.5 (OK" in out.out
    assert "[1/3] tinyclient 1.5: OK" in out.err
    assert '"first_bad": "1.6"' in report.read_text()


# -- the cache: kill -9 mid-install leaves nothing half-written; size report and clear ------


def test_kill_during_install_leaves_nothing_and_the_next_run_recovers(cache: Path) -> None:
    del cache
    with pkgindex.serve() as served:
        served.hold = threading.Event()
        target = pinned_dir("tinyclient", "1.1", served.url)
        code = (
            "import sys; from pytest_tlsenv.clients import pinned; "
            "pinned('tinyclient', '1.1', index_url=sys.argv[1])"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, served.url], start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert served.hold.wait(120), "the install never asked for the wheel"
            assert list(target.parent.glob(".tinyclient-1.1-*")), (
                "no staging directory while installing"
            )
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
            served.release.set()
        # Killed mid-install: no environment at the target, only the staging leftovers.
        assert not target.exists()
        assert not is_pinned("tinyclient", "1.1", served.url)
        served.hold = None
        exe = pinned("tinyclient", "1.1", "tinyclient", index_url=served.url)
    assert exe == target / "bin" / "tinyclient"
    assert not list(target.parent.glob(".tinyclient-1.1-*")), "leftovers not removed"


def test_cache_verb_reports_sizes_and_clears(
    index: pkgindex.Index,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("TLSENV_CACHE_DIR", str(cache))  # its own: clearing it spares the rest
    pinned("tinyclient", "1.0", index_url=index.url)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "tinyclient-1.0" in out
    assert f"cache {cache}:" in out
    assert "pinned environment(s)" in out
    count, freed = clear_cache()
    assert count >= 1
    assert freed > 0
    assert cache_entries() == []
    assert not is_pinned("tinyclient", "1.0", index.url)
    assert main(["cache", "--clear"]) == 0
    assert "removed 0 pinned environment(s)" in capsys.readouterr().out
