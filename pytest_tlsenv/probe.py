"""Where does this client look? The trust-discovery probe.

Every candidate source of trust gets a canary CA of its own: each trust variable of
:data:`TRUST_VARIABLES` (a bundle file for file-valued ones, a hashed directory for
directory-valued ones) and, with ``system_paths=True``, every default location of the
debian, rhel and alpine layouts (:data:`SYSTEM_SOURCES`, shown at the real paths in a private
mount namespace). One origin per canary presents a leaf of that canary on loopback. Then:

* **control**: nothing set, the client fetches from an origin whose canary is installed
  nowhere: it must refuse (REJECTED), else the probe cannot tell anything (the client does
  not verify, or fails for another reason);
* **singles**: one source set (a variable) or present (a system default), the client fetches
  from that source's origin: OK means the client trusts that source;
* **pairs**: two trusted sources set together, the client fetches from each one's origin in
  turn: both OK is a union, one OK means that one wins and setting it disables the other
  (httpx's SSL_CERT_FILE disables SSL_CERT_DIR).

While each run goes, an inotify watch (IN_OPEN/IN_ACCESS, no privileges needed) on every
canary directory records which canary files the client opened, so a refused source is either
"read-only" (opened, not trusted) or "ignored" (never opened). A callable runs in this
process: inotify sees its opens all the same. Runs are sequential: each run's opens must be
its own, and in-process calls serialise anyway (one ``os.environ``).

Runs are hermetic the way ``TLSEnv.run``/``call`` are: an allow-list environment with a
fresh sandbox HOME per run (:mod:`pytest_tlsenv.env`), a child without the DAC capabilities
as root (:mod:`pytest_tlsenv.runner`); every trust variable of the registry that is not under
test is unset.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import json
import os
import shutil
import struct
import tempfile
import threading
import time
import venv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .env import Sandbox, build_environ, scrubbed
from .errors import ConfigError, TLSEnvError
from .journal import Journal
from .outcome import Verdict, classify_call, classify_run
from .pki import Authority, Leaf
from .runner import call_in_thread, must_drop_caps, run_process
from .servers import Origin
from .store import LAYOUTS, Layout, TrustStore

if TYPE_CHECKING:
    from .namespace import MountPlan

__all__ = [
    "PLACEHOLDERS",
    "SYSTEM_SOURCES",
    "TRUST_VARIABLES",
    "OpenWatch",
    "PairResult",
    "Probe",
    "ProbeReport",
    "Source",
    "SourceResult",
    "TrustVariable",
    "probe",
]

# -- the registry of candidate sources ------------------------------------------------------


@dataclass(frozen=True)
class TrustVariable:
    """An environment variable some client reads to find trust: a file or a directory."""

    name: str
    kind: str  # "file" (a PEM bundle) or "dir" (a hashed directory)
    readers: str  # who is known to read it (documentation only; the probe measures)


TRUST_VARIABLES: dict[str, TrustVariable] = {
    v.name: v
    for v in (
        TrustVariable("SSL_CERT_FILE", "file", "OpenSSL, Go, rustls-native-certs, httpx, uv"),
        TrustVariable("SSL_CERT_DIR", "dir", "OpenSSL, Go, rustls-native-certs, httpx, uv"),
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
    )
}


def _system_sources() -> dict[str, str]:
    """Default trust locations of the debian, rhel and alpine layouts: ``/path -> kind``.

    Bundle files and cert dirs, plus the layouts' aliases of either (RHEL's ca-bundle.crt and
    cert.pem, Alpine's cert.pem): each is a place a client may open by default, so each gets a
    canary of its own (a real file or directory here, not an alias).
    """
    found: dict[str, str] = {}
    for name in ("debian", "rhel", "alpine"):
        lay = LAYOUTS[name]
        for rel, kind in ((lay.cert_dir, "dir"), (lay.bundle, "file"), (lay.cert_file, "file")):
            if rel:
                found.setdefault("/" + rel, kind)
        for alias, target in lay.aliases:
            resolved = os.path.normpath(os.path.join(os.path.dirname(alias), target))
            kind = "file" if resolved == lay.bundle else "dir" if resolved == lay.cert_dir else ""
            if kind:
                found.setdefault("/" + alias, kind)
    return dict(sorted(found.items()))


#: ``/etc/ssl/certs -> "dir"``, ``/etc/ssl/certs/ca-certificates.crt -> "file"``, ...
SYSTEM_SOURCES: dict[str, str] = _system_sources()

#: Placeholders a probe command may contain (the same words as ``repro``'s).
PLACEHOLDERS = ("{url}", "{index_url}", "{host}", "{port}", "{venv}", "{venvdir}")


@dataclass(frozen=True)
class Source:
    """One candidate source: a variable, or a system path, with its canary's location."""

    name: str  # the variable's name, or the absolute system path
    kind: str  # "file" or "dir"
    variable: str | None  # None for a system path
    path: Path  # where the canary lives on disk (for a system path: under the probe root)

    @property
    def system(self) -> bool:
        return self.variable is None


