"""What ran: the session's recorded runs, translated into placeholders, with every secret
value replaced by a reference to the variable the bundle's user sets."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..outcome import Outcome
from ..placeholders import Translator
from ..redact import REDACTED, Redactor, is_secret_name
from .common import CALLER_VARS, MAX_RUNS, SECRET_REF, Run

if TYPE_CHECKING:
    from .common import BundleEnv

__all__ = ["bundle_redactor", "recorded_runs", "secret_env", "secret_names"]


def _stand_in(env: BundleEnv) -> list[str]:
    # An in-process call cannot be exported; Python's ssl (what most callables use) stands in.
    code = (
        "import ssl, sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(), "
        "timeout=10).read().decode())"
    )
    return ["python3", "-c", code, "{url}"]


def bundle_redactor(env: BundleEnv) -> Redactor:
    """The secrets a bundle must not contain: those of the host's environment and of every
    recorded run's, but not the bundle's own proxy credentials (its server.py needs them)."""
    red = Redactor(os.environ, env.environ, *(o.environ for o in env.outcomes))
    if env.proxy is not None:
        user, password = env.proxy.credentials
        for own in (f"{user}:{password}", password):
            red.sources.pop(own, None)
    return red


def secret_env(environ: Mapping[str, str], red: Redactor) -> dict[str, str]:
    """Recorded variables with every secret value replaced by a reference to the variable
    it came from (``{$API_PASSWORD}``; repro.sh asks its caller for it)."""
    out = {}
    for k, v in environ.items():
        if is_secret_name(k) and v:
            out[k] = "{$" + k + "}" if _SHELL_NAME.fullmatch(k) else REDACTED
        else:
            out[k] = red.references(v)
    return out


_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def recorded_runs(env: BundleEnv, translate: Translator, red: Redactor) -> list[Run]:
    """The last :data:`MAX_RUNS` runs of ``env`` (a Python ``ssl`` stand-in for a call)."""
    recorded: list[Outcome] = list(env.outcomes)[-MAX_RUNS:]
    runs: list[Run] = []
    scenario_env = secret_env({k: translate(v) for k, v in env.environ.items()}, red)
    for out in recorded:
        if out.argv is None:
            argv, run_env, stand_in = _stand_in(env), dict(scenario_env), True
        else:
            argv = [red.references(translate(a)) for a in out.argv]
            run_env = secret_env(
                {
                    k: translate(v)
                    for k, v in out.environ.items()
                    if k != "PATH" and k not in CALLER_VARS and not k.startswith("LC_")
                },
                red,
            )
            stand_in = False
        runs.append(
            Run(
                argv,
                run_env,
                out.verdict.value,
                red.text(translate(out.reason)),
                out.returncode,
                red.text(translate(out.stderr)),
                stand_in,
            )
        )
    if not runs:
        runs.append(Run(_stand_in(env), scenario_env, "", "not run before export", None, "", True))
    return runs


def secret_names(runs: Sequence[Run]) -> list[str]:
    """The variables whose values the runs refer to but the bundle does not contain."""
    words = [w for r in runs for w in [*r.argv, *r.env.values()]]
    return sorted({m.group(1) for w in words for m in SECRET_REF.finditer(w)})
