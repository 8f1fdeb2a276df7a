"""A package's releases on a package index (the Simple API), for bisecting between two of them.

:func:`releases` reads ``<index>/<package>/`` once, as PEP 691 JSON when the index speaks it
(``Accept: application/vnd.pypi.simple.v1+json``), else as the PEP 503 HTML page, and groups
the files by release: which have a wheel, which are yanked, which are pre-releases. Nothing
else is asked of the index, and nothing of this machine's pip configuration is read.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..errors import ClientUnavailableError, ConfigError

__all__ = ["DEFAULT_INDEX", "Release", "check_index_url", "releases"]

#: The index used when none is given (pip's own default).
DEFAULT_INDEX = "https://pypi.org/simple"

_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, text/html;q=0.1"
# A distribution's file name: NAME-VERSION(-...).whl or NAME-VERSION.tar.gz / .zip.
_SDIST = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+)\.(?:tar\.gz|zip|tar\.bz2)$")


@dataclass
class Release:
    """One version of a package on the index, and what its files allow."""

    version: str
    wheels: list[str] = field(default_factory=list)
    sdists: list[str] = field(default_factory=list)
    #: The yank reason ("" when none was given), or None when not yanked.
    yanked: str | None = None

    @property
    def key(self) -> Version:
        return Version(self.version)

    @property
    def prerelease(self) -> bool:
        return self.key.is_prerelease or self.key.is_devrelease


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_index_url(url: str) -> str:
    """``url`` without its trailing slash, or a ConfigError: https, or http on loopback only
    (the index's files run on this machine; pip refuses other plain-http indexes too)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and host:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url.rstrip("/")
        raise ConfigError(f"index URL {url!r}: plain http only on loopback; use https")
    raise ConfigError(f"index URL {url!r}: not an http(s) URL (e.g. {DEFAULT_INDEX})")


class _Links(HTMLParser):
    """The anchors of a PEP 503 page: (file name, yank reason or None)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, str | None]] = []
        self._attrs: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._attrs is not None:
            href = self._attrs.get("href") or ""
            name = "".join(self._text).strip() or urllib.parse.unquote(
                urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1]
            )
            yanked = self._attrs.get("data-yanked")
            self.files.append((name, None if "data-yanked" not in self._attrs else yanked or ""))
            self._attrs = None


def _fetch(url: str, timeout: float) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    # No proxy from this machine's environment and no certificate from it either: the
    # default context with the system's store, as pip's own default does.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        kind = response.headers.get_content_type()
        return kind, response.read(16 << 20).decode("utf-8", errors="replace")


def _files(index: str, package: str, timeout: float) -> list[tuple[str, str | None]]:
    url = f"{index}/{_normalized(package)}/"
    try:
        kind, body = _fetch(url, timeout)
    except urllib.error.HTTPError as e:
        e.close()  # it holds the response's socket
        if e.code == 404:
            raise ConfigError(f"unknown package {package!r}: {index} has no such project") from e
        raise ClientUnavailableError(f"package index {index}: HTTP {e.code} for {url}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ClientUnavailableError(f"package index {index} unreachable: {reason}") from e
    if kind == _JSON:
        try:
            data = json.loads(body)
            return [
                (
                    str(f["filename"]),
                    None
                    if not f.get("yanked")
                    else (f["yanked"] if isinstance(f["yanked"], str) else ""),
                )
                for f in data["files"]
            ]
        except (ValueError, KeyError, TypeError) as e:
            raise ClientUnavailableError(f"package index {index}: unreadable JSON at {url}") from e
    links = _Links()
    links.feed(body)
    return links.files


def releases(
    package: str, index_url: str = DEFAULT_INDEX, *, timeout: float = 30.0
) -> list[Release]:
    """Every release of ``package`` on the index, oldest first (PEP 440 order).

    A release is yanked only when all its files are. Files whose names do not parse are
    ignored. Raises :class:`ConfigError` for a package the index does not have,
    :class:`ClientUnavailableError` when the index cannot be reached or read.
    """
    index = check_index_url(index_url)
    found: dict[Version, Release] = {}
    yanked_files: dict[Version, list[bool]] = {}
    want = _normalized(package)
    for name, yanked in _files(index, package, timeout):
        try:
            if name.endswith(".whl"):
                dist, version, _, _ = parse_wheel_filename(name)
                if _normalized(dist) != want:
                    continue
                wheel = True
            else:
                m = _SDIST.match(name)
                if m is None or _normalized(m.group("name")) != want:
                    continue
                version = Version(m.group("version"))
                wheel = False
        except (InvalidWheelFilename, InvalidVersion):
            continue
        rel = found.setdefault(version, Release(str(version)))
        (rel.wheels if wheel else rel.sdists).append(name)
        yanked_files.setdefault(version, []).append(yanked is not None)
        if yanked is not None:
            rel.yanked = yanked if not rel.yanked else rel.yanked
    for version, flags in yanked_files.items():
        if not all(flags):
            found[version].yanked = None
    return [found[v] for v in sorted(found)]
