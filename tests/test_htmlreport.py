"""The HTML report: written by the plugin and the survey, checked on the file and in a real
headless Chromium (loaded from file://, a cell clicked, its details read from the DOM)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_tlsenv.htmlreport import CSP, HtmlCell, HtmlGrid, HtmlRow, to_html, write_html

sys.path.insert(0, str(Path(__file__).parent))
import chromium

pytest_plugins = ["pytester"]

CHROMIUM, NO_CHROMIUM = chromium.find()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

# What a hostile client could print: it closes the data block and adds an image whose error
# handler would run script; in the report it must stay text.
PAYLOAD = "</script><img src=x onerror=\"document.title='pwned'\"><!-- & \u2028 done"

SUITE = f"""
import sys
import tempfile

import pytest


@pytest.mark.tlsenv("good")
def test_hostile_stderr(tlsenv):
    tlsenv.run(
        [sys.executable, "-c", "import sys; sys.stderr.write(sys.argv[1]); sys.exit(3)",
         {PAYLOAD!r}],
        env={{"MY_API_TOKEN": "hunter2-secret-value"}},
    )


@pytest.mark.tlsenv_matrix(["good", "unreadable-file"])
def test_curl(tlsenv):
    tlsenv.run(["curl", "-fsS", "--cacert", str(tlsenv.store.bundle), tlsenv.origin.url])
"""

REMOTE = re.compile(
    r"""\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?://|[a-z][a-z0-9+.-]*:)""", re.I
)


def remote_references(page: str) -> list[str]:
    """Attributes that name a URL with a scheme or a network path (``//host``)."""
    return REMOTE.findall(page)


def csp_of(page: str) -> str:
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert m is not None, "no CSP meta"
    return html.unescape(m.group(1))


@pytest.fixture
def plugin_report(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--color=no", "--tlsenv-report", "out/r.html")
    result.stdout.fnmatch_lines(["*tlsenv: report written to out/r.html"])
    return pytester.path / "out" / "r.html"


# -- the file ---------------------------------------------------------------------------------


def test_the_page_loads_nothing_and_keeps_stderr_as_text(plugin_report: Path) -> None:
    page = plugin_report.read_text(encoding="utf-8")
    policy = csp_of(page)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"].startswith("'sha256-")
    assert directives["style-src"].startswith("'sha256-")
    assert "http" not in policy
    assert "*" not in policy
    assert "unsafe" not in policy
    # The CSP comes before anything that could load or run.
    assert page.index("Content-Security-Policy") < page.index("<style")
    assert remote_references(page) == []
    # The payload appears only escaped; the secret not at all.
    assert "<img" not in page
    assert 'onerror="document' not in page
    assert "</script><img" not in page
    assert "hunter2-secret-value" not in page
    assert "<redacted>" not in page  # escaped in the data block as \u003credacted\u003e
    assert "\\u003credacted\\u003e" in page
    # No leftover temporary file beside the report.
    assert sorted(p.name for p in plugin_report.parent.iterdir()) == ["r.html"]


def test_the_remote_reference_scan_finds_what_it_looks_for() -> None:
    # The negative twin of the scan above: it would have caught a remote load.
    for bad in (
        '<img src="https://example.com/x.png">',
        "<link href=//cdn.example/a.css rel=stylesheet>",
        "<a href='http://example.com/'>x</a>",
        '<script src="data:text/javascript,alert(1)"></script>',
    ):
        assert remote_references(bad), bad
    assert remote_references('<td data-i="3">OK</td><a href="#cell-3">') == []


def test_every_cell_text_is_escaped() -> None:
    hostile = "<b>x</b>\"'&"
    grid = HtmlGrid(
        title=hostile,
        facts=(hostile,),
        column_kind="test",
        columns=(hostile,),
        column_titles=(hostile,),
        rows=(
            HtmlRow(
                hostile,
                (hostile,),
                (hostile,),
                (HtmlCell(hostile, hostile, "mismatch", hostile, hostile, ((hostile, hostile),)),),
            ),
        ),
        legend=hostile,
    )
    page = to_html(grid)
    assert "<b>" not in page
    data = re.search(r'<script type="application/json" id="tlsenv-data">(.*?)</script>', page, re.S)
    assert data is not None
    assert "<" not in data.group(1)
    assert "&" not in data.group(1)
    decoded = json.loads(data.group(1))
    assert hostile in decoded["strings"]


def test_an_unwritable_report_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(SUITE)
    pytester.path.joinpath("d.html").mkdir()
    result = pytester.runpytest("--tlsenv-report", "d.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tlsenv-report *d.html: is a directory*"])


