"""The HTML report: one self-contained file for a browser, from the plugin's results or the
survey's cells.

The file is the verdict grid (coloured by verdict, the expected set beside each row, ``!`` for
a verdict outside it, ``*`` for one that differs from the baseline, sticky headers), filters by
group, column, client and verdict, and each cell's details on click: command, trust mode,
client version, reason, stderr tail, store listing (owners and modes), environment with
secrets redacted, duration.

It loads nothing: the stylesheet and the script are inline, the cells' details travel as one
JSON data block, and a Content-Security-Policy meta (``default-src 'none'``, the inline style
and script allowed by their SHA-256 only) makes the browser refuse any other load or inline
handler by construction. Every text from a run (stderr is whatever the client printed) is
escaped into the page and shown with ``textContent``, never parsed as HTML.

:func:`write_html` writes the plugin's results (as :func:`pytest_tlsenv.report.write_report`
takes them); :func:`write_survey_html` the survey's cells.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import platform
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report import (
    LEGEND,
    STDERR_LINES,
    Change,
    Result,
    session_meta,
    sorted_results,
    trust_of,
    trust_text,
)
from .scenarios import CATALOGUE

if TYPE_CHECKING:
    from .outcome import Outcome
    from .survey import Cell as SurveyCell

__all__ = [
    "CSP",
    "HtmlCell",
    "HtmlGrid",
    "HtmlRow",
    "from_results",
    "from_survey",
    "from_survey_report",
    "to_html",
    "write_html",
    "write_survey_html",
    "write_survey_report_html",
]

VERDICT_ORDER = ("OK", "REJECTED", "FAILED", "CRASHED", "HUNG", "LEAKED")


@dataclass(frozen=True)
class HtmlCell:
    """One grid cell: its text (``OK``, ``REJECTED !``, ``OK *``, ``n/a``, ``-``), its verdict
    (None: no run), what it means (``expected``, ``mismatch``, ``changed``, ``missing``), the
    client that ran, and its details as (name, text) pairs in display order."""

    text: str
    verdict: str | None
    style: str
    client: str
    title: str
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HtmlRow:
    """A scenario (in a placement, or a trust mode when results mix them)."""

    label: str
    groups: tuple[str, ...]
    expected: tuple[str, ...]
    cells: tuple[HtmlCell | None, ...]


@dataclass(frozen=True)
class HtmlGrid:
    """What the page shows: a title, facts about the run, columns (tests or clients), rows."""

    title: str
    facts: tuple[str, ...]
    column_kind: str  # "test" or "client"
    columns: tuple[str, ...]
    column_titles: tuple[str, ...]
    rows: tuple[HtmlRow, ...]
    legend: str
    extra: tuple[str, ...] = field(default=())


# -- from the plugin's results ----------------------------------------------------------------


def _base(scenario: str) -> str:
    for sep in ("+", "@", "[", " "):
        scenario = scenario.split(sep, 1)[0]
    return scenario


def _groups(scenario: str) -> tuple[str, ...]:
    sc = CATALOGUE.get(_base(scenario))
    return tuple(sorted(sc.groups)) if sc is not None else ()


def _lines(value: Iterable[str] | None) -> str:
    return "\n".join(value or ())


def _environment(env: Mapping[str, str] | None) -> str:
    return "\n".join(f"{k}={v}" for k, v in (env or {}).items())


def _result_details(r: Result, changed: Mapping[tuple[str, str], str]) -> list[tuple[str, str]]:
    d: list[tuple[str, str]] = [
        ("test", str(r["nodeid"])),
        ("scenario", f"{r['scenario']}: {r.get('description', '')}"),
        ("verdict", str(r["verdict"] or "- (no client ran)")),
        ("expected", ", ".join(r["expected"])),
    ]
    old = changed.get((r["nodeid"], r["scenario"]))
    if old is not None:
        d.append(("baseline", f"{old} (now {r['verdict']})"))
    if r.get("test_outcome"):
        d.append(("test outcome", str(r["test_outcome"])))
    if r.get("accepted"):  # a declared client's accepted divergence, with its reason
        d.append(("accepted", str(r["accepted"])))
    d.append(("trust mode", trust_of(r)))
    if r["verdict"] is not None:
        argv = r.get("argv")
        d.append(("command", " ".join(argv) if argv else f"{r.get('client')} (in-process call)"))
        d.append(("client version", str(r.get("version") or "unknown")))
        d.append(("reason", str(r.get("reason", ""))))
        d.append(("duration", f"{float(r.get('duration') or 0):.3f} s"))
        d.append(("stderr (tail)", str(r.get("stderr") or "")))
    d.append(("clients ran as", str(r.get("user_mode", ""))))
    outcomes = r.get("outcomes") or []
    if len(outcomes) > 1:
        d.append(
            (
                "every outcome",
                "\n".join(f"{o['client']}: {o['verdict']} ({o['reason']})" for o in outcomes),
            )
        )
    if r["verdict"] is not None:
        d.append(("store", _lines(r.get("store"))))
        d.append(("environment (secrets redacted)", _environment(r.get("environment"))))
    return [(name, value) for name, value in d if value]  # no empty field


def from_results(
    results: Sequence[Result], changes: Iterable[Change] = (), *, baseline: str | None = None
) -> HtmlGrid:
    """The grid of the plugin's results: rows are scenarios, columns tests, as in the
    terminal grid and the Markdown report."""
    changed = {(c.nodeid, c.scenario): c.old for c in changes}
    ordered = sorted_results(results)
    tests = sorted({str(r["test"]) for r in ordered})
    mixed = len({trust_of(r) for r in ordered}) > 1

    def row_of(r: Result) -> str:
        return f"{r['scenario']} ({trust_of(r)})" if mixed else str(r["scenario"])

    rows: dict[str, dict[str, Result]] = {}
    for r in ordered:
        rows.setdefault(row_of(r), {})[str(r["test"])] = r
    order = {name: n for n, name in enumerate(CATALOGUE)}
    out = []
    for label in sorted(rows, key=lambda s: (order.get(_base(s), len(order)), s)):
        per = rows[label]
        cells: list[HtmlCell | None] = []
        expected: tuple[str, ...] = ()
        for t in tests:
            found = per.get(t)
            if found is None:
                cells.append(None)
                continue
            r = found
            expected = tuple(r["expected"])
            verdict = r["verdict"]
            if verdict is None:
                text, style = "-", "missing"
            else:
                text = verdict + (" !" if r["mismatch"] else "")
                style = "mismatch" if r["mismatch"] else "expected"
                if (r["nodeid"], r["scenario"]) in changed:
                    text, style = text + " *", "changed"
            cells.append(
                HtmlCell(
                    text,
                    verdict,
                    style,
                    str(r.get("client") or ""),
                    f"{r['nodeid']} in {r['scenario']}",
                    tuple(_result_details(r, changed)),
                )
            )
        first = next(iter(per.values()))
        out.append(HtmlRow(label, _groups(str(first["scenario"])), expected, tuple(cells)))
    meta = session_meta(results)
    facts = [f"OpenSSL: {meta['openssl']}", f"Python: {meta['python']}"]
    facts.append(trust_text(meta["trust_modes"]))
    facts.append(f"clients ran as: {'; '.join(meta['user_modes']) or 'n/a'}")
    facts += [f"client {c['client']}: {c['version'] or 'version unknown'}" for c in meta["clients"]]
    if baseline:
        facts.append(f"baseline: {baseline}")
    labels = _column_labels(tests)
    return HtmlGrid(
        title="pytest-tlsenv results",
        facts=tuple(facts),
        column_kind="test",
        columns=tuple(labels[t] for t in tests),
        column_titles=tuple(tests),
        rows=tuple(out),
        legend=LEGEND,
    )


def _column_labels(tests: Sequence[str]) -> dict[str, str]:
    short = {t: t.rsplit("::", 1)[-1] for t in tests}
    counts: dict[str, int] = {}
    for s in short.values():
        counts[s] = counts.get(s, 0) + 1
    return {t: s if counts[s] == 1 else t for t, s in short.items()}


# -- from the survey's cells ------------------------------------------------------------------


def _tail(text: str, lines: int = STDERR_LINES) -> str:
    # Split at newlines only: a U+2028 a client printed stays the character it is.
    return "\n".join(text.rstrip().split("\n")[-lines:])


def _outcome_details(
    cell: SurveyCell, client: str, version: str, o: Outcome
) -> list[tuple[str, str]]:
    red = o.redactor()
    command = (
        " ".join(red.text(str(a)) for a in o.argv) if o.argv else f"{client} (in-process call)"
    )
    details = [
        ("client", client),
        ("scenario", f"{cell.label}: {CATALOGUE[cell.scenario].description}"),
        ("verdict", o.verdict.value),
        ("expected", ", ".join(sorted(v.value for v in cell.expected))),
        ("trust mode", o.trust),
        ("command", command),
        ("client version", version),
        ("reason", red.text(o.reason)),
        ("duration", f"{o.duration:.3f} s"),
        ("exit status", "" if o.returncode is None else str(o.returncode)),
        ("exception", "" if o.exception is None else red.text(_exception(o.exception))),
        ("stderr (tail)", red.text(_tail(o.stderr))),
        ("store", "\n".join(cell.store)),
        ("environment (secrets redacted)", _environment(o.redacted_environ())),
    ]
    # An in-process call has no exit status or stderr: no empty fields.
    return [(name, value) for name, value in details if value]


def _exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def from_survey(
    cells: Sequence[SurveyCell], versions: Mapping[str, str], elapsed: float, trust: str = "env"
) -> HtmlGrid:
    """The survey's grid: rows are scenarios in a placement, columns the clients."""
    clients = list(versions)
    rows = []
    for cell in cells:
        expected = tuple(sorted(v.value for v in cell.expected))
        row: list[HtmlCell | None] = []
        for client in clients:
            o = cell.verdicts.get(client)
            title = f"{client} in {cell.label}"
            if o is None:
                why = f"unavailable: {cell.unavailable}" if cell.unavailable else "not applicable"
                row.append(
                    HtmlCell(
                        "n/a",
                        None,
                        "missing",
                        client,
                        title,
                        (
                            ("client", client),
                            ("scenario", cell.label),
                            ("verdict", "n/a"),
                            ("reason", why),
                        ),
                    )
                )
                continue
            mismatch = o.verdict not in cell.expected
            row.append(
                HtmlCell(
                    o.verdict.value + (" !" if mismatch else ""),
                    o.verdict.value,
                    "mismatch" if mismatch else "expected",
                    client,
                    title,
                    tuple(_outcome_details(cell, client, versions[client], o)),
                )
            )
        rows.append(HtmlRow(cell.label, _groups(cell.scenario), expected, tuple(row)))
    user = "root, clients without any capability" if os.geteuid() == 0 else "non-root"
    facts = (
        f"{len(cells)} scenarios x {len(clients)} clients in {elapsed:.1f} s",
        f"OpenSSL: {ssl.OPENSSL_VERSION}",
        f"Python: {platform.python_version()}",
        trust_text([trust]),
        f"clients ran as: {user}",
        *(f"client {c}: {versions[c]}" for c in clients),
    )
    return HtmlGrid(
        title="pytest-tlsenv survey",
        facts=facts,
        column_kind="client",
        columns=tuple(clients),
        column_titles=tuple(f"{c} {versions[c]}" for c in clients),
        rows=tuple(rows),
        legend="! not in the scenario's expected set; n/a: the scenario cannot reach that "
        "client in this trust mode (or cannot be built here)",
    )


