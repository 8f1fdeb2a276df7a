"""The entry point: one parser, one subcommand per verb module of :mod:`pytest_tlsenv.cli`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import bisect, cache, probe, report, repro, scenarios, survey

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m pytest_tlsenv`` with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_tlsenv", description="TLS environment scenarios and survey"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    survey.add_commands(sub)
    scenarios.add_commands(sub)
    repro.add_commands(sub)  # repro and serve
    probe.add_commands(sub)
    bisect.add_commands(sub)
    cache.add_commands(sub)
    report.add_commands(sub)  # report merge
    # `repro SCENARIO [options] -- CMD...` and `probe [options] -- CMD...` take the client
    # command after the first `--`, which argparse cannot split off by itself.
    words = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, cmd = words[:cut], words[cut + 1 :]
    args = parser.parse_args(words)
    args.cmd = cmd
    result: int = args.func(args)
    return result
