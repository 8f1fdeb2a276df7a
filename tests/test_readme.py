"""The README's Python examples run as written, with the outcomes the README claims.

Each ```python block is taken from README.md itself (so an edit there is tested here) and run
by pytester in a fresh directory, as a user would paste it. ``uv_0_2_29`` is "your fixture
giving a pinned uv": the conftest written here provides it from the cache.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from commands import UV_0_2_29_CONFTEST, keep_client_cache

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> dict[str, str]:
    """README's ```python blocks, by the name of their first test function."""
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)
    named = {}
    for block in blocks:
        first = re.search(r"^def (test_\w+)", block, re.MULTILINE)
        assert first, f"a README python block without a test function:\n{block}"
        named[first.group(1)] = block
    return named


BLOCKS = python_blocks()


def run_block(pytester: pytest.Pytester, name: str, *args: str) -> pytest.RunResult:
    with pytest.MonkeyPatch.context() as mp:
        keep_client_cache(mp)
        return _run_block(pytester, name, *args)


def _run_block(pytester: pytest.Pytester, name: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(UV_0_2_29_CONFTEST)
    source = BLOCKS[name]
    if "import pytest" not in source:
        source = "import pytest\n\n" + source
    pytester.makepyfile(test_readme_example=source)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_every_block_is_checked_here() -> None:
    assert set(BLOCKS) == {"test_uv", "test_store", "test_uv_at_the_real_path",
                           "test_where_requests_looks", "test_uv_regression_is_0_2_29"}  # fmt: skip


@pytest.mark.slow
def test_five_lines_instead_of_a_docker_image(pytester: pytest.Pytester) -> None:
    result = run_block(pytester, "test_uv")
    # As the comment there says: test_uv fails because CRASHED is not in {OK}; the others pass.
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: expected {OK}, got CRASHED*"])
    assert "panicked at" in result.stdout.str()


def test_matrix_examples_collect_the_ids_the_readme_names(pytester: pytest.Pytester) -> None:
    result = run_block(pytester, "test_store", "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    ids = [line.split("::", 1)[1] for line in result.stdout.lines if "::" in line]
    assert "test_store[unreadable-file]" in ids
    assert [i for i in ids if i.startswith("test_both[")] == [
        "test_both[good]",
        "test_both[good@shadow]",
        "test_both[unreadable-file]",
        "test_both[unreadable-file@shadow]",
    ]
    assert "test_shadow[unreadable-file@shadow]" in ids
    # And they run: each point builds its store (the bodies assert nothing themselves).
    result = run_block(pytester, "test_store", "-k", "test_both or fifo")
    result.assert_outcomes(passed=6)


@pytest.mark.slow
def test_system_paths_example_crashes_uv_at_the_real_path(pytester: pytest.Pytester) -> None:
    result = run_block(pytester, "test_uv_at_the_real_path")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: expected {OK}, got CRASHED*"])
    assert "panicked at" in result.stdout.str()


def test_probe_example_passes(pytester: pytest.Pytester) -> None:
    run_block(pytester, "test_where_requests_looks").assert_outcomes(passed=1)


@pytest.fixture(scope="session")
def users_cache() -> str:
    """The client cache as the user's HOME finds it (session scope: before pytester moves
    HOME for the test)."""
    from pytest_tlsenv.clients import cache_dir

    return str(cache_dir())


@pytest.mark.slow
@pytest.mark.network
def test_bisect_recipe_finds_0_2_29(users_cache: str, pytester: pytest.Pytester) -> None:
    import os

    from pytest_tlsenv.clients import is_pinned

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TLSENV_CACHE_DIR", users_cache)
        visited = ("0.2.25", "0.2.35", "0.2.30", "0.2.28", "0.2.29")
        if os.environ.get("TLSENV_NETWORK_TESTS") == "0" and not all(
            is_pinned("uv", v) for v in visited
        ):
            pytest.skip("TLSENV_NETWORK_TESTS=0 and uv 0.2.25..0.2.35 not in the cache")
        pytester.makepyfile(test_readme_example=BLOCKS["test_uv_regression_is_0_2_29"])
        # In a subprocess: the recipe lists the releases on PyPI, which this suite's
        # loopback guard forbids in-process.
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    if "unreachable" in result.stdout.str():
        pytest.skip("the package index is unreachable")
    result.assert_outcomes(passed=1)