# -- inotify: which canary files a client opened --------------------------------------------

_IN_ACCESS = 0x1
_IN_OPEN = 0x20
_IN_Q_OVERFLOW = 0x4000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")


class OpenWatch:
    """Record IN_OPEN/IN_ACCESS on the files of some directories (inotify via libc).

    Watches are on directories: the kernel reports events on their entries (with the entry's
    name) and on the directory itself (a listing). A file opened through a symlink is reported
    in the directory of the link's *target*. No privileges needed, only read access.
    """

    def __init__(self, directories: Iterable[Path]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd
        self.overflowed = False
        self._dirs: dict[int, str] = {}
        try:
            for d in directories:
                wd = libc.inotify_add_watch(fd, os.fsencode(d), _IN_OPEN | _IN_ACCESS | _IN_ONLYDIR)
                if wd < 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"inotify_add_watch({d}): {os.strerror(err)}")
                self._dirs[wd] = str(d)
        except BaseException:
            self.close()
            raise

    def drain(self) -> set[str]:
        """Paths opened or read since the last drain (a directory's own path: it was listed)."""
        seen: set[str] = set()
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return seen
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size : off + _EVENT.size + length].rstrip(b"\0")
                off += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    self.overflowed = True
                    continue
                base = self._dirs.get(wd)
                if base is not None:
                    seen.add(os.path.join(base, os.fsdecode(name)) if name else base)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OpenWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- results ----------------------------------------------------------------------------------

TRUSTED = "trusted"
IGNORED = "ignored"
READ_ONLY = "read-only"
ERROR = "error"
INCONCLUSIVE = "inconclusive"  # the control run was not refused: an OK proves nothing


@dataclass(frozen=True)
class SourceResult:
    """What the client did with one source set alone (present alone, for a system path)."""

    source: Source
    # trusted / ignored (never opened) / read-only (opened, not trusted) / error (neither OK
    # nor REJECTED) / inconclusive (the control run was not refused)
    status: str
    verdict: Verdict
    reason: str
    opened: tuple[str, ...]  # the source's canary files the client opened ("." = dir listed)
    duration: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.name,
            "kind": self.source.kind,
            "system": self.source.system,
            "status": self.status,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "opened": list(self.opened),
            "duration_s": round(self.duration, 4),
        }


@dataclass(frozen=True)
class PairResult:
    """Two trusted sources set together: which one's canary the client still trusts."""

    a: str
    b: str
    a_trusted: bool
    b_trusted: bool
    a_opened: bool = False  # a's canary files were opened while both were set
    b_opened: bool = False

    @property
    def relation(self) -> str:
        """``"A + B"`` (both used), ``"A > B"`` (A wins: B disabled), or ``"A ! B"`` (neither)."""
        if self.a_trusted and self.b_trusted:
            return f"{self.a} + {self.b}"
        if self.a_trusted:
            return f"{self.a} > {self.b}"
        if self.b_trusted:
            return f"{self.b} > {self.a}"
        return f"{self.a} ! {self.b}"

    @property
    def both(self) -> bool:
        """Whether setting both keeps both in use (a union, not a precedence)."""
        return self.a_trusted and self.b_trusted

    @property
    def winner(self) -> str | None:
        if self.a_trusted != self.b_trusted:
            return self.a if self.a_trusted else self.b
        return None

    def read(self, name: str) -> bool:
        """Whether ``name``'s canary files were opened while both were set."""
        if name not in (self.a, self.b):
            raise KeyError(f"{name} is not in the pair {self.a} / {self.b}")
        return self.a_opened if name == self.a else self.b_opened

    @property
    def text(self) -> str:
        """The relation, and whether the disabled source was still read (inotify)."""
        if self.winner is None:
            return self.relation
        loser, opened = (
            (self.b, self.b_opened) if self.winner == self.a else (self.a, self.a_opened)
        )
        return f"{self.relation}  ({loser} {'read, not trusted' if opened else 'never opened'})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "a_trusted": self.a_trusted,
            "b_trusted": self.b_trusted,
            "a_opened": self.a_opened,
            "b_opened": self.b_opened,
            "relation": self.relation,
        }


