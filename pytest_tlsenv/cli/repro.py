"""``python -m pytest_tlsenv repro`` and ``serve``: parse, then build, run and export (the
engine is :mod:`pytest_tlsenv.repro`)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import TLSEnvError
from ..pki import PKI
from ..placeholders import PLACEHOLDERS, check, env_values, substitute

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add the ``repro`` and ``serve`` subcommands to ``python -m pytest_tlsenv``."""
    p = sub.add_parser(
        "repro",
        usage="python -m pytest_tlsenv repro SCENARIO [options] -- CMD...",
        help="write a reproduction bundle: repro SCENARIO [options] -- CMD...",
        description="Build SCENARIO, run CMD in it once (to record the verdict and stderr), "
        "and write a bundle that reproduces it without pytest. In CMD, {url}, {index_url}, "
        "{proxy_url}, {port}, {store} and {venv} stand for the scenario's addresses, its "
        "store's root and a fresh bare virtualenv's interpreter.",
        epilog="example: python -m pytest_tlsenv repro unreadable-file --env UV_NATIVE_TLS=1 "
        "-- uv pip install --python {venv} --index-url {index_url} tlsenv-probe",
    )
    p.add_argument("scenario", help="a catalogue scenario (see: python -m pytest_tlsenv scenarios)")
    p.add_argument("--layout", help="override the scenario's trust store layout")
    p.add_argument("--placement", help="decoy or shadow")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        dest="faults",
        metavar="FAULT",
        help="add a fault to the scenario's (repeatable)",
    )
    p.add_argument("--server", help="a server-group variant (expired, wrong-host...)")
    p.add_argument(
        "--system-paths",
        action="store_true",
        help="show the store at the real system paths (/etc/ssl...) in a private mount namespace",
    )
    p.add_argument(
        "--trust",
        choices=("env", "system", "flags"),
        help="how the store reaches CMD (default: the scenario's, else env); the bundle "
        "reproduces in the same mode",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for CMD on top of the scenario's (repeatable)",
    )
    p.add_argument("--out", metavar="DIR", help="bundle directory (default ./tlsenv-repro-NAME)")
    p.add_argument(
        "--pip", metavar="REQUIREMENT", help="how the Dockerfile installs CMD's client (uv==0.2.29)"
    )
    p.add_argument("--timeout", type=float, default=20.0, help="client timeout in seconds")
    p.set_defaults(func=_cli_repro, parser=p)
    s = sub.add_parser(
        "serve",
        help="start a bundle's origin (and proxy) here",
        description="Serve a reproduction bundle's origin and proxy (what its server.py does) "
        "until interrupted.",
    )
    s.add_argument("--bundle", required=True, metavar="DIR")
    s.add_argument("--state", metavar="DIR", help="where ports.sh and the logs go (default: tmp)")
    s.add_argument("--max-seconds", type=float, default=3600.0)
    s.set_defaults(func=_cli_serve, parser=s)


def _cli_repro(args: Any) -> int:
    from ..scenarios import resolve
    from ..tlsenv import Settings, TLSEnv

    parser = args.parser
    cmd: list[str] = list(getattr(args, "cmd", None) or [])
    if not cmd:
        parser.error("give the client command after --, e.g.: repro good -- curl -fsS {url}")
    env_overrides: dict[str, str | None] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env takes NAME=VALUE, got {item!r}")
        env_overrides[name] = value
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    try:  # a typo in a placeholder, before the scenario is built
        check([*cmd, *(v for v in env_overrides.values() if v)], PLACEHOLDERS)
    except TLSEnvError as e:
        parser.error(str(e))
    keywords: dict[str, Any] = {}
    for key in ("layout", "placement", "server", "trust"):
        if getattr(args, key) is not None:
            keywords[key] = getattr(args, key)
    if args.faults:
        keywords["faults"] = args.faults
    if args.system_paths:
        keywords["system_paths"] = True
    try:
        spec = resolve(args.scenario, **keywords)
    except TLSEnvError as e:
        parser.error(str(e))
    out = Path(args.out or f"tlsenv-repro-{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec.scenario.name)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(f"{out} exists and is not an empty directory: choose another --out")
    tmp = Path(tempfile.mkdtemp(prefix="tlsenv-repro-cli-"))
    try:
        pki = PKI(tmp / "pki")
        try:
            env = TLSEnv.build(
                spec, pki=pki, root=tmp / "scenario", settings=Settings(timeout=args.timeout)
            )
        except TLSEnvError as e:
            parser.error(str(e))
        with env:
            if "{proxy_url}" in " ".join(cmd) and env.proxy is None:
                parser.error(
                    f"{{proxy_url}} in CMD, but scenario {spec.scenario.name!r} has no proxy"
                )
            values = env_values(env)
            try:
                argv = substitute(cmd, values)
                environ = {
                    k: substitute([v], values)[0] if v else v for k, v in env_overrides.items()
                }
            except TLSEnvError as e:
                parser.error(str(e))
            try:
                outcome = env.run(argv, env=environ)
            except OSError as e:
                parser.error(f"cannot run {cmd[0]!r}: {e}")
            reason = outcome.redactor().text(outcome.reason)
            print(f"{spec.scenario.name}: {outcome.verdict} - {reason}")
            print(f"expected: {', '.join(sorted(v.value for v in env.scenario.expected))}")
            bundle = env.repro(out, pip_requirement=args.pip)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"bundle: {bundle}  (run: sh {bundle / 'repro.sh'}; paste: {bundle / 'ISSUE.md'})")
    return 0


def _cli_serve(args: Any) -> int:
    from .. import _bundle_server

    bundle = Path(args.bundle)
    if not (bundle / "scenario.json").is_file():
        args.parser.error(f"{bundle} is not a reproduction bundle (no scenario.json)")
    state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="tlsenv-serve-"))
    print(f"logs and ports.sh in {state}; Ctrl-C stops", flush=True)
    try:
        return _bundle_server.main(
            ["--bundle", str(bundle), "--state", str(state), "--max-seconds", str(args.max_seconds)]
        )
    finally:
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)
