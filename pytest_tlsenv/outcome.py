"""Verdicts: what a client did in a scenario, decided from evidence first.

Order of evidence: what the origin and the proxy saw, then the exit
status or signal, then an allow-list of real wordings (Rust panics, Python tracebacks,
OpenSSL / rustls / GnuTLS / Go / node verification errors). In-process, the exception chain
decides: ``ssl.SSLCertVerificationError`` anywhere in it means REJECTED.
"""

from __future__ import annotations

import enum
import os
import re
import signal
import socket
import ssl
import urllib.error
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .redact import Redactor

if TYPE_CHECKING:
    from typing import TypeAlias

    from ._types import EnvView

    # The TLSEnv that made an outcome, as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView["Outcome", "Verdict"]

__all__ = ["Outcome", "Verdict", "classify_call", "classify_run", "refine", "trust_alert"]


class Verdict(enum.StrEnum):
    """What a client did; values serialise as their names."""

    OK = "OK"  # success, and the origin got the request
    REJECTED = "REJECTED"  # refused for a TLS trust reason, nothing leaked
    CRASHED = "CRASHED"  # panic, traceback, abort, signal; in-process: a non-network exception
    HUNG = "HUNG"  # timeout
    LEAKED = "LEAKED"  # sent application data through an untrusted interceptor: the worst
    FAILED = "FAILED"  # anything else, e.g. a clean "cannot read CA file" exit


GRACEFUL_BREACHES = frozenset({Verdict.CRASHED, Verdict.HUNG, Verdict.LEAKED})

# Real wordings of a refused certificate, per TLS stack. Matched case-insensitively.
REJECT_PATTERNS = [
    # OpenSSL (curl, python, s_client, pip, node --use-openssl-ca)
    r"certificate verify failed",
    r"CERTIFICATE_VERIFY_FAILED",
    r"unable to get local issuer certificate",
    r"unable to verify the first certificate",
    r"self[- ]signed certificate",
    r"certificate has expired",
    r"certificate is not yet valid",
    r"SSL certificate problem",
    r"no alternative certificate subject name matches",
    r"Hostname mismatch",
    r"Certificate did not match expected hostname",  # pip's vendored urllib3
    r"There was a problem confirming the ssl certificate",  # pip
    r"verify error:num=",
    r"Verification error:",
    # rustls / webpki (uv)
    r"invalid peer certificate",
    r"UnknownIssuer",
    r"NotValidForName",
    r"CertExpired",
    r"CertNotValidYet",
    # GnuTLS (wget)
    r"The certificate of .* is not trusted",
    r"The certificate of .* hasn't got a known issuer",
    r"cannot verify .*'s certificate",
    r"server certificate verification failed",  # git (GnuTLS build)
    # Go
    r"x509: certificate signed by unknown authority",
    r"x509: certificate is valid for",
    r"x509: certificate has expired",
    r"x509: certificate relies on legacy Common Name field",
    r"x509: certificate specifies an incompatible key usage",
    r"x509: a root or intermediate certificate is not authorized",
    # Java (JSSE): a path the trust anchors do not reach or validate, a name not in the leaf
    r"PKIX path (?:building|validation) failed",
    r"No subject alternative (?:DNS )?names? (?:matching|present)",
    r"No name matching \S+ found",
    r"Extended key usage does not permit use for TLS server authentication",
    # node
    r"UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    r"UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    r"SELF_SIGNED_CERT_IN_CHAIN",
    r"DEPTH_ZERO_SELF_SIGNED_CERT",
    r"CERT_HAS_EXPIRED",
    r"ERR_TLS_CERT_ALTNAME_INVALID",
    r"INVALID_PURPOSE",
    # OpenSSL's own reasons, as node prints them without a "verify failed" prefix
    r"unsuitable certificate purpose",
    r"permitted subtree violation",
    r"EE certificate key too weak",
    # GnuTLS hostname mismatch (wget; curl/git built on GnuTLS)
    r"The certificate's owner does not match hostname",
    r"certificate subject name \(.*\) does not match target host name",
]
REJECT_RE = re.compile("|".join(f"(?:{p})" for p in REJECT_PATTERNS), re.IGNORECASE)

