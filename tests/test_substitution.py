"""Placeholders in client commands ({url}, {store}...) and the fields of the bundle templates:
each has one substituter, strict about names it does not know."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import pytest_tlsenv.repro
from pytest_tlsenv import TLSEnv
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.placeholders import PLACEHOLDERS, Translator, check, env_values, substitute
from pytest_tlsenv.probe import PLACEHOLDERS as PROBE_PLACEHOLDERS
from pytest_tlsenv.probe import Probe
from pytest_tlsenv.repro.template import fill, load

pytestmark = pytest.mark.nonroot


def test_the_placeholder_set() -> None:
    # Every placeholder, and the repro.sh variable it becomes: one table for the probe, the
    # repro command line and the bundles.
    assert PLACEHOLDERS == {
        "{url}": "URL",
        "{index_url}": "INDEX_URL",
        "{host}": "ORIGIN_HOST",
        "{proxy_url}": "PROXY_URL",
        "{proxy_auth_url}": "PROXY_AUTH_URL",
        "{port}": "ORIGIN_PORT",
        "{proxy_port}": "PROXY_PORT",
        "{store}": "STORE",
        "{venv}": "VENV_PY",
        "{venvdir}": "VENV",
        "{run}": "RUN",
        "{work}": "WORK",
        "{bundle}": "BUNDLE",
        "{cert_dir}": "CERT_DIR",
        "{ssl_cert_file}": "SCENARIO_SSL_CERT_FILE",
        "{ssl_cert_dir}": "SCENARIO_SSL_CERT_DIR",
    }
    assert set(PROBE_PLACEHOLDERS) < set(PLACEHOLDERS)
    # Every variable is one repro.sh sets: in its templates, in the lines script.py adds (the
    # proxy's), or in the ports.sh server.py writes.
    package = Path(pytest_tlsenv.repro.__file__).parent
    text = "".join(load(n) for n in ("repro.sh", "venv.sh", "drop.sh", "run.sh"))
    text += (package / "script.py").read_text()
    text += (package.parent / "_bundle_server.py").read_text()
    for var in PLACEHOLDERS.values():
        assert f"{var}=" in text, var


def test_substitute_fills_every_placeholder_of_a_word_lazily() -> None:
    made: list[str] = []

    def venv() -> str:
        made.append("venv")
        return "/v/bin/python"

    values = {"{url}": lambda: "https://localhost:1/", "{port}": lambda: "1", "{venv}": venv}
    assert substitute(["curl", "--url={url}", "x:{port}:{port}"], values) == [
        "curl",
        "--url=https://localhost:1/",
        "x:1:1",
    ]
    assert made == []  # {venv} was not asked for: no virtualenv made
    assert substitute(["{venv}", "{venv}"], values) == ["/v/bin/python"] * 2
    assert made == ["venv"]  # made once per substitution


def test_substitute_leaves_other_braces_alone() -> None:
    # Secret references and code in braces are not placeholders; a value is not scanned again.
    values = {"{url}": lambda: "https://h/{port}"}
    words = ["{$API_TOKEN}", "e => {console.error(e.message)}", "{url}"]
    assert substitute(words, values) == [*words[:2], "https://h/{port}"]


def test_unknown_placeholder_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder \{ur\} in '--url=\{ur\}'"):
        substitute(["curl", "--url={ur}"], {"{url}": lambda: "u"})
    with pytest.raises(ConfigError, match=r"unknown placeholder \{ur\}"):
        check(["{ur}"], PLACEHOLDERS)
    # Twin: the known one passes.
    check(["--url={url}"], PLACEHOLDERS)


def test_placeholder_without_a_value_here_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"placeholder \{store\} .* has no value here"):
        substitute(["{store}"], {"{url}": lambda: "u"})
    with pytest.raises(ConfigError, match=r"placeholder \{proxy_url\} .* has no value here"):
        check(["{proxy_url}"], PROBE_PLACEHOLDERS)


def test_probe_refuses_a_placeholder_typo_before_any_run(tmp_path: Path) -> None:
    # It used to reach the client as a literal word, and the run failed for that reason.
    with pytest.raises(ConfigError, match=r"unknown placeholder \{ur\}"):
        Probe(["curl", "{url}", "{ur}"], root=tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_translator_and_substitute_are_inverse(tlsenv: TLSEnv) -> None:
    translate = Translator(tlsenv)
    real = [tlsenv.origin.url, f"--index-url={tlsenv.origin.index_url}", str(tlsenv.store.root)]
    words = [translate(w) for w in real]
    assert words == ["{url}", "--index-url={index_url}", "{store}"]
    assert substitute(words, env_values(tlsenv)) == real
    # Twin: a text with none of the session's values stays as it is.
    assert translate("https://example.test/") == "https://example.test/"


def test_template_fill_is_one_pass_and_strict() -> None:
    assert fill("a=@A@ b=@B@", A="@B@", B="2") == "a=@B@ b=2"  # a value is not a template
    with pytest.raises(KeyError, match="'B'"):
        fill("@A@ @B@", A="1")
    with pytest.raises(KeyError, match="no field for C"):
        fill("@A@", A="1", C="3")


@pytest.mark.parametrize(
    ("name", "new"),
    [
        ("PLACEHOLDERS", "pytest_tlsenv.placeholders.PLACEHOLDERS"),
        ("_Translator", "pytest_tlsenv.placeholders.Translator"),
        ("_substitute", "pytest_tlsenv.placeholders.substitute"),
    ],
)
def test_moved_repro_names_still_import_with_a_deprecation_warning(name: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"repro.{name} is deprecated: use {new}"):
        value = getattr(pytest_tlsenv.repro, name)
    assert value is not None
    if name == "PLACEHOLDERS":
        assert value is PLACEHOLDERS


def test_public_repro_and_probe_names_import_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from pytest_tlsenv.probe import (  # noqa: F401
            SYSTEM_SOURCES,
            TRUST_VARIABLES,
            OpenWatch,
            PairResult,
            ProbeReport,
            Source,
            SourceResult,
            TrustVariable,
            probe,
        )
        from pytest_tlsenv.repro import (  # noqa: F401
            BUNDLE_VALIDITY,
            STORE_BEGIN,
            STORE_END,
            Staged,
            export,
            known_verdicts,
            parse_dockerfile_runs,
            parse_store_commands,
            stage,
        )
    for module in (pytest_tlsenv.repro, pytest_tlsenv.probe):
        for name in module.__all__:
            assert getattr(module, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        pytest_tlsenv.repro.nope  # noqa: B018


def test_deprecated_substitute_keeps_its_signature(tlsenv: TLSEnv) -> None:
    with pytest.warns(DeprecationWarning, match="_substitute is deprecated"):
        old = pytest_tlsenv.repro._substitute
    assert old(["{url}"], tlsenv) == [tlsenv.origin.url]