@dataclass
class ProbeReport:
    """The probe's findings: per source, per pair, the order, and what it cost."""

    client: str
    system_paths: bool
    control_verdict: Verdict
    control_reason: str
    results: list[SourceResult] = field(default_factory=list)
    pairs: list[PairResult] = field(default_factory=list)
    runs: int = 0
    duration: float = 0.0
    overflowed: bool = False

    @property
    def valid(self) -> bool:
        """Whether the control run was refused, so an OK elsewhere means trust in a source."""
        return self.control_verdict == Verdict.REJECTED

    def status(self, name: str) -> str:
        """The status of source ``name`` (KeyError if it was not probed)."""
        return self.result(name).status

    def result(self, name: str) -> SourceResult:
        for r in self.results:
            if r.source.name == name:
                return r
        raise KeyError(f"{name} was not probed; probed: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [r.source.name for r in self.results]

    def having(self, status: str) -> list[str]:
        return [r.source.name for r in self.results if r.status == status]

    @property
    def trusted(self) -> list[str]:
        return self.having(TRUSTED)

    def pair(self, a: str, b: str) -> PairResult:
        """The pair of ``a`` and ``b`` (either order); KeyError if it was not measured."""
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError(f"no pair {a} / {b} was measured (both must be trusted alone)")

    def wins(self, a: str, b: str) -> bool:
        """Whether ``a`` disables ``b`` when both are set (only ``a``'s canary trusted)."""
        return self.pair(a, b).winner == a

    @property
    def order(self) -> list[str]:
        """Trusted variables, highest precedence first (by pairs won, then registry order).

        System defaults are not in it: they are present all at once; :attr:`defaults_text`
        says which variable drops which default.
        """
        system = {r.source.name for r in self.results if r.source.system}
        score = dict.fromkeys([n for n in self.trusted if n not in system], 0)
        for p in self.pairs:
            if p.winner in score:
                score[p.winner] += 1
        return sorted(score, key=lambda n: -score[n])

    @property
    def order_text(self) -> str:
        """The order as one line: ``>`` wins over, ``+`` both used, ``,`` not compared.

        Sources used together with every other one (truststore's SSL_CERT_FILE in pip 24)
        come last, after ``;``, so the chain before it reads transitively:
        ``REQUESTS_CA_BUNDLE > CURL_CA_BUNDLE > PIP_CERT; with all: SSL_CERT_FILE + ...``.
        """
        order = self.order
        if not order:
            return "(no source trusted)"

        def both(a: str, b: str) -> bool | None:
            try:
                return self.pair(a, b).both
            except KeyError:
                return None

        always = [n for n in order if all(both(n, m) for m in order if m != n)]
        if len(order) > 1 and len(always) == len(order):
            return " + ".join(order)
        chain = [n for n in order if n not in always] if len(order) > 1 else order
        text = chain[0]
        for prev, cur in itertools.pairwise(chain):
            try:
                p = self.pair(prev, cur)
            except KeyError:
                sep = ","
            else:
                sep = "+" if p.both else ">" if p.winner == prev else "?"
            text += f" {sep} {cur}"
        if always and len(order) > 1:
            text += "; with all: " + " + ".join(always)
        return text

    def check_honours(self, honours: Sequence[str]) -> list[str]:
        """Where a preset's ``honours`` (variables, highest first) disagrees with this probe.

        Only the variables this probe measured count; an empty list means agreement.
        """
        probed = {r.source.name for r in self.results if not r.source.system}
        claimed = [v for v in honours if v in probed]
        found = [n for n in self.trusted if n in probed]
        problems = [
            f"{v}: the preset says honoured, the probe found it {self.status(v)}"
            for v in claimed
            if v not in found
        ]
        problems += [
            f"{v}: trusted by the client, missing from the preset"
            for v in found
            if v not in claimed
        ]
        for hi, lo in itertools.combinations([v for v in claimed if v in found], 2):
            try:
                if self.wins(lo, hi):
                    problems.append(f"the preset ranks {hi} above {lo}, but {lo} wins over {hi}")
            except KeyError:
                continue
        return problems

    # -- output -------------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "system_paths": self.system_paths,
            "valid": self.valid,
            "control": {"verdict": self.control_verdict.value, "reason": self.control_reason},
            "sources": [r.as_dict() for r in self.results],
            "pairs": [p.as_dict() for p in self.pairs],
            "order": self.order,
            "order_text": self.order_text,
            "defaults": self.defaults_text,
            "runs": self.runs,
            "duration_s": round(self.duration, 3),
            "inotify_overflowed": self.overflowed,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def _rows(self) -> list[list[str]]:
        rows = []
        for r in self.results:
            opened = ", ".join(r.opened) if r.opened else "-"
            verdict = r.verdict.value if r.status != ERROR else f"{r.verdict.value}: {r.reason}"
            rows.append([r.source.name, r.source.kind, r.status, opened, verdict])
        return rows

    @property
    def defaults_text(self) -> list[str]:
        """Per trusted system default: the variables that drop it, and those that keep it."""
        lines = []
        for r in self.results:
            if not r.source.system or r.status != TRUSTED:
                continue
            name = r.source.name
            dropped = [
                p.winner for p in self.pairs if name in (p.a, p.b) and p.winner not in (None, name)
            ]
            kept = [
                p.a if p.b == name else p.b for p in self.pairs if name in (p.a, p.b) and p.both
            ]
            lines.append(
                f"{name}: trusted by default; setting {' or '.join(map(str, dropped)) or '-'} "
                f"drops it; kept with {', '.join(kept) or '-'}"
            )
        return lines

    def _summary(self) -> list[str]:
        lines = [f"precedence: {self.order_text}"]
        lines += [f"  {p.text}" for p in self.pairs]
        lines += [f"default {line}" for line in self.defaults_text]
        lines.append(
            f"control (no source, unknown CA): {self.control_verdict.value} - {self.control_reason}"
        )
        if not self.valid:
            lines.append(
                "WARNING: the control run was not refused, so OK verdicts say nothing about "
                "trust (the client does not verify, or fails for another reason)"
            )
        if self.overflowed:
            lines.append("WARNING: inotify queue overflowed; 'opened' may miss files")
        where = "variables and system paths" if self.system_paths else "variables"
        lines.append(f"{self.runs} runs in {self.duration:.2f} s ({where})")
        return lines

    def table(self) -> str:
        """The findings as a plain-text table (what the CLI prints)."""
        header = ["source", "kind", "result", "opened", "verdict"]
        rows = [header, *self._rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [f"probe: {self.client}"]
        for n, row in enumerate(rows):
            cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in [*widths, 7]))
        return "\n".join([*lines, "", *self._summary()])

    def to_markdown(self) -> str:
        lines = [
            f"### Trust probe: `{self.client}`",
            "",
            "| source | kind | result | opened | verdict |",
            "|---|---|---|---|---|",
        ]
        for name, kind, status, opened, verdict in self._rows():
            lines.append(f"| `{name}` | {kind} | **{status}** | {opened} | {verdict} |")
        lines.append("")
        lines += [f"- {line.strip()}" for line in self._summary()]
        return "\n".join(lines) + "\n"


