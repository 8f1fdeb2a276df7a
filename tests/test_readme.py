"""The Python examples of the README and of docs/ run as written, with the outcomes they claim.

Each ```python block is taken from README.md or a docs/*.md page itself (so an edit there is
tested here) and run by pytester in a fresh directory, as a user would paste it.
``uv_0_2_29`` is "your fixture giving a pinned uv": the conftest written here provides it
from the cache. The README's first two examples are followed as a user would: saved under
the file name the README gives, run with a bare ``pytest``, and the grid the README shows
must be in the output.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from commands import UV_0_2_29_CONFTEST, keep_client_cache

from pytest_tlsenv.scenarios import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks() -> dict[str, str]:
    """The ```python blocks of README.md and docs/*.md, by the name of their first test."""
    named: dict[str, str] = {}
    for page in [README, *DOCS]:
        for block in _BLOCK.findall(page.read_text()):
            first = re.search(r"^def (test_\w+)", block, re.MULTILINE)
            assert first, f"a python block of {page.name} without a test function:\n{block}"
            assert first.group(1) not in named, f"two blocks start with {first.group(1)}"
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
    assert set(BLOCKS) == {"test_download", "test_curl", "test_uv", "test_store",
                           "test_uv_at_the_real_path", "test_where_requests_looks",
                           "test_uv_regression_is_0_2_29"}  # fmt: skip


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


# -- the README's user path ---------------------------------------------------------------------


def user_example(name: str) -> tuple[str, str, list[str]]:
    """The README's example ``name``: the file name it says to save it as, its source, and
    the grid rows the README shows after it (the ```text block that follows)."""
    text = README.read_text()
    source = BLOCKS[name]
    start = text.index(source)
    saved = re.findall(r"Save as\s+`(test_\w+\.py)`", text[:start])
    assert saved, f"the README does not say where to save {name}"
    shown = re.search(r"^```text\n(.*?)^```$", text[start:], re.MULTILINE | re.DOTALL)
    assert shown, f"the README shows no output after {name}"
    rows = [" ".join(line.split()) for line in shown.group(1).splitlines() if line.strip()]
    return saved[-1], source, rows


def shows(rows: list[str], output: str) -> bool:
    """Whether ``rows`` appear in ``output`` one after the other (spacing aside)."""
    lines = [" ".join(line.split()) for line in output.splitlines()]
    return any(lines[i : i + len(rows)] == rows for i in range(len(lines)))


def run_user_example(pytester: pytest.Pytester, filename: str, source: str) -> pytest.RunResult:
    pytester.makefile(".py", **{filename.removesuffix(".py"): source})
    with pytest.MonkeyPatch.context() as mp:
        keep_client_cache(mp)
        mp.setenv("COLUMNS", "80")
        # The user types `pytest`: a process of its own (in-process runs share the suite's
        # imported requests, whose module state another in-process run may have replaced).
        # No cache directory is left in their project by the test.
        return pytester.runpytest_subprocess("-p", "no:cacheprovider")


@pytest.mark.parametrize("name", ["test_download", "test_curl"])
def test_the_readme_user_path(pytester: pytest.Pytester, name: str) -> None:
    filename, source, rows = user_example(name)
    result = run_user_example(pytester, filename, source)
    # good and two faults, each with a verdict in its expected set, as the README shows them.
    result.assert_outcomes(passed=3)
    assert rows[0] == f"scenario {name}"
    assert len(rows) == 4, rows
    assert shows(rows, result.stdout.str()), result.stdout.str()


def test_the_user_path_catches_a_client_that_is_not_robust(pytester: pytest.Pytester) -> None:
    # The twin: the same CLI example with curl told to trust anything (-k). The expired leaf
    # is accepted, outside its expected set: that run fails, and the grid says where.
    filename, source, rows = user_example("test_curl")
    assert '"-fsS"' in source
    result = run_user_example(pytester, filename, source.replace('"-fsS"', '"-fsSk"'))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: expected {REJECTED}, got OK*"])
    assert not shows(rows, result.stdout.str())
    assert shows(["expired OK!"], result.stdout.str()), result.stdout.str()


def test_shows_finds_rows_in_order_only() -> None:
    out = "x\nscenario   t\ngood  OK\nexpired   REJECTED\n"
    assert shows(["scenario t", "good OK", "expired REJECTED"], out)
    assert not shows(["good OK", "scenario t"], out)
    assert not shows(["good REJECTED"], out)


# -- what the README says stays true --------------------------------------------------------------


def test_the_readme_catalogue_names_every_scenario() -> None:
    text = README.read_text()
    section = text[text.index("\n## Catalogue\n") :]
    section = section[: section.index("\n## ", 1)]
    named = re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE)
    assert named == list(CATALOGUE)


_SIGNATURE = re.compile(r"^- `\.(\w+)\((.*?)\)`:", re.MULTILINE | re.DOTALL)


def documented_signatures(text: str) -> dict[str, str]:
    """``- `.name(params)`:`` bullets of the API page: method name -> its parameters."""
    return {m[1]: " ".join(m[2].split()) for m in _SIGNATURE.finditer(text)}


def test_the_api_page_gives_tlsenv_methods_their_real_signatures() -> None:
    import inspect

    from pytest_tlsenv import TLSEnv

    documented = documented_signatures((ROOT / "docs" / "api.md").read_text())
    assert {"run", "call", "client", "repro", "probe"} <= set(documented)
    for name, params in documented.items():
        sig = inspect.signature(getattr(TLSEnv, name))
        real = []
        for p in list(sig.parameters.values())[1:]:
            if p.kind is p.KEYWORD_ONLY and "*" not in real:
                real.append("*")
            real.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
        assert params == ", ".join(real), name


def test_the_signature_check_sees_a_missing_parameter() -> None:
    # The twin: the old text, which left out env= and trust=, does not pass for the real one.
    old = documented_signatures("- `.call(fn, *, timeout=None)`: x\n")
    assert old == {"call": "fn, *, timeout=None"}
    assert old["call"] != documented_signatures((ROOT / "docs" / "api.md").read_text())["call"]


# -- the install section: autoloading, turning it off, loading it by name -----------------------

_USES_IT = """
def test_it(tlsenv):
    assert tlsenv.scenario.name == "good"