# -- in the browser ---------------------------------------------------------------------------


def launch() -> chromium.Browser:
    """A headless Chromium, or a skip saying why none starts here (a browser that is
    installed but cannot run, e.g. without its libraries, is the machine's problem)."""
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    try:
        return chromium.Browser(CHROMIUM)
    except chromium.ChromiumError as e:
        pytest.skip(f"{CHROMIUM} does not start here: {e}")


def _open(browser: chromium.Browser, path: Path) -> str:
    session = browser.open(path.as_uri())
    assert browser.evaluate(session, "document.documentElement.dataset.ready") == "1"
    return session


def _detail(browser: chromium.Browser, session: str) -> dict[str, str]:
    return dict(
        browser.evaluate(
            session,
            "[...document.querySelectorAll('#detail-body dt')].map("
            "dt => [dt.textContent, dt.nextElementSibling.textContent])",
        )
    )


@needs_chromium
def test_a_click_shows_the_cell_stderr_as_text(plugin_report: Path) -> None:
    with launch() as browser:
        session = _open(browser, plugin_report)
        assert browser.evaluate(session, "document.getElementById('detail').hidden") is True
        cell = "td[title$='::test_hostile_stderr in good']"
        browser.click(session, cell)
        assert browser.evaluate(session, "document.getElementById('detail').hidden") is False
        detail = _detail(browser, session)
        assert detail["stderr (tail)"] == PAYLOAD
        assert detail["verdict"] == "FAILED"
        assert detail["trust mode"] == "env"
        assert detail["command"].startswith(sys.executable)
        assert "MY_API_TOKEN=<redacted>" in detail["environment (secrets redacted)"]
        assert "ca-certificates.crt" in detail["store"]
        assert re.fullmatch(r"\d+\.\d{3} s", detail["duration"])
        # Text only: no element came out of the payload, no handler ran.
        assert browser.evaluate(session, "document.images.length") == 0
        assert browser.evaluate(session, "document.title") == "pytest-tlsenv results"
        assert browser.evaluate(session, "location.hash").startswith("#cell-")
        # Nothing but the file itself was requested.
        assert browser.requests(session) == [plugin_report.as_uri()]
        refused = [m for m in browser.console(session) if "Content Security Policy" in m]
        assert refused == []  # the page's own style and script match their hashes


@needs_chromium
def test_the_payload_would_run_without_escaping(tmp_path: Path) -> None:
    # The negative twin: the same payload as raw HTML does make an image and run its handler
    # in this browser, so the test above would have seen it.
    page = tmp_path / "raw.html"
    page.write_text(f"<!DOCTYPE html><title>t</title><pre>{PAYLOAD}</pre>", encoding="utf-8")
    with launch() as browser:
        session = browser.open(page.as_uri())
        assert browser.evaluate(session, "document.images.length") == 1
        assert (
            browser.evaluate(session, "new Promise(r => setTimeout(() => r(document.title), 200))")
            == "pwned"
        )


@needs_chromium
def test_the_csp_alone_refuses_loads_and_inline_handlers(tmp_path: Path) -> None:
    # Even a page that let markup through would load and run nothing under the policy.
    page = tmp_path / "csp.html"
    page.write_text(
        f'<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">'
        f"<title>t</title><pre>{PAYLOAD}</pre><img src='http://192.0.2.1/x.png'>"
        "<script>document.title='inline ran'</script>",
        encoding="utf-8",
    )
    with launch() as browser:
        session = browser.open(page.as_uri())
        title = browser.evaluate(
            session, "new Promise(r => setTimeout(() => r(document.title), 200))"
        )
        assert title == "t"
        assert [u for u in browser.requests(session) if not u.startswith("file:")] == []
        refused = [m for m in browser.console(session) if "Content Security Policy" in m]
        assert refused, browser.console(session)