# Wordings of a proxy that refused the tunnel (403) or wants credentials (407): the line that
# explains a FAILED run better than the client's last line.
_PROXY_FAIL_PATTERNS = [
    r"CONNECT tunnel failed",  # curl
    r"Tunnel connection failed",  # python http.client (urllib, requests, pip)
    r"Proxy Authentication Required",
    r"ProxyError",
    r"proxy\b.*\b(?:403|407)\b",
    r"\b(?:403|407)\b.*\bproxy",
]
PROXY_FAIL_RE = re.compile("|".join(f"(?:{p})" for p in _PROXY_FAIL_PATTERNS), re.IGNORECASE)

# Wordings of a crash, whatever the exit code.
CRASH_PATTERNS = [
    r"panicked at",  # Rust
    r"fatal runtime error",  # Rust
    r"Segmentation fault",
    r"core dumped",
    r"FATAL ERROR:",  # node / V8
    r"^Fatal Python error",
    r'^Exception in thread "',  # Java: an uncaught exception (our client catches them all)
    r"A fatal error has been detected by the Java Runtime Environment",
]
CRASH_RE = re.compile("|".join(f"(?:{p})" for p in CRASH_PATTERNS), re.MULTILINE)
_TRACEBACK = "Traceback (most recent call last):"
# A client's own report that it is stuck for good (the go preset's watchdog).
_BLOCKED_RE = re.compile(r"root loading blocked")
RUST_PANIC_EXIT = 101

# The TLS alerts a client sends when it does not accept the certificate it was shown (RFC
# 8446 6.2), as OpenSSL names them in the server's error. The server's account outranks the
# client's wording: curl with only --capath, when the CA's slot cannot be loaded, prints the
# loader's error ("system library::Permission denied", exit 35) after sending "unknown ca".
TRUST_ALERTS = (
    "unknown ca",
    "bad certificate",
    "certificate unknown",
    "certificate expired",
    "certificate revoked",
    "unsupported certificate",
)
TRUST_ALERT_RE = re.compile(r"alert (" + "|".join(TRUST_ALERTS) + ")", re.IGNORECASE)


def trust_alert(errors: Iterable[str | None]) -> str | None:
    """The first certificate alert among the servers' handshake errors (``"unknown ca"``)."""
    for error in errors:
        m = TRUST_ALERT_RE.search(error or "")
        if m:
            return m.group(1).lower()
    return None


def refine(verdict: Verdict, reason: str, alert: str | None) -> tuple[Verdict, str]:
    """A FAILED run during which the client refused a server's certificate is REJECTED.

    ``alert`` is what :func:`trust_alert` found in the origin's and the proxy's records of
    this run's handshakes. Only FAILED changes: a crash, hang or leak stays what it is.
    """
    if verdict is Verdict.FAILED and alert:
        return Verdict.REJECTED, f"the client refused the certificate (it sent '{alert}'); {reason}"
    return verdict, reason


# Exception types that are a network, TLS or timeout failure rather than a crash: their
# modules. (requests' RequestException derives from OSError, as does PermissionError, so
# class hierarchy alone cannot tell "network" from "trust file unreadable".)
_NETWORK_MODULES = ("requests", "urllib3", "httpx", "httpcore", "aiohttp", "http.client")
_NETWORK_TYPES: tuple[type[BaseException], ...] = (
    ssl.SSLError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    socket.herror,
    urllib.error.URLError,
    EOFError,
)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _first_match(regex: re.Pattern[str], text: str) -> str | None:
    m = regex.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return text[start : end if end != -1 else len(text)].strip()


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: ``__cause__``, ``__context__``, ``.reason``, args."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        wrapped: list[Any] = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(w for w in wrapped if isinstance(w, BaseException))


