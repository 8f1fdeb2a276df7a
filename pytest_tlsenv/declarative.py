"""Declarative clients: the ``tlsenv_client`` marker and ``--tlsenv-client`` items.

A client here is a preset (``curl``, ``uv@0.2.29``) or a command with placeholders
(``mytool fetch {url}``); the plugin runs it in each of a test's scenarios and judges the
verdict against the scenario's expected set, or against an accepted divergence (a client's
known deviation, with the reason, like x509-limbo's per-client allow-lists). An accepted
divergence behaves like a strict xfail: once the client stops diverging, the entry fails, so
the list cannot rot.

Plain data in, plain data out, without pytest: the plugin turns a :class:`ClientSpec` into
items and a :class:`Judgement` into a pass, a failure or an xfail. The catalogue and the
engine are imported only when a client runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .selection import ClientRef, parse_client

if TYPE_CHECKING:
    from .matrix import MatrixPoint
    from .outcome import Outcome, Verdict
    from .tlsenv import TLSEnv

__all__ = [
    "DEFAULT_SCENARIOS",
    "FLAGS_PLACEHOLDERS",
    "Accepted",
    "ClientSpec",
    "Judgement",
    "client_points",
    "judge",
    "load_expect_file",
    "parse_client_option",
    "parse_clients",
    "parse_expect",
    "pyproject_expect",
    "repro_line",
    "run_client",
    "spec_from_marker",
]

#: What a no-file run collects when ``--tlsenv-scenarios`` says nothing.
DEFAULT_SCENARIOS = "store proxy"

#: Placeholders that name the store's trust paths: a command using one passes them itself,
#: so it runs in ``flags`` mode (no trust variable) and is labelled so.
FLAGS_PLACEHOLDERS = ("{store}", "{bundle}", "{cert_dir}", "{ssl_cert_file}", "{ssl_cert_dir}")

_LABEL_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=(\S.*)", re.DOTALL)
_VERDICT_NAMES = ("OK", "REJECTED", "FAILED", "CRASHED", "HUNG", "LEAKED")


@dataclass(frozen=True)
class Accepted:
    """An accepted divergence: the verdicts a client may give in one scenario, and why."""

    verdicts: frozenset[str]
    reason: str


@dataclass(frozen=True)
class ClientSpec:
    """One client to run: a preset (``preset``, maybe pinned at ``version``) or a command
    (``argv``, words with placeholders), under ``label``."""

    label: str
    preset: str | None = None
    argv: tuple[str, ...] = ()
    version: str | None = None
    #: None: the session's (``--tlsenv-trust``), except that a command naming trust paths
    #: itself is ``flags``.
    trust: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None
    #: Accepted divergences by scenario (``name`` or ``name@placement``).
    expect: Mapping[str, Accepted] = field(default_factory=dict)

    def mode(self, default: str) -> str:
        """The trust mode this client runs in."""
        if self.trust is not None:
            return self.trust
        if any(p in word for word in self.argv for p in FLAGS_PLACEHOLDERS):
            return "flags"
        return default

    def accepted(self, scenario: str, placement: str) -> Accepted | None:
        """The accepted divergence for this cell, if any (``name@placement`` first)."""
        return self.expect.get(f"{scenario}@{placement}") or self.expect.get(scenario)


# -- parsing --------------------------------------------------------------------------------


def _known_presets() -> list[str]:
    from .clients import presets

    return sorted(presets())


def _command(words: Sequence[str], what: str) -> tuple[str, ...]:
    """Checked command words: at least one placeholder, every placeholder known."""
    from .placeholders import PLACEHOLDERS, TOKEN, check

    if not words:
        raise ConfigError(f"{what}: an empty command")
    check(words, PLACEHOLDERS)
    if not any(TOKEN.search(w) for w in words):
        raise ConfigError(
            f"{what}: {shlex.join(words)!r} has no placeholder: it would not reach the "
            "scenario's origin; give it {url} (or {index_url}, {host}, {port}...)"
        )
    return tuple(words)


def _installed(spec: ClientSpec, what: str) -> None:
    """A client that is not on this machine is a usage error now, not a verdict later."""
    if spec.preset is not None:
        from .clients import get_preset

        if spec.version is None and get_preset(spec.preset).detect() is None:
            raise ConfigError(f"{what}: client {spec.preset!r} is not installed on this machine")
        return
    program = spec.argv[0]
    if "{" in program:
        return  # {venv}: made by the scenario
    if shutil.which(program) is None:
        raise ConfigError(f"{what}: {program!r} is not installed (not found on PATH)")


def parse_client_option(text: str, *, what: str = "--tlsenv-client") -> ClientSpec:
    """One ``--tlsenv-client`` value: ``curl``, ``uv@0.2.29``, ``CMD`` or ``label=CMD``."""
    text = text.strip()
    label: str | None = None
    if (m := _LABEL_RE.fullmatch(text)) is not None and not text.startswith("{"):
        label, text = m.group(1), m.group(2).strip()
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f"{what} {text!r}: {e}") from None
    where = f"{what} {text!r}"
    if len(words) == 1 and "{" not in words[0]:
        ref: ClientRef = parse_client(words[0], _known_presets())
        spec = ClientSpec(label or ref.name, preset=ref.name, version=ref.version)
    else:
        argv = _command(words, where)
        spec = ClientSpec(label or os.path.basename(argv[0]), argv=argv)
    _installed(spec, where)
    return spec


def parse_clients(values: Iterable[str], *, what: str = "--tlsenv-client") -> list[ClientSpec]:
    """Every value, in order; two clients under one label are a ConfigError."""
    specs: list[ClientSpec] = []
    for value in values:
        if not value.strip():
            continue
        spec = parse_client_option(value, what=what)
        clash = next((s for s in specs if s.label == spec.label), None)
        if clash is not None:
            pinned = f"{spec.preset}@{spec.version}" if spec.version else spec.preset
            raise ConfigError(
                f"{what}: two clients are labelled {spec.label!r}; name one with LABEL=CMD "
                f"(e.g. {spec.label}2={shlex.join(spec.argv) or pinned})"
            )
        specs.append(spec)
    return specs


def _verdicts(value: object, where: str) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not items:
        raise ConfigError(f"{where}: verdicts must be a non-empty list of {_VERDICT_NAMES}")
    out: set[str] = set()
    for v in items:
        name = v.upper() if isinstance(v, str) else v
        if name not in _VERDICT_NAMES:
            raise ConfigError(f"{where}: unknown verdict {v!r}; valid: {', '.join(_VERDICT_NAMES)}")
        out.add(str(name))
    return frozenset(out)


def _scenario_key(key: object, where: str) -> str:
    from .faults import PLACEMENTS
    from .scenarios import CATALOGUE
    from .selection import unknown_name

    if not isinstance(key, str):
        raise ConfigError(f"{where}: a scenario name (str) is expected, got {key!r}")
    name, at, placement = key.partition("@")
    if name not in CATALOGUE:
        raise ConfigError(f"{where}: {unknown_name('scenario', name, CATALOGUE)}")
    if at and placement not in PLACEMENTS:
        raise ConfigError(
            f"{where}: {key!r}: placement {placement!r} is not one of {', '.join(PLACEMENTS)}"
        )
    return key


def parse_expect_entries(table: object, where: str) -> dict[str, Accepted]:
    """``{scenario: {"verdicts": [...], "reason": "..."}}`` (or ``(verdicts, reason)``)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: a table of scenario -> {{verdicts, reason}} is expected")
    out: dict[str, Accepted] = {}
    for key, entry in table.items():
        here = f"{where} {key!r}"
        name = _scenario_key(key, where)
        if isinstance(entry, Mapping):
            unknown = sorted(set(entry) - {"verdicts", "reason"})
            if unknown:
                raise ConfigError(f"{here}: unknown key(s) {', '.join(map(str, unknown))}")
            verdicts, reason = entry.get("verdicts"), entry.get("reason")
        elif isinstance(entry, (list, tuple)) and len(entry) == 2:
            verdicts, reason = entry
        else:
            raise ConfigError(f'{here}: give {{verdicts = [...], reason = "why"}}')
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(
                f"{here}: an accepted divergence needs a reason (why the client may diverge)"
            )
        out[name] = Accepted(_verdicts(verdicts, here), reason.strip())
    return out