# -- the probe ------------------------------------------------------------------------------

Client = Sequence[str] | Callable[[str], Any]


@dataclass
class _Canary:
    authority: Authority
    leaf: Leaf
    origin: Origin


class Probe:
    """Canaries, origins and watches for one client; :meth:`measure` runs it.

    ``client`` is an argv whose words may contain :data:`PLACEHOLDERS` (``{url}`` at least,
    or ``{index_url}`` for package managers; ``{venv}`` is a fresh bare virtualenv's
    interpreter per run) or a callable taking the URL. ``env`` adds fixed variables to every
    run (``UV_NATIVE_TLS=1``); it must not name a candidate variable. ``variables`` limits
    the candidate variables (default: all of :data:`TRUST_VARIABLES`); ``system_paths`` adds
    the layouts' default locations (:data:`SYSTEM_SOURCES`), shown in a private mount
    namespace (:mod:`pytest_tlsenv.namespace`).
    """

    def __init__(
        self,
        client: Client,
        *,
        root: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        variables: Iterable[str] | None = None,
        system_paths: bool = False,
        timeout: float = 20.0,
        pairs: bool = True,
        label: str | None = None,
    ) -> None:
        if isinstance(client, str):
            raise ConfigError("give the client as an argv list, not a string")
        if not callable(client):
            words = list(client)
            if not words:
                raise ConfigError("the probe needs a command (argv) or a callable")
            if not any(p in w for w in words for p in ("{url}", "{index_url}")):
                raise ConfigError(
                    "the command must contain {url} or {index_url} (the canary origin's "
                    f"address), e.g. curl -fsS {{url}}; got: {' '.join(words)}"
                )
            self.argv: list[str] | None = words
            self.fn: Callable[[str], Any] | None = None
            self.label: str = label or " ".join(words)
        else:
            self.argv = None
            self.fn = client
            self.label = label or str(getattr(client, "__qualname__", repr(client)))
        names = list(TRUST_VARIABLES) if variables is None else list(variables)
        unknown = [n for n in names if n not in TRUST_VARIABLES]
        if unknown:
            raise ConfigError(
                f"unknown trust variable(s) {', '.join(unknown)}; known: "
                + ", ".join(TRUST_VARIABLES)
            )
        self.env = dict(env or {})
        clash = sorted(set(self.env) & set(names))
        if clash:
            raise ConfigError(
                f"env sets {', '.join(clash)}, which the probe sets itself as a candidate; "
                "leave it out of the candidates (--skip, variables=) or out of env"
            )
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        self.timeout = timeout
        self.pairs = pairs
        self.system_paths = system_paths
        if system_paths:
            from .namespace import require

            require()
        if root is not None and root.exists() and (not root.is_dir() or any(root.iterdir())):
            # The probe deletes its root when done: never someone else's files.
            raise ConfigError(f"probe root {root} exists and is not an empty directory")
        self._journal: Journal | None = None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="tlsenv-probe-"))
            # In tmp, nothing else would remove it (and its keys) if we were killed.
            self._journal = Journal()
            self._journal.write([root])
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.sources: list[Source] = [
            Source(n, TRUST_VARIABLES[n].kind, n, self._variable_path(n)) for n in names
        ]
        if system_paths:
            self.sources += [
                Source(p, kind, None, self.root / "system" / p.lstrip("/"))
                for p, kind in SYSTEM_SOURCES.items()
            ]
        self._canaries: dict[str, _Canary] = {}
        self._watch: OpenWatch | None = None
        self._plan: MountPlan | None = None
        self._counter = itertools.count()
        self._threads: list[threading.Thread] = []

    def _variable_path(self, name: str) -> Path:
        base = self.root / "sources" / name
        return base if TRUST_VARIABLES[name].kind == "dir" else base / "ca.pem"

    # -- setup / teardown -----------------------------------------------------------------

    def __enter__(self) -> Probe:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _canary(self, key: str, label: str) -> _Canary:
        # A CN of at most 64 characters: the source's name goes into the label only.
        authority = Authority.create(label, common_name=f"tlsenv probe {label.split(':')[0]}")
        leaf = authority.issue()
        origin = Origin(leaf.server_context(self.root / "keys"))
        self._canaries[key] = _Canary(authority, leaf, origin)
        origin.start()
        return self._canaries[key]

    def _setup(self) -> None:
        self._canary("", "control: installed nowhere")
        for n, src in enumerate(self.sources):
            canary = self._canary(src.name, f"canary {n}: {src.name}")
            pem = canary.authority.cert_pem
            if src.kind == "file":
                src.path.parent.mkdir(parents=True, exist_ok=True)
                src.path.write_bytes(pem)
            else:
                # A hashed directory the way c_rehash leaves it; the link points inside the
                # directory, so inotify reports the open here (events go to the target's dir).
                src.path.mkdir(parents=True, exist_ok=True)
                real = src.path / f"tlsenv-canary-{n}.pem"
                real.write_bytes(pem)
                (src.path / f"{canary.authority.subject_hash}.0").symlink_to(real.name)
        if self.system_paths:
            from .namespace import MountPlan

            # The default locations as a layout of "aliases" only: MountPlan binds or grafts
            # each at its real path and masks the host's other trust paths.
            layout = Layout(
                "probe",
                "the probe's canaries at every default location",
                bundle=None,
                cert_dir=None,
                aliases=tuple((p.lstrip("/"), "") for p in SYSTEM_SOURCES),
            )
            store = TrustStore(root=self.root / "system", layout=layout)
            self._plan = MountPlan.for_store(store, self.root / "ns-stage")
        dirs: list[Path] = []
        for top in (self.root / "sources", self.root / "system"):
            for dirpath, _dirnames, _files in os.walk(top):
                dirs.append(Path(dirpath))
        self._watch = OpenWatch(dirs)

    def close(self) -> None:
        """Stop the origins, close the watch, delete the probe's files."""
        errors: list[BaseException] = []
        for canary in self._canaries.values():
            try:
                canary.origin.stop()
            except Exception as e:  # noqa: BLE001 - re-raised below, after the others stopped
                errors.append(e)
        self._canaries.clear()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        for t in self._threads:
            t.join(1.0)
        shutil.rmtree(self.root, ignore_errors=True)
        if self._journal is not None:
            self._journal.discard()
        if errors:
            raise errors[0]

    # -- one run ----------------------------------------------------------------------------

    def _substitute(self, origin: Origin, run_dir: Path) -> list[str]:
        assert self.argv is not None
        venv_py: list[str] = []

        def venv_python() -> str:
            if not venv_py:
                path = run_dir / "venv"
                venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(path)
                venv_py.append(str(path / "bin" / "python"))
            return venv_py[0]

        values: dict[str, Callable[[], str]] = {
            "{index_url}": lambda: origin.index_url,
            "{url}": lambda: origin.url,
            "{host}": lambda: origin.host,
            "{port}": lambda: str(origin.port),
            "{venvdir}": lambda: str(Path(venv_python()).parent.parent),
            "{venv}": venv_python,
        }
        out = []
        for word in self.argv:
            for key, make in values.items():
                if key in word:
                    word = word.replace(key, make())
            out.append(word)
        return out

    def _run(self, setvars: Mapping[str, str], serve: str) -> tuple[Verdict, str, set[str], float]:
        """Run the client once with ``setvars``, against the origin of canary ``serve``."""
        assert self._watch is not None
        origin = self._canaries[serve].origin
        unset: dict[str, str | None] = dict.fromkeys(TRUST_VARIABLES)
        overlay: dict[str, str | None] = {**unset, **self.env, **setvars}
        run_dir = self.root / "runs" / str(next(self._counter))
        before = len(origin.received)
        self._watch.drain()
        if self.argv is not None:
            sandbox = Sandbox.create(run_dir / "sandbox")
            argv = self._substitute(origin, run_dir)
            environ = build_environ(sandbox=sandbox, scenario={}, env=overlay)
            done = run_process(
                argv,
                environ=environ,
                timeout=self.timeout,
                cwd=str(sandbox.home),
                launcher=self._plan.launcher if self._plan is not None else None,
            )
            opened = self._watch.drain()
            verdict, reason = classify_run(
                returncode=done.returncode,
                stderr=done.stderr,
                stdout=done.stdout,
                timed_out=done.timed_out,
                timeout=self.timeout,
                reached_origin=len(origin.received) > before,
            )
            duration = done.duration
        else:
            verdict, reason, duration = self._call(overlay, origin.url, before, origin)
            opened = self._watch.drain()
        shutil.rmtree(run_dir, ignore_errors=True)
        return verdict, reason, opened, duration

    def _call(
        self, overlay: Mapping[str, str | None], url: str, before: int, origin: Origin
    ) -> tuple[Verdict, str, float]:
        from .tlsenv import _CALL_LOCK  # one in-process call at a time, as TLSEnv.call

        fn = self.fn
        assert fn is not None
        with _CALL_LOCK, scrubbed(overlay):
            if self._plan is not None:
                from .namespace import call_in_namespace

                drop = "dac" if must_drop_caps(None) else "all"
                result: Any = call_in_namespace(
                    lambda: fn(url), self._plan, timeout=self.timeout, drop=drop
                )
            else:
                result = call_in_thread(
                    lambda: fn(url),
                    timeout=self.timeout,
                    drop_caps=must_drop_caps(None),
                    name="tlsenv-probe-call",
                )
                if result.timed_out:
                    self._threads.append(result.thread)
        verdict, reason = classify_call(
            exception=result.exception,
            timed_out=result.timed_out,
            timeout=self.timeout,
            reached_origin=len(origin.received) > before,
        )
        return verdict, reason, float(result.duration)

    # -- the measurement ----------------------------------------------------------------------

    def _opened_of(self, src: Source, opened: set[str]) -> tuple[str, ...]:
        """The paths in ``opened`` that belong to ``src`` (the most specific source wins)."""
        mine: list[str] = []
        base = str(src.path)
        for path in sorted(opened):
            if path != base and not path.startswith(base + "/"):
                continue
            # Nested system sources: /etc/ssl/certs/ca-certificates.crt is its own source.
            inner = [
                s
                for s in self.sources
                if s is not src
                and len(str(s.path)) > len(base)
                and (path == str(s.path) or path.startswith(str(s.path) + "/"))
            ]
            if inner:
                continue
            mine.append("." if path == base else os.path.relpath(path, base))
        if src.kind == "file" and mine:
            return (src.path.name,)
        return tuple(mine)

    def measure(self) -> ProbeReport:
        """Control, one run per source, then the pairs of trusted sources."""
        if self._watch is None:
            self._setup()
        start = time.perf_counter()
        runs = 0
        verdict, reason, _opened, _d = self._run({}, "")
        runs += 1
        report = ProbeReport(self.label, self.system_paths, verdict, reason)
        for src in self.sources:
            setvars = {src.variable: str(src.path)} if src.variable else {}
            verdict, reason, opened, duration = self._run(setvars, src.name)
            runs += 1
            mine = self._opened_of(src, opened)
            if not report.valid:
                status = INCONCLUSIVE
            elif verdict == Verdict.OK:
                status = TRUSTED
            elif verdict == Verdict.REJECTED:
                status = READ_ONLY if mine else IGNORED
            else:
                status = ERROR
            report.results.append(SourceResult(src, status, verdict, reason, mine, duration))
        if self.pairs and report.valid:
            trusted = [r.source for r in report.results if r.status == TRUSTED]
            for a, b in itertools.combinations(trusted, 2):
                if a.system and b.system:
                    continue  # defaults are always present together: nothing to switch
                setvars = {s.variable: str(s.path) for s in (a, b) if s.variable}
                a_verdict, _r, a_seen, _d = self._run(setvars, a.name)
                b_verdict, _r, b_seen, _d = self._run(setvars, b.name)
                runs += 2
                seen = a_seen | b_seen
                report.pairs.append(
                    PairResult(
                        a.name,
                        b.name,
                        a_verdict == Verdict.OK,
                        b_verdict == Verdict.OK,
                        a_opened=bool(self._opened_of(a, seen)),
                        b_opened=bool(self._opened_of(b, seen)),
                    )
                )
        report.runs = runs
        report.duration = time.perf_counter() - start
        assert self._watch is not None
        report.overflowed = self._watch.overflowed
        return report


