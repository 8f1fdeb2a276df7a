"""One selection syntax for scenarios and clients, wherever a user names them.

``--tlsenv-scenarios``, ``survey --scenarios/--clients``, ``bisect`` and ``--tlsenv-client``
all read the same thing: names and groups, comma- or space-separated (one string, or the
several words argparse collects), ``-name`` to drop one, and for clients ``name@version`` to
pin a release. Unknown names are a :class:`ConfigError` with a "did you mean" suggestion.

Plain data in, plain data out; the catalogue is imported only when a selection is expanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import ConfigError

# A version as package indexes spell it (PEP 440 and the usual release tags): no spaces, no
# separators of this syntax.
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]*")


def split_tokens(values: str | Iterable[str]) -> list[str]:
    """The words of a selection: ``"a,b c"`` and ``["a,b", "c"]`` both give ``[a, b, c]``."""
    texts = [values] if isinstance(values, str) else list(values)
    return [t for text in texts for t in re.split(r"[,\s]+", text) if t]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate, or ``""`` when none is close."""
    import difflib  # on a miss only: the plugin's import stays cheap

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, word: str, candidates: Iterable[str]) -> ConfigError:
    """The one wording of "no such name": the word, a suggestion, and where to look."""
    names = list(candidates)
    return ConfigError(f"unknown {kind} {word!r}{did_you_mean(word, names)}")


def keep_and_drop(
    values: str | Iterable[str],
    groups: Mapping[str, Sequence[str]],
    names: Sequence[str],
    *,
    kind: str,
) -> tuple[set[str] | None, set[str]]:
    """The names a selection keeps (None: no word selects, so everything) and those it drops.

    Words select a group or one name; ``-word`` drops it. A word that is neither a group nor a
    name is a ConfigError naming it, with the closest match.
    """
    keep: set[str] | None = None
    drop: set[str] = set()
    for token in split_tokens(values):
        negated = token.startswith("-")
        word = token[1:] if negated else token
        if word in groups:
            found = set(groups[word])
        elif word in names:
            found = {word}
        else:
            raise unknown_name(kind, word, [*groups, *names])
        if negated:
            drop |= found
        else:
            keep = (keep or set()) | found
    return keep, drop


def resolve_names(
    values: str | Iterable[str],
    groups: Mapping[str, Sequence[str]],
    names: Sequence[str],
    *,
    kind: str,
) -> list[str]:
    """Expand a selection against ``groups`` and ``names``, in ``names``' order.

    Words select a group or one name; ``-word`` drops it. A selection of drops only starts from
    every name. Empty input selects everything. A word that is neither a group nor a name is a
    ConfigError naming it, with the closest match.
    """
    keep, drop = keep_and_drop(values, groups, names, kind=kind)
    return [n for n in names if (keep is None or n in keep) and n not in drop]


def scenario_groups() -> dict[str, tuple[str, ...]]:
    """Every scenario group name with its scenarios, plus ``all``."""
    from .scenarios import CATALOGUE, GROUPS

    groups: dict[str, tuple[str, ...]] = {g: tuple(ns) for g, ns in GROUPS.items()}
    groups["all"] = tuple(CATALOGUE)
    return groups


def parse_scenarios(values: str | Iterable[str]) -> list[str]:
    """Catalogue names for a scenario selection (``store,-fifo``, ``good mitm-untrusted``)."""
    from .scenarios import CATALOGUE

    return resolve_names(values, scenario_groups(), list(CATALOGUE), kind="scenario or group")


@dataclass(frozen=True)
class ClientRef:
    """One client a user named: a preset (or label) and, with ``name@version``, a release."""

    name: str
    version: str | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_client(token: str, known: Iterable[str] | None = None) -> ClientRef:
    """``uv`` or ``uv@0.2.29``; with ``known``, an unknown name is a ConfigError."""
    name, at, version = token.partition("@")
    if not name:
        raise ConfigError(f"client {token!r}: a name comes before '@'")
    if at and not _VERSION_RE.fullmatch(version):
        raise ConfigError(f"client {token!r}: {version!r} is not a version (e.g. uv@0.2.29)")
    if known is not None:
        names = list(known)
        if name not in names:
            raise unknown_name("client", name, names)
    return ClientRef(name, version if at else None)


def parse_clients(values: str | Iterable[str], known: Iterable[str]) -> list[ClientRef]:
    """Clients for a selection (``curl,wget``, ``uv@0.2.28 uv@0.2.29``), in the given order,
    each once. ``-name`` drops a client from the known ones (``-node`` alone: all but node)."""
    names = list(known)
    tokens = split_tokens(values)
    picked: list[ClientRef] = []
    dropped: set[str] = set()
    for token in tokens:
        if token.startswith("-"):
            dropped.add(parse_client(token[1:], names).name)
        else:
            ref = parse_client(token, names)
            if ref not in picked:
                picked.append(ref)
    if not picked and tokens:
        picked = [ClientRef(n) for n in names]
    return [r for r in picked if r.name not in dropped]
