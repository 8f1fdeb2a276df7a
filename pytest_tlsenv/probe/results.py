"""The probe's findings: per source, per pair, the precedence, and their renderings (a table,
Markdown, JSON)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..outcome import Verdict
from .sources import Source

__all__ = [
    "ERROR",
    "IGNORED",
    "INCONCLUSIVE",
    "READ_ONLY",
    "TRUSTED",
    "PairResult",
    "ProbeReport",
    "SourceResult",
]

TRUSTED = "trusted"
IGNORED = "ignored"
READ_ONLY = "read-only"
ERROR = "error"
INCONCLUSIVE = "inconclusive"  # the control run was not refused: an OK proves nothing


@dataclass(frozen=True)
class SourceResult:
    """What the client did with one source set alone (present alone, for a system path)."""

    source: Source
    # trusted / ignored (never opened) / read-only (opened, not trusted) / error (neither OK
    # nor REJECTED) / inconclusive (the control run was not refused)
    status: str
    verdict: Verdict
    reason: str
    opened: tuple[str, ...]  # the source's canary files the client opened ("." = dir listed)
    duration: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.name,
            "kind": self.source.kind,
            "system": self.source.system,
            "status": self.status,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "opened": list(self.opened),
            "duration_s": round(self.duration, 4),
        }


@dataclass(frozen=True)
class PairResult:
    """Two trusted sources set together: which one's canary the client still trusts."""

    a: str
    b: str
    a_trusted: bool
    b_trusted: bool
    a_opened: bool = False  # a's canary files were opened while both were set
    b_opened: bool = False

    @property
    def relation(self) -> str:
        """``"A + B"`` (both used), ``"A > B"`` (A wins: B disabled), or ``"A ! B"`` (neither)."""
        if self.a_trusted and self.b_trusted:
            return f"{self.a} + {self.b}"
        if self.a_trusted:
            return f"{self.a} > {self.b}"
        if self.b_trusted:
            return f"{self.b} > {self.a}"
        return f"{self.a} ! {self.b}"

    @property
    def both(self) -> bool:
        """Whether setting both keeps both in use (a union, not a precedence)."""
        return self.a_trusted and self.b_trusted

    @property
    def winner(self) -> str | None:
        if self.a_trusted != self.b_trusted:
            return self.a if self.a_trusted else self.b
        return None

    def read(self, name: str) -> bool:
        """Whether ``name``'s canary files were opened while both were set."""
        if name not in (self.a, self.b):
            raise KeyError(f"{name} is not in the pair {self.a} / {self.b}")
        return self.a_opened if name == self.a else self.b_opened

    @property
    def text(self) -> str:
        """The relation, and whether the disabled source was still read (inotify)."""
        if self.winner is None:
            return self.relation
        loser, opened = (
            (self.b, self.b_opened) if self.winner == self.a else (self.a, self.a_opened)
        )
        return f"{self.relation}  ({loser} {'read, not trusted' if opened else 'never opened'})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "a_trusted": self.a_trusted,
            "b_trusted": self.b_trusted,
            "a_opened": self.a_opened,
            "b_opened": self.b_opened,
            "relation": self.relation,
        }


