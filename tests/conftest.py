"""Fixtures for the project's own tests: pinned clients installed into the cache."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from pytest_tlsenv.clients import pinned
from pytest_tlsenv.errors import ClientUnavailableError

IS_ROOT = os.geteuid() == 0


def _pinned_or_skip(package: str, version: str) -> str:
    try:
        return str(pinned(package, version))
    except ClientUnavailableError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def uv_pinned() -> Callable[[str], str]:
    """``uv_pinned("0.2.29")``: path of that uv, installed once into the cache."""
    return lambda version: _pinned_or_skip("uv", version)


@pytest.fixture(scope="session")
def uv_0_2_28() -> str:
    return _pinned_or_skip("uv", "0.2.28")


@pytest.fixture(scope="session")
def uv_0_2_29() -> str:
    return _pinned_or_skip("uv", "0.2.29")


@pytest.fixture(scope="session")
def uv_0_13_9() -> str:
    return _pinned_or_skip("uv", "0.13.9")
