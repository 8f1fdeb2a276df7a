"""The verdict grid as text (with optional colour) and as Markdown: one renderer for the
pytest summary (:func:`pytest_tlsenv.report.grid`), the survey and both reports.

A grid is a header row and rows of :class:`Cell`; the first ``fixed`` columns name the row
(scenario, expected set) and repeat in every block when the other columns do not fit the
width. A cell's ``style`` says what it means, not how it looks: :data:`STYLES` maps each to
the SGR codes pytest's own markup uses for it, so a coloured survey and a coloured summary
look alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = [
    "STYLES",
    "Cell",
    "blocks",
    "colour_wanted",
    "md_escape",
    "to_markdown",
    "to_text",
    "wrap_words",
]

#: SGR codes per style, in pytest's markup order (colour, then bold).
STYLES: dict[str, tuple[str, ...]] = {
    "header": ("1",),
    "expected": ("32",),
    "mismatch": ("31", "1"),
    "changed": ("33", "1"),
    "missing": (),
}

SEP = "  "


@dataclass(frozen=True)
class Cell:
    """One grid cell: text plus what it means (for colour)."""

    text: str
    style: str  # "header", "expected", "mismatch", "changed", "missing"


def blocks(
    rows: Sequence[Sequence[Cell]],
    *,
    width: int | None = None,
    fixed: int = 1,
    trim: bool = True,
    drop_empty: bool = False,
) -> list[list[list[Cell]]]:
    """Lay out ``rows`` (the first is the header): every cell padded to its column's width,
    each cell after the first carrying the two spaces before it. The columns after the first
    ``fixed`` go into blocks that fit ``width`` (None: one block); each block repeats the
    fixed columns. Rows may be shorter than the header (missing cells are empty).

    ``trim`` drops empty trailing cells and the last cell's padding, so no line ends in
    spaces; without it every row of a block has every column (a Markdown table's cells).
    ``drop_empty`` leaves out of a block the rows with no text in its columns (when the
    columns are wrapped, a row that is empty in one block is not repeated there).
    """
    ncols = max((len(r) for r in rows), default=0)
    full = [[*r, *(Cell("", "missing") for _ in range(ncols - len(r)))] for r in rows]
    widths = [max(len(r[i].text) for r in full) for i in range(ncols)]
    head = list(range(min(fixed, ncols)))
    used0 = sum(widths[i] for i in head) + len(SEP) * max(0, len(head) - 1)
    groups: list[list[int]] = [[]]
    used = used0
    for i in range(len(head), ncols):
        if width is not None and groups[-1] and used + len(SEP) + widths[i] > width:
            groups.append([])
            used = used0
        groups[-1].append(i)
        used += len(SEP) + widths[i]
    out = []
    for group in groups:
        block = []
        for n, r in enumerate(full):
            if drop_empty and n and not any(r[i].text.strip() for i in group):
                continue
            row = [
                Cell((SEP if k else "") + r[i].text.ljust(widths[i]), r[i].style)
                for k, i in enumerate([*head, *group])
            ]
            if trim:
                while len(row) > 1 and not row[-1].text.strip():
                    row.pop()
                row[-1] = Cell(row[-1].text.rstrip(), row[-1].style)
            block.append(row)
        if len(block) > 1 or not drop_empty:
            out.append(block)
    return out


def _paint(cell: Cell) -> str:
    codes = STYLES.get(cell.style, ())
    if not codes or not cell.text.strip():
        return cell.text
    # The whole cell is painted, its leading separator included, as pytest's markup paints
    # the summary's cells: a coloured survey and a coloured summary match byte for byte.
    return "".join(f"\x1b[{c}m" for c in codes) + cell.text + "\x1b[0m"


def to_text(
    laid_out: Sequence[Sequence[Sequence[Cell]]], *, colour: bool = False, rule: bool = False
) -> str:
    """The blocks of :func:`blocks` as lines; blocks are separated by an empty line.

    ``colour``: ANSI colour per cell style (the header row is painted as a header). ``rule``:
    a line of dashes under each block's header row, as wide as each column.
    """
    out: list[str] = []
    for b, block in enumerate(laid_out):
        if b:
            out.append("")
        widths: dict[int, int] = {}
        for row in block:
            for i, cell in enumerate(row):
                widths[i] = max(widths.get(i, 0), len(cell.text) - (len(SEP) if i else 0))
        for n, row in enumerate(block):
            if colour:
                out.append("".join(_paint(c if n else Cell(c.text, "header")) for c in row))
            else:
                out.append("".join(c.text for c in row))
            if n == 0 and rule:
                out.append(SEP.join("-" * widths[i] for i in sorted(widths)))
    return "\n".join(out)


def md_escape(text: str) -> str:
    """A Markdown table cell: a ``|`` would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table: the first row is the header; every cell escaped, padding stripped."""
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(md_escape(c.strip()) for c in row) + " |")
        if n == 0:
            lines.append("|" + "---|" * len(row))
    return "\n".join(lines)


def colour_wanted(stream: TextIO) -> bool:
    """Colour for a terminal, never with ``NO_COLOR`` set (https://no-color.org) or a dumb
    terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def wrap_words(
    parts: Sequence[str], width: int | None, *, lead: str = "", sep: str = SEP
) -> list[str]:
    """``parts`` joined by ``sep`` into lines of at most ``width`` (a part longer than the
    width gets a line of its own; a line ends with the separator's non-space part, e.g. a
    comma); ``lead`` starts the first line."""
    lines: list[str] = []
    line = lead
    for part in parts:
        if line == lead:
            line += part
        elif width is not None and len(line) + len(sep) + len(part) > width:
            lines.append(line + sep.rstrip())
            line = part
        else:
            line += sep + part
    if line:
        lines.append(line)
    return lines
