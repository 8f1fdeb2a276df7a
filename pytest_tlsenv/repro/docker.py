"""The bundle's ``Dockerfile``: Debian 12, the client, the same store commands as repro.sh's
(as RUN lines), a non-root user. Its text is ``templates/Dockerfile``."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from .common import (
    DOCKER_BUNDLE,
    DOCKER_STORE,
    KEYS_DIR,
    NS_SCRIPTS,
    SERVER_SCRIPT,
    STORE_BEGIN,
    STORE_END,
)
from .template import render

__all__ = ["dockerfile", "parse_dockerfile_runs"]


def parse_dockerfile_runs(dockerfile: str) -> str:
    """The store-building commands of a Dockerfile (its RUN lines and ``RUN <<'TLSENV_RUN'``
    heredocs between the markers), joined as repro.sh writes them."""
    lines = dockerfile.splitlines()
    start = lines.index(STORE_BEGIN)
    end = lines.index(STORE_END)
    out: list[str] = []
    body = iter(lines[start + 1 : end])
    for line in body:
        if line == f"RUN <<'{_DOCKER_HEREDOC}'":
            block: list[str] = []
            for inner in body:
                if not block and inner == "set -e":
                    continue
                if inner == _DOCKER_HEREDOC:
                    break
                block.append(inner)
            out.append("\n".join(block))
        elif line.startswith("RUN "):
            out.append(line.removeprefix("RUN "))
        else:
            out.append(line)  # a comment line, as in repro.sh
    return "\n".join(out)


_DOCKER_HEREDOC = "TLSENV_RUN"


# Docker allows 127 layers: a bigger store (extra_cas, filler CAs) is built by one RUN heredoc.
_MAX_RUN_LINES = 60


def _docker_store(commands: Sequence[str]) -> list[str]:
    if len(commands) <= _MAX_RUN_LINES:
        return [_docker_run(c) for c in commands]
    return [f"RUN <<'{_DOCKER_HEREDOC}'", "set -e", *commands, _DOCKER_HEREDOC]


def _docker_run(command: str) -> str:
    """``command`` as a Dockerfile instruction: RUN, or a RUN heredoc if it spans lines."""
    if command.startswith("# "):
        return command
    if "\n" in command:
        return f"RUN <<'{_DOCKER_HEREDOC}'\n{command}\n{_DOCKER_HEREDOC}"
    return f"RUN {command}"


def dockerfile(data: Mapping[str, Any], commands: Sequence[str]) -> str:
    """The Dockerfile of the bundle described by ``data`` (scenario.json's content)."""
    client = data["client"]
    apt = ["ca-certificates", "python3", "python3-venv", "util-linux", "coreutils"]
    install: list[str] = []
    runtime_client = client["name"]
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if client["pip"]:
        install = [
            "# The client, pinned as in the report (a venv keeps Debian's python untouched).",
            "RUN python3 -m venv /opt/client && /opt/client/bin/pip install --no-cache-dir "
            + shlex.quote(client["pip"]),
        ]
        path = "/opt/client/bin:" + path
    elif client["apt"]:
        apt.append(client["apt"])
    else:
        install = [
            f"# Install the client {client['name']!r} here: it is neither in apt nor pip maps."
        ]
    if any(re.search(r"(^|[;&|]\s*)openssl ", c, re.MULTILINE) for c in commands):
        apt.append("openssl")
    sc = data["scenario"]
    copied = [SERVER_SCRIPT, "repro.sh", "scenario.json"]
    secrets = "".join(f"-e {n} " for n in data["secrets"])
    run_hint = f"# docker build -t tlsenv-repro . && docker run --rm {secrets}tlsenv-repro"
    if data["system_paths"]:
        copied += list(NS_SCRIPTS)
        # unshare(2) and mount(2) inside a container: Docker's default seccomp and AppArmor
        # profiles refuse them, and mounting needs CAP_SYS_ADMIN.
        run_hint = (
            f"# docker build -t tlsenv-repro . && docker run --rm {secrets}--cap-add SYS_ADMIN "
            "--security-opt seccomp=unconfined --security-opt apparmor=unconfined tlsenv-repro"
        )
    # RUN heredocs (multi-line store commands) need the BuildKit Dockerfile frontend.
    heredocs = len(commands) > _MAX_RUN_LINES or any("\n" in c for c in commands)
    syntax = ["# syntax=docker/dockerfile:1"] if heredocs else []
    # Quoted: a client name is the reporter's, and an unquoted space or quote would change
    # the instruction.
    return render(
        "Dockerfile",
        SYNTAX="".join(f"{line}\n" for line in syntax),
        NAME=repr(sc["name"]),
        GENERATOR=data["generator"],
        RUN_HINT=run_hint,
        APT=" ".join(sorted(set(apt))),
        INSTALL="".join(f"{line}\n" for line in install),
        BUNDLE=DOCKER_BUNDLE,
        KEYS=KEYS_DIR,
        COPIED=" ".join(copied),
        STORE=DOCKER_STORE,
        STORE_BEGIN=STORE_BEGIN,
        STORE_COMMANDS="".join(f"{line}\n" for line in _docker_store(commands)),
        STORE_END=STORE_END,
        CLIENT=_docker_quote(runtime_client),
        PATH=_docker_quote(path),
    )


def _docker_quote(value: str) -> str:
    """``value`` as one double-quoted Dockerfile word: inside, Docker expands ``$`` and
    takes a backslash before ``"``, ``$`` or ``\\`` as an escape. (Line breaks are refused
    earlier: nothing quotes them.)"""
    return '"' + re.sub(r'([\\"$])', r"\\\1", value) + '"'
