"""``python -m pytest_tlsenv``: the catalogue, the survey, bundles and probes without writing
a test.

One module per verb, each adding its subcommand to the parser and doing only the parsing and
printing (the engines are :mod:`pytest_tlsenv.survey`, :mod:`pytest_tlsenv.repro` and
:mod:`pytest_tlsenv.probe`): :mod:`.survey`, :mod:`.scenarios`, :mod:`.repro` (``repro`` and
``serve``), :mod:`.probe`; :mod:`.dispatch` holds :func:`main`.
"""

from __future__ import annotations

import warnings
from typing import Any

from .dispatch import main

__all__ = ["main"]


def _moved() -> dict[str, tuple[str, Any]]:
    from .. import survey
    from . import survey as survey_cli

    return {
        "Cell": ("pytest_tlsenv.survey.Cell", survey.Cell),
        "_write_report": ("pytest_tlsenv.cli.survey.write_report", survey_cli.write_report),
    }


def __getattr__(name: str) -> Any:
    """Names that moved out of this module stay importable, with a DeprecationWarning."""
    moved = _moved()
    if name in moved:
        where, value = moved[name]
        warnings.warn(
            f"pytest_tlsenv.cli.{name} is deprecated: use {where}",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
