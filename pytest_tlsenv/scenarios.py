"""The scenario catalogue and the marker's keywords.

A :class:`Scenario` is a named, documented environment with the set of verdicts a robust
client may give in it. :func:`resolve` turns the marker's keywords into a :class:`Spec`: the
scenario sets defaults, keywords beside it add faults or override the rest.
"""

# Size: a little over 600 lines, most of it the catalogue itself (one Scenario per name,
# with its why and expected verdicts): data a reader scans as one table.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ._checks import MAX_EXTRA_CAS, MAX_TIMEOUT, check_count, check_timeout, did_you_mean
from .env import TRUST_MODES  # defined low: client presets validate it too
from .errors import ConfigError
from .fallback import KINDS as FALLBACK_KINDS
from .faults import FAULTS, PLACEMENTS
from .outcome import Verdict
from .store import LAYOUTS

__all__ = [
    "BACKENDS",
    "CATALOGUE",
    "GROUPS",
    "MAX_EXTRA_CAS",
    "MAX_TIMEOUT",
    "REPORTS",
    "TRUST_MODES",
    "Report",
    "Scenario",
    "Spec",
    "get_scenario",
    "resolve",
]

OK = frozenset({Verdict.OK})
REJECTED = frozenset({Verdict.REJECTED})
FAILED = frozenset({Verdict.FAILED})
OK_OR_REJECTED = frozenset({Verdict.OK, Verdict.REJECTED})
CLEAN_REFUSAL = frozenset({Verdict.OK, Verdict.FAILED, Verdict.REJECTED})
REFUSED = frozenset({Verdict.FAILED, Verdict.REJECTED})


@dataclass(frozen=True)
class Scenario:
    """A named environment: its faults, proxy, server, layout, and what a robust client does.

    ``expected_by_placement`` maps a placement to its expected set; :attr:`expected` is the
    set for this scenario's own placement.
    """

    name: str
    description: str
    why: str
    groups: tuple[str, ...]
    faults: tuple[str, ...] = ()
    placement: str = "decoy"
    proxy: str | None = None
    server: str = "good"
    layout: str = "debian"
    expected_by_placement: Mapping[str, frozenset[Verdict]] = field(
        default_factory=lambda: {"decoy": OK, "shadow": OK}
    )
    source: str | None = None
    #: How a trusted proxy's CA gets into the store: ``"store"`` (a healthy anchor, like the
    #: origin's CA) or ``"admin-0600"`` (uv 5448: copied to the anchors dir as ROOT_CRT.crt,
    #: unreadable, then hash-linked and appended to the bundle update-ca-certificates-style).
    proxy_ca: str = "store"
    #: The ``fallback`` group: the kind of broken store (:data:`.fallback.KINDS`) that every
    #: trust variable and option names, while the trusted CA is only in the default store.
    fallback: str | None = None
    #: The origin's (self-signed) certificate is installed in the store as its own trust
    #: anchor, as a user who copies a server's certificate into the store does.
    leaf_anchor: bool = False

    @property
    def expected(self) -> frozenset[Verdict]:
        """The verdicts a robust client may give here."""
        return self.expected_by_placement.get(self.placement, OK)


