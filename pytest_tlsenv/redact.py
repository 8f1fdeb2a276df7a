"""Secret redaction: one place that decides what a secret is and keeps it out of every output.

Failure messages, reports, reproduction bundles and the survey all print or write what a client
ran with. Three things count as secrets:

* the value of a variable whose *name* says it is one (``API_PASSWORD``, ``GITHUB_TOKEN``,
  ``AWS_SECRET_ACCESS_KEY``, ``NPM_CONFIG__AUTH``...; see :func:`is_secret_name`);
* credentials in URLs (``https://user:pass@host/`` becomes ``https://<redacted>@host/``);
* either of those *values* wherever else it appears verbatim (echoed in argv, stderr, an
  exception's text), once it is long enough (:data:`MIN_SECRET_LEN`) not to blank out
  ordinary words.

:class:`Redactor` holds the secret values of some environments and applies all three rules to
any text; :func:`redact` and :func:`redact_environ` are its one-shot forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "MIN_SECRET_LEN",
    "REDACTED",
    "Redactor",
    "is_secret_name",
    "redact",
    "redact_environ",
    "url_credentials",
]

REDACTED = "<redacted>"

#: A secret value shorter than this is not searched for in other text: "1" or "yes" would
#: blank out half a stderr, and a short value is not much of a secret anyway.
MIN_SECRET_LEN = 6

# Name parts that make a variable secret wherever they appear in the name.
_SECRET_PART = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|CREDENTIAL|PRIVATE|COOKIE|APIKEY|ACCESSKEY",
    re.IGNORECASE,
)
# Whole words (between underscores, dashes, dots) that do: DB_PASS, DB_PW, NPM_CONFIG__AUTH.
_SECRET_WORDS = frozenset({"PASS", "PW", "PWD", "AUTH", "AUTHORIZATION", "AUTHTOKEN"})
# Words that look like one but name no secret: the working directory, X11's cookie *path*,
# authors, keyboards.
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD", "XAUTHORITY"})
_NOT_SECRET_WORDS = frozenset({"KEYBOARD", "KEYMAP", "KEYTABLE", "KEYS"})

_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<cred>[^/@\s]+)@")


def is_secret_name(name: str) -> bool:
    """Whether a variable called ``name`` holds a secret, by its name alone.

    Secret: any name containing PASSWORD, PASSWD, PASSPHRASE, TOKEN, SECRET, CREDENTIAL,
    PRIVATE, COOKIE or KEY (``AWS_SECRET_ACCESS_KEY``, ``APIKEY``, ``SSLKEYLOGFILE``), or with a
    word PASS, PW, PWD or AUTH (``DB_PASS``, ``NPM_CONFIG__AUTH``, ``proxy_auth``). Not secret:
    ``PWD``, ``OLDPWD``, ``XAUTHORITY`` (a path), ``GIT_AUTHOR_NAME``, ``KEYBOARD``...
    """
    upper = name.upper()
    if upper in _NOT_SECRET_NAMES:
        return False
    words = [w for w in re.split(r"[^A-Z0-9]+", upper) if w]
    if any(w in _SECRET_WORDS for w in words) or _SECRET_PART.search(upper):
        return True
    return any("KEY" in w and w not in _NOT_SECRET_WORDS for w in words)


def url_credentials(text: str) -> list[str]:
    """The ``user:pass`` parts of the URLs in ``text``, and each password alone."""
    found: list[str] = []
    for m in _URL_CREDENTIALS.finditer(text):
        cred = m.group("cred")
        found.append(cred)
        _user, sep, password = cred.partition(":")
        if sep and password:
            found.append(password)
    return found


def _redact_urls(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        cred = m.group("cred")
        if cred == REDACTED or "{$" in cred:  # done already, or a reference to a variable
            return m.group(0)
        return f"{m.group('scheme')}{REDACTED}@"

    return _URL_CREDENTIALS.sub(sub, text)


class Redactor:
    """The secrets of some environments, and :meth:`text`/:meth:`environ` that remove them.

    ``Redactor(os.environ, outcome.environ)`` knows every value of a secret-named variable in
    either, and every URL credential in any of their values; a value of at least
    :data:`MIN_SECRET_LEN` characters is then replaced wherever it appears.
    """

    def __init__(self, *environs: Mapping[str, str], values: Iterable[str] = ()) -> None:
        #: secret value -> the variable it came from (None: a URL credential or given).
        self.sources: dict[str, str | None] = {}
        for environ in environs:
            for name, value in environ.items():
                if not isinstance(value, str):
                    continue
                if is_secret_name(name):
                    self._add(value, name)
                for cred in url_credentials(value):
                    self._add(cred, None)
        for value in values:
            self._add(value, None)

    def _add(self, value: str, name: str | None) -> None:
        # A value seen both in a URL and in a named variable keeps the name.
        if len(value) >= MIN_SECRET_LEN and self.sources.get(value) is None:
            self.sources[value] = name

    @property
    def values(self) -> list[str]:
        """The secret values searched for, longest first (a value inside another one is
        replaced after it)."""
        return sorted(self.sources, key=lambda v: (-len(v), v))

    def text(self, text: str, *, replacement: str = REDACTED) -> str:
        """``text`` without URL credentials and without any known secret value."""
        for value in self.values:
            if value in text:
                text = text.replace(value, replacement)
        return _redact_urls(text)

    def references(self, text: str) -> str:
        """``text`` with each secret value taken from a named variable replaced by the
        reference ``{$NAME}`` (a bundle turns it into ``"$NAME"``); other secrets redacted."""
        for value in self.values:
            if value in text:
                name = self.sources[value]
                text = text.replace(value, "{$" + name + "}" if name else REDACTED)
        return _redact_urls(text)

    def environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """A sorted copy: secret-named variables' values are ``<redacted>``, the others pass
        through :meth:`text`."""
        return {
            k: REDACTED if is_secret_name(k) else self.text(v) for k, v in sorted(environ.items())
        }


def redact(value: str, secrets: Iterable[str] = ()) -> str:
    """``value`` with the credentials of any URL in it replaced (``https://<redacted>@h/``),
    and each of ``secrets`` (at least :data:`MIN_SECRET_LEN` long) wherever it appears."""
    return Redactor(values=secrets).text(value)


def redact_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """A sorted copy without secrets: values of secret-named variables (:func:`is_secret_name`)
    are ``<redacted>``; so are URL credentials, and those secrets wherever else they appear."""
    return Redactor(environ).environ(environ)
