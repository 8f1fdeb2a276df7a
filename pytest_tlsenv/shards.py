"""Surveys beyond one machine: a deterministic slice of the cells (``survey --shard K/N``) and
the shards' JSON reports merged back into one (``report merge``).

A shard is every N-th cell of the survey's cell list (catalogue order, store faults in both
placements), starting at the K-th: the same K/N on any machine runs the same cells, and the
N shards together run each cell exactly once. No scheduler: one CI matrix job per shard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["merge_reports", "parse_shard", "select", "to_markdown"]

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``; a ConfigError unless 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if m is None:
        raise ConfigError(f"--shard {text!r}: expected K/N, e.g. 1/3")
    k, n = int(m.group(1)), int(m.group(2))
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def select(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """Shard K of N of ``items``: those at positions K-1, K-1+N, K-1+2N..."""
    if shard is None:
        return list(items)
    k, n = shard
    return [item for i, item in enumerate(items) if i % n == k - 1]


def merge_reports(reports: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One survey report from the shards' JSON reports (each with the name it came from).

    The shards must agree on the clients (and their versions) and the trust mode; a cell may
    come from one shard only. Cells are ordered as the unsharded survey orders them (the
    shards' ``survey_cells``; catalogue order for reports without it). ``missing`` in the
    result lists the survey's cells no report holds (a shard not given).
    """
    if not reports:
        raise ConfigError("report merge: no report given")
    from .scenarios import CATALOGUE
    from .survey import cells_of

    first_name, first = reports[0]
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    seen: dict[tuple[str, str], str] = {}
    for name, report in reports:
        for key in ("clients", "trust", "cells"):
            if key not in report:
                raise ConfigError(f"report merge: {name} is not a survey JSON report (no {key!r})")
        for key in ("clients", "trust"):
            if report[key] != first[key]:
                raise ConfigError(
                    f"report merge: {name} has {key} {report[key]!r}, "
                    f"{first_name} has {first[key]!r}: not shards of one survey"
                )
        for cell in report["cells"]:
            where = (cell["scenario"], cell["placement"])
            if where in seen:
                raise ConfigError(
                    f"report merge: cell {where[0]} ({where[1]}) is in both {seen[where]} and "
                    f"{name}: overlapping shards"
                )
            seen[where] = name
            cells[where] = cell
    unknown = sorted({s for s, _ in cells if s not in CATALOGUE})
    if unknown:
        raise ConfigError(f"report merge: unknown scenario(s) {', '.join(unknown)}")
    whole: list[str] | None = first.get("survey_cells")
    for name, report in reports:
        if report.get("survey_cells") != whole:
            raise ConfigError(
                f"report merge: {name} and {first_name} are shards of different surveys"
            )
    labels = whole or [f"{s}@{p}" for s, p in cells_of(list(CATALOGUE))]
    order = {tuple(label.rsplit("@", 1)): i for i, label in enumerate(labels)}
    merged = dict(first)
    merged.pop("shard", None)
    merged.pop("survey_cells", None)
    merged["missing"] = (
        [] if whole is None else [w for w in whole if tuple(w.rsplit("@", 1)) not in cells]
    )
    merged["elapsed_s"] = round(sum(float(r.get("elapsed_s", 0.0)) for _, r in reports), 3)
    merged["cells"] = sorted(
        cells.values(), key=lambda c: order.get((c["scenario"], c["placement"]), len(order))
    )
    merged["merged_from"] = [n for n, _ in reports]
    return merged


def to_markdown(report: dict[str, Any]) -> str:
    """A (merged) JSON report as the survey's Markdown table."""
    from .grid import to_markdown as grid_markdown

    clients: dict[str, str] = report["clients"]
    rows = [["scenario", "expected", *(f"{c} {v}" for c, v in clients.items())]]
    for cell in report["cells"]:
        expected = cell["expected"]
        label = cell["scenario"]
        if cell.get("label"):
            label = cell["label"]
        verdicts = []
        for client in clients:
            v = cell["verdicts"].get(client, "n/a")
            verdicts.append(v if v == "n/a" or v in expected else f"**{v}** !")
        rows.append([f"`{label}`", ", ".join(expected), *verdicts])
    return grid_markdown(rows) + "\n"