CATALOGUE: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "good",
            "a healthy store holding the origin's CA; the origin presents a valid leaf",
            "the positive control: every client must connect",
            groups=("server",),
        ),
        Scenario(
            "unreadable-file",
            "a CA file in the cert dir owned by another user with mode 0600; client not root",
            "one unreadable entry must not stop a client from using the healthy ones (uv 5448)",
            groups=("store",),
            faults=("unreadable-file",),
            expected_by_placement={"decoy": OK, "shadow": OK_OR_REJECTED},
            source="https://github.com/astral-sh/uv/issues/5448",
        ),
        # -- the rest of the store group. Entry faults: decoy {OK} (OpenSSL never
        # opens a decoy; a client that reads every file must skip it), shadow {OK, REJECTED}
        # (a client that only has the cert dir lost its one copy of the CA: refusing is fine,
        # crashing or hanging is not). Env faults: a clean refusal is fine in both placements.
        *(
            Scenario(
                name,
                FAULTS[name].description,
                why,
                groups=("store",),
                faults=(name,),
                expected_by_placement=expected,
            )
            for name, why, expected in (
                (
                    "unreadable-bundle",
                    "an unreadable SSL_CERT_FILE must not crash a client; refusing it is fine",
                    {"decoy": CLEAN_REFUSAL, "shadow": CLEAN_REFUSAL},
                ),
                (
                    "unreadable-dir",
                    "an entry behind an unsearchable directory must be skipped like a bad file",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "dangling-symlink",
                    "a link to a removed CA (ENOENT) must be skipped",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "symlink-loop",
                    "a symlink loop (ELOOP) must be skipped, not followed forever",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "fifo",
                    "a FIFO must not be opened blocking: HUNG is the failure this catches",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "empty-file",
                    "an empty entry holds no certificate and must be skipped",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "garbage-file",
                    "a file that is not a certificate must be skipped",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "truncated-pem",
                    "a PEM block without its END line must be skipped",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "der-file",
                    "a DER certificate in a PEM directory must be skipped (or read as DER)",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "private-key-file",
                    "a private key is not a trust anchor and must be skipped",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "garbage-in-bundle",
                    "one bad block must not make a client drop the healthy blocks around it",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "expired-decoy",
                    "an expired copy beside the valid CA: pick the valid one (OpenSSL 1.0.2 "
                    "did not, in 2021)",
                    {"decoy": OK, "shadow": OK},
                ),
                (
                    "non-ca-cert",
                    "a CA:FALSE certificate is no anchor; refusing when it shadows the CA is fine",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "huge-file",
                    "a huge entry must be read or skipped, not hang or exhaust memory",
                    {"decoy": OK, "shadow": OK_OR_REJECTED},
                ),
                (
                    "crlf-pem",
                    "CRLF line endings are valid PEM (RFC 7468): the CA must load",
                    {"decoy": OK, "shadow": OK},
                ),
                (
                    "missing-file-env",
                    "SSL_CERT_FILE pointing nowhere must not crash a client",
                    {"decoy": CLEAN_REFUSAL, "shadow": CLEAN_REFUSAL},
                ),
                (
                    "missing-dir-env",
                    "SSL_CERT_DIR pointing nowhere must not crash a client",
                    {"decoy": CLEAN_REFUSAL, "shadow": CLEAN_REFUSAL},
                ),
                (
                    "dir-as-file",
                    "SSL_CERT_FILE naming a directory must not crash a client",
                    {"decoy": CLEAN_REFUSAL, "shadow": CLEAN_REFUSAL},
                ),
                # Keystore faults (Java): the keystore held the origin's CA; losing it is a
                # clean refusal, never a crash. OK is allowed where the JDK tolerates the
                # fault: a wrong password when none is declared (the default cacerts), a
                # mislabelled type (JDK 9+ reads JKS and PKCS12 alike), an expired anchor.
                *(
                    (name, why, {"decoy": expected, "shadow": expected})
                    for name, why, expected in (
                        (
                            "keystore-unreadable",
                            "an unreadable trust store must not send a JVM silently back to "
                            "the JDK's default cacerts as if nothing were wrong",
                            REFUSED,
                        ),
                        (
                            "keystore-dangling",
                            "a missing cacerts is a clean refusal (Ubuntu's 'trustAnchors "
                            "parameter must be non-empty')",
                            REFUSED,
                        ),
                        (
                            "keystore-empty",
                            "a store with no anchor trusts nothing: a clean refusal",
                            REFUSED,
                        ),
                        (
                            "keystore-corrupt",
                            "a truncated keystore is a clean refusal, not a crash",
                            REFUSED,
                        ),
                        (
                            "keystore-wrong-password",
                            "a store whose integrity check fails is refused where a password "
                            "is declared; read unchecked where none is",
                            CLEAN_REFUSAL,
                        ),
                        (
                            "keystore-type-mismatch",
                            "a PKCS12 file declared JKS: read anyway (JDK 9+) or refused cleanly",
                            CLEAN_REFUSAL,
                        ),
                        (
                            "keystore-expired-anchor",
                            "an expired anchor: used (RFC 5280 does not check an anchor's "
                            "validity) or refused",
                            OK_OR_REJECTED,
                        ),
                    )
                ),
            )
        ),
        Scenario(
            "expired",
            "the origin's leaf expired yesterday",
            "an expired certificate must be refused",
            groups=("server",),
            server="expired",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "not-yet-valid",
            "the origin's leaf becomes valid tomorrow",
            "a certificate not yet valid must be refused",
            groups=("server",),
            server="not-yet-valid",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "wrong-host",
            "the origin's leaf names wrong.tlsenv.test only",
            "a certificate for another host must be refused",
            groups=("server",),
            server="wrong-host",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "self-signed",
            "the origin presents a self-signed certificate",
            "a self-signed certificate is not anchored in the store",
            groups=("server",),
            server="self-signed",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "untrusted-root",
            "the origin's leaf chains to a CA that is not in the store",
            "an unknown issuer must be refused",
            groups=("server",),
            server="untrusted-root",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "incomplete-chain",
            "the origin's leaf comes from an intermediate it does not send",
            "a client cannot build the chain without the intermediate (no AIA fetching here)",
            groups=("server",),
            server="incomplete-chain",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "cn-only",
            "the origin's name is in the subject CN only, no subjectAltName",
            "OpenSSL and Python still fall back to the CN; rustls and Go refuse: either is fine",
            groups=("server",),
            server="cn-only",
            expected_by_placement={"decoy": OK_OR_REJECTED, "shadow": OK_OR_REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "wrong-eku",
            "the origin's leaf has extendedKeyUsage clientAuth only",
            "a leaf not valid for serverAuth must be refused",
            groups=("server",),
            server="wrong-eku",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "weak-key",
            "the origin's leaf has an RSA-1024 key",
            "OpenSSL at security level 2 (Python, curl) and webpki refuse RSA-1024 (level 1 "
            "still accepts it)",
            groups=("server",),
            server="weak-key",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://badssl.com/",
        ),
        Scenario(
            "constraint-violation",
            "the origin's leaf (from the trusted, name-constrained CA) also names evil.example.com",
            "a leaf outside its CA's permitted subtrees must be refused, even for a good name",
            groups=("server",),
            server="constraint-violation",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
            source="https://x509-limbo.com/",
        ),
        Scenario(
            "mitm-untrusted",
            "an intercepting proxy forges the origin's certificate with a CA not in the store",
            "fail closed: refuse, and send the interceptor nothing",
            groups=("proxy",),
            proxy="mitm-untrusted",
            expected_by_placement={"decoy": REJECTED, "shadow": REJECTED},
        ),
        Scenario(
            "mitm-trusted",
            "an intercepting proxy whose CA is in the store forwards to the origin",
            "the positive control of interception: a trusted corporate proxy works",
            groups=("proxy",),
            proxy="mitm-trusted",
            expected_by_placement={"decoy": OK, "shadow": OK},
        ),
        Scenario(
            "proxy-tunnel",
            "an honest CONNECT proxy relays the TLS bytes to the origin",
            "clients must honour HTTPS_PROXY and tunnel through it",
            groups=("proxy",),
            proxy="proxy-tunnel",
            expected_by_placement={"decoy": OK, "shadow": OK},
        ),
        Scenario(
            "proxy-refuses",
            "the proxy answers every CONNECT with 403",
            "a refused tunnel is a clean failure, not a crash or a hang",
            groups=("proxy",),
            proxy="proxy-refuses",
            expected_by_placement={"decoy": FAILED, "shadow": FAILED},
        ),
        Scenario(
            "proxy-auth-required",
            "the proxy answers 407 until Proxy-Authorization matches (.proxy.authenticated_url)",
            "without credentials a clean failure; with them, OK",
            groups=("proxy",),
            proxy="proxy-auth-required",
            expected_by_placement={"decoy": FAILED, "shadow": FAILED},
        ),
        # -- the proxy environment (proxyenv.py): how clients read proxy variables, judged by
        # which proxy granted a tunnel and whether the origin was reached directly. Clients
        # resolve invented names through a private /etc/hosts: unavailable without namespaces.
        *(
            Scenario(
                name,
                description,
                why,
                groups=("proxy",),
                proxy=name,
                expected_by_placement={"decoy": expected, "shadow": expected},
                source=source,
            )
            for name, description, why, expected, source in (
                (
                    "https-proxy-trusted",
                    "HTTPS_PROXY=https://proxy.tlsenv.test:PORT: TLS to the proxy itself, whose "
                    "own CA is in the store; then a tunnel",
                    "a proxy spoken to over TLS must be verified against the same store, and work",
                    OK,
                    "https://curl.se/docs/manpage.html#--proxy-cacert",
                ),
                (
                    "https-proxy-untrusted",
                    "HTTPS_PROXY=https://proxy.tlsenv.test:PORT, whose CA is not in the store",
                    "an unverifiable proxy must be refused before any CONNECT is sent to it",
                    REJECTED,
                    "https://curl.se/docs/manpage.html#--proxy-cacert",
                ),
                *(
                    (
                        f"no-proxy-{form}",
                        f"the proxy refuses every CONNECT; NO_PROXY={value}",
                        why,
                        expected,
                        "https://about.gitlab.com/blog/2021/01/27/we-need-to-talk-no-proxy/",
                    )
                    for form, value, why, expected in (
                        ("name", "origin.tlsenv.test", "the exact name: every client", OK),
                        (
                            "name-port",
                            "origin.tlsenv.test:PORT",
                            "a host:port entry is not a common form: the grid shows who honours it",
                            frozenset({Verdict.OK, Verdict.FAILED}),
                        ),
                        ("dot-domain", ".tlsenv.test", "a leading-dot suffix: common form", OK),
                        (
                            "dot-domain-port",
                            ".tlsenv.test:PORT",
                            "a suffix with a port is not a common form: the grid shows who does",
                            frozenset({Verdict.OK, Verdict.FAILED}),
                        ),
                        (
                            "wildcard",
                            "*.tlsenv.test",
                            "a glob is not a common form (curl and Python do not match it)",
                            frozenset({Verdict.OK, Verdict.FAILED}),
                        ),
                        (
                            "wildcard-port",
                            "*.tlsenv.test:PORT",
                            "a glob with a port is not a common form: the grid shows who does",
                            frozenset({Verdict.OK, Verdict.FAILED}),
                        ),
                        ("domain", "tlsenv.test", "a bare domain matches its subdomains", OK),
                        (
                            "domain-port",
                            "tlsenv.test:PORT",
                            "a domain with a port is not a common form: the grid shows who does",
                            frozenset({Verdict.OK, Verdict.FAILED}),
                        ),
                        ("star", "*", "a lone * bypasses every proxy", OK),
                    )
                ),
                (
                    "proxy-case-conflict",
                    "HTTPS_PROXY names a proxy that refuses, https_proxy one that tunnels",
                    "clients disagree on which spelling wins: OK means the lower-case https_proxy "
                    "was used, FAILED the upper-case HTTPS_PROXY (a baseline catches a change)",
                    frozenset({Verdict.OK, Verdict.FAILED}),
                    "https://everything.curl.dev/usingcurl/proxies/env.html",
                ),
                (
                    "socks5",
                    "only ALL_PROXY=socks5://127.0.0.1:PORT: the client resolves the origin's "
                    "name (private hosts file) and sends the address",
                    "a SOCKS proxy in ALL_PROXY must be used; clients without SOCKS are n/a",
                    OK,
                    "https://www.rfc-editor.org/rfc/rfc1928",
                ),
                (
                    "socks5h",
                    "only ALL_PROXY=socks5h://127.0.0.1:PORT: the proxy resolves the name",
                    "socks5h means remote resolution: a client that sends an address made a "
                    "lookup the proxy was meant to make (FAILED)",
                    OK,
                    "https://curl.se/docs/manpage.html#--socks5-hostname",
                ),
                (
                    "proxy-auth-reserved",
                    "the proxy wants a user and password with '@' and ':'; HTTPS_PROXY carries "
                    "them percent-encoded (%40, %3A)",
                    "credentials in a proxy URL must be percent-decoded before they are sent",
                    OK,
                    "https://www.rfc-editor.org/rfc/rfc3986#section-3.2.1",
                ),
            )
        ),
        # -- the fallback group: the user's override names a broken store; the CA is only in
        # the default one (its real paths, in a mount namespace). Taking the default is the
        # failure: a refusal (REJECTED) or a clean stop (FAILED) is what the user asked for.
        *(
            Scenario(
                f"fallback-{kind}",
                f"the trusted CA only in the default store; every trust variable or option the "
                f"client honours names {what}",
                "an overridden store that trusts nothing must not send the client back to the "
                "default store the user overrode (uv 18526: a missing SSL_CERT_FILE)",
                groups=("fallback",),
                expected_by_placement={"decoy": REFUSED, "shadow": REFUSED},
                source="https://github.com/astral-sh/uv/issues/18526",
                fallback=kind,
            )
            for kind, what in zip(
                FALLBACK_KINDS,
                (
                    "a file and a directory that do not exist",
                    "an empty file and an empty directory",
                    "a file and a directory (of a decoy CA) owned by another user, mode 0600/0700",
                    "a file of binary garbage and a directory holding a garbage HHHHHHHH.0",
                ),
                strict=True,
            )
        ),
        Scenario(
            "uv-5448",
            "all traffic through an intercepting proxy whose root CA the admin installed as "
            "root-owned 0600 /usr/local/share/ca-certificates/ROOT_CRT.crt, then "
            "update-ca-certificates: hash link in /etc/ssl/certs, CA appended to the readable "
            "bundle; client not root",
            "the seed report: the bundle holds the proxy's CA, so one unreadable anchor must not "
            "stop a client (uv 0.2.29 panicked)",
            groups=("reports", "store"),
            proxy="mitm-trusted",
            proxy_ca="admin-0600",
            source="https://github.com/astral-sh/uv/issues/5448",
        ),
        # -- more reported bugs (REPORTS below holds each one's versions and verdicts).
        Scenario(
            "uv-18526",
            "the trusted CA only in the default store; SSL_CERT_FILE and SSL_CERT_DIR name a "
            "file and a directory that do not exist",
            "a missing override must not send the client back to other roots: it trusts "
            "nothing then (uv before 0.12.0 ignored it, with a warning)",
            groups=("reports", "fallback"),
            expected_by_placement={"decoy": REFUSED, "shadow": REFUSED},
            source="https://github.com/astral-sh/uv/issues/18526",
            fallback="missing",
        ),
        Scenario(
            "npm-7135",
            "NODE_EXTRA_CA_CERTS (and SSL_CERT_FILE) name a file that does not exist; the "
            "trusted CA is only in that file",
            "node warns and goes on without the CA (a refusal); a client that also has the "
            "healthy SSL_CERT_DIR may connect; none may crash",
            groups=("reports", "store"),
            faults=("missing-file-env",),
            expected_by_placement={"decoy": CLEAN_REFUSAL, "shadow": CLEAN_REFUSAL},
            source="https://github.com/npm/cli/issues/7135",
        ),
        Scenario(
            "requests-6969",
            "the origin presents a self-signed certificate with its name only in the subject "
            "CN (no subjectAltName), installed in the store as its own anchor",
            "a CN-only name is legacy: matching it (curl, urllib3 1.26) or refusing it "
            "(urllib3 2: Hostname mismatch) are both defensible, a crash is not",
            groups=("reports", "store"),
            server="self-signed-cn-only",
            leaf_anchor=True,
            expected_by_placement={"decoy": OK_OR_REJECTED, "shadow": OK_OR_REJECTED},
            source="https://github.com/psf/requests/issues/6969",
        ),
        Scenario(
            "curl-6090",
            "the CA file option (--cacert, SSL_CERT_FILE) names a file that does not exist "
            "while the CA directory option (--capath) is valid",
            "the healthy directory holds the CA: using it is OK, stopping cleanly is FAILED "
            "(curl: exit 77)",
            groups=("reports", "store"),
            faults=("missing-file-env",),
            expected_by_placement={"decoy": CLEAN_REFUSAL, "shadow": CLEAN_REFUSAL},
            source="https://github.com/curl/curl/issues/6090",
        ),
        Scenario(
            "pip-12779",
            "the trusted CA only in the system store (/etc/ssl...), no trust variable; pip "
            "runs with --use-feature=truststore",
            "asked to use the system store, a client must use it (pip 24.1 did not)",
            groups=("reports", "store"),
            source="https://github.com/pypa/pip/issues/12779",
        ),
    )
}

