"""Matrix expansion and ``--tlsenv-scenarios`` selection as plain functions, without pytester;
and the names that moved out of the plugin, still importable from it for one release."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from pytest_tlsenv import factory, matrix, session
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.matrix import (
    DOCUMENTED_GROUPS,
    MatrixPoint,
    Selection,
    known_groups,
    matrix_points,
    row_key,
    select_scenarios,
)
from pytest_tlsenv.scenarios import CATALOGUE, GROUPS

# -- selection: --tlsenv-scenarios ---------------------------------------------------------------


def test_selection_keeps_a_group_but_what_it_drops() -> None:
    selection = Selection.parse("store,-fifo")
    assert selection.include == frozenset(GROUPS["store"])
    assert selection.exclude == {"fifo"}
    assert selection.keeps("unreadable-file")
    # Negative twins: the dropped member and a scenario outside the group are not kept.
    assert not selection.keeps("fifo")
    assert not selection.keeps("good")


def test_selection_of_only_drops_keeps_everything_else() -> None:
    selection = Selection.parse(" -unreadable-file , ")
    assert selection.include is None
    assert selection.keeps("good")
    assert selection.keeps("fifo")
    assert not selection.keeps("unreadable-file")


def test_selection_always_keeps_tests_without_a_scenario() -> None:
    # make_tlsenv-only tests and tests that use no tlsenv fixture are never deselected.
    assert Selection.parse("proxy").keeps(None)
    assert not Selection.parse("proxy").keeps("good")


def test_selection_by_the_fallback_group() -> None:
    selection = Selection.parse("fallback")
    assert selection.include == frozenset(GROUPS["fallback"])
    assert selection.include
    # The fallback-* constructions, and reported bugs built on one (uv-18526).
    assert all(CATALOGUE[n].fallback is not None for n in selection.include)
    assert not selection.keeps("unreadable-file")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("store,-fifoo", " (did you mean 'fifo'?)"),
        ("-nope", ""),
        ("stor", " (did you mean 'store'?)"),
    ],
)
def test_selection_names_an_unknown_scenario_and_what_exists(text: str, hint: str) -> None:
    name = text.split(",")[-1].lstrip("-")
    with pytest.raises(ConfigError) as info:
        Selection.parse(text)
    assert str(info.value).startswith(f"unknown scenario or group {name!r}{hint}; groups: ")
    assert "fallback" in str(info.value)
    assert "scenarios: good" in str(info.value)


def test_selection_takes_spaces_like_commas() -> None:
    assert Selection.parse("store -fifo") == Selection.parse("store,-fifo")


# -- groups and SPEC -----------------------------------------------------------------------------


def test_documented_groups_include_fallback_and_are_known() -> None:
    assert "fallback" in DOCUMENTED_GROUPS
    groups = known_groups()
    assert set(DOCUMENTED_GROUPS) <= set(groups)
    assert set(GROUPS) <= set(groups)
    assert groups["all"] == tuple(CATALOGUE)


def test_select_scenarios_keeps_order_without_repeats() -> None:
    assert select_scenarios(["fifo", "good", "fifo"]) == ["fifo", "good"]
    assert select_scenarios("reports") == list(GROUPS["reports"])
    # uv-5448 is in both store and reports: listed once, where store puts it; a report of
    # another group (uv-18526: fallback) follows the store group.
    both = select_scenarios(["store", "reports"])
    rest = [n for n in GROUPS["reports"] if n not in GROUPS["store"]]
    assert both == [*GROUPS["store"], *rest]
    assert "uv-5448" in both[: len(GROUPS["store"])]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "unreadable-fiel",
            r"unknown scenario or group 'unreadable-fiel' \(did you mean 'unreadable-file'\?\); "
            "groups: ",
        ),
        (["good", 3], "scenario names are strings, got 3"),
        (42, "SPEC must be a group or scenario name, a list of them, or a mapping; got 42"),
        ([], r"\[\] selects no scenario in this version"),
    ],
)
def test_select_scenarios_rejects_with_a_clear_error(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_scenarios(spec)


# -- points, axes and ids ----------------------------------------------------------------------


def test_points_of_a_list_have_the_scenario_names_as_ids() -> None:
    points = matrix_points([["good", "unreadable-file"]], {})
    assert [p.id for p in points] == ["good", "unreadable-file"]
    assert all(isinstance(p, MatrixPoint) and p.spec is not None for p in points)
    assert [p.spec.scenario.name for p in points if p.spec] == ["good", "unreadable-file"]


def test_a_list_value_is_an_axis_and_multiplies_the_points() -> None:
    points = matrix_points([["good", "fifo"]], {"placement": ["decoy", "shadow"]})
    assert [p.id for p in points] == ["good", "good@shadow", "fifo", "fifo@shadow"]
    assert [p.keywords["placement"] for p in points] == ["decoy", "shadow"] * 2


def test_a_trust_axis_names_the_mode_in_every_id() -> None:
    points = matrix_points(["good"], {"trust": ["env", "system"]})
    assert [p.id for p in points] == ["good-trust=env", "good-trust=system"]
    assert [p.spec.trust for p in points if p.spec] == ["env", "system"]
    # Its twin: a fixed trust mode is no axis and leaves the id alone.
    assert [p.id for p in matrix_points(["good"], {"trust": "system"})] == ["good"]


def test_faults_take_a_list_of_lists_for_an_axis() -> None:
    points = matrix_points(["good"], {"faults": [["unreadable-file"], ["fifo"]]})
    assert [p.id for p in points] == ["good+unreadable-file", "good+fifo"]
    # One list of faults is one value, not an axis.
    assert len(matrix_points(["good"], {"faults": ["unreadable-file", "fifo"]})) == 1


def test_an_axis_the_label_does_not_show_goes_into_the_id() -> None:
    points = matrix_points(["good"], {"timeout": [1, 2]})
    assert [p.id for p in points] == ["good-timeout=1", "good-timeout=2"]


def test_the_mapping_form_and_a_base_marker_supply_keywords() -> None:
    (point,) = matrix_points([{"scenarios": "good", "placement": "shadow"}], {}, {"timeout": 3})
    assert point.keywords == {"timeout": 3, "placement": "shadow", "scenario": "good"}
    assert point.id == "good@shadow"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "tlsenv_matrix takes one SPEC, got 0 positional arguments"),
        (("good", "fifo"), {}, "takes one SPEC, got 2 positional arguments"),
        (({"placement": "shadow"},), {}, "the mapping form needs a 'scenarios' key"),
        (("good",), {"scenario": "fifo"}, "give SPEC, not scenario="),
        (("good",), {"colour": "red"}, "unknown keyword\\(s\\) colour; valid: faults, "),
        (("good",), {"placement": []}, r"placement=\[\]: an axis needs at least one value"),
        (("good",), {"trust": ["env", "env"]}, "a value appears twice on the axis"),
    ],
)
def test_bad_matrices_are_config_errors(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        matrix_points(args, kwargs)


@pytest.mark.parametrize(
    ("nodeid", "matrix_id", "row"),
    [
        ("t.py::test_x[good]", "good", "t.py::test_x"),
        ("t.py::test_x[good-curl]", "good", "t.py::test_x[curl]"),
        ("t.py::test_x[curl-good]", "good", "t.py::test_x[curl]"),
        ("t.py::test_x[a-good-b]", "good", "t.py::test_x[a-b]"),
        ("t.py::test_x[curl]", None, "t.py::test_x[curl]"),
        ("t.py::test_x[fifo]", "good", "t.py::test_x[fifo]"),
        ("t.py::test_x", "good", "t.py::test_x"),
    ],
)
def test_row_key_drops_the_matrix_part_of_the_id(
    nodeid: str, matrix_id: str | None, row: str
) -> None:
    assert row_key(nodeid, matrix_id) == row


# -- the old place: pytest_tlsenv.plugin ---------------------------------------------------------

MOVED = [
    ("DOCUMENTED_GROUPS", matrix),
    ("MatrixPoint", matrix),
    ("matrix_points", matrix),
    ("row_key", matrix),
    ("select_scenarios", matrix),
    ("REPORT_SUFFIXES", session),
    ("TLSEnvFactory", factory),
]


@pytest.mark.parametrize(("name", "module"), MOVED, ids=[n for n, _ in MOVED])
def test_moved_names_still_come_from_the_plugin_with_a_warning(name: str, module: object) -> None:
    plugin = importlib.import_module("pytest_tlsenv.plugin")
    with pytest.warns(DeprecationWarning, match=f"plugin.{name} moved to .*{name}"):
        old = getattr(plugin, name)
    assert old is getattr(module, name)


def test_other_names_are_still_missing_from_the_plugin() -> None:
    # The twin: the shim answers only for the moved names.
    plugin = importlib.import_module("pytest_tlsenv.plugin")
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        plugin.no_such_name  # noqa: B018


def test_the_engine_modules_load_without_pytest() -> None:
    # pytest is blocked from the import system: the engine must not need it.
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['_pytest'] = None\n"
        "import pytest_tlsenv.matrix, pytest_tlsenv.session, pytest_tlsenv.factory\n"
        "print(pytest_tlsenv.matrix.select_scenarios('fallback'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "fallback-missing" in proc.stdout
    # Twin: the plugin itself does need pytest, so the block is real.
    proc = subprocess.run(
        [sys.executable, "-c", code.replace("factory\n", "factory, pytest_tlsenv.plugin\n")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "pytest" in proc.stderr
