"""Client commands the tests share (the tests directory is on sys.path, see conftest.py)."""

from __future__ import annotations

from pytest_tlsenv import TLSEnv


def uv_pip_install_argv(env: TLSEnv, uv: str) -> list[str]:
    """The seed report's command: install the origin's probe package into a fresh venv."""
    return [uv, "pip", "install", "--python", env.venv(), "--index-url", env.origin.index_url,
            "tlsenv-probe"]  # fmt: skip