GROUPS: dict[str, tuple[str, ...]] = {}
for _s in CATALOGUE.values():
    for _g in _s.groups:
        GROUPS.setdefault(_g, ())
        GROUPS[_g] += (_s.name,)


@dataclass(frozen=True)
class Report:
    """A reported bug as data: its scenario, source, setup, client and verdicts per version.

    ``reported`` says what the report says each version does (its own words, shortened);
    ``measured`` is the verdict each pinned version gives here, asserted by the project's
    tests; ``evidence`` the wording in the client's output that shows why (a fallback to
    roots compiled into a binary is invisible to a local CA: the warning is the evidence).
    ``notes`` says where the measurement differs from the report, and which versions of the
    client this machine has rather than the reporter's.
    """

    name: str
    source: str
    client: str
    trust: str
    setup: str
    variables: Mapping[str, str]
    reported: Mapping[str, str]
    measured: Mapping[str, Verdict]
    evidence: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""

    @property
    def scenario(self) -> Scenario:
        """The catalogue's scenario of this report."""
        return CATALOGUE[self.name]


_V = Verdict
#: The ``reports`` group's bugs, by scenario name (uv-5448's versions: tests/test_uv_5448.py).
REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report(
            "uv-18526",
            "https://github.com/astral-sh/uv/issues/18526",
            "uv",
            "env",
            "the CA only in the default store (a private mount namespace); every variable uv "
            "reads names a missing path; native roots on (UV_NATIVE_TLS, UV_SYSTEM_CERTS)",
            {"SSL_CERT_FILE": "<missing file>", "SSL_CERT_DIR": "<missing dir>"},
            {
                "before 0.12.0": "the override is dropped: uv uses the system or bundled roots",
                "0.12.0": "fixed (PR 20741): the override is kept, no default roots",
            },
            {
                "0.10.0": _V.REJECTED,
                "0.11.0": _V.CRASHED,
                "0.11.33": _V.FAILED,
                "0.12.0": _V.REJECTED,
                "0.13.9": _V.REJECTED,
            },
            {
                "0.10.0": "Ignoring invalid `SSL_CERT_FILE`",
                "0.11.0": "panicked",
                "0.11.33": "No CA certificates were loaded",
                "0.12.0": "No default certificates will be trusted",
                "0.13.9": "No default certificates will be trusted",
            },
            "0.10.0 drops the override as reported, but its REJECTED shows it did not go to "
            "the system store (which trusts the origin here): it fell back to the roots "
            "compiled into uv, invisible to a local CA; the warning is the evidence. 0.11.0 "
            "panics instead and 0.11.33 stops (no certificates loaded): neither is in the "
            "report. 0.12.0 is the first version with the fix.",
        ),
        Report(
            "npm-7135",
            "https://github.com/npm/cli/issues/7135",
            "node",
            "env",
            "NODE_EXTRA_CA_CERTS names a file that does not exist; the CA is in no other "
            "store node reads (its bundled roots)",
            {"NODE_EXTRA_CA_CERTS": "<missing file>"},
            {"v21.5.0 (npm 10.2.4)": "warns 'Ignoring extra certs from ...' and goes on"},
            {"machine": _V.REJECTED},
            {"machine": "Warning: Ignoring extra certs from"},
            "node is this machine's (v20.20.2 measured), not pinned: the same warning and the "
            "CA silently absent (REJECTED: unable to verify the first certificate).",
        ),
        Report(
            "requests-6969",
            "https://github.com/psf/requests/issues/6969",
            "requests",
            "flags",
            "the origin's self-signed CN-only certificate is the only anchor: requests' "
            "verify= (curl's --cacert) names its PEM (tlsenv.origin.leaf_pem)",
            {},
            {
                "curl": "OK",
                "urllib3 2.x": "SSLError: Hostname mismatch",
                "urllib3 1.26": "OK",
            },
            {
                "curl": _V.OK,
                "requests 2.31.0 (urllib3 2.x)": _V.REJECTED,
                "requests 2.25.1 (urllib3 1.26.x)": _V.OK,
            },
            {"requests 2.31.0 (urllib3 2.x)": "Hostname mismatch"},
            "as reported (curl 7.88.1 is this machine's; requests pinned, with the urllib3 "
            "each resolved: 2.8.0 for requests 2.31.0, 1.26.20 for requests 2.25.1).",
        ),
        Report(
            "curl-6090",
            "https://github.com/curl/curl/issues/6090",
            "curl",
            "flags",
            "curl --cacert MISSING --capath DIR, the CA hash-linked in DIR",
            {},
            {"7.72.0 (OpenSSL 1.1.1h)": "exit 77: error setting certificate verify locations"},
            {"machine": _V.FAILED},
            {"machine": "(77) error setting certificate file"},
            "curl is this machine's (7.88.1, OpenSSL 3.0): still exit 77, worded "
            "'error setting certificate file' (curl now loads the file and the dir apart).",
        ),
        Report(
            "pip-12779",
            "https://github.com/pypa/pip/issues/12779",
            "pip",
            "system",
            "the CA only in the system store; pip install --use-feature=truststore",
            {},
            {"24.0": "OK", "24.1": "certificate not trusted", "24.1.1": "OK"},
            {"24.0": _V.OK, "24.1": _V.REJECTED, "24.1.1": _V.OK},
            {"24.1": "CERTIFICATE_VERIFY_FAILED"},
            "as reported (pip pinned, on this machine's Python 3.11).",
        ),
    )
}


