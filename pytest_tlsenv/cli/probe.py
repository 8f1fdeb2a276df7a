"""``python -m pytest_tlsenv probe``: parse, measure, print (the engine is
:mod:`pytest_tlsenv.probe`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import TLSEnvError
from ..probe.engine import Probe
from ..probe.sources import TRUST_VARIABLES

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add the ``probe`` subcommand to ``python -m pytest_tlsenv``."""
    p = sub.add_parser(
        "probe",
        usage="python -m pytest_tlsenv probe [options] -- CMD...",
        help="measure which trust variables and files a client uses: probe [options] -- CMD...",
        description="Give every trust variable (and, with --system-paths, every default trust "
        "location) a canary CA of its own, run CMD against an origin signed by each canary in "
        "turn, and report which sources the client trusts, which it reads without trusting, "
        "and which wins when two are set. In CMD, {url}, {index_url}, {host}, {port} stand for "
        "the canary origin, {venv} for a fresh bare virtualenv's interpreter.",
        epilog="examples: probe -- curl -fsS {url};  probe --env UV_NATIVE_TLS=1 -- uv pip "
        "install --python {venv} --index-url {index_url} tlsenv-probe",
    )
    p.add_argument(
        "--system-paths",
        action="store_true",
        help="also probe the default locations (/etc/ssl/certs...) in a private mount namespace",
    )
    p.add_argument("--json", metavar="PATH", help="write the findings as JSON")
    p.add_argument("--md", metavar="PATH", help="write the findings as Markdown")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a fixed variable for every run (repeatable)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="VAR",
        help=f"probe only these variables (repeatable); known: {', '.join(TRUST_VARIABLES)}",
    )
    p.add_argument(
        "--skip", action="append", default=[], metavar="VAR", help="leave out a variable"
    )
    p.add_argument("--no-pairs", action="store_true", help="skip the precedence runs")
    p.add_argument("--timeout", type=float, default=10.0, help="per-run timeout (s)")
    p.set_defaults(func=_cli_probe, parser=p)


def _cli_probe(args: Any) -> int:
    parser = args.parser
    cmd: list[str] = list(getattr(args, "cmd", None) or [])
    if not cmd:
        parser.error("give the client command after --, e.g.: probe -- curl -fsS {url}")
    env: dict[str, str | None] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env takes NAME=VALUE, got {item!r}")
        env[name] = value
    for name in [*args.only, *args.skip]:
        if name not in TRUST_VARIABLES:
            parser.error(f"unknown trust variable {name!r}; known: {', '.join(TRUST_VARIABLES)}")
    variables = [v for v in (args.only or TRUST_VARIABLES) if v not in args.skip]
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    for out in (args.json, args.md):
        if out is not None and not Path(out).parent.is_dir():
            parser.error(f"cannot write {out}: {Path(out).parent} is not a directory")
    try:
        with Probe(
            cmd,
            env=env,
            variables=variables,
            system_paths=args.system_paths,
            timeout=args.timeout,
            pairs=not args.no_pairs,
        ) as p:
            report = p.measure()
    except TLSEnvError as e:
        parser.error(str(e))
    except FileNotFoundError as e:
        parser.error(f"cannot run {cmd[0]!r}: {e.strerror or e}")
    except OSError as e:
        parser.error(f"cannot run {cmd[0]!r}: {e}")
    print(report.table())
    if args.json:
        Path(args.json).write_text(report.to_json())
        print(f"JSON written to {args.json}")
    if args.md:
        Path(args.md).write_text(report.to_markdown())
        print(f"Markdown written to {args.md}")
    return 0 if report.valid else 1