def probe(
    client: Client,
    *,
    root: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    variables: Iterable[str] | None = None,
    system_paths: bool = False,
    timeout: float = 20.0,
    pairs: bool = True,
    label: str | None = None,
) -> ProbeReport:
    """Measure which trust sources ``client`` uses, and their precedence (see :class:`Probe`).

    ``client``: an argv with ``{url}`` (or ``{index_url}``, ``{venv}``...) or a callable
    taking the URL. Everything the probe wrote is removed before this returns.
    """
    with Probe(
        client,
        root=root,
        env=env,
        variables=variables,
        system_paths=system_paths,
        timeout=timeout,
        pairs=pairs,
        label=label,
    ) as p:
        return p.measure()


# -- the command line: `probe` (wired into cli.py) ------------------------------------------------


def add_cli_command(sub: Any) -> None:
    """Add the ``probe`` subcommand to ``python -m pytest_tlsenv``."""
    p = sub.add_parser(
        "probe",
        usage="python -m pytest_tlsenv probe [options] -- CMD...",
        help="measure which trust variables and files a client uses: probe [options] -- CMD...",
        description="Give every trust variable (and, with --system-paths, every default trust "
        "location) a canary CA of its own, run CMD against an origin signed by each canary in "
        "turn, and report which sources the client trusts, which it reads without trusting, "
        "and which wins when two are set. In CMD, {url}, {index_url}, {host}, {port} stand for "
        "the canary origin, {venv} for a fresh bare virtualenv's interpreter.",
        epilog="examples: probe -- curl -fsS {url};  probe --env UV_NATIVE_TLS=1 -- uv pip "
        "install --python {venv} --index-url {index_url} tlsenv-probe",
    )
    p.add_argument(
        "--system-paths",
        action="store_true",
        help="also probe the default locations (/etc/ssl/certs...) in a private mount namespace",
    )
    p.add_argument("--json", metavar="PATH", help="write the findings as JSON")
    p.add_argument("--md", metavar="PATH", help="write the findings as Markdown")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a fixed variable for every run (repeatable)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="VAR",
        help=f"probe only these variables (repeatable); known: {', '.join(TRUST_VARIABLES)}",
    )
    p.add_argument(
        "--skip", action="append", default=[], metavar="VAR", help="leave out a variable"
    )
    p.add_argument("--no-pairs", action="store_true", help="skip the precedence runs")
    p.add_argument("--timeout", type=float, default=10.0, help="per-run timeout (s)")
    p.set_defaults(func=_cli_probe, parser=p)