# Scenarios that proxy= or server= may name on their own (without scenario=).
GROUPS_OF_ALONE = frozenset(GROUPS.get("proxy", ()) + GROUPS.get("server", ()))


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``, or a :class:`ConfigError` listing the valid names."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}; valid names: {', '.join(sorted(CATALOGUE))}"
            f"{did_you_mean(name, CATALOGUE)}"
        ) from None


@dataclass(frozen=True)
class Spec:
    """Everything needed to build one TLSEnv: the marker's keywords, resolved."""

    scenario: Scenario
    faults: tuple[str, ...] = ()
    placement: str = "decoy"
    proxy: str | None = None
    server: str = "good"
    layout: str = "debian"
    backend: str = "disk"
    system_paths: bool = False
    user: str | None = None
    timeout: float | None = None
    extra_cas: int = 0
    #: None: the session's default (``--tlsenv-trust``, ini ``tlsenv_trust``, else "env").
    trust: str | None = None


#: Where ``call`` reads the store: real files, or the store copied into pyfakefs.
BACKENDS = ("disk", "fakefs")

KEYWORDS = (
    "scenario",
    "faults",
    "placement",
    "proxy",
    "server",
    "layout",
    "backend",
    "system_paths",
    "user",
    "timeout",
    "extra_cas",
    "trust",
)