def parse_expect(table: object, where: str) -> dict[str, dict[str, Accepted]]:
    """A whole expect table: client label -> scenario -> accepted divergence."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: a table of client -> scenario entries is expected")
    return {
        str(label): parse_expect_entries(entries, f"{where}.{label}")
        for label, entries in table.items()
    }


def load_expect_file(path: Path) -> dict[str, dict[str, Accepted]]:
    """``--tlsenv-expect FILE``: a TOML file of ``[CLIENT]`` tables (a pyproject.toml's
    ``[tool.tlsenv.expect]`` is read too)."""
    import tomllib  # here: most sessions declare nothing, and the plugin's import stays cheap

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"--tlsenv-expect {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"--tlsenv-expect {path}: not TOML: {e}") from None
    nested = data.get("tool", {}).get("tlsenv", {}).get("expect")
    table = nested if nested is not None else data
    return parse_expect(table, f"--tlsenv-expect {path}")


def pyproject_expect(path: Path) -> dict[str, dict[str, Accepted]]:
    """``[tool.tlsenv.expect]`` of ``path`` (a pyproject.toml); {} without one."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # pytest itself reports an unreadable configuration
    table = data.get("tool", {}).get("tlsenv", {}).get("expect")
    if table is None:
        return {}
    return parse_expect(table, f"{path} [tool.tlsenv.expect]")


