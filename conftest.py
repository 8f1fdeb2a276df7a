"""Project-wide test configuration for pytest-tlsenv's own suite.

The plugin itself is loaded through its ``pytest11`` entry point (the package is installed in
the test venv), exactly as users get it.
"""

from __future__ import annotations

import os
import sys

import pytest

# pytester's in-process runs snapshot sys.modules and drop what an inner run imported; the
# cryptography Rust bindings cannot be imported twice in one process (isinstance checks then
# fail across the two copies), so the engine is imported here, outside any inner run.
import pytest_tlsenv.tlsenv  # noqa: F401

# Around every test of this suite: the leak checker and the loopback-only guard.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))
pytest_plugins = ["leakcheck", "netguard"]


def pytest_report_header(config: pytest.Config) -> str:
    mode = (
        "root (subprocess clients run without any capability)"
        if os.geteuid() == 0
        else f"non-root uid {os.geteuid()}"
    )
    return f"pytest-tlsenv self-test: running as {mode}"