def _substitute_ok(expected: frozenset[Verdict], by: frozenset[Verdict]) -> frozenset[Verdict]:
    # A store fault only changes what would otherwise have succeeded.
    return (expected - {Verdict.OK}) | by if Verdict.OK in expected else expected


def _one_of(keyword: str, value: object, valid: Sequence[str], *, unknown: str = "") -> str:
    """``value`` if it is one of the names ``valid``, else a ConfigError that lists them."""
    if isinstance(value, str) and value in valid:
        return value
    hint = did_you_mean(value, valid)
    if unknown and isinstance(value, str):
        raise ConfigError(f"unknown {unknown} {value!r}; valid: {', '.join(valid)}{hint}")
    raise ConfigError(f"{keyword} must be one of {', '.join(valid)}, got {value!r}{hint}")


def _check_faults(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError(
            f"faults takes a list of names, got the string {value!r}: write faults=[{value!r}]"
        )
    if not isinstance(value, (list, tuple)):
        raise ConfigError(
            f"faults takes a list (or tuple) of fault names, got {value!r}; [] for none"
        )
    for f in value:
        if not isinstance(f, str) or f not in FAULTS:
            what = "unknown fault" if isinstance(f, str) else "faults holds names (str), got"
            raise ConfigError(
                f"{what} {f!r}; valid names: {', '.join(sorted(FAULTS))}{did_you_mean(f, FAULTS)}"
            )
    extra = tuple(value)
    repeated = sorted({f for f in extra if extra.count(f) > 1})
    if repeated:
        # Each fault has one entry per store (tlsenv-<fault>.pem): twice makes no sense.
        raise ConfigError(f"fault(s) listed more than once: {', '.join(repeated)}")
    return extra


def _check_user(value: object) -> str | None:
    # A name or a uid as pwd knows them; whether it exists is checked where it is used (the
    # machine running the client), but what cannot be a user name at all is caught here.
    if value is None:
        return None
    bad = (
        not isinstance(value, str)
        or not value
        or value != value.strip()
        or any(c in value for c in ":/\0\n")
    )
    if bad:
        raise ConfigError(
            f"user must be None or a user name or uid (a non-empty str without ':', '/', "
            f"NUL or newline), got {value!r}"
        )
    return str(value)


def resolve(*args: Any, **kwargs: Any) -> Spec:
    """Turn ``tlsenv(...)`` marker arguments into a :class:`Spec`, or raise ConfigError.

    Every keyword is checked for type and range first: a wrong value is a ConfigError that
    names the keyword, what it got and what it accepts, never another exception.
    """
    if len(args) > 1:
        raise ConfigError(f"tlsenv takes at most one positional argument (scenario), got {args!r}")
    if args:
        if "scenario" in kwargs:
            raise ConfigError("scenario given both positionally and by keyword")
        kwargs["scenario"] = args[0]
    unknown = sorted(set(kwargs) - set(KEYWORDS))
    if unknown:
        hint = did_you_mean(unknown[0], KEYWORDS) if len(unknown) == 1 else ""
        raise ConfigError(
            f"unknown tlsenv keyword(s) {', '.join(unknown)}; valid: {', '.join(KEYWORDS)}{hint}"
        )
    name = kwargs.get("scenario")
    if name is not None and not isinstance(name, str):
        raise ConfigError(
            f"scenario must be None or a scenario name (str), got {name!r}; valid names: "
            f"{', '.join(sorted(CATALOGUE))}"
        )
    if name is not None and name not in CATALOGUE:
        raise ConfigError(
            f"unknown scenario {name!r}; valid names: {', '.join(sorted(CATALOGUE))}"
            f"{did_you_mean(name, CATALOGUE)}"
        )
    base = CATALOGUE[name] if name else CATALOGUE["good"]
    if not name:
        # proxy= or server= alone means that scenario (its description, why and expected set).
        alone = kwargs.get("proxy") or kwargs.get("server")
        if isinstance(alone, str) and alone in CATALOGUE and alone in GROUPS_OF_ALONE:
            base = CATALOGUE[alone]

    extra = _check_faults(kwargs.get("faults", ()))
    faults = base.faults + tuple(f for f in extra if f not in base.faults)
    placement = _one_of("placement", kwargs.get("placement", base.placement), PLACEMENTS)
    proxy = kwargs.get("proxy", base.proxy)
    proxies = GROUPS.get("proxy", ())
    if proxy is not None and (not isinstance(proxy, str) or proxy not in proxies):
        raise ConfigError(
            f"proxy takes a name from the proxy group, got {proxy!r}; valid: "
            f"{', '.join(proxies)} (or None){did_you_mean(proxy, proxies)}"
        )
    server = kwargs.get("server", base.server)
    servers = GROUPS.get("server", ())
    if not isinstance(server, str) or (server not in servers and server != base.server):
        raise ConfigError(
            f"server takes a name from the server group, got {server!r}; valid: "
            f"{', '.join(servers)}{did_you_mean(server, servers)}"
        )
    layout = _one_of("layout", kwargs.get("layout", base.layout), tuple(LAYOUTS), unknown="layout")
    backend = _one_of("backend", kwargs.get("backend", "disk"), BACKENDS)
    system_paths = kwargs.get("system_paths", False)
    if not isinstance(system_paths, bool):
        raise ConfigError(f"system_paths must be True or False, got {system_paths!r}")
    user = _check_user(kwargs.get("user"))
    timeout = kwargs.get("timeout")
    seconds = None if timeout is None else check_timeout(timeout, "timeout")
    extra_cas = check_count(kwargs.get("extra_cas", 0), "extra_cas", MAX_EXTRA_CAS)
    trust = kwargs.get("trust")
    if trust is not None:
        trust = _one_of("trust", trust, TRUST_MODES)

    # A server or proxy scenario's own set describes its server/proxy: keep it while both are
    # unchanged; otherwise start from the store's set (OK when the base is not a store one)
    # and let the server and proxy substitute for OK, as faults do.
    pure_store = base.proxy is None and base.server == "good"
    expected = base.expected_by_placement.get(placement, OK)
    if not pure_store and (server != base.server or proxy != base.proxy):
        expected = OK
    if pure_store or server != base.server or proxy != base.proxy:
        if server != "good":
            expected = _substitute_ok(expected, CATALOGUE[server].expected)
        if proxy is not None:
            expected = _substitute_ok(expected, CATALOGUE[proxy].expected)
    for f in extra:
        if f in base.faults:
            continue
        fault_scenario = CATALOGUE.get(f)
        by = fault_scenario.expected_by_placement.get(placement, OK) if fault_scenario else OK
        expected = _substitute_ok(expected, by)
    changed = (
        (extra and set(extra) - set(base.faults))
        or placement != base.placement
        or layout != base.layout
        or server != base.server
        or proxy != base.proxy
    )
    scenario = base
    if changed:
        parts = [base.name] if name or base.name != "good" else []
        parts += [f for f in extra if f not in base.faults]
        if server != base.server:
            parts.append(server)
        if proxy != base.proxy:
            parts.append(proxy or "no-proxy")
        label = "+".join(parts) or base.name
        if placement != base.placement:
            label += f"@{placement}"
        if layout != base.layout:
            label += f"[{layout}]"
        scenario = replace(
            base,
            name=label,
            faults=faults,
            placement=placement,
            layout=layout,
            server=server,
            proxy=proxy,
            expected_by_placement={placement: expected},
            description=base.description
            if not extra
            else "; ".join(FAULTS[f].description for f in faults),
        )
    return Spec(
        scenario=scenario,
        faults=faults,
        placement=placement,
        proxy=proxy,
        server=server,
        layout=layout,
        backend=backend,
        system_paths=system_paths,
        user=user,
        timeout=seconds,
        extra_cas=extra_cas,
        trust=trust,
    )
