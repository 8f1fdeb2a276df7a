"""The bundle's text files (repro.sh's parts, the Dockerfile, ISSUE.md) are package data under
``templates/``, with ``@NAME@`` fields that :func:`fill` replaces in one pass."""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["fill", "load", "render"]

FIELD = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def load(name: str) -> str:
    """The text of ``templates/<name>``."""
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def fill(template: str, **values: str) -> str:
    """``template`` with each ``@NAME@`` replaced by ``values["NAME"]``.

    One pass: a value is never scanned for fields itself (a scenario's description may contain
    ``@``). A field without a value, or a value without a field, is a KeyError: a template and
    its caller that drift apart fail loudly instead of shipping ``@NAME@`` in a script.
    """
    used: set[str] = set()

    def one(m: re.Match[str]) -> str:
        used.add(m.group(1))
        return values[m.group(1)]

    text = FIELD.sub(one, template)
    unused = set(values) - used
    if unused:
        raise KeyError(f"no field for {', '.join(sorted(unused))} in the template")
    return text


def render(name: str, **values: str) -> str:
    """``templates/<name>`` filled with ``values``."""
    return fill(load(name), **values)
