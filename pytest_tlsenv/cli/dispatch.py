"""The entry point: one parser, one subcommand per verb module of :mod:`pytest_tlsenv.cli`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import bisect, cache, probe, report, repro, scenarios, survey

__all__ = ["main"]


# Options that take a selection (pytest_tlsenv.selection): a list whose words may start with
# "-" (``--scenarios store -fifo``), which argparse would take for options.
LIST_OPTIONS = ("--scenarios", "--clients")


def _lists_as_one_word(words: list[str]) -> list[str]:
    """``--scenarios store -fifo --timeout 3`` -> ``--scenarios=store,-fifo --timeout 3``."""
    out: list[str] = []
    collecting = False
    for word in words:
        if collecting and not word.startswith("--") and word != "-h":
            # One "--option=a,b" word: argparse takes what follows "=" as the value, even "-b".
            out[-1] += f"={word}" if out[-1] in LIST_OPTIONS else f",{word}"
            continue
        collecting = word in LIST_OPTIONS
        out.append(word)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m pytest_tlsenv`` with ``argv`` (default: ``sys.argv[1:]``)."""
    # The console script ``tlsenv`` and ``python -m pytest_tlsenv`` are one command; usage
    # lines name the one the user typed.
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    prog = "tlsenv" if script == "tlsenv" else "python -m pytest_tlsenv"
    parser = argparse.ArgumentParser(prog=prog, description="TLS environment scenarios and survey")
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
    args = parser.parse_args(_lists_as_one_word(words))
    args.cmd = cmd
    result: int = args.func(args)
    return result