def _is_network(exc: BaseException) -> bool:
    if isinstance(exc, _NETWORK_TYPES):
        return True
    # An exception of a namespace child that did not pickle arrives as the names of its
    # classes (namespace.RemoteError.remote_mro): judge those names the same way.
    remote: tuple[str, ...] = getattr(exc, "remote_mro", ())
    builtin = {f"{t.__module__}.{t.__qualname__}" for t in _NETWORK_TYPES}
    if any(
        name in builtin
        or name.split(".")[0] in _NETWORK_MODULES
        or name.rpartition(".")[0] in _NETWORK_MODULES
        for name in remote
    ):
        return True
    return any(
        (cls.__module__ or "").split(".")[0] in _NETWORK_MODULES
        or cls.__module__ in _NETWORK_MODULES
        for cls in type(exc).__mro__
        if cls.__module__ != "builtins"
    )


@dataclass
class Outcome:
    """What one run or call did, with the evidence for its verdict."""

    verdict: Verdict
    reason: str
    argv: Sequence[str] | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    exception: BaseException | None = None
    value: Any = None
    duration: float = 0.0
    reached_origin: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    env: TLSEnv | None = field(default=None, repr=False)
    #: The trust mode the client ran in (``env``, ``system`` or ``flags``): how the scenario's
    #: store reached it. A verdict describes the client in that mode only.
    trust: str = "env"
    # An in-process call: what it did to os.environ (set or changed, unset), taken when the
    # Outcome is made, right after the call, when os.environ is the host's again. The failure
    # text shows this instead of the whole host environment.
    _call_changes: tuple[dict[str, str], list[str]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.argv is None and self.environ:
            host = os.environ
            changed = {k: v for k, v in self.environ.items() if host.get(k) != v}
            unset = sorted(k for k in host if k not in self.environ)
            self._call_changes = (changed, unset)

    def __repr__(self) -> str:
        # pytest shows reprs in assertion failures (``assert out.verdict == ...``): no
        # environment, no output, and no secret in what is shown.
        red = self.redactor()
        argv = None if self.argv is None else [red.text(str(a)) for a in self.argv]
        return (
            f"Outcome(verdict={self.verdict!s}, trust={self.trust!r}, "
            f"reason={red.text(self.reason)!r}, argv={argv!r}, returncode={self.returncode!r})"
        )

    def redactor(self) -> Redactor:
        """What keeps this outcome's secrets (those of its environment and of the host's)
        out of any text made from it."""
        return Redactor(os.environ, self.environ)

    def redacted_environ(self) -> dict[str, str]:
        """The environment as failure texts and reports show it, without secrets: a run's
        whole (allow-listed) environment; for an in-process call, only the variables the call
        set or changed (the scenario's, ``env=``), not the whole host environment."""
        shown = self._call_changes[0] if self._call_changes is not None else self.environ
        return self.redactor().environ(shown)

    # -- assertions -------------------------------------------------------------------------

    def assert_verdict(self, *allowed: Verdict | str) -> Outcome:
        """Fail unless the verdict is one of ``allowed``."""
        __tracebackhide__ = True
        wanted = {Verdict(a) for a in allowed}
        if self.verdict not in wanted:
            raise AssertionError(self.explain(f"expected {_fmt(wanted)}"))
        return self

    def assert_ok(self) -> Outcome:
        """Fail unless the client succeeded and the origin got its request."""
        __tracebackhide__ = True
        return self.assert_verdict(Verdict.OK)

    def assert_rejected(self) -> Outcome:
        """Fail unless the client refused for a TLS trust reason (and leaked nothing)."""
        __tracebackhide__ = True
        return self.assert_verdict(Verdict.REJECTED)

    def assert_graceful(self) -> Outcome:
        """Fail if the client crashed, hung or leaked; any other verdict is graceful."""
        __tracebackhide__ = True
        if self.verdict in GRACEFUL_BREACHES:
            raise AssertionError(self.explain("expected graceful degradation"))
        return self

    def assert_expected(self) -> Outcome:
        """Fail unless the verdict is in the scenario's expected set."""
        __tracebackhide__ = True
        if self.env is None:
            raise AssertionError("assert_expected() needs an outcome from a TLSEnv")
        return self.assert_verdict(*self.env.scenario.expected)

    # -- evidence ---------------------------------------------------------------------------

    def explain(self, what: str) -> str:
        """The failure text: verdict, scenario, store, environment, command, stderr, repro.

        Without secrets (:mod:`pytest_tlsenv.redact`); for an in-process call, the environment
        shown is what the call changed, not the whole host environment.
        """
        parts = [f"{what}, got {self.verdict}: {self.reason}", f"trust mode: {self.trust}"]
        env = self.env
        if env is not None:
            sc = env.scenario
            parts.append(
                f"scenario: {sc.name} (expected {_fmt(sc.expected)}) - {sc.why}\n  {sc.description}"
            )
            parts.append("store:\n" + _indent(env.store.listing()))
        if self.argv is not None:
            parts.append("command: " + " ".join(_quote(a) for a in self.argv))
            if self.returncode is not None:
                parts.append(f"exit status: {self.returncode}")
        if self.exception is not None:
            parts.append(f"exception: {type(self.exception).__name__}: {self.exception}")
        red = self.redactor()
        lines = [f"{k}={v}" for k, v in self.redacted_environ().items()]
        if self._call_changes is not None:
            if self._call_changes[1]:
                lines.append("unset: " + " ".join(self._call_changes[1]))
            parts.append(
                "environment (what the call changed in os.environ; the rest is the host's):\n"
                + _indent("\n".join(lines))
            )
        elif self.environ:
            parts.append("environment:\n" + _indent("\n".join(lines)))
        if self.stderr.strip():
            parts.append("stderr (tail):\n" + _indent(_tail(self.stderr)))
        if env is not None:
            # Under --tlsenv-keep already, suggesting it again would send the user in circles.
            kept = (
                f"the scenario root stays if the test fails: {env.root}"
                if env.keeps_root
                else f"--tlsenv-keep keeps the scenario root ({env.root})"
            )
            parts.append(
                f"reproduce: tlsenv.repro(DIR) or pytest --tlsenv-repro-dir DIR writes a bundle "
                f"(repro.sh, Dockerfile, ISSUE.md) that runs without pytest; {kept}"
            )
        # Secret values echoed anywhere (argv, stderr, an exception) go too.
        return red.text("\n".join(parts))


def _fmt(verdicts: frozenset[Verdict] | set[Verdict]) -> str:
    return "{" + ", ".join(sorted(v.value for v in verdicts)) + "}"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else repr(arg)


def _refused(reason: str, proxy_refused: str | None) -> str:
    return f"the proxy answered {proxy_refused}; {reason}" if proxy_refused else reason


# OpenSSL's wordings of a CA file or directory it could not load: a refusal of the client's
# own configuration (like curl's exit 77), reported before any certificate is judged.
_UNLOADABLE_RE = re.compile(
    r"\[X509\] PEM lib[^\n]*|X509_load_cert_crl_file[^\n]*|no certificate or crl found[^\n]*"
    # urllib3 (pip) wrapping the OSError of opening its CA file
    r"|SSLError\((?:PermissionError|FileNotFoundError|IsADirectoryError)\([^)]*\)\)"
    # pip 26 without retries: the OSError itself after its certificate-problem wording
    r"|problem confirming the ssl certificate: \[Errno \d+\][^\n]*"
    # Java: a trust store it cannot open, parse or verify, or one holding no anchor
    r"|[^\n]*(?:problem accessing trust store|trustAnchors parameter must be non-empty"
    r"|Invalid keystore format)[^\n]*",
    re.IGNORECASE,
)


def classify_run(
    *,
    returncode: int | None,
    stderr: str,
    stdout: str,
    timed_out: bool,
    timeout: float,
    reached_origin: bool,
    leaked: bool = False,
    proxy_refused: str | None = None,
) -> tuple[Verdict, str]:
    """Verdict and reason for a subprocess, evidence first.

    ``proxy_refused`` is the proxy's own account of a tunnel it refused during the run
    (``403 to CONNECT host:port``): it explains a FAILED run better than any client wording.
    """
    if leaked:
        return Verdict.LEAKED, "application data reached the untrusted interceptor"
    if timed_out:
        return Verdict.HUNG, f"no exit within {timeout:g} s; process group killed"
    assert returncode is not None
    text = stderr + "\n" + stdout
    blocked = _first_match(_BLOCKED_RE, text)
    if blocked:
        # The go preset's watchdog: root loading that would never end (a FIFO in a cert dir)
        # is a hang, although the watchdog ended it before the run's timeout.
        return Verdict.HUNG, blocked
    crash = _first_match(CRASH_RE, text)
    if crash:
        return Verdict.CRASHED, crash
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return Verdict.CRASHED, f"killed by {name}"
    if returncode == RUST_PANIC_EXIT and "panick" in text:
        return Verdict.CRASHED, "Rust panic (exit 101)"
    rejected = _first_match(REJECT_RE, text)
    if _TRACEBACK in text:
        last = text.rstrip().splitlines()[-1].strip() if text.strip() else ""
        if not REJECT_RE.search(last) and not re.search(r"(Connection|Timeout|SSL)\w*Error", last):
            return Verdict.CRASHED, f"Python traceback: {last}"
    if returncode == 0:
        if reached_origin:
            return Verdict.OK, "exit 0 and the origin got the request"
        return Verdict.FAILED, _refused("exit 0 but the origin received nothing", proxy_refused)
    unloadable = _first_match(_UNLOADABLE_RE, text)
    if unloadable:
        # The client could not load its own trust store (pip wraps OpenSSL's "PEM lib" in
        # "There was a problem confirming the ssl certificate"): it never judged the peer.
        return Verdict.FAILED, f"exit {returncode}: could not load its trust store: {unloadable}"
    if rejected:
        return Verdict.REJECTED, rejected
    if proxy_refused:
        return Verdict.FAILED, _refused(f"exit {returncode}", proxy_refused)
    proxy = _first_match(PROXY_FAIL_RE, text)
    if proxy:  # clients often end with a generic line ("No matching distribution found")
        return Verdict.FAILED, f"exit {returncode}: {proxy}"
    last_line = _tail(stderr or stdout, 1) or "(no output)"
    return Verdict.FAILED, f"exit {returncode}: {last_line}"


# Deliberate refusals of a trust path by the library itself (requests' check of verify= /
# REQUESTS_CA_BUNDLE before any connection).
_TRUST_CONFIG_REFUSAL = re.compile(r"Could not find a suitable TLS CA certificate bundle")


def classify_call(
    *,
    exception: BaseException | None,
    timed_out: bool,
    timeout: float,
    reached_origin: bool,
    leaked: bool = False,
    proxy_refused: str | None = None,
) -> tuple[Verdict, str]:
    """Verdict and reason for an in-process call (``proxy_refused`` as in classify_run)."""
    if leaked:
        return Verdict.LEAKED, "application data reached the untrusted interceptor"
    if timed_out:
        return Verdict.HUNG, f"no return within {timeout:g} s"
    if exception is None:
        if reached_origin:
            return Verdict.OK, "returned and the origin got the request"
        return Verdict.FAILED, _refused("returned but the origin received nothing", proxy_refused)
    chain = list(exception_chain(exception))
    described = f"{type(exception).__name__}: {exception}"
    for e in chain:
        # Some builds (Debian's python 3.11.2 with OpenSSL 3.0, when a cert-dir lookup hit an
        # unreadable file) raise a plain SSLError whose reason is CERTIFICATE_VERIFY_FAILED.
        if isinstance(e, ssl.SSLCertVerificationError) or (
            isinstance(e, ssl.SSLError) and e.reason == "CERTIFICATE_VERIFY_FAILED"
        ):
            return Verdict.REJECTED, f"{type(e).__name__}: {e}"
    if _is_network(exception):
        return Verdict.FAILED, _refused(described, proxy_refused)
    for e in chain:
        if type(e) is OSError and _TRUST_CONFIG_REFUSAL.search(str(e)):
            # The library checked the trust path it was given and refused it by design: a
            # clean refusal (as curl's exit 77), not an accident while loading trust.
            return Verdict.FAILED, f"the client refused its trust configuration: {described}"
    return Verdict.CRASHED, f"exception escaped the client: {described}"
