"""Results per test and scenario: the verdict grid, JSON/Markdown reports and baselines.

Works without pytest: :func:`results_for` turns the TLSEnvs a test used into plain,
JSON-ready dicts (one per test and scenario), which is also what travels from pytest-xdist
workers to the controller; :func:`grid`, :func:`to_json`, :func:`to_markdown` render a list
of them; :class:`Baseline` stores ``{test nodeid: {scenario: verdict name}}`` and diffs
against it.

Every result names its trust mode (``env``, ``system`` or ``flags``: how the store reached
the client), and so does every rendering: a verdict describes a client in one mode only, so a
baseline recorded in one mode is never compared with results of another.

One result per (test, scenario): when a test ran several clients in the same scenario, the
*last* outcome gives the verdict (cell, baseline), and ``outcomes`` lists all of them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from .errors import ConfigError
from .grid import Cell as Cell
from .grid import blocks, wrap_words
from .grid import to_markdown as grid_markdown
from .redact import redact, redact_environ
from .versions import version_of

if TYPE_CHECKING:
    from .outcome import Outcome
    from .tlsenv import TLSEnv

__all__ = [
    "REPORT_FORMAT",
    "SHORT_VERDICTS",
    "Baseline",
    "BaselineError",
    "Change",
    "GridView",
    "Result",
    "client_of",
    "client_version",
    "grid",
    "grid_view",
    "redact",
    "redact_environ",
    "results_for",
    "session_meta",
    "to_json",
    "to_markdown",
    "trust_of",
    "trust_text",
]

Result = dict[str, Any]
REPORT_FORMAT = "pytest-tlsenv report 1"
BASELINE_FORMAT = "pytest-tlsenv baseline 1"
IN_PROCESS = "python (in-process)"
#: Lines of a client's stderr a result keeps (its tail).
STDERR_LINES = 40
#: The trust mode of results and baselines that name none (made before modes were recorded).
DEFAULT_TRUST = "env"


class BaselineError(ConfigError):
    """A baseline file that cannot be read or is not a pytest-tlsenv baseline, or one
    recorded in another trust mode than the results compared with it."""


# -- client versions --------------------------------------------------------------------------

_PYTHON = re.compile(r"python[0-9.]*$")
_VERSION_HEAD = re.compile(r"^.*?\bv?\d+(?:\.\d+)+[\w.+-]*")


# ``python -m MODULE`` runs that module's program: ask ``python -m MODULE --version``.
_MODULE_VERSION_ARGS: dict[str, tuple[str, ...]] = {"pip": ("--version",)}
_LIBRARY_VERSION = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"


def _head(name: str, line: str) -> str:
    # "curl 7.88.1 (x86_64...) libcurl/..." -> "curl 7.88.1"; "v20.19.2" -> "node v20.19.2".
    m = _VERSION_HEAD.match(line)
    head = m.group(0) if m else line
    return head if name.lower() in head.lower() or _PYTHON.match(name) else f"{name} {head}"


def client_version(executable: str) -> str | None:
    """``curl 7.88.1``, ``node v20.19.2``: the head of what a known client (curl, uv, pip,
    node, python, ...) answers when asked its version, or None. Unknown programs are never
    run; the query is :func:`pytest_tlsenv.versions.version_of`'s (asked once per executable
    file, no trust variable, bounded time)."""
    line = version_of(executable)
    return _head(os.path.basename(executable), line) if line is not None else None


def _module_version(python: str, module: str) -> str | None:
    """``python -m pip --version``: the pip *that interpreter* imports."""
    line = version_of(python, "-m", module, *_MODULE_VERSION_ARGS[module])
    return _head(module, line) if line is not None else None


def _library_version(python: str, library: str) -> str | None:
    """The version of ``library`` that interpreter imports (a pinned library preset's)."""
    line = version_of(python, "-I", "-c", _LIBRARY_VERSION, library)
    return f"{library} {line}" if line is not None else None


def client_of(argv: Sequence[str]) -> tuple[str, str | None]:
    """(client, version) of the program ``argv`` runs: ``python -m pip ...`` is pip (the
    version that interpreter imports), a pinned library preset's ``python -c`` is that
    library; anything else is its executable, as :func:`client_version` sees it."""
    from .clients import library_of

    executable = str(argv[0])
    name = os.path.basename(executable)
    if _PYTHON.match(name) and len(argv) >= 3:
        module = str(argv[2]) if argv[1] == "-m" else None
        if module in _MODULE_VERSION_ARGS:
            assert module is not None
            return module, _module_version(executable, module)
        library = library_of([str(a) for a in argv])
        if library is not None:
            return library, _library_version(executable, library)
    return name, client_version(executable)


def _in_process_version() -> str:
    return f"Python {platform.python_version()}"


def user_mode(env: TLSEnv) -> str:
    """How the clients of ``env`` ran: switched user, root without DAC caps, or non-root."""
    if env.user is not None:
        return f"switched user {env.user}"
    if os.geteuid() == 0:
        return "root without any capability"
    return f"non-root (uid {os.geteuid()})"


# -- results ----------------------------------------------------------------------------------


def _outcome_record(outcome: Outcome) -> dict[str, Any]:
    red = outcome.redactor()
    if outcome.argv is not None and len(outcome.argv) > 0:
        argv: list[str] | None = [red.text(str(a)) for a in outcome.argv]
        client, version = client_of(outcome.argv)
    else:
        argv, client, version = None, IN_PROCESS, _in_process_version()
    return {
        "client": client,
        "argv": argv,
        "version": version,
        "verdict": str(outcome.verdict.value),
        "trust": outcome.trust,
        "reason": red.text(outcome.reason),
        # The tail, where clients say why they failed (the HTML report shows it per cell).
        "stderr": red.text("\n".join(outcome.stderr.rstrip().split("\n")[-STDERR_LINES:])),
        "duration": round(outcome.duration, 6),
        "returncode": outcome.returncode,
        "reached_origin": outcome.reached_origin,
    }


def results_for(nodeid: str, test: str, envs: Iterable[TLSEnv]) -> list[Result]:
    """One result per scenario the test used (in first-use order), JSON-ready.

    ``test`` is the grid's row key (the nodeid without the matrix id). A TLSEnv with no
    outcome still yields a result, with ``verdict`` None (drawn ``-``). ``trust`` is the
    last outcome's trust mode (the TLSEnv's when it has none), like the verdict.
    """
    by_scenario: dict[str, Result] = {}
    for env in envs:
        name = env.scenario.name
        result = by_scenario.get(name)
        if result is None:
            result = by_scenario[name] = {
                "nodeid": nodeid,
                "test": test,
                "scenario": name,
                "description": env.scenario.description,
                "expected": sorted(v.value for v in env.scenario.expected),
                "user_mode": user_mode(env),
                "trust": env.trust,
                "verdict": None,
                "outcomes": [],
            }
        records = [_outcome_record(o) for o in env.outcomes]
        result["outcomes"].extend(records)
        if env.outcomes:
            last, record = env.outcomes[-1], records[-1]
            result.update(
                {
                    k: record[k]
                    for k in ("verdict", "trust", "reason", "client", "argv", "version", "stderr")
                },
                duration=round(sum(r["duration"] for r in result["outcomes"]), 6),
                environment=last.redacted_environ(),
                store=env.store.listing().splitlines(),
            )
        result["mismatch"] = (
            result["verdict"] is not None and result["verdict"] not in result["expected"]
        )
    return list(by_scenario.values())


def _scenario_order(name: str) -> tuple[int, str]:
    from .scenarios import CATALOGUE

    base = re.split(r"[+@\[ ]", name, maxsplit=1)[0]
    order = list(CATALOGUE)
    return (order.index(base) if base in order else len(order), name)


def sorted_results(results: Iterable[Result]) -> list[Result]:
    """Deterministic order (xdist delivers in completion order): by test, then catalogue."""
    return sorted(results, key=lambda r: (r["nodeid"], _scenario_order(r["scenario"])))


# -- baselines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A verdict that differs from the baseline."""

    nodeid: str
    scenario: str
    old: str
    new: str
    path: str

    def __str__(self) -> str:
        return f"{self.scenario}: {self.old} -> {self.new} (baseline {self.path})"


def trust_of(result: Mapping[str, Any]) -> str:
    """The trust mode of a result (:data:`DEFAULT_TRUST` for one recorded before modes)."""
    return str(result.get("trust") or DEFAULT_TRUST)


@dataclass
class Baseline:
    """``{test nodeid: {scenario: verdict name}}`` and the trust mode of each, stored as JSON::

    {"format": "pytest-tlsenv baseline 1",
     "trust": "env",
     "verdicts": {"tests/test_x.py::test_uv[unreadable-file]": {"unreadable-file": "OK"}}}

    ``"trust"`` is the mode of every entry but those listed in ``"trust_by_result"``
    (``{nodeid: {scenario: mode}}``, written only when a run mixed modes, as a matrix with a
    ``trust`` axis does). A file without ``"trust"`` was recorded in ``env`` mode, the only
    one there was. :meth:`changes` refuses results of another mode than the recorded one.
    """

    path: Path
    verdicts: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The entries' trust modes, for those not in :data:`DEFAULT_TRUST` mode.
    modes: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, missing_ok: bool = False) -> Baseline:
        """Read ``path``; a missing file is an empty baseline only when ``missing_ok``."""
        from .outcome import Verdict
        from .scenarios import TRUST_MODES

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            if missing_ok:
                return cls(p)
            raise BaselineError(
                f"baseline {p} does not exist; create it with --tlsenv-update-baseline"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise BaselineError(f"cannot read baseline {p}: {e}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BaselineError(f"baseline {p} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
            raise BaselineError(
                f"baseline {p} is not a pytest-tlsenv baseline (expected an object with "
                f'"format": "{BASELINE_FORMAT}" and "verdicts")'
            )
        verdicts = data.get("verdicts")
        names = {v.value for v in Verdict}
        if not _nested(verdicts, names):
            raise BaselineError(
                f'baseline {p}: "verdicts" must map test ids to {{scenario: verdict}} with '
                f"verdicts among {', '.join(sorted(names))}"
            )
        default = data.get("trust", DEFAULT_TRUST)
        if default not in TRUST_MODES:
            raise BaselineError(
                f'baseline {p}: "trust" must be one of {", ".join(TRUST_MODES)}, got {default!r}'
            )
        per_result = data.get("trust_by_result", {})
        if not _nested(per_result, set(TRUST_MODES)):
            raise BaselineError(
                f'baseline {p}: "trust_by_result" must map test ids to {{scenario: mode}} with '
                f"modes among {', '.join(TRUST_MODES)}"
            )
        baseline = cls(p, {str(k): dict(v) for k, v in verdicts.items()})
        for nodeid, per in baseline.verdicts.items():
            for scenario in per:
                mode = str(per_result.get(nodeid, {}).get(scenario, default))
                if mode != DEFAULT_TRUST:
                    baseline.modes.setdefault(nodeid, {})[scenario] = mode
        return baseline

    def get(self, nodeid: str, scenario: str) -> str | None:
        return self.verdicts.get(nodeid, {}).get(scenario)

    def mode(self, nodeid: str, scenario: str) -> str:
        """The trust mode the entry (``nodeid``, ``scenario``) was recorded in."""
        return self.modes.get(nodeid, {}).get(scenario, DEFAULT_TRUST)

    def changes(self, results: Iterable[Result]) -> list[Change]:
        """Results whose verdict differs from a recorded one (new entries are not changes).

        A result in another trust mode than its recorded entry raises BaselineError naming
        both modes: the two verdicts describe different environments.
        """
        out = []
        for r in results:
            old = self.get(r["nodeid"], r["scenario"])
            if old is None or r["verdict"] is None:
                continue
            recorded, now = self.mode(r["nodeid"], r["scenario"]), trust_of(r)
            if recorded != now:
                raise BaselineError(
                    f"baseline {self.path}: {r['nodeid']} in {r['scenario']} was recorded in "
                    f"trust mode {recorded!r}, this run used trust mode {now!r}; verdicts of "
                    f"different modes are not comparable: run with trust {recorded!r} "
                    f"(--tlsenv-trust {recorded} or the marker's trust=), or record a baseline "
                    f"of trust {now!r} (--tlsenv-update-baseline)"
                )
            if r["verdict"] != old:
                out.append(Change(r["nodeid"], r["scenario"], old, r["verdict"], str(self.path)))
        return out

    def update(self, results: Iterable[Result]) -> int:
        """Replace the entries of the tests in ``results`` (others are kept), modes included;
        return how many (test, scenario) verdicts changed (verdict or mode) or were added."""
        fresh: dict[str, dict[str, tuple[str, str]]] = {}
        for r in results:
            if r["verdict"] is not None:
                fresh.setdefault(r["nodeid"], {})[r["scenario"]] = (r["verdict"], trust_of(r))
        changed = sum(
            1
            for nodeid, per in fresh.items()
            for scenario, (verdict, mode) in per.items()
            if (self.get(nodeid, scenario), self.mode(nodeid, scenario)) != (verdict, mode)
        )
        for nodeid, per in fresh.items():
            self.verdicts[nodeid] = {s: v for s, (v, _) in per.items()}
            modes = {s: m for s, (_, m) in per.items() if m != DEFAULT_TRUST}
            if modes:
                self.modes[nodeid] = modes
            else:
                self.modes.pop(nodeid, None)
        return changed

    def dump(self) -> None:
        entries = [(n, s) for n, per in self.verdicts.items() for s in per]
        counts: dict[str, int] = {}
        for nodeid, scenario in entries:
            mode = self.mode(nodeid, scenario)
            counts[mode] = counts.get(mode, 0) + 1
        # The file's mode is its most common one (env on a tie): one line says it all unless
        # the run mixed modes.
        default = max(counts, key=lambda m: (counts[m], m == DEFAULT_TRUST), default=DEFAULT_TRUST)
        per_result: dict[str, dict[str, str]] = {}
        for nodeid, scenario in sorted(entries):
            mode = self.mode(nodeid, scenario)
            if mode != default:
                per_result.setdefault(nodeid, {})[scenario] = mode
        data: dict[str, Any] = {"format": BASELINE_FORMAT, "trust": default}
        if per_result:
            data["trust_by_result"] = per_result
        data["verdicts"] = {k: dict(sorted(v.items())) for k, v in sorted(self.verdicts.items())}
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def _nested(data: object, values: set[str]) -> TypeGuard[dict[str, dict[str, str]]]:
    """``data`` is ``{str: {str: one of values}}``."""
    return isinstance(data, dict) and all(
        isinstance(per, dict) and all(isinstance(k, str) and v in values for k, v in per.items())
        for per in data.values()
    )


# -- session facts and rendering --------------------------------------------------------------


def session_meta(results: Sequence[Result]) -> dict[str, Any]:
    """OpenSSL version, user modes, trust modes and clients seen: one entry per (client,
    version), so six uv versions are six entries, in version order."""
    seen = {(o["client"], o["version"]) for r in results for o in r["outcomes"]}
    return {
        "openssl": ssl.OPENSSL_VERSION,
        "python": platform.python_version(),
        "user_modes": sorted({r["user_mode"] for r in results}),
        "trust_modes": _mode_order({trust_of(r) for r in results}),
        "clients": [{"client": c, "version": v} for c, v in sorted(seen, key=_seen_order)],
    }


def _seen_order(pair: tuple[str, str | None]) -> tuple[str, list[tuple[int, str]]]:
    # Numbers compare as numbers: uv 0.2.28 before uv 0.13.9.
    parts = re.split(r"(\d+)", pair[1] or "")
    return pair[0], [(int(p), "") if p.isdigit() else (-1, p) for p in parts]


def _mode_order(modes: Iterable[str]) -> list[str]:
    from .scenarios import TRUST_MODES

    return sorted(modes, key=lambda m: (TRUST_MODES.index(m) if m in TRUST_MODES else 99, m))


def trust_text(modes: Sequence[str]) -> str:
    """``trust: env (default)``, ``trust: system``, ``trust: env (default), system (mixed: per
    row)``: the trust modes verdicts were measured in, as every grid header shows them."""
    if not modes:
        modes = [DEFAULT_TRUST]
    named = [f"{m} (default)" if m == DEFAULT_TRUST else m for m in modes]
    return "trust: " + ", ".join(named) + (" (mixed: per row)" if len(modes) > 1 else "")


def header_line(meta: Mapping[str, Any]) -> str:
    """One line: OpenSSL version, trust mode(s), user mode, clients seen."""
    clients = ", ".join(
        f"{c['client']} ({c['version']})" if c["version"] else c["client"] for c in meta["clients"]
    )
    modes = "; ".join(meta["user_modes"]) or "no client run"
    trust = trust_text(meta.get("trust_modes", ()))
    return (
        f"tlsenv: {meta['openssl']}; {trust}; clients ran as {modes}; "
        f"clients seen: {clients or 'none'}"
    )


def _column_labels(tests: Sequence[str]) -> dict[str, str]:
    short = {t: t.rsplit("::", 1)[-1] for t in tests}
    counts: dict[str, int] = {}
    for s in short.values():
        counts[s] = counts.get(s, 0) + 1
    return {t: s if counts[s] == 1 else t for t, s in short.items()}


#: Verdicts in a grid too narrow for the full names (the legend spells them out).
SHORT_VERDICTS = {
    "OK": "OK",
    "REJECTED": "REJ",
    "FAILED": "FAIL",
    "CRASHED": "CRASH",
    "HUNG": "HUNG",
    "LEAKED": "LEAK",
}


def _letters(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: spreadsheet column names."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(ord("A") + r) + out
    return out


@dataclass(frozen=True)
class GridView:
    """The verdict grid laid out for a terminal of a given width, and the legend under it."""

    blocks: list[list[list[Cell]]]
    legend: list[str]

    @property
    def lines(self) -> int:
        return sum(len(b) for b in self.blocks) + max(0, len(self.blocks) - 1) + len(self.legend)


def grid_view(
    results: Sequence[Result], changes: Iterable[Change] = (), *, width: int | None = 80
) -> GridView:
    """The grid as a terminal shows it: full column labels and verdicts when they fit
    ``width`` in one block; else columns lettered A, B... (a legend maps them to the tests)
    with short verdicts; what still does not fit wraps into blocks that leave out the rows
    empty in them. The legend explains verdicts and marks."""
    changes = list(changes)
    laid = grid(results, changes, width=width)
    compact = len(laid) > 1
    if compact:
        laid = grid(results, changes, width=width, compact=True)
    tests = sorted({r["test"] for r in results})
    legend: list[str] = []
    if compact:
        short = _column_labels(tests)
        legend += wrap_words(
            [f"{_letters(i)} {short[t]}" for i, t in enumerate(tests)], width, lead="columns: "
        )
    names = SHORT_VERDICTS if compact else {v: v for v in SHORT_VERDICTS}
    seen = {r["verdict"] for r in results if r["verdict"] is not None}
    meaning = {
        "OK": "connected",
        "REJECTED": "refused the peer",
        "FAILED": "no connection",
        "CRASHED": "crashed",
        "HUNG": "timed out",
        "LEAKED": "leaked to an interceptor",
    }
    parts = [f"{names[v]} {meaning[v]}" for v in SHORT_VERDICTS if v in seen]
    parts += ["! outside expected set", "* changed vs baseline", "- no client ran"]
    if any("@" in str(r["scenario"]) for r in results):
        parts.append("@P: the store placed as P")
    legend += wrap_words(parts, width, sep=", ")
    return GridView(laid, legend)


def grid(
    results: Sequence[Result],
    changes: Iterable[Change] = (),
    *,
    width: int | None = 80,
    trim: bool = True,
    compact: bool = False,
) -> list[list[list[Cell]]]:
    """Blocks of rows (scenarios) x columns (tests), each block fitting ``width`` columns
    (None: one block), laid out by :func:`pytest_tlsenv.grid.blocks`.

    A cell is the verdict; ``!`` marks a verdict outside the scenario's expected set, ``*`` one
    that differs from the baseline, ``-`` a test that ran no client in that scenario. When the
    results mix trust modes, each row names its mode (``good (system)``): one verdict per
    test, scenario and mode. ``compact``: columns lettered A, B... in test order, short
    verdicts (:data:`SHORT_VERDICTS`), and blocks without their empty rows.
    """
    changed = {(c.nodeid, c.scenario) for c in changes}
    ordered = sorted_results(results)
    tests = sorted({r["test"] for r in ordered})
    mixed = len({trust_of(r) for r in ordered}) > 1

    def row_of(r: Result) -> str:
        return f"{r['scenario']} ({trust_of(r)})" if mixed else str(r["scenario"])

    scenarios = sorted({row_of(r) for r in ordered}, key=_scenario_order)
    cells: dict[tuple[str, str], Cell] = {}
    for r in ordered:
        verdict = r["verdict"]
        if verdict is None:
            cell = Cell("-", "missing")
        else:
            name = str(verdict)
            text = (SHORT_VERDICTS.get(name, name) if compact else name) + (
                "!" if r["mismatch"] else ""
            )
            if (r["nodeid"], r["scenario"]) in changed:
                cell = Cell(text + "*", "changed")
            else:
                cell = Cell(text, "mismatch" if r["mismatch"] else "expected")
        cells[(r["test"], row_of(r))] = cell
    labels = {t: _letters(i) for i, t in enumerate(tests)} if compact else _column_labels(tests)
    rows = [[Cell("scenario", "header"), *(Cell(labels[t], "header") for t in tests)]]
    for s in scenarios:
        rows.append([Cell(s, "header"), *(cells.get((t, s), Cell("", "missing")) for t in tests)])
    return blocks(rows, width=width, trim=trim, drop_empty=compact)


LEGEND = (
    "! not in the scenario's expected set, * differs from the baseline, - no client ran "
    "(last outcome per test and scenario)"
)


def to_json(
    results: Sequence[Result], changes: Sequence[Change] = (), *, baseline: str | None = None
) -> dict[str, Any]:
    """The JSON report: session facts, then one entry per test and scenario."""
    changed = {(c.nodeid, c.scenario): c.old for c in changes}
    entries = []
    for r in sorted_results(results):
        entry = dict(r)
        entry["baseline"] = changed.get((r["nodeid"], r["scenario"]))
        entries.append(entry)
    return {
        "format": REPORT_FORMAT,
        **session_meta(results),
        "baseline": baseline,
        "results": entries,
    }


def to_markdown(
    results: Sequence[Result], changes: Sequence[Change] = (), *, baseline: str | None = None
) -> str:
    """The grid and the failures, ready to paste into an issue."""
    meta = session_meta(results)
    changed = {(c.nodeid, c.scenario): c for c in changes}
    ordered = sorted_results(results)
    lines = ["# pytest-tlsenv results", "", f"- OpenSSL: {meta['openssl']}"]
    lines.append(f"- {trust_text(meta['trust_modes'])}")
    lines.append(f"- clients ran as: {'; '.join(meta['user_modes']) or 'n/a'}")
    for c in meta["clients"]:
        lines.append(f"- client `{c['client']}`: {c['version'] or 'version unknown'}")
    if baseline:
        lines.append(f"- baseline: `{baseline}`")
    lines += ["", "## Verdicts", ""]
    for block in grid(ordered, changes, width=None, trim=False):
        lines.append(grid_markdown([[c.text for c in row] for row in block]))
    lines += ["", LEGEND, ""]
    bad = [
        r
        for r in ordered
        if r["mismatch"]
        or (r["nodeid"], r["scenario"]) in changed
        or r.get("test_outcome") == "failed"
    ]
    lines += ["## Failures", ""]
    if not bad:
        lines += ["None: every verdict is in its scenario's expected set.", ""]
    for r in bad:
        lines.append(f"### `{r['nodeid']}` in `{r['scenario']}`")
        lines.append("")
        lines.append(
            f"- verdict: **{r['verdict']}** (expected {', '.join(r['expected'])})"
            + (
                f"; baseline: {changed[(r['nodeid'], r['scenario'])]}"
                if (r["nodeid"], r["scenario"]) in changed
                else ""
            )
        )
        if r.get("test_outcome"):
            lines.append(f"- test: {r['test_outcome']}")
        lines.append(f"- trust mode: {trust_of(r)}")
        lines.append(f"- scenario: {r['description']}")
        if r["verdict"] is not None:
            lines.append(f"- reason: `{r['reason']}`")
            version = f" ({r['version']})" if r["version"] else ""
            command = " ".join(r["argv"]) if r["argv"] else r["client"]
            lines.append(f"- client: `{command}`{version}")
            lines += ["", "<details><summary>store</summary>", "", "```"]
            lines += r["store"]
            lines += ["```", "", "</details>"]
        lines.append("")
    return "\n".join(lines)


def write_report(
    path: str | os.PathLike[str],
    results: Sequence[Result],
    changes: Sequence[Change] = (),
    *,
    baseline: str | None = None,
) -> None:
    """Write the report to ``path``: JSON for ``.json``, Markdown for ``.md``."""
    p = Path(path)
    if p.suffix == ".json":
        text = json.dumps(to_json(results, changes, baseline=baseline), indent=2) + "\n"
    elif p.suffix == ".md":
        text = to_markdown(results, changes, baseline=baseline)
    else:
        raise ConfigError(f"report {p}: unknown suffix {p.suffix!r}; use .json or .md")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