def spec_from_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> ClientSpec:
    """``tlsenv_client(CMD | preset, *, env=None, trust=None, version=None, timeout=None,
    expect=None)``, checked; a ConfigError names what is wrong."""
    from ._checks import check_timeout
    from .env import TRUST_MODES

    if len(args) == 1 and isinstance(args[0], ClientSpec) and not kwargs:
        return args[0]  # a --tlsenv-client item's own
    if len(args) != 1:
        raise ConfigError(f"tlsenv_client takes one CMD or preset, got {len(args)} arguments")
    known = ("env", "trust", "version", "timeout", "expect")
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ConfigError(f"unknown tlsenv_client keyword(s) {', '.join(unknown)}; valid: {known}")
    what = "tlsenv_client"
    client = args[0]
    if isinstance(client, (list, tuple)) and all(isinstance(w, str) for w in client):
        spec = ClientSpec(
            os.path.basename(client[0]) if client else "", argv=_command(client, what)
        )
    elif isinstance(client, str):
        spec = parse_client_option(client, what=what)
    else:
        raise ConfigError(f"{what}: a CMD (str or list of str) or a preset name, got {client!r}")
    version = kwargs.get("version")
    if version is not None:
        if spec.preset is None or spec.version is not None or not isinstance(version, str):
            raise ConfigError(f"{what}: version= takes a str and pins a preset, got {version!r}")
        spec = replace(spec, version=parse_client(f"{spec.preset}@{version}").version)
    trust = kwargs.get("trust")
    if trust is not None and trust not in TRUST_MODES:
        raise ConfigError(f"{what}: trust must be one of {', '.join(TRUST_MODES)}, got {trust!r}")
    env = kwargs.get("env") or {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ConfigError(f"{what}: env= takes a mapping of str to str, got {env!r}")
    timeout = kwargs.get("timeout")
    expect = kwargs.get("expect")
    return replace(
        spec,
        trust=trust,
        env=tuple(sorted(env.items())),
        timeout=None if timeout is None else check_timeout(timeout, "timeout"),
        expect={} if expect is None else parse_expect_entries(expect, f"{what} expect="),
    )


# -- items ----------------------------------------------------------------------------------


def client_points(names: Sequence[str], trust: str) -> list[MatrixPoint]:
    """One point per cell (store faults in both placements, as the survey has them), in
    catalogue order; ids like ``unreadable-file-shadow-env`` (``-k`` can name them)."""
    from .matrix import MatrixPoint
    from .scenarios import resolve
    from .survey import cells_of

    points = []
    for name, placement in cells_of(names):
        both = sum(1 for n, _ in cells_of([name])) > 1
        ident = f"{name}-{placement}-{trust}" if both else f"{name}-{trust}"
        keywords = {"scenario": name, "placement": placement, "trust": trust}
        points.append(MatrixPoint(ident, name, keywords, resolve(**keywords)))
    return points


def run_client(
    env: TLSEnv, client: ClientSpec, trust: str, timeout: float | None
) -> tuple[Outcome, dict[str, str]]:
    """Run ``client`` once in ``env`` in mode ``trust``: its Outcome, and the variables it got
    on top of the scenario's (for the repro line). NotApplicableError when the scenario
    cannot apply to it (a preset's wiring in that mode)."""
    from .placeholders import env_values, substitute

    timeout = client.timeout if client.timeout is not None else timeout
    values = env_values(env)
    extra = {k: substitute([v], values)[0] for k, v in client.env}
    if client.preset is not None:
        ready = env.client(client.preset, version=client.version, trust=trust)
        ready = replace(ready, env={**ready.env, **extra})
        wired = {k: v for k, v in ready.env.items() if v is not None}
        return ready.run(timeout=timeout), wired
    if "{proxy_url}" in " ".join(client.argv) and env.proxy is None:
        from .errors import NotApplicableError

        raise NotApplicableError(f"{client.label}: its command names {{proxy_url}}, no proxy here")
    argv = substitute(client.argv, values)
    return env.run(argv, env=extra, trust=trust, timeout=timeout), extra


@dataclass(frozen=True)
class Judgement:
    """What becomes of an item: ``passed``, ``failed`` (message) or ``accepted`` (xfail)."""

    status: str
    message: str = ""


def judge(
    outcome: Outcome, expected: frozenset[Verdict], accepted: Accepted | None, repro: str
) -> Judgement:
    """The verdict against the scenario's expected set, or an accepted divergence."""
    verdict = outcome.verdict.value
    wanted = {v.value for v in expected}
    tail = f"\nreproduce without pytest: {repro}" if repro else ""
    if accepted is None:
        if verdict in wanted:
            return Judgement("passed")
        return Judgement("failed", outcome.explain(f"expected {_fmt(wanted)}") + tail)
    if verdict in wanted:
        return Judgement(
            "failed",
            f"accepted divergence no longer diverges: got {verdict}, which the scenario "
            f"expects ({_fmt(wanted)}); remove the entry ({accepted.reason})",
        )
    if verdict in accepted.verdicts:
        return Judgement("accepted", f"accepted divergence: {verdict}: {accepted.reason}")
    return Judgement(
        "failed",
        outcome.explain(f"expected {_fmt(wanted)} or the accepted {_fmt(accepted.verdicts)}")
        + tail,
    )


def _fmt(verdicts: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(verdicts)) + "}"


def _library_repro(scenario: str, client: ClientSpec, trust: str) -> str:
    """A library preset is a call in this process: no command line can replay it. The survey
    makes the same call without pytest; the failure's evidence is that call's."""
    assert client.preset is not None
    words = ["python", "-m", "pytest_tlsenv", "survey", "--clients", client.preset]
    words += ["--scenarios", scenario]
    if trust != "env":
        words += ["--trust", trust]
    pinned = f" pinned at {client.version}" if client.version else ""
    return (
        f"{shlex.join(words)}\n  ({client.preset}{pinned} is a library call made in this "
        "process, so there is no command line to replay; the survey makes the same call "
        "outside pytest, and the exception and store listing above are what this one showed)"
    )


def repro_line(
    outcome: Outcome, scenario: str, placement: str, client: ClientSpec, added: Mapping[str, str]
) -> str:
    """``python -m pytest_tlsenv repro SCENARIO [options] -- CMD``: this run without pytest
    (``--placement shadow`` for a fault in the shadow placement; a preset's own command line,
    its paths and ports as placeholders). A library preset has no command line: the survey
    command that makes the same call instead, saying so. ``added``: the variables the
    client got on top of the scenario's."""
    from .placeholders import Translator
    from .scenarios import CATALOGUE

    env = outcome.env
    if env is None or scenario not in CATALOGUE:
        return ""  # a scenario the marker built from keywords: its bundle reproduces it
    if outcome.argv is None and client.preset is not None:
        return _library_repro(scenario, client, outcome.trust)
    if outcome.argv is None:
        return ""
    words = ["python", "-m", "pytest_tlsenv", "repro", scenario]
    if CATALOGUE[scenario].placement != placement:
        words += ["--placement", placement]
    if outcome.trust != "env":
        words += ["--trust", outcome.trust]
    translate = Translator(env)
    if client.preset is not None:
        if client.version is not None:
            from .clients import get_preset

            installable = get_preset(client.preset).installable
            if installable is not None and installable[1] != "python":
                # The pinned client's path is this machine's cache: the bundle's Dockerfile
                # installs the same version instead.
                words += ["--pip", f"{installable[0]}=={client.version}"]
        argv = [translate(a) for a in outcome.argv]
        for k, v in sorted(added.items()):
            if env.store.env.get(k) != v:  # the scenario's own variables come anyway
                words += ["--env", f"{k}={translate(v)}"]
    else:
        argv = list(client.argv)
        words += [w for k, v in client.env for w in ("--env", f"{k}={v}")]
    return shlex.join([*words, "--", *argv])
