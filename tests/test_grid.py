"""The one grid renderer: layout by width, colour (and NO_COLOR), Markdown escaping."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from pytest_tlsenv.grid import Cell, blocks, colour_wanted, md_escape, to_markdown, to_text

pytestmark = pytest.mark.nonroot
pytest_plugins = ["pytester"]


def _rows(n: int) -> list[list[Cell]]:
    header = [Cell("scenario", "header"), Cell("expected", "header")]
    header += [Cell(f"client{i}", "header") for i in range(n)]
    row = [Cell("good", "header"), Cell("OK", "missing")]
    row += [Cell("OK", "expected") if i % 2 else Cell("FAILED !", "mismatch") for i in range(n)]
    return [header, row]


def test_columns_that_do_not_fit_go_to_another_block_with_the_fixed_columns() -> None:
    laid = blocks(_rows(6), width=40, fixed=2)
    text = to_text(laid)
    lines = text.splitlines()
    assert len(laid) > 1
    assert all(len(line) <= 40 for line in lines), lines
    # Every block starts with the fixed columns; every client is in exactly one block.
    assert sum(line.startswith("scenario  expected") for line in lines) == len(laid)
    assert sorted(w for line in lines for w in line.split() if w.startswith("client")) == [
        f"client{i}" for i in range(6)
    ]
    # The twin: without a width limit one block holds every column, one line per row.
    assert len(blocks(_rows(6), width=None, fixed=2)) == 1
    assert to_text(blocks(_rows(6), fixed=2)).count("\n") == 1


def test_columns_are_padded_and_lines_end_without_spaces() -> None:
    rows = [[Cell("scenario", "header"), Cell("t", "header")], [Cell("a-long-row", "header")]]
    text = to_text(blocks(rows), rule=True)
    assert text.splitlines() == ["scenario    t", "----------  -", "a-long-row"]
    # Untrimmed, every row keeps every (padded) column: what a Markdown table needs.
    assert [len(r) for r in blocks(rows, trim=False)[0]] == [2, 2]


def test_colour_paints_by_meaning_and_stays_off_when_asked() -> None:
    laid = blocks(_rows(2), fixed=2)
    coloured = to_text(laid, colour=True)
    # pytest's markup order (colour, then bold), separator inside the paint: the summary's look.
    assert "\x1b[31m\x1b[1m  FAILED !\x1b[0m" in coloured
    assert "\x1b[32m  OK\x1b[0m" in coloured
    assert "\x1b[1mscenario\x1b[0m" in coloured
    plain = to_text(laid, colour=False)
    assert "\x1b[" not in plain
    assert plain == to_text(laid).replace("\x1b", "")


@pytest.fixture
def tty() -> Iterator[TextIO]:
    # A real terminal: the pty's slave end, as a text stream.
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w")
    try:
        yield stream
    finally:
        stream.close()
        os.close(master)


def test_colour_is_wanted_on_a_terminal_unless_no_color(
    tty: TextIO, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted(tty)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(tty)
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not colour_wanted(tty)
    monkeypatch.setenv("TERM", "xterm")
    with (tmp_path / "f").open("w") as not_a_tty:
        assert not colour_wanted(not_a_tty)


def test_markdown_escapes_what_would_break_the_table() -> None:
    assert md_escape("a|b\nc") == "a\\|b c"
    table = to_markdown([["scenario", "test[a|b]"], ["  good  ", "OK\nreally"]])
    assert table.splitlines() == [
        "| scenario | test[a\\|b] |",
        "|---|---|",
        "| good | OK really |",
    ]
    # Every row has as many unescaped separators as the header: the table holds together.
    counts = {line.replace("\\|", "").count("|") for line in table.splitlines()}
    assert counts == {3}


# -- the pytest summary's grid at the width of a terminal -------------------------------------

SIX_FUNCTIONS = """
import pytest

SPEC = [
    "good", "unreadable-file", "unreadable-bundle", "unreadable-dir", "dangling-symlink",
    "symlink-loop", "fifo", "empty-file", "garbage-file", "truncated-pem", "der-file",
    "private-key-file", "garbage-in-bundle", "expired-decoy", "non-ca-cert", "huge-file",
    "crlf-pem", "missing-file-env", "missing-dir-env", "dir-as-file", "uv-5448", "mitm-untrusted",
]

def nothing():
    return None

@pytest.mark.tlsenv_matrix(SPEC)
def test_requests_behind_proxy(tlsenv):
    tlsenv.call(nothing)

@pytest.mark.tlsenv_matrix(SPEC)
def test_httpx_behind_proxy(tlsenv):
    tlsenv.call(nothing)

