"""Reported bugs as data: each ``reports`` scenario's source, setup, client and verdicts.

A :class:`Report` says what a public bug report says each version of a client does, and what
each pinned version measurably does here; the project's tests assert the measurements
(``tests/test_reports.py``). The scenarios themselves are in the catalogue
(:data:`pytest_tlsenv.scenarios.CATALOGUE`, group ``reports``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .outcome import Verdict
from .scenarios import CATALOGUE, Scenario

__all__ = ["REPORTS", "Report"]


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
