"""The one grid renderer: layout by width, colour (and NO_COLOR), Markdown escaping."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from pytest_tlsenv.grid import Cell, blocks, colour_wanted, md_escape, to_markdown, to_text

pytestmark = pytest.mark.nonroot


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