def _cli_probe(args: Any) -> int:
    parser = args.parser
    cmd: list[str] = list(getattr(args, "cmd", None) or [])
    if not cmd:
        parser.error("give the client command after --, e.g.: probe -- curl -fsS {url}")
    env: dict[str, str | None] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env takes NAME=VALUE, got {item!r}")
        env[name] = value
    for name in [*args.only, *args.skip]:
        if name not in TRUST_VARIABLES:
            parser.error(f"unknown trust variable {name!r}; known: {', '.join(TRUST_VARIABLES)}")
    variables = [v for v in (args.only or TRUST_VARIABLES) if v not in args.skip]
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    for out in (args.json, args.md):
        if out is not None and not Path(out).parent.is_dir():
            parser.error(f"cannot write {out}: {Path(out).parent} is not a directory")
    try:
        with Probe(
            cmd,
            env=env,
            variables=variables,
            system_paths=args.system_paths,
            timeout=args.timeout,
            pairs=not args.no_pairs,
        ) as p:
            report = p.measure()
    except TLSEnvError as e:
        parser.error(str(e))
    except FileNotFoundError as e:
        parser.error(f"cannot run {cmd[0]!r}: {e.strerror or e}")
    except OSError as e:
        parser.error(f"cannot run {cmd[0]!r}: {e}")
    print(report.table())
    if args.json:
        Path(args.json).write_text(report.to_json())
        print(f"JSON written to {args.json}")
    if args.md:
        Path(args.md).write_text(report.to_markdown())
        print(f"Markdown written to {args.md}")
    return 0 if report.valid else 1
