"""Matrices and selections of scenarios: ``tlsenv_matrix`` points and ``--tlsenv-scenarios``.

Plain data in, plain data out, without pytest: the plugin turns a point into a test id and a
parameter, and a selection into deselected tests. The catalogue is imported only when a
matrix or a selection is expanded, so loading the plugin stays cheap.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, NotYetSupportedError  # no dependencies: cheap at startup

if TYPE_CHECKING:
    from .scenarios import Spec

# Groups the documentation names; a matrix over one that has no scenario yet says so.
DOCUMENTED_GROUPS = ("store", "proxy", "server", "reports", "fallback")

# Keywords an id shows through the scenario's label; other axes (timeout, user...) are added
# to the id only when points would otherwise share one.
_LABELLED = ("faults", "placement", "layout", "trust")


@dataclass(frozen=True, eq=False)
class MatrixPoint:
    """One test of a ``tlsenv_matrix``: its id, catalogue scenario and resolved Spec.

    ``problem`` is set for a point whose feature has not landed yet (NotYetSupportedError):
    that test fails at setup with it, the rest of the matrix runs.
    """

    id: str
    scenario: str
    keywords: Mapping[str, Any]
    spec: Spec | None
    problem: str | None = None


def known_groups() -> dict[str, tuple[str, ...]]:
    """Every group name with its scenarios: the documented ones (maybe empty), the
    catalogue's, and ``all``."""
    from .scenarios import CATALOGUE, GROUPS

    groups: dict[str, tuple[str, ...]] = dict.fromkeys(DOCUMENTED_GROUPS, ())
    groups.update(GROUPS)
    groups["all"] = tuple(CATALOGUE)
    return groups


def _names_help() -> str:
    from .scenarios import CATALOGUE

    return f"groups: {', '.join(sorted(known_groups()))}; scenarios: {', '.join(CATALOGUE)}"


def _unknown(word: str) -> str:
    from .scenarios import CATALOGUE
    from .selection import unknown_name

    return str(unknown_name("scenario or group", word, [*known_groups(), *CATALOGUE]))


def select_scenarios(spec: object) -> list[str]:
    """Catalogue names for a group name, a scenario name, or a list of either (in order)."""
    from .scenarios import CATALOGUE

    if isinstance(spec, str):
        tokens: Sequence[object] = [spec]
    elif isinstance(spec, (list, tuple)):
        tokens = spec
    else:
        raise ConfigError(
            f"SPEC must be a group or scenario name, a list of them, or a mapping; got {spec!r}"
        )
    groups = known_groups()
    names: list[str] = []
    for token in tokens:
        if not isinstance(token, str):
            raise ConfigError(f"scenario names are strings, got {token!r}")
        if token in groups:
            found = list(groups[token])
        elif token in CATALOGUE:
            found = [token]
        else:
            raise ConfigError(f"{_unknown(token)}; {_names_help()}")
        names += [n for n in found if n not in names]
    if not names:
        raise ConfigError(f"{spec!r} selects no scenario in this version; {_names_help()}")
    return names


def axis_values(keyword: str, value: object) -> list[object] | None:
    """The values of ``keyword``'s axis, or None when ``value`` is one fixed value."""
    # faults is list-valued already: a list of lists is its axis.
    if keyword == "faults":
        if (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, (list, tuple)) for v in value)
        ):
            return list(value)
        return None
    return list(value) if isinstance(value, (list, tuple)) else None


