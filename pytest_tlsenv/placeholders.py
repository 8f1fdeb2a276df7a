"""Placeholders in client commands (``{url}``, ``{store}``, ``{venv}``...): one table, one
substituter (placeholder -> this scenario's value) and one translator (a session's value ->
placeholder, for reproduction bundles).

The probe and ``python -m pytest_tlsenv repro`` take a command whose words name the scenario's
addresses and paths by placeholder; a bundle's ``repro.sh`` turns each placeholder into one of
its own variables (:data:`PLACEHOLDERS`). A word may hold several placeholders
(``--index-url={index_url}``). A ``{name}`` that is no placeholder is refused rather than
passed on: a typo (``{ur}``) would otherwise reach the client as a literal address.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .pki import TEST_DOMAIN

if TYPE_CHECKING:
    from typing import Any

    from ._types import EnvView

    #: What the placeholders read of a scenario: a TLSEnv, structurally (no upward import).
    ScenarioEnv = EnvView[Any, Any]

__all__ = ["PLACEHOLDERS", "Translator", "check", "env_values", "substitute", "trust_paths"]

#: Every placeholder a command may contain, and the repro.sh variable each one becomes.
PLACEHOLDERS: dict[str, str] = {
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
    # The scenario's trust paths: the store's own bundle and cert dir (healthy, as the layout
    # has them), and what SSL_CERT_FILE / SSL_CERT_DIR name here (faults and fallback stores
    # included), so `curl --cacert {ssl_cert_file}` needs no `sh -c` to read a variable.
    "{bundle}": "BUNDLE",
    "{cert_dir}": "CERT_DIR",
    "{ssl_cert_file}": "SCENARIO_SSL_CERT_FILE",
    "{ssl_cert_dir}": "SCENARIO_SSL_CERT_DIR",
}

# What looks like a placeholder. Secret references (``{$NAME}``) and code in braces
# (``{console.error(e)}``) do not.
TOKEN = re.compile(r"\{[a-z_]+\}")

#: A placeholder's value, computed only if a word uses it (``{venv}`` creates a virtualenv).
Values = Mapping[str, Callable[[], str]]


def _refuse(key: str, word: str, available: Iterable[str]) -> ConfigError:
    here = ", ".join(available) or "none"
    if key not in PLACEHOLDERS:
        return ConfigError(f"unknown placeholder {key} in {word!r}; here: {here}")
    return ConfigError(f"placeholder {key} in {word!r} has no value here; here: {here}")


def check(words: Iterable[str], available: Iterable[str]) -> None:
    """Refuse a word with an unknown placeholder, or one not in ``available``."""
    known = list(available)
    for word in words:
        for key in TOKEN.findall(word):
            if key not in known:
                raise _refuse(key, word, known)


def substitute(words: Sequence[str], values: Values) -> list[str]:
    """``words`` with every placeholder replaced by its value (ConfigError for a placeholder
    that is unknown or has no value in ``values``). A value is never scanned again: an
    address that happens to contain ``{url}`` stays as it is."""
    cache: dict[str, str] = {}

    def one(word: str) -> str:
        def value(m: re.Match[str]) -> str:
            key = m.group(0)
            if key not in cache:
                make = values.get(key)
                if make is None:
                    raise _refuse(key, word, values)
                cache[key] = make()
            return cache[key]

        return TOKEN.sub(value, word)

    return [one(w) for w in words]


def env_values(env: ScenarioEnv) -> dict[str, Callable[[], str]]:
    """The placeholders' values in scenario ``env`` (``{venv}``: one fresh virtualenv, made
    the first time a word asks for it)."""
    values: dict[str, Callable[[], str]] = {
        "{index_url}": lambda: env.origin.index_url,
        "{url}": lambda: env.origin.url,
        "{host}": lambda: env.origin.host,
        "{port}": lambda: str(env.origin.port),
        "{store}": lambda: str(env.store.root),
        "{work}": lambda: str(env.root),
    }
    for key, path in trust_paths(env).items():
        values[key] = functools.partial(str, path)
    if env.proxy is not None:
        proxy = env.proxy
        values["{proxy_url}"] = lambda: proxy.url
        values["{proxy_auth_url}"] = lambda: proxy.authenticated_url
        values["{proxy_port}"] = lambda: str(proxy.port)
    venv_py: list[str] = []

    def venv() -> str:
        if not venv_py:
            venv_py.append(env.venv())
        return venv_py[0]

    values["{venv}"] = venv
    values["{venvdir}"] = lambda: str(Path(venv()).parent.parent)
    return values


def trust_paths(env: ScenarioEnv) -> dict[str, str]:
    """``{bundle}``, ``{cert_dir}``, ``{ssl_cert_file}``, ``{ssl_cert_dir}`` -> their paths in
    ``env``; a placeholder the layout (or scenario) has no path for is absent, so a command
    naming it is refused with the list of those that are there."""
    store = env.store
    variables = store.env
    paths = {
        "{bundle}": store.bundle,
        "{cert_dir}": store.cert_dir,
        "{ssl_cert_file}": variables.get("SSL_CERT_FILE"),
        "{ssl_cert_dir}": variables.get("SSL_CERT_DIR"),
    }
    return {k: str(v) for k, v in paths.items() if v is not None}


class Translator:
    """A session's addresses and paths -> placeholders (``{url}``, ``{store}``...): what a
    reproduction bundle records instead of this machine's ports and directories."""

    def __init__(self, env: ScenarioEnv) -> None:
        self.root = str(env.root)
        origin = env.origin
        self.pairs: list[tuple[str, str]] = [
            (origin.index_url, "{index_url}"),
            (origin.url, "{url}"),
        ]
        hosts = ("localhost", "127.0.0.1", "[::1]", TEST_DOMAIN)
        proxy = env.proxy
        if proxy is not None:
            self.pairs.append((proxy.authenticated_url, "{proxy_auth_url}"))
            self.pairs.append((proxy.url, "{proxy_url}"))
            for host in hosts:
                self.pairs.append((f"{host}:{proxy.port}", f"{host}:{{proxy_port}}"))
        for host in hosts:
            self.pairs.append((f"{host}:{origin.port}", f"{host}:{{port}}"))
        self.store = str(env.store.root)
        root = re.escape(self.root)
        self.patterns = [
            (re.compile(root + r"/venv-\d+/bin/python[\d.]*"), "{venv}"),
            (re.compile(root + r"/venv-\d+"), "{venvdir}"),
            (re.compile(re.escape(self.store) + r"(?=/|\b|$)"), "{store}"),
            (re.compile(root + r"/run-\d+"), "{run}"),
            (re.compile(root + r"(?=/|\b|$)"), "{work}"),
        ]

    def __call__(self, text: str) -> str:
        for old, new in self.pairs:
            text = text.replace(old, new)
        for pattern, new in self.patterns:
            text = pattern.sub(new, text)
        return text
