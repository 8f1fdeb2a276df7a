"""Client commands the tests share (the tests directory is on sys.path, see conftest.py)."""

from __future__ import annotations

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.clients import cache_dir


def uv_pip_install_argv(env: TLSEnv, uv: str) -> list[str]:
    """The seed report's command: install the origin's probe package into a fresh venv."""
    return [uv, "pip", "install", "--python", env.venv(), "--index-url", env.origin.index_url,
            "tlsenv-probe"]  # fmt: skip


# A conftest for pytester runs of documented examples: the user's "fixture giving a pinned uv".
UV_0_2_29_CONFTEST = """
import pytest
from pytest_tlsenv.clients import pinned
from pytest_tlsenv.errors import ClientUnavailableError

@pytest.fixture(scope="session")
def uv_0_2_29():
    try:
        return str(pinned("uv", "0.2.29"))
    except ClientUnavailableError as e:
        pytest.skip(str(e))
"""


def keep_client_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester moves HOME: keep the suite's client cache (uv is installed once per machine)."""
    monkeypatch.setenv("TLSENV_CACHE_DIR", str(cache_dir()))