@needs_chromium
def test_survey_report_in_the_browser(tmp_path: Path) -> None:
    out = tmp_path / "survey.html"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_tlsenv",
            "survey",
            "--clients",
            "python-ssl",
            "curl",
            "--scenarios",
            "good",
            "unreadable-file",
            "fifo",
            "--report",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    page = out.read_text(encoding="utf-8")
    assert remote_references(page) == []
    assert csp_of(page) == CSP
    with launch() as browser:
        session = _open(browser, out)
        rows = browser.evaluate(session, "document.querySelectorAll('#grid tbody tr').length")
        assert rows == 5  # good; unreadable-file and fifo in both placements
        browser.click(session, "td[title='curl in unreadable-file']")
        detail = _detail(browser, session)
        assert detail["client"] == "curl"
        assert detail["command"].startswith("curl ")
        assert detail["client version"]
        assert "65533" in detail["store"] or "------" in detail["store"]
        assert detail["verdict"] in {"OK", "REJECTED"}
        # The verdict filter hides the rows without such a verdict; "all" brings them back.
        shown = (
            "(v => { const s = document.getElementById('f-verdict'); s.value = v;"
            " s.dispatchEvent(new Event('change'));"
            " return document.querySelectorAll('#grid tbody tr:not(.hide)').length; })"
        )
        options = browser.evaluate(
            session, "[...document.querySelectorAll('#f-verdict option')].map(o => o.value)"
        )
        assert options[0] == ""
        assert "OK" in options
        counts = {}
        for v in options[1:]:
            counts[v] = browser.evaluate(session, f"{shown}({json.dumps(v)})")
            having = browser.evaluate(
                session,
                "[...document.querySelectorAll('#grid tbody tr')].filter(tr => tr.querySelector("
                + json.dumps(f'td[data-v="{v}"]' if v not in "!*" else "td.mismatch")
                + ")).length",
            )
            assert counts[v] == having, v
        assert min(counts.values()) < 5  # some verdict is not in every row: the filter bites
        assert browser.evaluate(session, f"{shown}('')") == 5
        groups = (
            "(g => { const s = document.getElementById('f-group'); s.value = g;"
            " s.dispatchEvent(new Event('change'));"
            " return document.querySelectorAll('#grid tbody tr:not(.hide)').length; })"
        )
        assert browser.evaluate(session, f"{groups}('store')") == 4
        # The header row stays in view when the page scrolls down.
        header_top = (
            "(() => { const t = document.getElementById('grid');"
            " window.scrollTo(0, t.getBoundingClientRect().top + window.scrollY + 40);"
            " return document.querySelector('#grid thead th').getBoundingClientRect().top; })()"
        )
        browser.evaluate(session, "document.body.style.paddingBottom = '3000px'")
        assert browser.evaluate(session, header_top) == 0
        # ...while the first row, not sticky, went up out of view under it.
        first_row = (
            "document.querySelector('#grid tbody tr:not(.hide)').getBoundingClientRect().top"
        )
        assert browser.evaluate(session, first_row) < 0
        assert browser.requests(session) == [out.as_uri()]


def test_write_html_takes_the_json_reports_results(pytester: pytest.Pytester) -> None:
    # What a merge of JSON reports hands the renderer: the "results" list as written.
    pytester.makepyfile(SUITE)
    pytester.runpytest("--tlsenv-report", "r.json")
    results = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["results"]
    out = pytester.path / "merged" / "r.html"
    write_html(results, out)
    page = out.read_text(encoding="utf-8")
    cells = re.findall(r'<td class="v (\w+) (\w+)"[^>]*data-v="(\w*)"', page)
    assert len(cells) == len(results) == 3
    assert sorted(v for _, _, v in cells) == sorted(r["verdict"] for r in results)
    assert ("FAILED", "mismatch", "FAILED") in cells  # the hostile test, outside {OK}
    assert "\\u003credacted\\u003e" in page


def test_a_browser_that_cannot_start_is_an_error_that_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What launch() turns into a skip: a program that exits at once instead of answering.
    # The leak checker sees no pipe left open; its profile directory (made in a temp dir of
    # this test's own, so parallel browsers do not count) is gone.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(chromium.ChromiumError, match="Chromium exited"):
        chromium.Browser("/bin/false")
    assert list(tmp_path.iterdir()) == []
