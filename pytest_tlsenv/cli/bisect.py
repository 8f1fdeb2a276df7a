"""``python -m pytest_tlsenv bisect``: parse, run :func:`pytest_tlsenv.bisection.bisect`, print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ClientUnavailableError, ConfigError

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add the ``bisect`` subcommand to ``python -m pytest_tlsenv``."""
    p = sub.add_parser(
        "bisect",
        usage="python -m pytest_tlsenv bisect PACKAGE --good V1 --bad V2 --scenario NAME "
        "[options] -- CMD...",
        help="find the first release of a client whose verdict changed in a scenario",
        description="List PACKAGE's releases between V1 and V2 on the package index, check "
        "that V1 and V2 give different verdicts in the scenario, then binary-search the "
        "releases between with pinned environments (wheels only, from that index only; "
        "pre-releases and yanked releases left out unless asked). CMD runs each release: its "
        "program (the package's, or python) comes first on PATH from the release's "
        "environment; {url}, {index_url}, {venv}, {store}... stand for the scenario's values.",
        epilog="example: python -m pytest_tlsenv bisect uv --good 0.2.25 --bad 0.2.35 "
        "--scenario unreadable-file --env UV_NATIVE_TLS=1 -- uv pip install --python {venv} "
        "--index-url {index_url} tlsenv-probe",
    )
    p.add_argument("package", help="the package on the index (uv, pip, requests...)")
    p.add_argument("--good", required=True, metavar="V1", help="a release that behaves")
    p.add_argument("--bad", required=True, metavar="V2", help="a later release that does not")
    p.add_argument("--scenario", required=True, help="a catalogue scenario (see `scenarios`)")
    p.add_argument(
        "--trust", choices=("env", "system", "flags"), default="env", help="trust mode (env)"
    )
    p.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="a variable for CMD (repeatable)"
    )
    p.add_argument("--index-url", metavar="URL", help="the package index (default: PyPI)")
    p.add_argument(
        "--stderr",
        metavar="REGEX",
        help="a new match of REGEX in stderr also counts as a change (wording regressions)",
    )
    p.add_argument("--pre", action="store_true", help="include pre-releases")
    p.add_argument("--yanked", action="store_true", help="include yanked releases")
    p.add_argument("--repro-dir", metavar="DIR", help="write the first bad release's bundle")
    p.add_argument("--timeout", type=float, default=60.0, help="per-run timeout (s)")
    p.add_argument("--jobs", type=int, help="parallel installs (default: the cores, at most 4)")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    p.set_defaults(func=_bisect, parser=p)


def _bisect(args: argparse.Namespace) -> int:
    from ..bisection import bisect

    parser = args.parser
    environ: dict[str, str] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env takes K=V, got {item!r}")
        environ[name] = value
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        result = bisect(
            args.package,
            args.good,
            args.bad,
            args.scenario,
            args.cmd,
            trust=args.trust,
            env=environ,
            index_url=args.index_url,
            stderr=args.stderr,
            prereleases=args.pre,
            yanked=args.yanked,
            repro_dir=args.repro_dir,
            timeout=args.timeout,
            jobs=args.jobs,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (ConfigError, ClientUnavailableError) as e:
        # One line: what was wrong, naming the input (the index's own words go no further).
        parser.error(str(e).strip().splitlines()[0])
    print(result.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0
