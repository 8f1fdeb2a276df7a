"""``python -m pytest_tlsenv``: see :mod:`pytest_tlsenv.cli`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
