"""The HTML survey report: file size and render time in headless Chromium.

A real survey of 55 rows (scenarios in their placements) x 12 clients (the first 12 presets
found here; fewer when fewer are found) is written as HTML; the figures are its size (target
< 2 MB) and how long Chromium takes to load and lay it out from file:// (goal < 1 s, median of
5 loads in a fresh tab), and to show a cell's details after a click.

    python benchmarks/bench_html.py [--quick]     # --quick: python-ssl and curl only
    python benchmarks/bench_html.py --screenshot docs/survey-report.png   # the README's picture
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import chromium  # noqa: E402 - the test suite's DevTools-pipe driver

from pytest_tlsenv.htmlreport import write_survey_html  # noqa: E402
from pytest_tlsenv.scenarios import CATALOGUE  # noqa: E402
from pytest_tlsenv.survey import available, cells_of, survey  # noqa: E402

ROWS = 55
CLIENTS = 12


def scenarios_for(rows: int) -> list[str]:
    """Catalogue names, in order, whose cells (placements included) make ``rows`` rows."""
    names: list[str] = []
    for name in CATALOGUE:
        if len(cells_of([*names, name])) > rows:
            break
        names.append(name)
    return names


def render(path: Path, rounds: int) -> tuple[float, float, float]:
    """(median load-to-ready ms in the page's own clock, median wall ms navigate-to-load,
    median wall ms click-to-detail)."""
    exe, why = chromium.find()
    if exe is None:
        raise SystemExit(f"render time: not measured ({why})")
    page, wall, click = [], [], []
    with chromium.Browser(exe) as browser:
        for _ in range(rounds):
            start = time.perf_counter()
            session = browser.open(path.as_uri())
            wall.append((time.perf_counter() - start) * 1000)
            page.append(
                browser.evaluate(
                    session, "performance.getEntriesByType('navigation')[0].loadEventEnd"
                )
            )
            start = time.perf_counter()
            browser.click(session, "td[data-i]")
            browser.evaluate(session, "document.getElementById('detail').hidden")
            click.append((time.perf_counter() - start) * 1000)
            browser.call("Target.detachFromTarget", {"sessionId": session})
    return statistics.median(page), statistics.median(wall), statistics.median(click)


def screenshot(path: Path, out: Path) -> None:
    """The report with the details of its first cell outside the expected set open."""
    exe, why = chromium.find()
    if exe is None:
        raise SystemExit(f"screenshot: not taken ({why})")
    with chromium.Browser(exe, width=1440, height=900) as browser:
        session = browser.open(path.as_uri())
        mismatch = browser.evaluate(session, "document.querySelector('td.mismatch') !== null")
        browser.click(session, "td.mismatch" if mismatch else "td[data-i]")
        browser.evaluate(session, "window.scrollTo(0, 0)")
        browser.screenshot(session, out)
    print(f"screenshot written to {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="python-ssl and curl only")
    ap.add_argument("--screenshot", type=Path, metavar="PNG", help="also save a screenshot")
    args = ap.parse_args()
    found, _ = available(["python-ssl", "curl"] if args.quick else None)
    clients = found[:CLIENTS]
    names = scenarios_for(ROWS)
    start = time.perf_counter()
    cells = survey([(c, v) for c, v, _ in clients], names)
    elapsed = time.perf_counter() - start
    versions = {c: shown for c, _, shown in clients}
    with tempfile.TemporaryDirectory(prefix="bench-html-") as tmp:
        path = Path(tmp) / "survey.html"
        start = time.perf_counter()
        write_survey_html(path, cells, versions, elapsed)
        write_ms = (time.perf_counter() - start) * 1000
        size = path.stat().st_size
        shape = f"{len(cells)} rows x {len(clients)} clients"
        verdict = "met" if size < 2_000_000 else "MISSED"
        print(
            f"html survey report {shape}: {size / 1e6:.2f} MB (target < 2 MB: {verdict}); "
            f"rendered by Python in {write_ms:.0f} ms"
        )
        if args.screenshot is not None:
            screenshot(path, args.screenshot)
        loaded, wall, click = render(path, 2 if args.quick else 5)
        goal = "met" if loaded < 1000 else "MISSED"
        print(
            f"html survey report {shape} in Chromium: loaded and laid out in {loaded:.0f} ms "
            f"(page clock; goal < 1 s: {goal}), {wall:.0f} ms wall navigate-to-load; "
            f"a click shows a cell's details in {click:.0f} ms"
        )


if __name__ == "__main__":
    main()
