"""Which presets there are: the registry, plugins' entry points, and lookup by name."""

from __future__ import annotations

import importlib.metadata
from functools import cache

from .._checks import did_you_mean
from ..errors import ConfigError
from .preset import Preset

__all__ = ["ENTRY_POINT_GROUP", "PRESETS", "get_preset", "presets", "register"]

PRESETS: dict[str, Preset] = {}


ENTRY_POINT_GROUP = "pytest_tlsenv.presets"


def register(preset: Preset) -> Preset:
    """Add (or replace) a preset, e.g. from a conftest.py or a plugin's ``pytest_configure``.

    Installed packages can also declare presets without importing anything at startup::

        [project.entry-points."pytest_tlsenv.presets"]
        myclient = "mypkg.tlsenv:PRESET"      # a Preset, or a callable returning Presets
    """
    PRESETS[preset.name] = preset
    return preset


@cache
def _load_entry_points() -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            found = obj() if callable(obj) and not isinstance(obj, Preset) else obj
            items = [found] if isinstance(found, Preset) else list(found)
        except Exception as e:  # a broken third-party preset is named in the error
            raise ConfigError(f"preset entry point {ep.name} = {ep.value} failed: {e}") from e
        for item in items:
            if not isinstance(item, Preset):
                raise ConfigError(
                    f"preset entry point {ep.name} = {ep.value} gave {item!r}, not a Preset"
                )
            register(item)


def presets() -> dict[str, Preset]:
    """Every preset: the built-in ones, registered ones, and entry-point ones (loaded once)."""
    _load_entry_points()
    return PRESETS


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or a ConfigError listing the known ones."""
    known = presets()
    try:
        return known[name]
    except KeyError:
        raise ConfigError(
            f"unknown client {name!r}; known presets: {', '.join(sorted(known))}"
            f"{did_you_mean(name, known)}"
        ) from None
