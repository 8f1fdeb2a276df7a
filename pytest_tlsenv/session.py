"""A test session's results: collected per test and scenario, compared with a baseline, shown
as the grid and written as reports.

Without pytest: the plugin hands it plain data (option values, node ids, the TLSEnvs a test
made, result lists) and a terminal to write on. Results travel from the process that ran the
test (an xdist worker, or the only process) to the one that shows the terminal as JSON-ready
lists; only the latter merges them, writes the files and prints the summary.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import ConfigError  # no dependencies: cheap at startup
from .matrix import Selection
from .selection import did_you_mean

if TYPE_CHECKING:
    from .report import Baseline, Change, Result
    from .tlsenv import TLSEnv

REPORT_SUFFIXES = (".json", ".md", ".html")


class Terminal(Protocol):
    """What the summary writes on (pytest's terminal reporter has these)."""

    def write(self, content: str, **markup: bool) -> None: ...

    def line(self, msg: str, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...


def check_creatable(directory: Path, option: str, shown: Path | None = None) -> None:
    """A ConfigError now rather than at the first failing test; leaves nothing behind."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = f"{e.strerror or e}: {e.filename}" if e.filename else (e.strerror or str(e))
        raise ConfigError(f"{option} {shown or directory}: {why}") from None
    if missing:
        shutil.rmtree(missing[-1], ignore_errors=True)  # created just now, empty


def check_writable_file(path: Path, option: str) -> None:
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory")
    check_creatable(path.parent, option, shown=path)


@dataclass(frozen=True)
class Attached:
    """One test's results, and what the plugin must add to its report."""

    results: list[Result]
    #: Why the results could not be recorded (a reporting bug), or None.
    problem: str | None = None
    #: How its verdicts differ from the baseline (or why they cannot be compared); "" if not.
    baseline_message: str = ""


#: Terminal markup per cell style (pytest's TerminalReporter keywords).
_STYLES: dict[str, dict[str, bool]] = {
    "header": {"bold": True},
    "expected": {"green": True},
    "mismatch": {"red": True, "bold": True},
    "changed": {"yellow": True, "bold": True},
    "missing": {},
}


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


#: ``--tlsenv-grid``: auto (the grid unless -q or too many columns), full, summary, off.
GRID_MODES = ("auto", "full", "summary", "off")


class ReportSession:
    """Collects the results of tlsenv tests (from xdist workers too) and reports them."""

    def __init__(
        self,
        *,
        selection: Selection | None,
        report_path: Path | None,
        baseline: Baseline | None,
        update_baseline: bool,
        is_worker: bool,
        grid_max_tests: int,
        grid_mode: str = "auto",
    ) -> None:
        self.selection = selection
        self.grid_mode = grid_mode
        self.report_path = report_path
        self.baseline = baseline
        self.update_baseline = update_baseline
        self.is_worker = is_worker
        self.grid_max_tests = grid_max_tests
        self.used = False
        self.results: dict[tuple[str, str], Result] = {}
        self.changes: list[Change] = []
        self.mode_errors: list[str] = []  # results compared with a baseline of another mode
        self.updated: int | None = None
        # Why scenario roots went to disk instead of a tmpfs (from every worker): one line.
        self.root_notes: dict[str, None] = {}

    @classmethod
    def from_options(
        cls,
        *,
        scenarios: str,
        report: str | None,
        baseline: str | None,
        update_baseline: bool,
        is_worker: bool,
        cwd: Path,
        grid_max_tests: int,
        grid_mode: str = "auto",
    ) -> ReportSession:
        """From the option values; a ConfigError names the option that cannot work."""
        if grid_mode not in GRID_MODES:
            raise ConfigError(
                f"--tlsenv-grid {grid_mode!r}: use one of {', '.join(GRID_MODES)}"
                f"{did_you_mean(grid_mode, GRID_MODES)}"
            )
        try:
            selection = Selection.parse(scenarios) if scenarios else None
        except ConfigError as e:
            raise ConfigError(f"--tlsenv-scenarios: {e}") from None
        report_path = Path(report) if report else None
        if report_path is not None and report_path.suffix not in REPORT_SUFFIXES:
            raise ConfigError(
                f"--tlsenv-report {report}: unknown suffix {report_path.suffix!r}; "
                "use .json (machine-readable), .md (grid and failures for an issue) or .html "
                "(the grid with every cell's details, for a browser)"
            )
        controller = not is_worker  # xdist workers write no files
        if report_path is not None and controller:
            # Found out now, not after the whole session ran.
            check_writable_file(cwd / report_path, "--tlsenv-report")
        if update_baseline and not baseline:
            raise ConfigError("--tlsenv-update-baseline needs --tlsenv-baseline PATH")
        if update_baseline and controller:
            check_writable_file(cwd / str(baseline), "--tlsenv-baseline")
        loaded = None
        if baseline:
            from .report import Baseline

            path = Path(baseline)
            if not path.is_absolute():
                path = cwd / path
            try:
                loaded = Baseline.load(path, missing_ok=update_baseline)
            except ConfigError as e:
                raise ConfigError(f"--tlsenv-baseline: {e}") from None
        return cls(
            selection=selection,
            report_path=report_path,
            baseline=loaded,
            update_baseline=update_baseline,
            is_worker=is_worker,
            grid_max_tests=grid_max_tests,
            grid_mode=grid_mode,
        )

    def _summary_line(self, results: Sequence[Result], *, quiet: bool) -> str:
        columns = {r["test"] for r in results}
        scenarios = {r["scenario"] for r in results}
        outside = sum(1 for r in results if r["mismatch"])
        if quiet:
            why = "-q"
        elif self.grid_mode == "summary":
            why = "--tlsenv-grid=summary"
        else:
            why = f"more than tlsenv_grid_max_tests={self.grid_max_tests} columns"
        return (
            f"tlsenv: {_count(len(results), 'verdict')} ({_count(len(columns), 'test')} x "
            f"{_count(len(scenarios), 'scenario')}), {outside} outside their expected set; "
            f"grid not shown ({why}): --tlsenv-grid=full shows it, --tlsenv-report PATH.md "
            "writes it"
        )

    # -- in the process that ran the test --------------------------------------------------

    def attach(self, nodeid: str, row: str, made: Sequence[TLSEnv]) -> Attached:
        """The results of the TLSEnvs test ``nodeid`` made (``row``: its grid key), checked
        against the baseline."""
        from .report import results_for

        problem = None
        try:
            results = results_for(nodeid, row, made)
        except Exception as e:  # noqa: BLE001 - a reporting bug must not abort the session
            problem = f"could not record this test's results: {e!r}"
            results = []
        message = ""
        if self.baseline is not None and not self.update_baseline:
            from .report import BaselineError

            try:
                changes = self.baseline.changes(results)
            except BaselineError as e:
                # Recorded in another trust mode: no comparison is honest, so the test fails
                # with the usage error instead of passing unchecked.
                message = f"tlsenv baseline: {e}"
            else:
                reasons = {r["scenario"]: r.get("reason", "") for r in results}
                message = "\n".join(f"{c}\n  now: {reasons.get(c.scenario, '')}" for c in changes)
        return Attached(results, problem, message)

    # -- where the terminal is ----------------------------------------------------------------

    def collect(self, root_note: str | None, results: list[Result] | None, outcome: str) -> None:
        """A test report arrived (from this process or a worker): merge what it carries."""
        if root_note is not None and not self.is_worker:
            self.root_notes[root_note] = None
        if results is None or self.is_worker:
            return
        self.used = True
        for r in results:
            r["test_outcome"] = outcome
            self.results[(r["nodeid"], r["scenario"])] = r
        if self.baseline is not None and not self.update_baseline:
            from .report import BaselineError

            try:
                self.changes += self.baseline.changes(results)
            except BaselineError as e:
                self.mode_errors.append(str(e))

    def finish(self) -> None:
        """The session ended: update the baseline, write the report."""
        if self.is_worker or not self.used:
            return
        results = list(self.results.values())
        if self.baseline is not None and self.update_baseline:
            self.updated = self.baseline.update(results)
            self.baseline.dump()
        if self.report_path is not None and self.report_path.suffix == ".html":
            from .htmlreport import write_html

            write_html(
                results,
                self.report_path,
                self.changes,
                baseline=str(self.baseline.path) if self.baseline else None,
            )
        elif self.report_path is not None:
            from .report import write_report

            write_report(
                self.report_path,
                results,
                self.changes,
                baseline=str(self.baseline.path) if self.baseline else None,
            )

    def summary(self, tr: Terminal, width: int, *, quiet: bool = False) -> None:
        """The terminal summary: the grid (or one line: ``-q``, ``--tlsenv-grid=summary``, or
        more columns than ``tlsenv_grid_max_tests``), then what differs."""
        if self.root_notes and not self.is_worker:
            # A line, not a warning: suites run with -W error, and nothing failed.
            tr.write_line(
                "tlsenv: scenario roots went to disk (pytest's basetemp) instead of a tmpfs: "
                + "; ".join(self.root_notes)
            )
        if self.is_worker or not self.used:
            return
        from .report import grid_view, header_line, session_meta

        results = list(self.results.values())
        columns = {r["test"] for r in results}
        mode = self.grid_mode
        if mode == "auto":
            too_many = len(columns) > self.grid_max_tests
            mode = "summary" if quiet or too_many else "full"
        if results and mode == "summary":
            tr.write_line(self._summary_line(results, quiet=quiet))
        elif results and mode == "full":
            tr.write_sep("=", "tlsenv")
            tr.write_line(header_line(session_meta(results)))
            view = grid_view(results, self.changes, width=width)
            for b, block in enumerate(view.blocks):
                if b:
                    tr.line("")
                for row in block:
                    for n, cell in enumerate(row):
                        markup = _STYLES["header"] if n == 0 else _STYLES[cell.style]
                        tr.write(cell.text, **markup)
                    tr.line("")
            for line in view.legend:
                tr.write_line(line)
        if self.changes and self.baseline is not None:
            tr.write_line(f"tlsenv: {len(self.changes)} verdict(s) differ from the baseline:")
            for c in self.changes:
                tr.write_line(f"  {c.nodeid}: {c}", red=True)
        for error in self.mode_errors:
            tr.write_line(f"tlsenv: {error}", red=True)
        if self.updated is not None and self.baseline is not None:
            tr.write_line(
                f"tlsenv: baseline {self.baseline.path} updated ({self.updated} verdict(s) "
                "added or changed)"
            )
        if self.report_path is not None:
            tr.write_line(f"tlsenv: report written to {self.report_path}")
