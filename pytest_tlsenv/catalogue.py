"""The scenario catalogue as data: each :class:`Scenario`, its groups, its expected verdicts.

One entry per name, with what it breaks, why it matters, and the set of verdicts a robust
client may give in it: a table a reader scans whole (hence the module's length, nearly all
of it the catalogue). :mod:`pytest_tlsenv.scenarios` is where users import it from, with the
marker's keywords (:class:`~pytest_tlsenv.scenarios.Spec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .fallback import KINDS as FALLBACK_KINDS
from .faults import FAULTS
from .outcome import Verdict

__all__ = [
    "CATALOGUE",
    "CLEAN_REFUSAL",
    "FAILED",
    "GROUPS",
    "OK",
    "OK_OR_REJECTED",
    "REFUSED",
    "REJECTED",
    "Scenario",
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
        # -- more reported bugs (pytest_tlsenv.reports holds each one's versions and verdicts).
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