"""


def test_the_plugin_loads_by_itself_and_p_no_tlsenv_turns_it_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_USES_IT)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    off = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:tlsenv")
    off.assert_outcomes(errors=1)
    off.stdout.fnmatch_lines(["*fixture 'tlsenv' not found*"])


_SPELLINGS = {"entry point": '["tlsenv"]', "module": '["pytest_tlsenv.plugin"]'}


@pytest.mark.parametrize("how", ["-p tlsenv", *_SPELLINGS])
def test_without_autoloading_the_documented_spellings_load_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(_USES_IT)
    args = ["-p", "no:cacheprovider"]
    # The twin first: with autoloading off and nothing named, the fixture does not exist.
    pytester.runpytest_subprocess(*args).assert_outcomes(errors=1)
    if how in _SPELLINGS:
        pytester.makeconftest(f"pytest_plugins = {_SPELLINGS[how]}\n")
        assert f"`pytest_plugins = {_SPELLINGS[how]}`" in README.read_text()
    else:
        args += ["-p", "tlsenv"]
        assert "`pytest -p tlsenv`" in README.read_text()
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)


@pytest.mark.parametrize("how", list(_SPELLINGS))
def test_with_autoloading_both_spellings_register_it_once(
    pytester: pytest.Pytester, how: str
) -> None:
    pytester.makeconftest(f"pytest_plugins = {_SPELLINGS[how]}\n")
    pytester.makepyfile(_USES_IT)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_every_option_and_ini_key_is_in_the_api_page(pytester: pytest.Pytester) -> None:
    helptext = pytester.runpytest("--help").stdout.str()
    options = set(re.findall(r"--tlsenv-[a-z-]+", helptext))
    inis = set(re.findall(r"^\s+(tlsenv_[a-z_]+) \(", helptext, re.MULTILINE))
    assert "--tlsenv-timeout" in options
    assert "tlsenv_timeout" in inis
    api = (ROOT / "docs" / "api.md").read_text()
    assert [name for name in sorted(options | inis) if f"`{name}" not in api] == []
