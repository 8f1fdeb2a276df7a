"""``python -m pytest_tlsenv report merge``: the shards' JSON survey reports as one grid
(the engine is :mod:`pytest_tlsenv.shards`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add the ``report`` subcommand (``report merge``) to ``python -m pytest_tlsenv``."""
    p = sub.add_parser("report", help="survey reports: merge the shards' JSON reports")
    verbs = p.add_subparsers(dest="report_command", required=True)
    m = verbs.add_parser(
        "merge",
        help="merge `survey --shard K/N --report X.json` reports into one grid",
        description="Combine the JSON reports of a survey's shards (same clients, same trust "
        "mode, no cell twice) into one report, in the unsharded survey's order.",
    )
    m.add_argument("reports", nargs="+", metavar="REPORT.json")
    m.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="the merged report: .json, .md or .html (one self-contained page)",
    )
    m.set_defaults(func=_merge, parser=m)


def _merge(args: argparse.Namespace) -> int:
    from ..shards import merge_reports, to_markdown

    parser = args.parser
    out = Path(args.output)
    if out.suffix not in (".json", ".md", ".html"):
        parser.error(f"-o {out}: the merged report is .json, .md or .html")
    loaded: list[tuple[str, dict[str, Any]]] = []
    for name in args.reports:
        try:
            data = json.loads(Path(name).read_text())
        except OSError as e:
            parser.error(f"{name}: {e.strerror}")
        except ValueError as e:
            parser.error(f"{name}: not JSON ({e})")
        if not isinstance(data, dict):
            parser.error(f"{name}: not a survey JSON report")
        loaded.append((name, data))
    try:
        merged = merge_reports(loaded)
    except ConfigError as e:
        parser.error(str(e))
    if out.suffix == ".json":
        out.write_text(json.dumps(merged, indent=2) + "\n")
    elif out.suffix == ".html":
        from ..htmlreport import write_survey_report_html

        write_survey_report_html(merged, out)
    else:
        out.write_text(to_markdown(merged))
    print(f"{len(merged['cells'])} cells from {len(loaded)} reports written to {out}")
    if merged["missing"]:
        print(
            f"report merge: warning: {len(merged['missing'])} cell(s) of the survey in no "
            f"report (a shard missing?): {', '.join(merged['missing'][:5])}",
            file=sys.stderr,
        )
    return 0