@dataclass
class ProbeReport:
    """The probe's findings: per source, per pair, the order, and what it cost."""

    client: str
    system_paths: bool
    control_verdict: Verdict
    control_reason: str
    results: list[SourceResult] = field(default_factory=list)
    pairs: list[PairResult] = field(default_factory=list)
    runs: int = 0
    duration: float = 0.0
    overflowed: bool = False

    @property
    def valid(self) -> bool:
        """Whether the control run was refused, so an OK elsewhere means trust in a source."""
        return self.control_verdict == Verdict.REJECTED

    def status(self, name: str) -> str:
        """The status of source ``name`` (KeyError if it was not probed)."""
        return self.result(name).status

    def result(self, name: str) -> SourceResult:
        for r in self.results:
            if r.source.name == name:
                return r
        raise KeyError(f"{name} was not probed; probed: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [r.source.name for r in self.results]

    def having(self, status: str) -> list[str]:
        return [r.source.name for r in self.results if r.status == status]

    @property
    def trusted(self) -> list[str]:
        return self.having(TRUSTED)

    def pair(self, a: str, b: str) -> PairResult:
        """The pair of ``a`` and ``b`` (either order); KeyError if it was not measured."""
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError(f"no pair {a} / {b} was measured (both must be trusted alone)")

    def wins(self, a: str, b: str) -> bool:
        """Whether ``a`` disables ``b`` when both are set (only ``a``'s canary trusted)."""
        return self.pair(a, b).winner == a

    @property
    def order(self) -> list[str]:
        """Trusted variables, highest precedence first (by pairs won, then registry order).

        System defaults are not in it: they are present all at once; :attr:`defaults_text`
        says which variable drops which default.
        """
        system = {r.source.name for r in self.results if r.source.system}
        score = dict.fromkeys([n for n in self.trusted if n not in system], 0)
        for p in self.pairs:
            if p.winner in score:
                score[p.winner] += 1
        return sorted(score, key=lambda n: -score[n])

    @property
    def order_text(self) -> str:
        """The order as one line: ``>`` wins over, ``+`` both used, ``,`` not compared.

        Sources used together with every other one (truststore's SSL_CERT_FILE in pip 24)
        come last, after ``;``, so the chain before it reads transitively:
        ``REQUESTS_CA_BUNDLE > CURL_CA_BUNDLE > PIP_CERT; with all: SSL_CERT_FILE + ...``.
        """
        order = self.order
        if not order:
            return "(no source trusted)"

        def both(a: str, b: str) -> bool | None:
            try:
                return self.pair(a, b).both
            except KeyError:
                return None

        always = [n for n in order if all(both(n, m) for m in order if m != n)]
        if len(order) > 1 and len(always) == len(order):
            return " + ".join(order)
        chain = [n for n in order if n not in always] if len(order) > 1 else order
        text = chain[0]
        for prev, cur in itertools.pairwise(chain):
            try:
                p = self.pair(prev, cur)
            except KeyError:
                sep = ","
            else:
                sep = "+" if p.both else ">" if p.winner == prev else "?"
            text += f" {sep} {cur}"
        if always and len(order) > 1:
            text += "; with all: " + " + ".join(always)
        return text

    def check_honours(self, honours: Sequence[str]) -> list[str]:
        """Where a preset's ``honours`` (variables, highest first) disagrees with this probe.

        Only the variables this probe measured count; an empty list means agreement.
        """
        probed = {r.source.name for r in self.results if not r.source.system}
        claimed = [v for v in honours if v in probed]
        found = [n for n in self.trusted if n in probed]
        problems = [
            f"{v}: the preset says honoured, the probe found it {self.status(v)}"
            for v in claimed
            if v not in found
        ]
        problems += [
            f"{v}: trusted by the client, missing from the preset"
            for v in found
            if v not in claimed
        ]
        for hi, lo in itertools.combinations([v for v in claimed if v in found], 2):
            try:
                if self.wins(lo, hi):
                    problems.append(f"the preset ranks {hi} above {lo}, but {lo} wins over {hi}")
            except KeyError:
                continue
        return problems

    # -- output -------------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "system_paths": self.system_paths,
            "valid": self.valid,
            "control": {"verdict": self.control_verdict.value, "reason": self.control_reason},
            "sources": [r.as_dict() for r in self.results],
            "pairs": [p.as_dict() for p in self.pairs],
            "order": self.order,
            "order_text": self.order_text,
            "defaults": self.defaults_text,
            "runs": self.runs,
            "duration_s": round(self.duration, 3),
            "inotify_overflowed": self.overflowed,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def _rows(self) -> list[list[str]]:
        rows = []
        for r in self.results:
            opened = ", ".join(r.opened) if r.opened else "-"
            verdict = r.verdict.value if r.status != ERROR else f"{r.verdict.value}: {r.reason}"
            rows.append([r.source.name, r.source.kind, r.status, opened, verdict])
        return rows

    @property
    def defaults_text(self) -> list[str]:
        """Per trusted system default: the variables that drop it, and those that keep it."""
        lines = []
        for r in self.results:
            if not r.source.system or r.status != TRUSTED:
                continue
            name = r.source.name
            dropped = [
                p.winner for p in self.pairs if name in (p.a, p.b) and p.winner not in (None, name)
            ]
            kept = [
                p.a if p.b == name else p.b for p in self.pairs if name in (p.a, p.b) and p.both
            ]
            lines.append(
                f"{name}: trusted by default; setting {' or '.join(map(str, dropped)) or '-'} "
                f"drops it; kept with {', '.join(kept) or '-'}"
            )
        return lines

    def _summary(self) -> list[str]:
        lines = [f"precedence: {self.order_text}"]
        lines += [f"  {p.text}" for p in self.pairs]
        lines += [f"default {line}" for line in self.defaults_text]
        lines.append(
            f"control (no source, unknown CA): {self.control_verdict.value} - {self.control_reason}"
        )
        if not self.valid:
            lines.append(
                "WARNING: the control run was not refused, so OK verdicts say nothing about "
                "trust (the client does not verify, or fails for another reason)"
            )
        if self.overflowed:
            lines.append("WARNING: inotify queue overflowed; 'opened' may miss files")
        where = "variables and system paths" if self.system_paths else "variables"
        lines.append(f"{self.runs} runs in {self.duration:.2f} s ({where})")
        return lines

    def table(self) -> str:
        """The findings as a plain-text table (what the CLI prints)."""
        header = ["source", "kind", "result", "opened", "verdict"]
        rows = [header, *self._rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [f"probe: {self.client}"]
        for n, row in enumerate(rows):
            cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in [*widths, 7]))
        return "\n".join([*lines, "", *self._summary()])

    def to_markdown(self) -> str:
        lines = [
            f"### Trust probe: `{self.client}`",
            "",
            "| source | kind | result | opened | verdict |",
            "|---|---|---|---|---|",
        ]
        for name, kind, status, opened, verdict in self._rows():
            lines.append(f"| `{name}` | {kind} | **{status}** | {opened} | {verdict} |")
        lines.append("")
        lines += [f"- {line.strip()}" for line in self._summary()]
        return "\n".join(lines) + "\n"
