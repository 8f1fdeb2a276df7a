"""``python -m pytest_tlsenv scenarios``: the catalogue, one line per scenario."""

from __future__ import annotations

import argparse
from typing import Any

from ..scenarios import CATALOGUE

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add the ``scenarios`` subcommand to ``python -m pytest_tlsenv``."""
    p = sub.add_parser("scenarios", help="list the scenario catalogue")
    p.set_defaults(func=_scenarios)


def _scenarios(_args: argparse.Namespace) -> int:
    width = max(len(n) for n in CATALOGUE)
    for name, sc in CATALOGUE.items():
        print(f"{name.ljust(width)}  [{','.join(sc.groups)}] {sc.description}")
    return 0
