"""``python -m pytest_tlsenv cache``: what the pinned-client cache holds, and ``--clear``."""

from __future__ import annotations

import argparse
from typing import Any

from ..clients import cache_dir, cache_entries, clear_cache

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Add the ``cache`` subcommand to ``python -m pytest_tlsenv``."""
    p = sub.add_parser(
        "cache",
        help="the pinned-client cache: sizes, or --clear",
        description="List the pinned environments (one per package, version and index) in "
        "the cache with their sizes; --clear removes them all.",
    )
    p.add_argument("--clear", action="store_true", help="remove every pinned environment")
    p.set_defaults(func=_cache)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def _cache(args: argparse.Namespace) -> int:
    base = cache_dir()
    if args.clear:
        count, freed = clear_cache()
        print(f"cache {base}: removed {count} pinned environment(s), {_size(freed)} freed")
        return 0
    entries = cache_entries()
    for path, size in entries:
        print(f"{_size(size):>10}  {path.relative_to(base)}")
    total = sum(s for _, s in entries)
    print(f"cache {base}: {len(entries)} pinned environment(s), {_size(total)}")
    return 0
