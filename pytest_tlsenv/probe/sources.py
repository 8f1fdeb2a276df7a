"""The registry of candidate sources of trust: the trust variables and the default locations."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..store import LAYOUTS

__all__ = ["PLACEHOLDERS", "SYSTEM_SOURCES", "TRUST_VARIABLES", "Source", "TrustVariable"]


@dataclass(frozen=True)
class TrustVariable:
    """An environment variable some client reads to find trust: a file or a directory."""

    name: str
    kind: str  # "file" (a PEM bundle), "dir" (a hashed directory) or "keystore" (JKS)
    readers: str  # who is known to read it (documentation only; the probe measures)


TRUST_VARIABLES: dict[str, TrustVariable] = {
    v.name: v
    for v in (
        TrustVariable("SSL_CERT_FILE", "file", "OpenSSL, Go, rustls-native-certs, httpx, uv"),
        TrustVariable(
            "SSL_CERT_DIR", "dir", "OpenSSL, Go (a colon-separated list), rustls-native-certs, uv"
        ),
        TrustVariable("REQUESTS_CA_BUNDLE", "file", "requests, pip"),
        TrustVariable("CURL_CA_BUNDLE", "file", "curl, requests, pip"),
        TrustVariable("PIP_CERT", "file", "pip"),
        TrustVariable("NODE_EXTRA_CA_CERTS", "file", "node"),
        TrustVariable("GIT_SSL_CAINFO", "file", "git"),
        TrustVariable("GIT_SSL_CAPATH", "dir", "git"),
        TrustVariable("HTTPLIB2_CA_CERTS", "file", "httplib2"),
        TrustVariable("AWS_CA_BUNDLE", "file", "botocore, aws cli"),
        TrustVariable("NIX_SSL_CERT_FILE", "file", "nix-patched OpenSSL clients"),
        TrustVariable("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "file", "gRPC"),
        TrustVariable("CARGO_HTTP_CAINFO", "file", "cargo"),
        TrustVariable("NPM_CONFIG_CAFILE", "file", "npm"),
        TrustVariable("DENO_CERT", "file", "deno"),
        # Its value is the -Djavax.net.ssl.trustStore... properties naming a JKS keystore.
        TrustVariable("JAVA_TOOL_OPTIONS", "keystore", "Java (javax.net.ssl.trustStore)"),
    )
}


#: Compiled-in defaults of clients that no layout defines: Go's crypto/x509 (root_linux.go)
#: tries these files too (OpenSUSE's bundle, OpenELEC's), after Debian's and RHEL 6's.
_CLIENT_DEFAULTS = {"/etc/ssl/ca-bundle.pem": "file", "/etc/pki/tls/cacert.pem": "file"}


def _system_sources() -> dict[str, str]:
    """Default trust locations of the debian, rhel and alpine layouts, and clients' other
    compiled-in defaults (:data:`_CLIENT_DEFAULTS`): ``/path -> kind``.

    Bundle files, cert dirs and JVM keystores (kind ``keystore``), plus the layouts' aliases
    of a bundle or cert dir (RHEL's ca-bundle.crt and cert.pem, Alpine's cert.pem): each is a
    place a client may open by default, so each gets a canary of its own (a real file,
    directory or keystore here, not an alias).
    """
    found: dict[str, str] = {}
    for name in ("debian", "rhel", "alpine"):
        lay = LAYOUTS[name]
        kinds = (
            (lay.cert_dir, "dir"),
            (lay.bundle, "file"),
            (lay.cert_file, "file"),
            (lay.keystore, "keystore"),
        )
        for rel, kind in kinds:
            if rel:
                found.setdefault("/" + rel, kind)
        for alias, target in lay.aliases:
            resolved = os.path.normpath(os.path.join(os.path.dirname(alias), target))
            kind = "file" if resolved == lay.bundle else "dir" if resolved == lay.cert_dir else ""
            if kind:
                found.setdefault("/" + alias, kind)
    for path, kind in _CLIENT_DEFAULTS.items():
        found.setdefault(path, kind)
    return dict(sorted(found.items()))


#: ``/etc/ssl/certs -> "dir"``, ``/etc/ssl/certs/ca-certificates.crt -> "file"``, ...
SYSTEM_SOURCES: dict[str, str] = _system_sources()

#: Placeholders a probe command may contain (the same words as ``repro``'s).
PLACEHOLDERS = ("{url}", "{index_url}", "{host}", "{port}", "{venv}", "{venvdir}")


@dataclass(frozen=True)
class Source:
    """One candidate source: a variable, or a system path, with its canary's location."""

    name: str  # the variable's name, or the absolute system path
    kind: str  # "file", "dir" or "keystore"
    variable: str | None  # None for a system path
    path: Path  # where the canary lives on disk (for a system path: under the probe root)

    @property
    def system(self) -> bool:
        return self.variable is None
