"""The bundle's ``ISSUE.md``: ready to paste, with no path of this machine and no secret in it.
Its text is ``templates/ISSUE.md``."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..outcome import Verdict
from ..placeholders import Translator
from ..redact import Redactor
from .common import Run
from .script import TRUST_HOW
from .template import render

if TYPE_CHECKING:
    from .common import BundleEnv

__all__ = ["issue_md", "scrubber", "title"]


_LOCAL_PATH = re.compile(
    r"(?:/root|/home/[^/\s'\"]+|/tmp/pytest-of-[^/\s'\"]+)(?:/[^\s'\"`)<>,;]*)?"
)


def scrubber(env: BundleEnv, translate: Translator, red: Redactor) -> Callable[[str], str]:
    """A function removing every path of this machine and every secret from a text (for
    ISSUE.md)."""
    roots = {str(Path.home()), os.path.expanduser("~"), str(env.root.parent)}
    roots = {r for r in roots if len(Path(r).parts) > 2}

    def scrub(text: str) -> str:
        text = red.text(translate(text))
        for r in sorted(roots, key=len, reverse=True):
            text = text.replace(r, "<local path>")
        return _LOCAL_PATH.sub("<local path>", text)

    return scrub


def issue_md(data: Mapping[str, Any], runs: Sequence[Run], scrub: Callable[[str], str]) -> str:
    """ISSUE.md for the bundle described by ``data``, passed through ``scrub``."""
    sc = data["scenario"]
    client = data["client"]
    host = data["host"]
    run = runs[-1]
    spec = data["spec"]
    name = client["name"]
    who = client["version"] or name
    system_paths = (
        "\n- the client saw the store at the real system paths (/etc/ssl...) through a private "
        "mount namespace; `repro.sh` does the same (`nsplan.py`, Python's standard library; "
        "needs root or unprivileged user namespaces)"
        if data["system_paths"]
        else ""
    )
    actual = run.verdict or "(not run)"
    expected = ", ".join(data["expected"])
    shown = [name if i == 0 and not run.stand_in else w for i, w in enumerate(run.argv)]
    command = " ".join(shlex.quote(w) for w in shown)
    env_lines = "\n".join(f"{k}={v}" for k, v in sorted(run.env.items()))
    stderr = "\n".join(run.stderr.rstrip().splitlines()[-30:]) or "(empty)"
    listing = "\n".join(data["store"]["listing"])
    source = f" Reported first in {sc['source']}." if sc.get("source") else ""
    faults = (
        "\n".join(
            f"- `{f['name']}` ({f['placement']}): `{', '.join(f['paths'])}`"
            for f in data["applied"]
        )
        or "- nothing in the store (see the scenario above)"
    )
    secrets = (
        "\n\n   The client ran with secrets, which the bundle does not contain: set "
        + ", ".join(f"`{n}`" for n in data["secrets"])
        + " in the environment of `repro.sh` (it stops and says so otherwise; `{$NAME}` "
        "above marks where each goes)."
        if data["secrets"]
        else ""
    )
    install = (
        f"python3's pip at hand (it installs `{client['pip']}` into its work dir)"
        if client["pip"]
        else f"`{name}` on PATH"
    )
    text = render(
        "ISSUE.md",
        TITLE=title(" ".join(who.split()[:2]), actual, data["expected"], sc["name"]),
        ACTUAL=actual,
        EXPECTED=expected,
        DESCRIPTION=_sentence(sc["description"]),
        WHY_SENTENCE=_sentence(sc["why"]),
        SOURCE=source,
        NAME=sc["name"],
        WHO=who,
        OS=host["os"],
        KERNEL=host["kernel"],
        OPENSSL=host["openssl"],
        PYTHON=host["python"],
        USER=host["user"],
        SYSTEM_PATHS=system_paths,
        TRUST=data["trust"],
        TRUST_HOW=TRUST_HOW[data["trust"]],
        LAYOUT=spec["layout"],
        PLACEMENT=spec["placement"],
        FAULTS=faults,
        LISTING=listing,
        INSTALL=install,
        CLIENT=name,
        COMMAND=command,
        ENV_LINES=_indent(env_lines, 3),
        SECRETS=secrets,
        WHY=sc["why"],
        REASON=run.reason,
        STDERR=stderr,
    )
    return scrub(text)


def title(client: str, actual: str, expected: Sequence[str], scenario: str) -> str:
    """ISSUE.md's title: a verdict outside the expected set is the bug being reported; one
    inside it confirms the client behaves as a robust client may (never the other way round).
    """
    wanted = ", ".join(expected)
    if actual not in {v.value for v in Verdict}:
        return f"{client}: not run yet in scenario {scenario}, where {wanted} is expected"
    if actual in expected:
        return f"{client}: {actual} in scenario {scenario}, as expected ({wanted}): a confirmation"
    return f"{client}: {actual} in a TLS trust environment where {wanted} is expected"


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())
