"""Surveys beyond one machine: `survey --shard K/N`, `report merge`, and one column per
client version (`--clients uv@0.2.28,uv@0.2.29`, `tlsenv.client("uv@0.2.29")`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tlsenv import ConfigError, TLSEnv
from pytest_tlsenv.shards import merge_reports, parse_shard, select
from pytest_tlsenv.survey import columns

pytestmark = pytest.mark.nonroot

SCENARIOS = ["good", "unreadable-file", "mitm-untrusted", "expired", "empty-file"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_tlsenv", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def _cells(path: Path) -> list[tuple[str, str, tuple[str, ...], dict[str, str]]]:
    data = json.loads(path.read_text())
    return [
        (c["scenario"], c["placement"], tuple(c["expected"]), c["verdicts"]) for c in data["cells"]
    ]


def test_shards_merged_equal_the_unsharded_survey(tmp_path: Path) -> None:
    common = ["survey", "--clients", "python-ssl", "curl", "--scenarios", *SCENARIOS]
    whole = _cli(*common, "--report", "all.json", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    for k in (1, 2, 3):
        out = _cli(*common, "--shard", f"{k}/3", "--report", f"s{k}.json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert json.loads((tmp_path / f"s{k}.json").read_text())["shard"] == f"{k}/3"
    sizes = [len(_cells(tmp_path / f"s{k}.json")) for k in (1, 2, 3)]
    assert sum(sizes) == len(_cells(tmp_path / "all.json")) == 7  # two store faults twice
    assert all(sizes)
    merged = _cli(
        "report", "merge", "s3.json", "s1.json", "s2.json", "-o", "merged.json", cwd=tmp_path
    )
    assert merged.returncode == 0, merged.stderr
    assert _cells(tmp_path / "merged.json") == _cells(tmp_path / "all.json")
    md = _cli("report", "merge", "s1.json", "s2.json", "s3.json", "-o", "m.md", cwd=tmp_path)
    assert md.returncode == 0, md.stderr
    table = (tmp_path / "m.md").read_text()
    assert "| `mitm-untrusted` |" in table
    assert table.count("\n| `") == 7
    # The merged grid as the HTML page: every cell of the whole survey, each verdict's reason.
    page = _cli("report", "merge", "s2.json", "s3.json", "s1.json", "-o", "m.html", cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "m.html").read_text()
    assert "Content-Security-Policy" in html
    start = html.index('<script type="application/json" id="tlsenv-data">')
    data = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    shown = json.dumps(data)
    whole = json.loads((tmp_path / "all.json").read_text())["cells"]
    for cell in whole:
        for client, reason in cell["reasons"].items():
            assert json.dumps(reason) in shown, (cell["scenario"], client)
    bad = _cli("report", "merge", "s1.json", "-o", "m.txt", cwd=tmp_path)
    assert bad.returncode == 2
    assert "-o m.txt: the merged report is .json, .md or .html" in bad.stderr
    # Twins: two shards are not the survey, and one shard twice is refused.
    two = merge_reports(
        [(n, json.loads((tmp_path / n).read_text())) for n in ("s1.json", "s2.json")]
    )
    assert len(two["cells"]) < 7
    assert len(two["missing"]) == 7 - len(two["cells"])
    partial = _cli("report", "merge", "s1.json", "s2.json", "-o", "p.json", cwd=tmp_path)
    assert "cell(s) of the survey in no report" in partial.stderr
    again = _cli("report", "merge", "s1.json", "s1.json", "-o", "x.json", cwd=tmp_path)
    assert again.returncode == 2
    assert "overlapping shards" in again.stderr.splitlines()[-1]
    assert not (tmp_path / "x.json").exists()


def test_shard_slices_are_disjoint_and_cover_everything() -> None:
    items = list(range(10))
    parts = [select(items, (k, 3)) for k in (1, 2, 3)]
    assert sorted(x for p in parts for x in p) == items
    assert parts[0] == [0, 3, 6, 9]
    assert select(items, None) == items


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


def test_bad_shard_on_the_command_line_is_exit_2(tmp_path: Path) -> None:
    out = _cli("survey", "--clients", "curl", "--shard", "4/3", cwd=tmp_path)
    assert out.returncode == 2
    assert "--shard '4/3': K must be between 1 and N" in out.stderr.splitlines()[-1]


def test_merge_refuses_reports_of_different_surveys(tmp_path: Path) -> None:
    a = {"clients": {"curl": "8"}, "trust": "env", "cells": []}
    b = {"clients": {"curl": "8"}, "trust": "system", "cells": []}
    with pytest.raises(ConfigError, match="not shards of one survey"):
        merge_reports([("a.json", a), ("b.json", b)])
    (tmp_path / "n.json").write_text("[]")
    out = _cli("report", "merge", "n.json", "-o", "m.json", cwd=tmp_path)
    assert out.returncode == 2
    assert "n.json: not a survey JSON report" in out.stderr


def test_one_column_per_version() -> None:
    assert columns([("uv", "0.2.28"), ("uv", "0.2.29"), ("pip", None), ("curl", None)]) == [
        "uv@0.2.28",
        "uv@0.2.29",
        "pip",
        "curl",
    ]
    # A preset named once keeps its plain column, pinned or not.
    assert columns([("uv", "0.13.9")]) == ["uv"]


@pytest.mark.slow
def test_survey_takes_versions_one_column_each(
    tmp_path: Path, uv_0_2_28: str, uv_0_2_29: str
) -> None:
    del uv_0_2_28, uv_0_2_29  # in the cache: the survey pins the same environments
    report = tmp_path / "v.json"
    out = _cli(
        "survey", "--clients", "uv@0.2.28,uv@0.2.29", "--scenarios", "good", "unreadable-file",
        "--report", str(report), cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(report.read_text())
    assert data["clients"] == {"uv@0.2.28": "0.2.28", "uv@0.2.29": "0.2.29"}
    assert "] uv 0.2.29: ready" in out.stderr
    cells = {(c["scenario"], c["placement"]): c["verdicts"] for c in data["cells"]}
    assert cells[("good", "decoy")] == {"uv@0.2.28": "OK", "uv@0.2.29": "OK"}
    # The known regression, side by side: 0.2.29 panics on the unreadable file.
    assert cells[("unreadable-file", "decoy")] == {"uv@0.2.28": "OK", "uv@0.2.29": "CRASHED"}


@pytest.mark.slow
def test_client_name_at_version(tlsenv: TLSEnv, uv_0_2_29: str) -> None:
    client = tlsenv.client("uv@0.2.29")
    assert client.version == "0.2.29"
    assert client.argv is not None
    assert client.argv[0] == uv_0_2_29
    with pytest.raises(ConfigError, match="two versions"):
        tlsenv.client("uv@0.2.29", version="0.2.28")
    with pytest.raises(ConfigError, match="cannot be pinned"):
        tlsenv.client("curl@8.0")


@pytest.mark.slow
def test_survey_version_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    out = _cli("survey", "--clients", "uv@9.9.9", "--scenarios", "good", cwd=tmp_path)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    # No such release, or (offline) the index cannot be reached: either way, one line.
    assert "uv==9.9.9: no such version" in last or "unreachable" in last
    assert "Traceback" not in out.stderr
