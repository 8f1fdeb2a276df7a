"""``repro.sh``: POSIX sh that builds the store, starts ``server.py``, replays each recorded run
in exactly its environment and prints the verdict. Its text is ``templates/*.sh``."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..outcome import CRASH_PATTERNS, REJECT_PATTERNS, TRUST_ALERTS
from ..placeholders import PLACEHOLDERS
from .common import CALLER_VARS, SECRET_REF, STORE_BEGIN, STORE_END, Run
from .template import load, render

__all__ = ["TRUST_HOW", "parse_store_commands", "repro_sh", "shell_word"]

#: How the store reaches the client in each trust mode (repro.sh's header and ISSUE.md say it).
TRUST_HOW = {
    "env": "trust variables (SSL_CERT_FILE...) name the store, as recorded for each run",
    "system": "no trust variable: the store is shown at the system paths (/etc/ssl...) in a "
    "private mount namespace (nsplan.py)",
    "flags": "no trust variable: the command's own options (--cacert...) name the store",
}


def parse_store_commands(repro_sh: str) -> str:
    """The store-building commands of a repro.sh: the text between the begin and end markers."""
    lines = repro_sh.splitlines()
    start = lines.index("  " + STORE_BEGIN)
    end = lines.index("  " + STORE_END)
    return "\n".join(lines[start + 1 : end])


def shell_word(word: str, *, client: str | None = None) -> str:
    """``word`` as one sh word, placeholders expanded from repro.sh's variables (and secret
    references ``{$NAME}`` from the caller's)."""
    if client is not None and word == client:
        return '"$CLIENT"'
    parts = re.split(r"(\{[a-z_]+\}|\{\$[A-Za-z_][A-Za-z0-9_]*\})", word)
    out = []
    for part in parts:
        if part in PLACEHOLDERS:
            out.append(f'"${{{PLACEHOLDERS[part]}}}"')
        elif ref := SECRET_REF.fullmatch(part):
            out.append(f'"${{{ref.group(1)}}}"')
        elif part:
            out.append(shlex.quote(part))
    return "".join(out) or "''"


def repro_sh(data: Mapping[str, Any], runs: Sequence[Run], commands: Sequence[str]) -> str:
    """The text of repro.sh for the bundle described by ``data`` (scenario.json's content)."""
    sc = data["scenario"]
    expected = " ".join(data["expected"])
    uses_venv = any("{venv" in w for r in runs for w in [*r.argv, *r.env.values()])
    proxy = data["servers"]["proxy"]
    main_client = runs[-1].argv[0]
    text = render(
        "repro.sh",
        NAME=repr(sc["name"]),
        DESCRIPTION=sc["description"],
        EXPECTED=expected,
        EXPECTED_Q=shlex.quote(expected),
        GENERATOR=data["generator"],
        TRUST=data["trust"],
        TRUST_HOW=TRUST_HOW[data["trust"]],
        LEAK_IS_BAD="1" if data["leak_is_bad"] else "0",
        TIMEOUT=str(int(data["spec"]["timeout"] or 20)),
        # Assigned on its own (not inside ${TLSENV_CLIENT:-...}): a '}' in the path would
        # end that expansion early.
        CLIENT=shlex.quote(main_client),
        SECRETS=_secret_checks(data["secrets"]),
        CLIENT_NAME=shlex.quote(data["client"]["name"]),
        CLIENT_PIP=shlex.quote(data["client"]["pip"] or ""),
        STORE_BEGIN=STORE_BEGIN,
        STORE_END=STORE_END,
        # At column 0: a multi-line command (a heredoc) must keep its lines exactly.
        STORE_COMMANDS="\n".join(commands),
        CRASH=_grep_lines(CRASH_PATTERNS),
        ALERTS="|".join(TRUST_ALERTS),
        REJECT=_grep_lines(REJECT_PATTERNS),
        ORIGIN_HOST=shlex.quote(data["servers"]["origin"]["host"]),
    )
    if proxy is not None:
        text += '# shellcheck disable=SC2034\nPROXY_URL="http://127.0.0.1:$PROXY_PORT"\n'
        if proxy.get("credentials"):
            text += "# shellcheck disable=SC2034\n"
            text += f'PROXY_AUTH_URL="http://{_dq(proxy["credentials"])}@127.0.0.1:$PROXY_PORT"\n'
    for key, value in data.get("store", {}).get("paths", {}).items():
        # The trust paths a command may name, under this bundle's $STORE: BUNDLE=, CERT_DIR=,
        # SCENARIO_SSL_CERT_FILE=, SCENARIO_SSL_CERT_DIR= (those the scenario has).
        text += f"# shellcheck disable=SC2034\n{PLACEHOLDERS[key]}={shell_word(value)}\n"
    if uses_venv:
        text += load("venv.sh")
    text += load("drop.sh")
    caller = " ".join(f'${{{v}:+"{v}=${v}"}}' for v in CALLER_VARS)
    # System paths: nsplan.py shows the store at the real paths in a private mount namespace
    # (a user namespace too as non-root), drops capabilities, then execs the client.
    namespace = (
        ['python3 -I -S "$HERE/nsplan.py" --scenario "$HERE/scenario.json" --store "$STORE"',
         '--stage "$RUN/ns" --']
        if data["system_paths"]
        else []
    )  # fmt: skip
    for i, run in enumerate(runs, 1):
        client_word = main_client if run.argv[0] == main_client else None
        words = [*namespace, *(shell_word(a, client=client_word) for a in run.argv)]
        assigns = [shell_word(f"{k}={v}") for k, v in sorted(run.env.items())]
        note = "an in-process call; Python's ssl stands in" if run.stand_in else "a recorded run"
        if namespace:
            note += ", the store shown at the system paths"
        recorded = f"recorded verdict {run.verdict}" if run.verdict else "not run before export"
        text += render(
            "run.sh",
            N=str(i),
            TOTAL=str(len(runs)),
            NOTE=f"{note} ({recorded})",
            ECHO=shlex.quote(f"tlsenv: run {i}:")
            + (' "$CLIENT" ' if client_word else " ")
            + shlex.quote(" ".join(run.argv[1:] if client_word else run.argv)),
            CALLER=caller,
            ASSIGNS="\n".join(f"    {a} \\" for a in assigns),
            COMMAND=" ".join(words),
            RECORDED=run.verdict or "-",
        )
    return text + "exit $STATUS\n"


def _secret_checks(names: Sequence[str]) -> str:
    if not names:
        return ""
    lines = ["# Secrets the client ran with; their values were not exported: set them to run."]
    lines += [f': "${{{n}:?set {n} to reproduce (its value was not exported)}}"' for n in names]
    return "\n".join(lines) + "\n"


def _grep_lines(patterns: Iterable[str]) -> str:
    return "\n".join(f"    -e {shlex.quote(p)} \\" for p in patterns)


def _dq(text: str) -> str:
    """``text`` inside double quotes."""
    return re.sub(r'([\\"$`])', r"\\\1", text)
