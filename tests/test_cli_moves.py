"""Names that moved into the cli/ package (and the survey engine) stay importable from their
old places for one release, with a DeprecationWarning, and are the same objects."""

from __future__ import annotations

import importlib
import warnings

import pytest

import pytest_tlsenv.cli.probe
import pytest_tlsenv.cli.repro
import pytest_tlsenv.cli.survey
import pytest_tlsenv.survey

pytestmark = pytest.mark.nonroot

MOVES = [
    ("pytest_tlsenv.cli", "Cell", pytest_tlsenv.survey.Cell),
    ("pytest_tlsenv.cli", "_write_report", pytest_tlsenv.cli.survey.write_report),
    ("pytest_tlsenv.repro", "add_cli_commands", pytest_tlsenv.cli.repro.add_commands),
    ("pytest_tlsenv.probe", "add_cli_command", pytest_tlsenv.cli.probe.add_commands),
]


@pytest.mark.parametrize(("module", "name", "new"), MOVES, ids=[f"{m}.{n}" for m, n, _ in MOVES])
def test_old_place_warns_and_gives_the_same_object(module: str, name: str, new: object) -> None:
    old = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{name} is deprecated: use "):
        value = getattr(old, name)
    assert value is new


def test_the_new_places_and_the_entry_point_import_without_a_warning() -> None:
    # The twin: only the old names warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from pytest_tlsenv.cli import main  # noqa: F401
        from pytest_tlsenv.cli.survey import write_report  # noqa: F401
        from pytest_tlsenv.survey import Cell, survey  # noqa: F401
    for module in ("pytest_tlsenv.cli", "pytest_tlsenv.probe"):
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            getattr(importlib.import_module(module), "nope")  # noqa: B009