def from_survey_report(report: Mapping[str, Any]) -> HtmlGrid:
    """A survey's JSON report (``survey --report X.json``, or ``report merge``'s merged one)
    as the page's grid: each cell's verdict and reason, as the JSON report holds them."""
    versions: Mapping[str, str] = report["clients"]
    clients = list(versions)
    rows = []
    for cell in report["cells"]:
        own = CATALOGUE[cell["scenario"]].placement if cell["scenario"] in CATALOGUE else None
        label = cell.get("label") or (
            cell["scenario"]
            if cell["placement"] == own
            else f"{cell['scenario']}@{cell['placement']}"
        )
        expected = tuple(cell["expected"])
        row: list[HtmlCell | None] = []
        for client in clients:
            verdict = cell["verdicts"].get(client, "n/a")
            reason = cell.get("reasons", {}).get(client, "")
            details = (
                ("client", f"{client} {versions[client]}"),
                ("scenario", label),
                ("trust", str(report.get("trust", "env"))),
                ("verdict", verdict),
                ("reason", reason),
            )
            title = f"{client} in {label}"
            if verdict == "n/a":
                row.append(HtmlCell("n/a", None, "missing", client, title, details))
                continue
            mismatch = verdict not in expected
            row.append(
                HtmlCell(
                    verdict + (" !" if mismatch else ""),
                    verdict,
                    "mismatch" if mismatch else "expected",
                    client,
                    title,
                    details,
                )
            )
        rows.append(HtmlRow(label, _groups(cell["scenario"]), expected, tuple(row)))
    facts = (
        f"{len(rows)} scenarios x {len(clients)} clients in {report.get('elapsed_s', 0)} s",
        f"OpenSSL: {report.get('openssl', '?')}",
        trust_text([str(report.get("trust", "env"))]),
        *(f"merged from: {name}" for name in report.get("merged_from", ())),
        *(f"client {c}: {versions[c]}" for c in clients),
    )
    return HtmlGrid(
        title="pytest-tlsenv survey",
        facts=facts,
        column_kind="client",
        columns=tuple(clients),
        column_titles=tuple(f"{c} {versions[c]}" for c in clients),
        rows=tuple(rows),
        legend="! not in the scenario's expected set; n/a: the scenario cannot reach that "
        "client in this trust mode (or cannot be built here)",
    )