@pytest.mark.tlsenv_matrix(SPEC)
def test_urllib_behind_proxy(tlsenv):
    tlsenv.call(nothing)

@pytest.mark.tlsenv_matrix(SPEC)
def test_aiohttp_behind_proxy(tlsenv):
    tlsenv.call(nothing)

@pytest.mark.tlsenv_matrix(SPEC)
def test_pip_download_via_proxy(tlsenv):
    tlsenv.call(nothing)

@pytest.mark.tlsenv_matrix(SPEC)
def test_uv_download_via_proxy(tlsenv):
    tlsenv.call(nothing)
"""


TWO_FUNCTIONS = """
import pytest

@pytest.mark.tlsenv_matrix(["good", "fifo"])
def test_one(tlsenv):
    tlsenv.call(lambda: None)

@pytest.mark.tlsenv_matrix(["good", "fifo"])
def test_two(tlsenv):
    tlsenv.call(lambda: None)
"""


def _summary(
    pytester: pytest.Pytester, columns: int, *args: str, source: str = SIX_FUNCTIONS
) -> list[str]:
    pytester.makepyfile(test_grid_session=source)
    tests = 6 * 22 if source is SIX_FUNCTIONS else 4
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(columns))
        result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", *args)
    result.assert_outcomes(passed=tests)
    lines = result.outlines
    start = next((i for i, line in enumerate(lines) if "= tlsenv =" in line), None)
    end = next(i for i, line in enumerate(lines) if f"{tests} passed in" in line)
    return lines[start:end] if start is not None else [line for line in lines if "tlsenv:" in line]


def test_six_test_functions_by_22_scenarios_fit_80_columns(pytester: pytest.Pytester) -> None:
    shown = _summary(pytester, 80)
    assert len(shown) <= 30, "\n".join(shown)
    assert all(len(line) <= 80 for line in shown[2:]), "\n".join(shown)
    header = shown[2].split()
    assert header == ["scenario", "A", "B", "C", "D", "E", "F"], shown[2]
    # The legend maps the letters to the tests and spells out the short verdicts.
    legend = " ".join(shown)
    assert "A test_aiohttp_behind_proxy" in legend
    assert "FAIL no connection" in legend
    rows = {line.split()[0]: line.split()[1:] for line in shown[3:25]}
    assert all(cell.startswith("FAIL") for cell in rows["fifo"]), rows["fifo"]


def test_a_wide_terminal_shows_test_names_and_full_verdicts(pytester: pytest.Pytester) -> None:
    # The twin: the letters and short verdicts are for narrow terminals only.
    shown = _summary(pytester, 400)
    assert "test_pip_download_via_proxy" in shown[2]
    assert not any(line.startswith("columns:") for line in shown)
    assert any(line.startswith("fifo ") and "FAILED" in line for line in shown)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-q",), "*tlsenv: 4 verdicts (2 tests x 2 scenarios), * grid not shown (-q)*"),
        (("--tlsenv-grid=summary",), "*grid not shown (--tlsenv-grid=summary)*"),
        (
            ("-o", "tlsenv_grid_max_tests=1"),
            "*grid not shown (more than tlsenv_grid_max_tests=1 columns)*",
        ),
    ],
)
def test_one_line_instead_of_the_grid(
    pytester: pytest.Pytester, args: tuple[str, ...], expected: str
) -> None:
    shown = _summary(pytester, 80, *args, source=TWO_FUNCTIONS)
    assert len([line for line in shown if line.startswith("tlsenv:")]) == 1, shown
    pytester_lines = pytest.LineMatcher(shown)
    pytester_lines.fnmatch_lines([expected])
    assert not any(line.startswith("scenario ") for line in shown)


def test_grid_off_prints_nothing_and_full_overrides_quiet(pytester: pytest.Pytester) -> None:
    assert _summary(pytester, 80, "--tlsenv-grid=off", source=TWO_FUNCTIONS) == []
    shown = _summary(pytester, 80, "-q", "--tlsenv-grid=full", source=TWO_FUNCTIONS)
    assert shown[2].split()[0] == "scenario"


def test_a_bad_grid_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--tlsenv-grid=ful")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--tlsenv-grid 'ful': use one of auto, full, summary, off*(did you mean 'full'?)*"]
    )


def test_wrap_words_fills_lines_and_keeps_the_separator() -> None:
    from pytest_tlsenv.grid import wrap_words

    assert wrap_words(["aa", "bb", "cc"], 7, sep=", ") == ["aa, bb,", "cc"]
    assert wrap_words(["A x", "B y"], None, lead="columns: ") == ["columns: A x  B y"]
    assert wrap_words(["a-very-long-part"], 4) == ["a-very-long-part"]
