"""Lint, format, types and layers run as part of the test command (ruff, mypy --strict,
import-linter), with the checks on private names, the version and the changelog."""

from __future__ import annotations

import ast
import email.parser
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    # Installed by the `test` extra next to this interpreter; a missing tool is a failure,
    # not a skip, so a broken install cannot turn this green.
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e . --group test"
    return found


# The project's own paths, not ".": a checkout may hold venvs, caches or a HOME.
PATHS = ["pytest_tlsenv", "tests", "benchmarks", "examples", "conftest.py"]


@pytest.mark.parametrize(
    "args",
    [
        ["ruff", "check", "--no-cache", *PATHS],
        ["ruff", "format", "--no-cache", "--check", *PATHS],
    ],
    ids=["ruff-lint", "ruff-format"],
)
def test_ruff(args: list[str]) -> None:
    proc = subprocess.run(
        [_tool(args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy"), "pytest_tlsenv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- layers (import-linter contracts in pyproject.toml [tool.importlinter]) -------------------


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # --no-cache: nothing is written into the checkout (CI runs this as nobody).
    return subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False
    )


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts: list[dict[str, Any]] = config["contracts"]
    return contracts


def _modules() -> set[str]:
    """The package's direct children: modules and subpackages."""
    pkg = ROOT / "pytest_tlsenv"
    found = {p.stem for p in pkg.glob("*.py") if p.name != "__init__.py"}
    return found | {p.name for p in pkg.iterdir() if (p / "__init__.py").is_file()}


def test_import_contracts_are_kept() -> None:
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout, proc.stdout


def test_every_module_has_a_layer_and_only_the_plugin_imports_pytest() -> None:
    by_id = {c["id"]: c for c in _contracts()}
    placed = {m.strip(" ()") for layer in by_id["layers"]["layers"] for m in layer.split(":")}
    assert placed == _modules()
    # The faces (plugin, cli) sit on top; only the plugin may import pytest: the engine, the
    # CLI and repro bundles run without it.
    sources = {m.removeprefix("pytest_tlsenv.") for m in by_id["pytest-in-faces"]["source_modules"]}
    assert sources == _modules() - {"plugin"}


def _scratch_package(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, importable from ``tmp_path`` (lint-imports puts
    its working directory first on sys.path, ahead of the installed package)."""
    shutil.copytree(
        ROOT / "pytest_tlsenv",
        tmp_path / "pytest_tlsenv",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path / "pytest_tlsenv"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_scratch_copy_keeps_the_contracts(tmp_path: Path) -> None:
    # The twin of the tests below: an untouched copy passes, so their failures are the edits'.
    _scratch_package(tmp_path)
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    pkg = _scratch_package(tmp_path)
    # pki (low) importing the plugin (a face), type-only: it still counts.
    _append(
        pkg / "pki.py",
        "\nfrom typing import TYPE_CHECKING  # noqa: E402\n\n"
        "if TYPE_CHECKING:\n    from .plugin import pytest_configure\n",
    )
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "pytest_tlsenv.pki is not allowed to import pytest_tlsenv.plugin" in proc.stdout
    assert "pytest_tlsenv.pki -> pytest_tlsenv.plugin" in proc.stdout


def test_a_cycle_between_siblings_breaks_the_acyclic_contract(tmp_path: Path) -> None:
    pkg = _scratch_package(tmp_path)
    # faults imports store (same layer, allowed); store importing faults closes a cycle.
    _append(pkg / "store.py", "\nfrom . import faults  # noqa: E402\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "No import cycle between the package's modules BROKEN" in proc.stdout, proc.stdout
    assert "Layers: a module imports only from its own layer or below KEPT" in proc.stdout


def test_an_unplaced_module_and_pytest_below_the_faces_break_contracts(tmp_path: Path) -> None:
    pkg = _scratch_package(tmp_path)
    (pkg / "newcomer.py").write_text('"""Not yet given a layer."""\n')
    _append(pkg / "outcome.py", "\nimport pytest  # noqa: E402\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "newcomer" in proc.stdout, proc.stdout
    assert "pytest_tlsenv.outcome -> pytest" in proc.stdout, proc.stdout


def test_every_part_of_clients_has_a_layer_inside_it() -> None:
    by_id = {c["id"]: c for c in _contracts()}
    placed = {m.strip() for layer in by_id["clients-layers"]["layers"] for m in layer.split(":")}
    pkg = ROOT / "pytest_tlsenv" / "clients"
    assert placed == {p.stem for p in pkg.glob("*.py") if p.name != "__init__.py"}


def test_a_low_part_of_clients_importing_a_high_one_breaks_its_layers(tmp_path: Path) -> None:
    pkg = _scratch_package(tmp_path)
    # client (the lowest part) naming make (the highest), type-only: it still counts.
    _append(
        pkg / "clients" / "client.py",
        "\nif TYPE_CHECKING:\n    from .make import make_client\n",
    )
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Inside clients: a part imports only the parts below it BROKEN" in proc.stdout
    assert "pytest_tlsenv.clients.client -> pytest_tlsenv.clients.make" in proc.stdout
    # The package as a whole still sits where it did among the other modules.
    assert "Layers: a module imports only from its own layer or below KEPT" in proc.stdout


# -- no private name crosses a module boundary --------------------------------------------------

# Known crossings (none today). An entry must match a real import: the test fails on one that
# no longer does, so none lingers.
PRIVATE_IMPORT_EXCEPTIONS: set[tuple[str, str, str]] = set()


def _module_names(pkg: Path) -> dict[Path, str]:
    """Each file of ``pkg`` and its dotted name inside it ("" for the package itself)."""
    names = {}
    for path in pkg.rglob("*.py"):
        parts = path.relative_to(pkg).with_suffix("").parts
        names[path] = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return names


def private_imports(pkg: Path) -> set[tuple[str, str, str]]:
    """(importer, module, name) for every private name one module of ``pkg`` takes from
    another: ``from .x import _name`` and ``x._name`` on an imported module ``x``, inside
    functions too. Submodules (``from . import _nsexec``) are modules, not private names."""
    names = _module_names(pkg)
    modules = set(names.values())
    found: set[tuple[str, str, str]] = set()
    for path, importer in sorted(names.items()):
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        bound: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".") if package else []
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                elif node.module and node.module.split(".")[0] == pkg.name:
                    base = node.module.removeprefix(pkg.name).lstrip(".")
                else:
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}" if base else alias.name
                    if sub in modules:
                        bound[alias.asname or alias.name] = sub
                    elif _private(alias.name) and base != importer:
                        found.add((importer, base, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(f"{pkg.name}.") and alias.asname:
                        bound[alias.asname] = alias.name.removeprefix(f"{pkg.name}.")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and bound.get(node.value.id, importer) != importer
                and _private(node.attr)
            ):
                found.add((importer, bound[node.value.id], node.attr))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_across_modules() -> None:
    found = private_imports(ROOT / "pytest_tlsenv")
    assert found - PRIVATE_IMPORT_EXCEPTIONS == set()
    assert PRIVATE_IMPORT_EXCEPTIONS - found == set(), "drop the exceptions that are gone"


def test_private_import_scan_sees_every_form(tmp_path: Path) -> None:
    # Twin of the test above: each way of reaching a private name is found, a submodule is not.
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_helper.py").write_text("_SECRET = 1\n")
    (pkg / "low.py").write_text("_LIMIT = 1\n\ndef _hidden() -> int:\n    return 1\n")
    (pkg / "high.py").write_text(
        "from . import _helper, low\n"
        "from .low import _LIMIT\n\n"
        "def f() -> int:\n"
        "    from pkg.low import _hidden\n\n"
        "    return low._hidden() + _hidden() + _LIMIT + _helper._SECRET\n"
    )
    # In a subpackage: a private submodule is a module; a private name two levels up is not.
    (pkg / "sub").mkdir()
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "_tmpl.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from . import _tmpl\nfrom ..low import _LIMIT\n")
    assert private_imports(pkg) == {
        ("high", "low", "_LIMIT"),
        ("high", "low", "_hidden"),
        ("high", "_helper", "_SECRET"),
        ("sub.a", "low", "_LIMIT"),
    }


# -- one version, and a changelog that names it ----------------------------------------------


def _wheel_version(tmp_path: Path, version: str | None = None) -> str:
    """Build a wheel of a copy of the project offline, as a release would (the copy: a build
    must not need write access to the checkout), with ``__version__`` set to ``version`` if
    given, and return the version its metadata gives installers."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "pytest_tlsenv", src / "pytest_tlsenv", ignore=_BUILD_JUNK)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    if version is not None:
        init = src / "pytest_tlsenv" / "_version.py"
        text, n = re.subn(
            r'(?m)^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text()
        )
        assert n == 1, "__version__ is one plain assignment in _version.py"
        init.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--no-cache-dir", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        headers = email.parser.HeaderParser().parsestr(zf.read(meta).decode())
    assert wheel.name.startswith(f"pytest_tlsenv-{headers['Version']}-")
    return str(headers["Version"])


def test_wheel_metadata_carries_the_package_version(tmp_path: Path) -> None:
    import pytest_tlsenv

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"], "the version lives in _version.py only"
    assert config["project"]["dynamic"] == ["version"]
    assert _wheel_version(tmp_path) == pytest_tlsenv.__version__


def test_wheel_version_follows_init_py(tmp_path: Path) -> None:
    # The twin: a different _version.py is what the wheel says, so there is no second copy.
    assert _wheel_version(tmp_path, "9.8.7") == "9.8.7"


_BUILD_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc")


def _built_wheel(tmp_path: Path, junk: bool = False) -> Path:
    """A wheel of the project built offline; with ``junk``, a copy of a module rides along."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "pytest_tlsenv", src / "pytest_tlsenv", ignore=_BUILD_JUNK)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    if junk:
        shutil.copy(src / "pytest_tlsenv" / "errors.py", src / "pytest_tlsenv" / "errors_copy.py")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--no-cache-dir", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return wheel


def _check(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, check=False, timeout=120
    )


def test_wheel_passes_the_index_checks(tmp_path: Path) -> None:
    wheel = _built_wheel(tmp_path)
    twine = _check("twine", "check", "--strict", str(wheel))
    assert twine.returncode == 0, twine.stdout + twine.stderr
    contents = _check("check_wheel_contents", str(wheel))
    assert contents.returncode == 0, contents.stdout + contents.stderr
    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        headers = email.parser.HeaderParser().parsestr(zf.read(meta).decode())
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist())
    assert headers["License-Expression"] == "MIT"
    assert headers.get_all("Project-URL"), "Project-URLs are in the metadata"
    classifiers = headers.get_all("Classifier") or []
    assert "Development Status :: 3 - Alpha" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    # Development tools are a dependency group, never an extra users can pull in.
    requires = " ".join(headers.get_all("Requires-Dist") or [])
    for tool in ("ruff", "mypy", "pytest-benchmark", "hypothesis"):
        assert tool not in requires, f"{tool} is published to users"


def test_a_wheel_with_a_duplicate_file_fails_check_wheel_contents(tmp_path: Path) -> None:
    # The twin: the checker really looks inside the wheel.
    wheel = _built_wheel(tmp_path, junk=True)
    contents = _check("check_wheel_contents", str(wheel))
    assert contents.returncode != 0
    assert "W002" in contents.stdout + contents.stderr, contents.stdout  # duplicate files


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    readme = (ROOT / "README.md").read_text()
    (command,) = [
        line for line in readme.splitlines() if line.startswith("python3 -m venv .venv") and
        "pytest -n 2" in line
    ]  # fmt: skip
    install, _, run = command.rpartition(" && ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert install in ci.splitlines(), "the README's install line, as .ci/run runs it"
    assert f"run_pytest {run}" in ci.splitlines()


# "## [Unreleased]" or "## [1.2.3] - 2026-11-24": Keep a Changelog's release headings.
_RELEASE = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$")
_KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def changelog_releases(text: str) -> dict[str, set[str]]:
    """Release name -> the kinds of change it lists; a ValueError for anything else at
    heading level 2 or 3, a release without a date, or a kind outside a release."""
    releases: dict[str, set[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            m = _RELEASE.match(line)
            if m is None or (m["name"] != "Unreleased") != bool(m["date"]):
                raise ValueError(f"not a release heading: {line!r}")
            current = m["name"]
            releases[current] = set()
        elif line.startswith("### "):
            kind = line.removeprefix("### ").strip()
            if current is None or kind not in _KINDS:
                raise ValueError(f"not a kind of change in a release: {line!r}")
            releases[current].add(kind)
    return releases


def test_changelog_has_unreleased_and_the_current_version() -> None:
    import pytest_tlsenv

    releases = changelog_releases((ROOT / "CHANGELOG.md").read_text())
    assert next(iter(releases)) == "Unreleased"
    assert releases["Unreleased"], "Unreleased lists its changes by kind"
    assert pytest_tlsenv.__version__ in releases


@pytest.mark.parametrize(
    "text",
    [
        "## Unreleased\n### Added\n",  # no brackets
        "## [0.1.0]\n### Added\n",  # a release without its date
        "## [Unreleased]\n### Improved\n",  # not a kind Keep a Changelog has
        "### Added\n",  # a kind outside any release
    ],
)
def test_changelog_parser_refuses_what_is_not_keep_a_changelog(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        changelog_releases(text)


# -- docs/ stands alone -------------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A tracker citation (the word for a tracker item followed by its number, "#N", "gh-N") or a
# path outside the checkout.
# The project's working notes (design, style, client facts) are not part of the checkout either.
_OUTSIDE = re.compile(
    r"\bissues? \d+|(?<![\w/])#\d+\b|\bgh-\d+|(?<![\w.])/(?:work|home|root|tmp)/"
    r"|\b(?:DESIGN|STYLE|CLIENT-FACTS)\.md\b"
)


def doc_problems(root: Path) -> list[str]:
    """Links of ``root``'s README.md, docs/*.md and CHANGELOG.md that lead nowhere or out of
    ``root``, and citations of trackers or of paths outside the checkout."""
    problems = []
    pages = [root / "README.md", *(root / "docs").glob("*.md"), root / "CHANGELOG.md"]
    for doc in sorted(p for p in pages if p.exists()):
        text = doc.read_text()
        for m in _OUTSIDE.finditer(text):
            problems.append(f"{doc.name}: cites {m.group(0)!r}")
        for target in _LINK.findall(text):
            if re.match(r"https?://", target):
                if re.search(r"/(issues|pull)/\d+", target):
                    problems.append(f"{doc.name}: cites a tracker: {target}")
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(root.resolve()) or not path.exists():
                problems.append(f"{doc.name}: broken or outside link {target}")
    return problems


def test_docs_link_inside_the_repo_and_cite_no_tracker() -> None:
    assert doc_problems(ROOT) == []
    index = (ROOT / "docs" / "README.md").read_text()
    linked = {Path(t).name for t in _LINK.findall(index)}
    assert {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"} <= linked


# The citation the check must find, built here so this file does not itself read as one.
_CITED = "iss" + "ue 12"
_NOTES = "DES" + "IGN.md"


def test_doc_check_finds_broken_links_and_citations(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "CHANGELOG.md").write_text(f"## [Unreleased]\n- fixed {_CITED} and #7\n")
    (tmp_path / "README.md").write_text(f"The contract is {_NOTES}; see [a](docs/a.md).\n")
    (tmp_path / "docs" / "a.md").write_text(
        "[ok](../CHANGELOG.md) [gone](b.md) [out](../../x.md) see /work/notes/x.md "
        "[t](https://github.com/o/r/issues/3)\n"
    )
    assert doc_problems(tmp_path) == [
        f"CHANGELOG.md: cites '{_CITED}'",
        "CHANGELOG.md: cites '#7'",
        f"README.md: cites '{_NOTES}'",
        "a.md: cites '/work/'",
        "a.md: broken or outside link b.md",
        "a.md: broken or outside link ../../x.md",
        "a.md: cites a tracker: https://github.com/o/r/issues/3",
    ]


# -- the shell a reproduction bundle ships ------------------------------------------------------

SHELLCHECK = shutil.which("shellcheck")
needs_shellcheck = pytest.mark.skipif(
    SHELLCHECK is None, reason="shellcheck is not installed (Debian: apt-get install shellcheck)"
)


def _bundle_script(trust: str) -> str:
    """repro.sh as export writes it, for a bundle with every optional part: a proxy with
    credentials, a secret, a {venv}, a stand-in run, a heredoc store command."""
    from pytest_tlsenv.repro.common import Run
    from pytest_tlsenv.repro.script import repro_sh

    data = {
        "scenario": {"name": "it's", "description": "quotes ' \" $HOME `id` and @NAME@"},
        "expected": ["OK", "REJECTED"],
        "servers": {
            "origin": {"host": "localhost"},
            "proxy": {"mode": "auth", "credentials": 'u:p$"w'},
        },
        "leak_is_bad": True,
        "spec": {"timeout": 20},
        "secrets": ["API_TOKEN"],
        "client": {"name": "uv", "pip": "uv==0.2.29"},
        "trust": trust,
        "system_paths": trust == "system",
        "generator": "pytest-tlsenv test",
    }
    runs = [
        Run(
            ["uv", "pip", "install", "--python", "{venv}", "--index-url", "{index_url}", "x"],
            {"SSL_CERT_FILE": "{store}/etc/ssl/cert.pem", "HTTPS_PROXY": "{proxy_auth_url}"},
            "CRASHED",
            "panic",
            101,
            "",
        ),
        Run(["python3", "-c", "print(1)", "{url}", "{$API_TOKEN}"], {}, "", "", None, "", True),
    ]
    commands = [
        'mkdir -p "$STORE/etc/ssl/certs"',
        'cp "$CERTS/trusted.pem" "$STORE/etc/ssl/certs/ca-certificates.crt"',
        "cat > \"$STORE/etc/ssl/x.pem\" <<'EOF'\n-----BEGIN\nEOF",
    ]
    return repro_sh(data, runs, commands)


def _shellcheck(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SHELLCHECK is not None
    path = tmp_path / "repro.sh"
    path.write_text(script)
    return subprocess.run(
        [SHELLCHECK, "--shell=sh", "--severity=style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@needs_shellcheck
@pytest.mark.parametrize("trust", ["env", "system", "flags"])
def test_repro_sh_passes_shellcheck(tmp_path: Path, trust: str) -> None:
    script = _bundle_script(trust)
    assert f"# Trust mode: {trust}: " in script
    proc = _shellcheck(script, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_shellcheck
def test_shellcheck_finds_what_it_should(tmp_path: Path) -> None:
    # Twin: the check is not green by construction; an unquoted expansion is reported.
    script = _bundle_script("env").replace('rm -rf "$WORK"', "rm -rf $WORK")
    proc = _shellcheck(script, tmp_path)
    assert proc.returncode == 1
    assert "SC2086" in proc.stdout