# -- the page ---------------------------------------------------------------------------------

_STYLE = """
:root{color-scheme:light;font:13px/1.4 system-ui,sans-serif;--ok:#1a7f37;--rej:#0969da;
--fail:#bc4c00;--crash:#cf222e;--hung:#8250df;--leak:#a40e26;--na:#6e7781}
body{margin:0 0 0 0}
header{padding:8px 12px;border-bottom:1px solid #d0d7de}
h1{font-size:16px;margin:0 0 4px}
.facts{margin:0;padding:0;list-style:none;color:#57606a;font-size:12px}
.facts li{display:inline}.facts li+li:before{content:" \\00b7  "}
.bar{padding:6px 12px;display:flex;gap:12px;flex-wrap:wrap;align-items:center}
.bar label{font-size:12px;color:#57606a}
.legend{font-size:12px;color:#57606a;padding:0 12px 6px}
table{border-collapse:separate;border-spacing:0;margin:0 12px 12px}
th,td{padding:3px 8px;border-right:1px solid #eaeef2;border-bottom:1px solid #eaeef2;
white-space:nowrap;text-align:left}
thead th{position:sticky;top:0;background:#f6f8fa;z-index:2;font-weight:600;
border-bottom:2px solid #d0d7de;max-width:14em;overflow:hidden;text-overflow:ellipsis}
tbody th{position:sticky;left:0;background:#fff;z-index:1;font-weight:500;
font-family:ui-monospace,monospace}
thead th:first-child{left:0;z-index:3}
td.exp{color:#57606a;font-size:11px}
td.v{cursor:pointer;font-weight:600;font-family:ui-monospace,monospace}
td.v:hover,td.v:focus{outline:2px solid #0969da;outline-offset:-2px}
.OK{background:#dafbe1;color:var(--ok)}.REJECTED{background:#ddf4ff;color:var(--rej)}
.FAILED{background:#fff1e5;color:var(--fail)}.CRASHED{background:#ffebe9;color:var(--crash)}
.HUNG{background:#fbefff;color:var(--hung)}.LEAKED{background:#ffd8d3;color:var(--leak)}
.none{color:var(--na)}
td.mismatch{box-shadow:inset 0 0 0 2px var(--crash)}
td.changed{box-shadow:inset 0 0 0 2px #bf8700}
td.sel{outline:3px solid #0969da;outline-offset:-3px}
.dim{opacity:.18}.hide{display:none}
#detail{position:fixed;right:0;top:0;bottom:0;width:min(40em,48vw);overflow:auto;
background:#fff;border-left:2px solid #d0d7de;box-shadow:-4px 0 12px #0002;padding:10px 14px;
z-index:5}
#detail h2{font-size:14px;margin:0 28px 8px 0;word-break:break-all}
#detail dt{font-weight:600;margin-top:8px;color:#57606a;font-size:12px}
#detail dd{margin:2px 0 0}
#detail pre{margin:0;white-space:pre-wrap;word-break:break-all;background:#f6f8fa;
padding:4px 6px;font:12px/1.35 ui-monospace,monospace}
#close{position:absolute;right:10px;top:8px;border:0;background:none;font-size:18px;
cursor:pointer}
"""