def matrix_points(
    args: Sequence[Any], kwargs: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> list[MatrixPoint]:
    """Expand ``tlsenv_matrix(SPEC, **keywords)`` (``base``: a ``tlsenv`` marker's keywords)."""
    from .scenarios import KEYWORDS, resolve

    if len(args) != 1:
        raise ConfigError(f"tlsenv_matrix takes one SPEC, got {len(args)} positional arguments")
    spec, keywords = args[0], dict(kwargs)
    if isinstance(spec, Mapping):
        if "scenarios" not in spec:
            raise ConfigError(
                "the mapping form needs a 'scenarios' key, e.g. {'scenarios': 'store'}"
            )
        keywords = {**{k: v for k, v in spec.items() if k != "scenarios"}, **keywords}
        spec = spec["scenarios"]
    if "scenario" in keywords:
        raise ConfigError("the matrix chooses the scenario: give SPEC, not scenario=")
    unknown = sorted(set(keywords) - set(KEYWORDS))
    if unknown:
        from ._checks import did_you_mean

        hint = did_you_mean(unknown[0], KEYWORDS[1:]) if len(unknown) == 1 else ""
        raise ConfigError(
            f"unknown keyword(s) {', '.join(unknown)}; valid: {', '.join(KEYWORDS[1:])}{hint}"
        )
    names = select_scenarios(spec)
    axes = {k: vals for k, v in keywords.items() if (vals := axis_values(k, v)) is not None}
    for k, vals in axes.items():
        if not vals:
            raise ConfigError(f"{k}=[]: an axis needs at least one value")
        if len({repr(v) for v in vals}) < len(vals):
            raise ConfigError(f"{k}={vals!r}: a value appears twice on the axis")
    fixed = {**(base or {}), **{k: v for k, v in keywords.items() if k not in axes}}
    points: list[MatrixPoint] = []
    for name in names:
        for combo in itertools.product(*axes.values()):
            point_kw = {**fixed, **dict(zip(axes, combo, strict=True)), "scenario": name}
            try:
                resolved: Spec | None = resolve(**point_kw)
                problem = None
            except NotYetSupportedError as e:
                resolved, problem = None, str(e)
            label = resolved.scenario.name if resolved is not None else name
            if "trust" in axes:
                # A verdict is a verdict in one mode: the id always names it.
                label += f"-trust={point_kw['trust']}"
            points.append(MatrixPoint(label, name, point_kw, resolved, problem))
    # Axes that leave no trace in the scenario label (timeout, user...) go into the id.
    if len({p.id for p in points}) < len(points):
        points = [
            MatrixPoint(
                p.id + "".join(f"-{k}={p.keywords[k]}" for k in axes if k not in _LABELLED),
                p.scenario,
                p.keywords,
                p.spec,
                p.problem,
            )
            for p in points
        ]
    return points


def row_key(nodeid: str, matrix_id: str | None) -> str:
    """The grid's test key: ``nodeid`` without the matrix's part of the parameter id."""
    if matrix_id is None or not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid
    head, _, inner = nodeid[:-1].partition("[")
    if inner == matrix_id:
        return head
    for before, after in ((f"{matrix_id}-", ""), ("", f"-{matrix_id}")):
        if before and inner.startswith(before):
            return f"{head}[{inner[len(before) :]}]"
        if after and inner.endswith(after):
            return f"{head}[{inner[: -len(after)]}]"
    middle = f"-{matrix_id}-"
    if middle in inner:
        return f"{head}[{inner.replace(middle, '-', 1)}]"
    return nodeid


# -- --tlsenv-scenarios ------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """``--tlsenv-scenarios``: the scenarios to keep (None: all) and those to drop."""

    include: frozenset[str] | None
    exclude: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Selection:
        """``store,-fifo`` (commas or spaces) -> keep the store group but fifo; a ConfigError
        names an unknown word, with the closest name. The one syntax of
        :mod:`pytest_tlsenv.selection`; a documented group without a scenario yet selects
        nothing rather than failing."""
        from .scenarios import CATALOGUE
        from .selection import keep_and_drop

        try:
            include, exclude = keep_and_drop(
                text, known_groups(), list(CATALOGUE), kind="scenario or group"
            )
        except ConfigError as e:
            raise ConfigError(f"{e}; {_names_help()}") from None
        return cls(None if include is None else frozenset(include), frozenset(exclude))

    def keeps(self, scenario: str | None) -> bool:
        """Whether a test in ``scenario`` runs (None: not a scenario test, always kept)."""
        if scenario is None:
            return True
        return (self.include is None or scenario in self.include) and scenario not in self.exclude