_SCRIPT = """
(function(){
"use strict";
var data=JSON.parse(document.getElementById("tlsenv-data").textContent);
var S=data.strings,C=data.cells;
var panel=document.getElementById("detail"),body=document.getElementById("detail-body");
var title=document.getElementById("detail-title"),grid=document.getElementById("grid");
var selected=null;
function cellOf(i){return grid.querySelector('td[data-i="'+i+'"]');}
function show(i){
  var d=C[i];if(!d){return;}
  title.textContent=S[d[0]];
  while(body.firstChild){body.removeChild(body.firstChild);}
  for(var k=1;k<d.length;k+=2){
    var dt=document.createElement("dt");dt.textContent=S[d[k]];
    var dd=document.createElement("dd"),pre=document.createElement("pre");
    pre.textContent=S[d[k+1]];dd.appendChild(pre);
    dt.setAttribute("data-field",S[d[k]]);
    body.appendChild(dt);body.appendChild(dd);
  }
  if(selected){selected.classList.remove("sel");}
  selected=cellOf(i);if(selected){selected.classList.add("sel");}
  panel.hidden=false;
  if(location.hash!=="#cell-"+i){history.replaceState(null,"","#cell-"+i);}
}
function hide(){panel.hidden=true;if(selected){selected.classList.remove("sel");selected=null;}}
grid.addEventListener("click",function(e){
  var td=e.target.closest("td[data-i]");if(td){show(+td.getAttribute("data-i"));}
});
grid.addEventListener("keydown",function(e){
  var td=e.target.closest("td[data-i]");
  if(td&&(e.key==="Enter"||e.key===" ")){e.preventDefault();show(+td.getAttribute("data-i"));}
});
document.getElementById("close").addEventListener("click",hide);
document.addEventListener("keydown",function(e){if(e.key==="Escape"){hide();}});
var fg=document.getElementById("f-group"),fc=document.getElementById("f-column");
var fk=document.getElementById("f-client"),fv=document.getElementById("f-verdict");
function apply(){
  var g=fg.value,col=fc.value,cl=fk?fk.value:"",v=fv.value,cellFilter=!!(cl||v);
  grid.querySelectorAll("[data-col]").forEach(function(el){
    el.classList.toggle("hide",col!==""&&el.getAttribute("data-col")!==col);
  });
  var shown=0;
  grid.querySelectorAll("tbody tr").forEach(function(tr){
    var any=false;
    tr.querySelectorAll("td[data-col]").forEach(function(td){
      var ok=true;
      if(cl&&td.getAttribute("data-c")!==cl){ok=false;}
      if(v==="!"){ok=ok&&td.classList.contains("mismatch");}
      else if(v==="*"){ok=ok&&td.classList.contains("changed");}
      else if(v){ok=ok&&td.getAttribute("data-v")===v;}
      td.classList.toggle("dim",cellFilter&&!ok);
      if(ok&&!td.classList.contains("hide")){any=true;}
    });
    var groups=(tr.getAttribute("data-g")||"").split(" ");
    var visible=(g===""||groups.indexOf(g)>=0)&&(!cellFilter||any);
    tr.classList.toggle("hide",!visible);if(visible){shown++;}
  });
  document.getElementById("count").textContent=shown+" row(s)";
}
[fg,fc,fk,fv].forEach(function(s){if(s){s.addEventListener("change",apply);}});
apply();
var m=/^#cell-(\\d+)$/.exec(location.hash);if(m){show(+m[1]);}
document.documentElement.setAttribute("data-ready","1");
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The page's Content-Security-Policy: nothing may load (no image, font, frame, fetch,
#: form target or base URL), only the page's own inline style and script run.
CSP = (
    f"default-src 'none'; style-src {_sha256(_STYLE)}; script-src {_sha256(_SCRIPT)}; "
    "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
)


def _json_block(data: Any) -> str:
    # Inside <script type="application/json">, "</script" or "<!--" would end or confuse the
    # element: no "<", ">" or "&" is left raw (JSON reads the escapes back as the same text).
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _options(name: str, label: str, values: Iterable[tuple[str, str]]) -> str:
    e = html.escape
    opts = "".join(f'<option value="{e(v)}">{e(t)}</option>' for v, t in values)
    return (
        f'<label for="{name}">{e(label)}</label> '
        f'<select id="{name}"><option value="">all</option>{opts}</select>'
    )


def to_html(grid: HtmlGrid) -> str:
    """The page for ``grid``: one HTML document that needs nothing else."""
    e = html.escape
    strings: dict[str, int] = {}

    def intern(s: str) -> int:
        n = strings.get(s)
        if n is None:
            n = strings[s] = len(strings)
        return n

    details: list[list[int]] = []
    body: list[str] = []
    kind = grid.column_kind
    head = ['<tr><th scope="col">scenario</th><th scope="col">expected</th>']
    for n, (label, full) in enumerate(zip(grid.columns, grid.column_titles, strict=True)):
        head.append(f'<th scope="col" data-col="{n}" title="{e(full)}">{e(label)}</th>')
    head.append("</tr>")
    verdicts: set[str] = set()
    clients: set[str] = set()
    groups: set[str] = set()
    marks: set[str] = set()
    for row in grid.rows:
        groups.update(row.groups)
        body.append(
            f'<tr data-g="{e(" ".join(row.groups))}"><th scope="row">{e(row.label)}</th>'
            f'<td class="exp">{e(", ".join(row.expected))}</td>'
        )
        for n, cell in enumerate(row.cells):
            if cell is None:
                body.append(f'<td data-col="{n}" data-v=""></td>')
                continue
            i = len(details)
            flat = [intern(cell.title)]
            for name, value in cell.details:
                flat += [intern(name), intern(value)]
            details.append(flat)
            colour = cell.verdict if cell.verdict in VERDICT_ORDER else "none"
            if cell.verdict:
                verdicts.add(cell.verdict)
            if cell.client:
                clients.add(cell.client)
            if cell.style in ("mismatch", "changed"):
                marks.add(cell.style)
            body.append(
                f'<td class="v {colour} {cell.style}" tabindex="0" data-i="{i}" '
                f'data-col="{n}" data-v="{e(cell.verdict or "")}" data-c="{e(cell.client)}" '
                f'title="{e(cell.title)}">{e(cell.text)}</td>'
            )
        body.append("</tr>")
    verdict_options = [(v, v) for v in VERDICT_ORDER if v in verdicts]
    if "mismatch" in marks:
        verdict_options.append(("!", "! outside the expected set"))
    if "changed" in marks:
        verdict_options.append(("*", "* differs from the baseline"))
    filters = [
        _options("f-group", "group", ((g, g) for g in sorted(groups))),
        _options("f-column", kind, ((str(n), c) for n, c in enumerate(grid.column_titles))),
    ]
    if kind != "client":
        filters.append(_options("f-client", "client", ((c, c) for c in sorted(clients))))
    filters.append(_options("f-verdict", "verdict", verdict_options))
    filters.append('<span id="count"></span>')
    data = {"strings": list(strings), "cells": details}
    facts = "".join(f"<li>{e(f)}</li>" for f in grid.facts)
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">\n',
            '<meta name="referrer" content="no-referrer">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{e(grid.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n",
            f'<header><h1>{e(grid.title)}</h1><ul class="facts">{facts}</ul></header>\n',
            f'<div class="bar">{" ".join(filters)}</div>\n',
            f'<div class="legend">{e(grid.legend)}; click a cell for its details</div>\n',
            f'<table id="grid"><thead>{"".join(head)}</thead>\n<tbody>\n',
            "\n".join(body),
            "\n</tbody></table>\n",
            '<aside id="detail" hidden><button id="close" type="button" '
            'aria-label="close">\u00d7</button><h2 id="detail-title"></h2>'
            '<dl id="detail-body"></dl></aside>\n',
            f'<script type="application/json" id="tlsenv-data">{_json_block(data)}</script>\n',
            f"<script>{_SCRIPT}</script>\n</body></html>\n",
        ]
    )


def _write(path: str | os.PathLike[str], text: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write leaves no half file behind


def write_html(
    results: Sequence[Result],
    path: str | os.PathLike[str],
    changes: Sequence[Change] = (),
    *,
    baseline: str | None = None,
) -> None:
    """Write the plugin's ``results`` (:func:`pytest_tlsenv.report.results_for`'s dicts, as
    the JSON report holds them) as the HTML report at ``path``."""
    _write(path, to_html(from_results(results, changes, baseline=baseline)))


def write_survey_report_html(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a survey's JSON report (merged shards included) as the HTML report at ``path``."""
    _write(path, to_html(from_survey_report(report)))


def write_survey_html(
    path: str | os.PathLike[str],
    cells: Sequence[SurveyCell],
    versions: Mapping[str, str],
    elapsed: float,
    trust: str = "env",
) -> None:
    """Write the survey's ``cells`` as the HTML report at ``path``."""
    _write(path, to_html(from_survey(cells, versions, elapsed, trust)))
