"""Reproduction bundles: any scenario, exported so that it runs without pytest.

:func:`export` (``TLSEnv.repro(path)``, ``--tlsenv-repro-dir``, ``python -m pytest_tlsenv
repro``) writes a directory a maintainer can run on their own machine:

* ``scenario.json``: everything needed to rebuild the scenario (keywords, layout, faults with
  their placement and shell lines, the store's commands, the client runs with their exact
  environment, verdicts, the expected set, the servers);
* ``certs/``: the bundle's public CA certificates and server leaves;
* ``throwaway-keys/``: the only private keys, those the bundle's servers present, with a README;
* ``server.py``: the origin (and proxy), python3's standard library only;
* ``index/``: the ``tlsenv-probe`` wheel the origin serves;
* ``repro.sh``: POSIX sh: builds the store with mkdir/cp/ln -s/chmod/chown..., starts
  ``server.py``, runs each recorded client command in exactly its environment (``env -i``; as
  root under ``setpriv`` without any capability) and prints the verdict;
* ``Dockerfile``: the same store commands as RUN lines, the client installed, a non-root user;
* ``ISSUE.md``: ready to paste.

Every bundle has its own fresh CAs: the session's keys never leave the session, and the
bundle's CA keys are never written at all (the forged interception leaf is made at export
time, so ``server.py`` needs no crypto library). The store is rebuilt from the same code that
built the session's (``TLSEnv._materialise`` for the healthy part, ``Fault.apply`` and its
``Applied.shell`` lines for the faults), then translated into shell commands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import ssl
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ConfigError
from .faults import Applied, Site, get_fault
from .outcome import _CRASH_PATTERNS, _REJECT_PATTERNS, TRUST_ALERTS, Outcome, Verdict
from .pki import ORIGIN_HOSTS, PKI, TEST_DOMAIN, Authority, Leaf, write_private
from .proxy import SETUPS
from .redact import REDACTED, Redactor, is_secret_name
from .scenarios import CATALOGUE, Spec
from .servers import probe_wheel

if TYPE_CHECKING:
    from .tlsenv import TLSEnv

__all__ = [
    "BUNDLE_VALIDITY",
    "PLACEHOLDERS",
    "Staged",
    "export",
    "parse_dockerfile_runs",
    "parse_store_commands",
    "stage",
]

#: How long a bundle's certificates stay valid: long enough for an issue to be looked at.
#: Safe because the CAs are name-constrained and their keys are never written anywhere.
BUNDLE_VALIDITY = dt.timedelta(days=365)

#: Placeholders a command may contain, and the repro.sh variable each one becomes.
PLACEHOLDERS: dict[str, str] = {
    "{url}": "URL",
    "{index_url}": "INDEX_URL",
    "{proxy_url}": "PROXY_URL",
    "{proxy_auth_url}": "PROXY_AUTH_URL",
    "{port}": "ORIGIN_PORT",
    "{proxy_port}": "PROXY_PORT",
    "{store}": "STORE",
    "{venv}": "VENV_PY",
    "{venvdir}": "VENV",
    "{run}": "RUN",
    "{work}": "WORK",
}

STORE_BEGIN = "# tlsenv: store commands begin"
STORE_END = "# tlsenv: store commands end"
DOCKER_STORE = "/tlsenv/store"
DOCKER_BUNDLE = "/tlsenv/bundle"
SERVER_SCRIPT = "server.py"
KEYS_DIR = "throwaway-keys"
# System paths: the mount plan (computed on the host that runs the bundle) and its executor.
NS_SCRIPTS = {"nsplan.py": "_nsplan.py", "nsexec.py": "_nsexec.py"}
MAX_RUNS = 5

# Variables repro.sh takes from its own caller (the allow-list idea of env.build_environ).
_CALLER_VARS = ("LANG", "LANGUAGE", "LC_ALL", "TERM", "TZ")

# Clients with a Debian package of the same use; anything else is installed by pip if we know
# the requirement, or left as a comment in the Dockerfile.
_APT = {
    "curl": "curl",
    "wget": "wget",
    "openssl": "openssl",
    "git": "git",
    "node": "nodejs",
    "python3": "python3",
    "python": "python3",
}
_VERSION_ARGS = {"openssl": ["version"]}
_VERSIONED = re.compile(r"uv|curl|wget|openssl|git|node|pip3?|python3?(\.\d+)?|go|httpie|http")


# -- the bundle's own PKI ---------------------------------------------------------------------


class _BundlePKI(PKI):
    """A fresh PKI for one bundle: the same CAs as a session's, valid for BUNDLE_VALIDITY."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._not_after = _now() + BUNDLE_VALIDITY
        self.authorities = {
            label: Authority.create(label, not_after=self._not_after)
            for label in ("trusted", "mitm", "untrusted")
        }

    def decoy(self, n: int) -> Authority:
        with self._lock:
            while len(self._decoys) <= n:
                i = len(self._decoys)
                self._decoys.append(
                    Authority.create(
                        f"decoy-{i}", common_name=f"tlsenv decoy {i} CA", not_after=self._not_after
                    )
                )
            return self._decoys[n]

    @property
    def decoys(self) -> list[Authority]:
        return list(self._decoys)

    @property
    def origin_leaf(self) -> Leaf:
        with self._lock:
            if self._origin is None:
                self._origin = self.authorities["trusted"].issue(
                    ORIGIN_HOSTS, not_after=self._not_after
                )
            return self._origin


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# -- staging: the scenario rebuilt with the bundle's PKI, as shell commands -------------------


@dataclass
class Staged:
    """The scenario's store rebuilt under ``root`` with the bundle's PKI.

    ``commands`` are the POSIX shell lines (using ``$STORE`` and ``$CERTS``) that build the
    same store from scratch; ``certs`` maps a file name under ``certs/`` to its content;
    ``applied`` is what each fault did.
    """

    pki: _BundlePKI
    root: Path
    store_root: Path
    commands: list[str]
    certs: dict[str, bytes]
    applied: list[Applied]
    mitm_trusted: bool
    env: Any  # the staging TLSEnv (closed by close())

    def close(self) -> None:
        self.env.close()


def _pem_blocks(data: bytes) -> list[bytes] | None:
    end = b"-----END CERTIFICATE-----\n"
    if not data or not data.endswith(end):
        return None
    parts = data.split(end)
    blocks = [p + end for p in parts[:-1]]
    return blocks if b"".join(blocks) == data else None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        # Non-root: a denied file is ours with mode 000; open it up for a moment.
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        os.chmod(path, 0o600)
        try:
            return path.read_bytes()
        finally:
            os.chmod(path, mode)


def _denied(st: os.stat_result) -> bool:
    """Whether a healthy-phase entry was made unreadable on purpose (TrustStore.deny)."""
    return st.st_uid != os.geteuid() or not st.st_mode & stat.S_IRUSR


def _deny_line(target: str, *, directory: bool, fault_uid: int) -> str:
    # The same line faults.py writes for a denied entry: chown as root, chmod 000 otherwise.
    mode = "0700" if directory else "0600"
    return (
        f'if [ "$(id -u)" = 0 ]; then chown {fault_uid}:{fault_uid} {target} && chmod {mode} '
        f"{target}; else chmod 000 {target}; fi"
    )


def _walk_commands(
    store_root: Path, by_pem: Mapping[bytes, str], certs: dict[str, bytes], fault_uid: int
) -> list[str]:
    """Shell lines that recreate the tree under ``store_root``: dirs, files, links, FIFOs,
    and the entries denied to the client (owner and mode as :meth:`TrustStore.deny` sets)."""
    dirs: list[str] = []
    files: list[str] = []
    links: list[str] = []
    denials: list[str] = []
    for dirpath, dirnames, filenames in os.walk(store_root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = path.relative_to(store_root)
            target = f'"$STORE/{rel}"'
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                links.append(f"ln -s {shlex.quote(os.readlink(path))} {target}")
            elif stat.S_ISDIR(st.st_mode):
                dirs.append(str(rel))
                if _denied(st):
                    denials.append(_deny_line(target, directory=True, fault_uid=fault_uid))
            elif stat.S_ISFIFO(st.st_mode):
                files.append(f"mkfifo {target}")
            elif stat.S_ISREG(st.st_mode):
                if _denied(st):
                    denials.append(_deny_line(target, directory=False, fault_uid=fault_uid))
                data = _read(path)
                if data in by_pem:
                    files.append(f'cp "$CERTS/{by_pem[data]}" {target}')
                    continue
                blocks = _pem_blocks(data)
                if blocks and all(b in by_pem for b in blocks):
                    sources = " ".join(f'"$CERTS/{by_pem[b]}"' for b in blocks)
                    files.append(f"cat {sources} > {target}")
                    continue
                name_in_certs = "store-" + str(rel).replace("/", "_")
                certs[name_in_certs] = data
                files.append(f'cp "$CERTS/{name_in_certs}" {target}')
            else:
                raise ConfigError(f"cannot export {rel}: not a file, dir, symlink or FIFO")
    # Deepest directories only: mkdir -p makes their parents.
    leaves = [d for d in dirs if not any(o.startswith(d + "/") for o in dirs)]
    mkdirs = [f'mkdir -p "$STORE/{d}"' for d in leaves]
    # Denials last: a denied directory must be filled before it is closed.
    return mkdirs + files + links + denials[::-1]


def stage(spec: Spec, root: Path, *, fault_uid: int = 65533) -> Staged:
    """Rebuild ``spec``'s store under ``root`` with a fresh PKI; return it with its commands."""
    from .tlsenv import Settings, TLSEnv

    pki = _BundlePKI(root / "pki")
    healthy = dataclasses.replace(spec, faults=(), user=None)
    env = TLSEnv(healthy, pki=pki, root=root / "scenario", settings=Settings(fault_uid=fault_uid))
    try:
        env._materialise()
        store = env.store
        authorities = [*pki.authorities.values(), *pki.decoys]
        by_pem = {a.cert_pem: f"{a.label}.pem" for a in authorities}
        certs: dict[str, bytes] = {}
        commands = _walk_commands(store.root, by_pem, certs, fault_uid)
        mitm_trusted = bool(spec.proxy and SETUPS[spec.proxy].ca_trusted)
        trusted = pki.authorities["trusted"]
        applied: list[Applied] = []
        if spec.faults:
            env._journal_root()  # as TLSEnv does: recorded before the first fault
        for n, name in enumerate(spec.faults):
            site = Site(store, spec.placement, trusted, pki.decoy(n))
            done = get_fault(name).apply(site)
            env.applied.append(done)
            applied.append(done)
            commands.append(f"# fault: {name} ({spec.placement})")
            commands.extend(done.shell)
        for a in [*pki.authorities.values(), *pki.decoys]:
            certs.setdefault(f"{a.label}.pem", a.cert_pem)
        for line in commands:
            for ref in re.findall(r"\$CERTS/([\w.@+-]+)", line):
                if ref not in certs:
                    raise ConfigError(
                        f"a store command refers to $CERTS/{ref}, which the bundle does not "
                        f"have: {line}"
                    )
    except BaseException:
        env.close()
        raise
    return Staged(pki, root, store.root, commands, certs, applied, mitm_trusted, env)


def parse_store_commands(repro_sh: str) -> str:
    """The store-building commands of a repro.sh: the text between the begin and end markers."""
    lines = repro_sh.splitlines()
    start = lines.index("  " + STORE_BEGIN)
    end = lines.index("  " + STORE_END)
    return "\n".join(lines[start + 1 : end])


def parse_dockerfile_runs(dockerfile: str) -> str:
    """The store-building commands of a Dockerfile (its RUN lines and ``RUN <<'TLSENV_RUN'``
    heredocs between the markers), joined as repro.sh writes them."""
    lines = dockerfile.splitlines()
    start = lines.index(STORE_BEGIN)
    end = lines.index(STORE_END)
    out: list[str] = []
    body = iter(lines[start + 1 : end])
    for line in body:
        if line == f"RUN <<'{_DOCKER_HEREDOC}'":
            block: list[str] = []
            for inner in body:
                if not block and inner == "set -e":
                    continue
                if inner == _DOCKER_HEREDOC:
                    break
                block.append(inner)
            out.append("\n".join(block))
        elif line.startswith("RUN "):
            out.append(line.removeprefix("RUN "))
        else:
            out.append(line)  # a comment line, as in repro.sh
    return "\n".join(out)


_DOCKER_HEREDOC = "TLSENV_RUN"


# Docker allows 127 layers: a bigger store (extra_cas, filler CAs) is built by one RUN heredoc.
_MAX_RUN_LINES = 60


def _docker_store(commands: Sequence[str]) -> list[str]:
    if len(commands) <= _MAX_RUN_LINES:
        return [_docker_run(c) for c in commands]
    return [f"RUN <<'{_DOCKER_HEREDOC}'", "set -e", *commands, _DOCKER_HEREDOC]


def _docker_run(command: str) -> str:
    """``command`` as a Dockerfile instruction: RUN, or a RUN heredoc if it spans lines."""
    if command.startswith("# "):
        return command
    if "\n" in command:
        return f"RUN <<'{_DOCKER_HEREDOC}'\n{command}\n{_DOCKER_HEREDOC}"
    return f"RUN {command}"


# -- translating the session's words into the bundle's placeholders ---------------------------


class _Translator:
    """Session addresses and paths -> placeholders (``{url}``, ``{store}``...), and back."""

    def __init__(self, env: TLSEnv) -> None:
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


_LOCAL_PATH = re.compile(
    r"(?:/root|/home/[^/\s'\"]+|/tmp/pytest-of-[^/\s'\"]+)(?:/[^\s'\"`)<>,;]*)?"
)


def _scrubber(env: TLSEnv, translate: _Translator, red: Redactor) -> Any:
    """A function removing every path of this machine and every secret from a text (for
    ISSUE.md)."""
    roots = {str(Path.home()), os.path.expanduser("~"), str(env.root.parent)}
    roots = {r for r in roots if len(Path(r).parts) > 2}

    def scrub(text: str) -> str:
        text = red.text(translate(text))
        for r in sorted(roots, key=len, reverse=True):
            text = text.replace(r, "<local path>")
        return _LOCAL_PATH.sub("<local path>", text)

    return scrub


# A secret's place in a recorded word: ``{$NAME}`` (Redactor.references), ``"${NAME}"`` in sh.
_SECRET_REF = re.compile(r"\{\$([A-Za-z_][A-Za-z0-9_]*)\}")


def _shell_word(word: str, *, client: str | None = None) -> str:
    """``word`` as one sh word, placeholders expanded from repro.sh's variables (and secret
    references ``{$NAME}`` from the caller's)."""
    if client is not None and word == client:
        return '"$CLIENT"'
    parts = re.split(r"(\{[a-z_]+\}|\{\$[A-Za-z_][A-Za-z0-9_]*\})", word)
    out = []
    for part in parts:
        if part in PLACEHOLDERS:
            out.append(f'"${{{PLACEHOLDERS[part]}}}"')
        elif ref := _SECRET_REF.fullmatch(part):
            out.append(f'"${{{ref.group(1)}}}"')
        elif part:
            out.append(shlex.quote(part))
    return "".join(out) or "''"


# -- what ran ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    argv: list[str]  # translated
    env: dict[str, str]  # translated, caller/sandbox dirs excluded
    verdict: str
    reason: str
    returncode: int | None
    stderr: str  # translated and without secrets, not scrubbed of local paths
    stand_in: bool = False


def _stand_in(env: TLSEnv) -> list[str]:
    # An in-process call cannot be exported; Python's ssl (what most callables use) stands in.
    code = (
        "import ssl, sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(), "
        "timeout=10).read().decode())"
    )
    return ["python3", "-c", code, "{url}"]


def _bundle_redactor(env: TLSEnv) -> Redactor:
    """The secrets a bundle must not contain: those of the host's environment and of every
    recorded run's, but not the bundle's own proxy credentials (its server.py needs them)."""
    red = Redactor(os.environ, env.environ, *(o.environ for o in env.outcomes))
    if env.proxy is not None:
        user, password = env.proxy.credentials
        for own in (f"{user}:{password}", password):
            red.sources.pop(own, None)
    return red


def _secret_env(environ: Mapping[str, str], red: Redactor) -> dict[str, str]:
    """Recorded variables with every secret value replaced by a reference to the variable
    it came from (``{$API_PASSWORD}``; repro.sh asks its caller for it)."""
    out = {}
    for k, v in environ.items():
        if is_secret_name(k) and v:
            out[k] = "{$" + k + "}" if _SHELL_NAME.fullmatch(k) else REDACTED
        else:
            out[k] = red.references(v)
    return out


_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _runs(env: TLSEnv, translate: _Translator, red: Redactor) -> list[_Run]:
    recorded: list[Outcome] = list(env.outcomes)[-MAX_RUNS:]
    runs: list[_Run] = []
    scenario_env = _secret_env({k: translate(v) for k, v in env.environ.items()}, red)
    for out in recorded:
        if out.argv is None:
            argv, run_env, stand_in = _stand_in(env), dict(scenario_env), True
        else:
            argv = [red.references(translate(a)) for a in out.argv]
            run_env = _secret_env(
                {
                    k: translate(v)
                    for k, v in out.environ.items()
                    if k != "PATH" and k not in _CALLER_VARS and not k.startswith("LC_")
                },
                red,
            )
            stand_in = False
        runs.append(
            _Run(
                argv,
                run_env,
                out.verdict.value,
                red.text(translate(out.reason)),
                out.returncode,
                red.text(translate(out.stderr)),
                stand_in,
            )
        )
    if not runs:
        runs.append(_Run(_stand_in(env), scenario_env, "", "not run before export", None, "", True))
    return runs


def _client_version(argv0: str) -> str | None:
    """``CLIENT --version``'s first line, for clients known to answer it (and nothing else:
    an unknown program is never started outside its scenario)."""
    if not _VERSIONED.fullmatch(os.path.basename(argv0)):
        return None
    exe = argv0 if os.path.isabs(argv0) else shutil.which(argv0)
    if not exe or not os.access(exe, os.X_OK):
        return None
    args = _VERSION_ARGS.get(os.path.basename(argv0), ["--version"])
    try:
        proc = subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env={"PATH": os.defpath, "HOME": tempfile.gettempdir()},
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = (proc.stdout or proc.stderr).strip().splitlines()
    return first[0].strip() if first and proc.returncode == 0 else None


def _pip_requirement(argv0: str, version: str | None) -> str | None:
    # pinned() installs into <cache>/clients/<package>-<version>/bin/<exe>.
    m = re.search(r"/clients/([A-Za-z0-9_.-]+?)-(\d[\w.+!-]*)/bin/[^/]+$", argv0)
    if m:
        return f"{m.group(1)}=={m.group(2)}"
    name = os.path.basename(argv0)
    if name == "uv" and version and (v := re.match(r"uv (\d[\w.+-]*)", version)):
        return f"uv=={v.group(1)}"
    return None


def _host() -> dict[str, str]:
    pretty = platform.system()
    with _suppress_oserror():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.partition("=")[2].strip('"')
    user = "root; clients ran without any capability" if os.geteuid() == 0 else "non-root"
    return {
        "os": pretty,
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "openssl": ssl.OPENSSL_VERSION,
        "python": platform.python_version(),
        "user": user,
        "pytest_tlsenv": __version__,
    }


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)


# -- writing -----------------------------------------------------------------------------------


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def _servers(staged: Staged, env: TLSEnv, bundle: Path) -> dict[str, Any]:
    certs, keys = bundle / "certs", bundle / KEYS_DIR
    leaf = staged.pki.server_leaf(env.spec.server)
    (certs / "origin-leaf.pem").write_bytes(leaf.chain_pem)
    write_private(keys / "origin-leaf.key", leaf.key_pem)
    wheel_name, wheel = probe_wheel()
    (bundle / "index").mkdir()
    (bundle / "index" / wheel_name).write_bytes(wheel)
    servers: dict[str, Any] = {
        "origin": {
            "host": env.origin.host,
            "cert": "certs/origin-leaf.pem",
            "key": f"{KEYS_DIR}/origin-leaf.key",
            "index": "index",
            "project": "tlsenv-probe",
        },
        "proxy": None,
    }
    proxy = env.proxy
    if proxy is not None:
        mode = proxy.mode
        conf: dict[str, Any] = {"mode": mode, "forward": staged.mitm_trusted}
        if mode == "intercept":
            forged = staged.pki.authorities["mitm"].issue(
                ORIGIN_HOSTS, not_after=_now() + BUNDLE_VALIDITY
            )
            (certs / "forged-origin-leaf.pem").write_bytes(forged.chain_pem)
            write_private(keys / "forged-origin-leaf.key", forged.key_pem)
            conf.update(
                cert="certs/forged-origin-leaf.pem",
                key=f"{KEYS_DIR}/forged-origin-leaf.key",
                upstream_ca="certs/trusted.pem",
            )
        if mode == "auth":
            conf["credentials"] = ":".join(proxy.credentials)
        servers["proxy"] = conf
    return servers


def export(
    env: TLSEnv,
    path: str | os.PathLike[str],
    *,
    pip_requirement: str | None = None,
) -> Path:
    """Write the reproduction bundle of ``env`` into ``path`` (created; must not be a file).

    The bundle reruns the client command(s) ``env.run`` recorded (an in-process ``call`` is
    replaced by a Python ``ssl`` stand-in). ``pip_requirement`` (e.g. ``"uv==0.2.29"``) says
    how the Dockerfile installs the client when it cannot be guessed.
    """
    bundle = Path(path)
    if bundle.exists() and (not bundle.is_dir() or any(bundle.iterdir())):
        raise ConfigError(f"{bundle} exists and is not an empty directory: choose another --out")
    bundle.mkdir(parents=True, exist_ok=True)
    os.chmod(bundle, 0o755)
    for sub in ("certs", KEYS_DIR):
        (bundle / sub).mkdir()
    os.chmod(bundle / KEYS_DIR, 0o700)
    translate = _Translator(env)
    red = _bundle_redactor(env)
    scrub = _scrubber(env, translate, red)
    runs = _runs(env, translate, red)
    _check_client(runs[-1].argv[0], pip_requirement)
    tmp = Path(tempfile.mkdtemp(prefix="tlsenv-stage-"))
    try:
        staged = stage(env.spec, tmp, fault_uid=env.settings.fault_uid)
        try:
            for name, content in staged.certs.items():
                (bundle / "certs" / name).write_bytes(content)
            servers = _servers(staged, env, bundle)
            commands = staged.commands
            applied = staged.applied
            store_rel = staged.store_root
            faults = [
                {
                    "name": a.fault,
                    "placement": a.placement,
                    "paths": [str(p.relative_to(store_rel)) for p in a.paths],
                    "shell": list(a.shell),
                }
                for a in applied
            ]
        finally:
            staged.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    main_client = runs[-1].argv[0]
    version = _client_version(_session_argv0(env) or main_client)
    requirement = pip_requirement or _pip_requirement(_session_argv0(env) or "", version)
    client = {
        "name": os.path.basename(main_client),
        "path": main_client,
        "version": version,
        "pip": requirement,
        "apt": _APT.get(os.path.basename(main_client)) if not requirement else None,
    }
    scenario = env.scenario
    spec = env.spec
    expected = sorted(v.value for v in scenario.expected)
    proxy = servers["proxy"]
    leak_is_bad = bool(proxy and proxy["mode"] == "intercept" and not proxy["forward"])
    data: dict[str, Any] = {
        "format": 1,
        "generator": f"pytest-tlsenv {__version__}",
        "created": _now().isoformat(),
        "scenario": {
            "name": scenario.name,
            "base": _base_name(scenario.name),
            "description": scenario.description,
            "why": scenario.why,
            "groups": list(scenario.groups),
            "source": scenario.source,
        },
        "spec": {
            "faults": list(spec.faults),
            "placement": spec.placement,
            "proxy": spec.proxy,
            "server": spec.server,
            "layout": spec.layout,
            "backend": spec.backend,
            "system_paths": spec.system_paths,
            "user": spec.user,
            "timeout": spec.timeout,
            "extra_cas": spec.extra_cas,
        },
        "layout": dataclasses.asdict(env.store.layout),
        "faults": faults,
        # What the session's store had done to it (faults, and e.g. an admin-installed CA).
        "applied": [
            {
                "name": a.fault,
                "placement": a.placement,
                "paths": [translate(str(p)) for p in a.paths],
            }
            for a in env.applied
        ],
        "expected": expected,
        "environment": _secret_env({k: translate(v) for k, v in env.environ.items()}, red),
        "store": {
            "commands": commands,
            "listing": [translate(str(e)) for e in env.store.entries],
        },
        "runs": [dataclasses.asdict(r) for r in runs],
        # Variables the runs need whose values were not exported: repro.sh's caller sets them.
        "secrets": _secret_names(runs),
        "servers": servers,
        "leak_is_bad": leak_is_bad,
        "system_paths": bool(getattr(env, "system_paths", spec.system_paths)),
        "client": client,
        "host": _host(),
    }
    _write(bundle / "scenario.json", json.dumps(data, indent=2) + "\n")
    server_src = resources.files("pytest_tlsenv").joinpath("_bundle_server.py").read_text()
    _write(bundle / SERVER_SCRIPT, server_src, 0o755)
    if data["system_paths"]:
        for name, module in NS_SCRIPTS.items():
            source = resources.files("pytest_tlsenv").joinpath(module).read_text()
            _write(bundle / name, source, 0o755)
    _write(bundle / KEYS_DIR / "README", _KEYS_README)
    _write(bundle / "repro.sh", _repro_sh(data, runs, commands), 0o755)
    _write(bundle / "Dockerfile", _dockerfile(data, commands))
    _write(bundle / "ISSUE.md", _issue_md(data, runs, scrub))
    return bundle


def _secret_names(runs: Sequence[_Run]) -> list[str]:
    """The variables whose values the runs refer to but the bundle does not contain."""
    words = [w for r in runs for w in [*r.argv, *r.env.values()]]
    return sorted({m.group(1) for w in words for m in _SECRET_REF.finditer(w)})


def _check_client(path: str, pip_requirement: str | None) -> None:
    """Refuse what no quoting can carry into a Dockerfile: a line break (or any other control
    character) in the client's path or pip requirement would start a new instruction."""
    for what, value in (("client path", path), ("pip requirement", pip_requirement or "")):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ConfigError(
                f"cannot export a bundle: the {what} {value!r} contains a line break or another "
                f"control character, which a Dockerfile cannot carry; use a path without one "
                f"(e.g. a symlink to the client)"
            )


def _session_argv0(env: TLSEnv) -> str | None:
    recorded = [o.argv for o in env.outcomes if o.argv]
    return str(recorded[-1][0]) if recorded else None


def _base_name(label: str) -> str | None:
    names = sorted((n for n in CATALOGUE if label == n or label.startswith(n)), key=len)
    return names[-1] if names else None


_KEYS_README = """\
These are THROWAWAY TEST KEYS, generated for this reproduction bundle only by pytest-tlsenv.

They are the private keys of the certificates the bundle's own servers present (server.py):
the origin's leaf, and for interception scenarios the forged leaf of the intercepting proxy.
The CAs that signed them were generated for this bundle alone, are name-constrained to
localhost, *.test, 127.0.0.0/8 and ::1, and their own private keys were never written
anywhere. Do not reuse these keys for anything else.
"""


# -- repro.sh ------------------------------------------------------------------------------------


_HEAD = r"""#!/bin/sh
# Reproduction of pytest-tlsenv scenario @NAME@
# @DESCRIPTION@
# Expected verdict(s): @EXPECTED@. Generated by @GENERATOR@; see ISSUE.md.
#
# Run as any user:  sh repro.sh   (as root, the client runs without any capability
# via setpriv, so permission faults bite as they would for a normal user).
# Needs: sh, coreutils, python3 (standard library only); setpriv (util-linux) as root.
# Knobs: TLSENV_CLIENT=/path/to/client  TLSENV_TIMEOUT=seconds  TLSENV_KEEP=1 (keep the work
# dir)  TLSENV_STORE=DIR with TLSENV_PREBUILT=1 (a store built already, as the Dockerfile does).
# The client: TLSENV_CLIENT, else the reporter's path, else (a version pinned from PyPI) that
# version installed into the work dir with pip, else the same name on PATH.
set -u
@SECRETS@HERE=$(cd "$(dirname "$0")" && pwd)
CERTS="$HERE/certs"
EXPECTED=@EXPECTED_Q@
LEAK_IS_BAD=@LEAK_IS_BAD@
TIMEOUT="${TLSENV_TIMEOUT:-@TIMEOUT@}"
CLIENT=@CLIENT@
if [ -n "${TLSENV_CLIENT:-}" ]; then CLIENT=$TLSENV_CLIENT; fi
CLIENT_NAME=@CLIENT_NAME@
CLIENT_PIP=@CLIENT_PIP@
CLIENT_PATH="$PATH"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsenv-repro.XXXXXX") || exit 2
STORE="${TLSENV_STORE:-$WORK/store}"
SERVER_PID=
STATUS=0

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ -n "${TLSENV_KEEP:-}" ]; then echo "tlsenv: kept $WORK"; return; fi
  chmod -R u+rwX "$WORK" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

client_found() { case "$1" in */*) [ -x "$1" ] ;; *) command -v "$1" >/dev/null 2>&1 ;; esac; }
if ! client_found "$CLIENT"; then
  if [ -n "${TLSENV_CLIENT:-}" ]; then
    echo "tlsenv: TLSENV_CLIENT=$CLIENT is not an executable" >&2; exit 2
  elif [ -n "$CLIENT_PIP" ]; then
    echo "tlsenv: $CLIENT is not on this machine: installing $CLIENT_PIP into the work dir"
    if ! python3 -m pip install -q --disable-pip-version-check --no-input --no-deps \
        --no-cache-dir --target "$WORK/client" "$CLIENT_PIP" >"$WORK/pip.log" 2>&1 ||
        ! [ -x "$WORK/client/bin/$CLIENT_NAME" ]; then
      tail -n 5 "$WORK/pip.log" >&2
      echo "tlsenv: could not install $CLIENT_PIP; set TLSENV_CLIENT=/path/to/$CLIENT_NAME" >&2
      exit 2
    fi
    CLIENT="$WORK/client/bin/$CLIENT_NAME"
  elif client_found "$CLIENT_NAME"; then
    echo "tlsenv: $CLIENT is not on this machine: using $(command -v "$CLIENT_NAME")"
    CLIENT=$(command -v "$CLIENT_NAME")
  else
    echo "tlsenv: client $CLIENT not found; set TLSENV_CLIENT=/path/to/$CLIENT_NAME" >&2
    exit 2
  fi
fi

build_store() {
  @STORE_BEGIN@
@STORE_COMMANDS@
  @STORE_END@
}

count() { if [ -f "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }

# The first certificate alert (unknown ca...) the servers logged after line $1 of their
# handshake log: a client that refused the certificate, whatever it printed. The servers log
# on their own threads: wait a little for the last handshake to be written down.
trust_alert() {
  n=0
  while [ "$(count "$WORK/server/handshakes.log")" -le "$1" ] && [ "$n" -lt 10 ]; do
    sleep 0.05; n=$((n + 1))
  done
  tail -n "+$(($1 + 1))" "$WORK/server/handshakes.log" 2>/dev/null |
    grep -o -i -E 'alert (@ALERTS@)' | head -n 1 | cut -c7- | tr 'A-Z' 'a-z'
}

# The verdict, by the rules of pytest_tlsenv.outcome: evidence first (what the servers
# logged), then the exit status, then real wordings of crashes and verification errors.
verdict() {  # run-dir exit-status start-time origin-requests-before leaked-before handshakes-before
  dir=$1 rc=$2 start=$3 ob=$4 lb=$5 hb=$6
  text="$dir/output"
  cat "$dir/stderr" "$dir/stdout" > "$text"
  reached=no; [ "$(count "$WORK/server/origin.log")" -gt "$ob" ] && reached=yes
  leaked=no; [ "$(count "$WORK/server/leaked.log")" -gt "$lb" ] && leaked=yes
  elapsed=$(( $(date +%s) - start ))
  crash=$(grep -E \
@CRASH@
    "$text" | head -n 1)
  reject=$(grep -i -E \
@REJECT@
    "$text" | head -n 1)
  last=$(grep -v '^[[:space:]]*$' "$text" | tail -n 1)
  benign=no
  if printf '%s\n' "$last" | grep -q -E '(Connection|Timeout|SSL)[A-Za-z0-9_]*Error'; then
    benign=yes
  elif printf '%s\n' "$last" | grep -q -i -E \
@REJECT@
  ; then
    benign=yes
  fi
  if [ "$leaked" = yes ] && [ "$LEAK_IS_BAD" = 1 ]; then
    V=LEAKED; R="application data reached the untrusted interceptor"
  elif [ -n "$TO" ] && { [ "$rc" = 124 ] ||
       { [ "$rc" = 137 ] && [ "$elapsed" -ge "$TIMEOUT" ]; }; }; then
    V=HUNG; R="no exit within $TIMEOUT s; killed"
  elif [ -n "$crash" ]; then V=CRASHED; R=$crash
  elif [ "$rc" -gt 128 ]; then V=CRASHED; R="killed by signal $((rc - 128))"
  elif [ "$rc" = 101 ] && grep -q panick "$text"; then V=CRASHED; R="Rust panic (exit 101)"
  elif grep -q 'Traceback (most recent call last):' "$text" && [ "$benign" = no ]; then
    V=CRASHED; R="Python traceback: $last"
  elif [ "$rc" = 0 ]; then
    if [ "$reached" = yes ]; then V=OK; R="exit 0 and the origin got the request"
    else V=FAILED; R="exit 0 but the origin received nothing"; fi
  elif [ -n "$reject" ]; then V=REJECTED; R=$reject
  else V=FAILED; R="exit $rc: ${last:-(no output)}"
  fi
  if [ "$V" = FAILED ]; then  # the servers' account outranks the client's wording
    alert=$(trust_alert "$hb")
    if [ -n "$alert" ]; then
      V=REJECTED; R="the client refused the certificate (it sent '$alert'); $R"
    fi
  fi
  case " $EXPECTED " in *" $V "*) ;; *) STATUS=1 ;; esac
}

if [ -n "${TLSENV_PREBUILT:-}" ]; then
  if [ ! -d "$STORE" ]; then
    echo "tlsenv: TLSENV_PREBUILT is set but $STORE is no directory" >&2; exit 2
  fi
else
  ( set -e; build_store ); rc=$?
  [ "$rc" = 0 ] || { echo "tlsenv: building the store failed (status $rc)" >&2; exit 2; }
fi
echo "tlsenv: the store at $STORE:"
(cd "$STORE" && find . -exec ls -ld {} + 2>/dev/null | sed 's/^/  /')

mkdir -p "$WORK/server"
# -I -S: no site-packages, no PYTHON* variables: server.py needs the standard library only.
python3 -I -S "$HERE/server.py" --bundle "$HERE" --state "$WORK/server" \
  >"$WORK/server/output" 2>&1 &
SERVER_PID=$!
n=0
while [ ! -f "$WORK/server/ports.sh" ]; do
  n=$((n + 1))
  if [ "$n" -gt 200 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "tlsenv: server.py did not start:" >&2; cat "$WORK/server/output" >&2; exit 2
  fi
  sleep 0.05
done
. "$WORK/server/ports.sh"
ORIGIN_HOST=@ORIGIN_HOST@
URL="https://$ORIGIN_HOST:$ORIGIN_PORT/"
INDEX_URL="${URL}simple/"
"""

_VENV = r"""VENV="$WORK/venv"
VENV_PY="$VENV/bin/python"
if ! python3 -m venv --without-pip "$VENV"; then
  echo "tlsenv: python3 -m venv failed (Debian: apt install python3-venv)" >&2; exit 2
fi
"""

_DROP = r"""
# As root the client must not bypass file permissions (what a non-root user meets).
DROP=
if [ "$(id -u)" = 0 ]; then
  if command -v setpriv >/dev/null 2>&1; then
    DROP="setpriv --inh-caps=-all --ambient-caps=-all --no-new-privs --bounding-set=-all\
$([ -f "$HERE/nsplan.py" ] && echo ,+sys_admin,+chown,+setpcap)"  # nsplan.py drops them
  else
    echo "tlsenv: warning: root without setpriv: permission faults will not bite" >&2
  fi
fi
TO=
if command -v timeout >/dev/null 2>&1; then TO="timeout -k 2 $TIMEOUT"; fi
"""

_RUN = r"""
# run @N@ of @TOTAL@: @NOTE@
RUN="$WORK/run-@N@"
mkdir -p "$RUN/home" "$RUN/tmp" "$RUN/cache" "$RUN/config" "$RUN/data"
: > "$RUN/wgetrc"
ob=$(count "$WORK/server/origin.log"); lb=$(count "$WORK/server/leaked.log")
hb=$(count "$WORK/server/handshakes.log")
start=$(date +%s)
echo @ECHO@
(cd "$RUN/home" && exec $DROP $TO env -i PATH="$CLIENT_PATH" \
    @CALLER@ \
@ASSIGNS@
    @COMMAND@) </dev/null >"$RUN/stdout" 2>"$RUN/stderr"
verdict "$RUN" "$?" "$start" "$ob" "$lb" "$hb"
sed 's/^/  | /' "$RUN/stderr" | tail -n 20
echo "verdict: $V - $R (expected: $EXPECTED; recorded: @RECORDED@)"
"""


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def _repro_sh(data: Mapping[str, Any], runs: Sequence[_Run], commands: Sequence[str]) -> str:
    sc = data["scenario"]
    expected = " ".join(data["expected"])
    uses_venv = any("{venv" in w for r in runs for w in [*r.argv, *r.env.values()])
    proxy = data["servers"]["proxy"]
    main_client = runs[-1].argv[0]
    text = _fill(
        _HEAD,
        NAME=repr(sc["name"]),
        DESCRIPTION=sc["description"],
        EXPECTED=expected,
        EXPECTED_Q=shlex.quote(expected),
        GENERATOR=data["generator"],
        LEAK_IS_BAD="1" if data["leak_is_bad"] else "0",
        TIMEOUT=str(int(data["spec"]["timeout"] or 20)),
        # Assigned on its own (not inside ${TLSENV_CLIENT:-...}): a '}' in the path would
        # end that expansion early.
        CLIENT=shlex.quote(main_client),
        SECRETS=_secret_checks(data["secrets"]),
        CLIENT_NAME=shlex.quote(data["client"]["name"]),
        CLIENT_PIP=shlex.quote(data["client"]["pip"] or ""),
        STORE_BEGIN=STORE_BEGIN,
        STORE_END=STORE_END,
        # At column 0: a multi-line command (a heredoc) must keep its lines exactly.
        STORE_COMMANDS="\n".join(commands),
        CRASH=_grep_lines(_CRASH_PATTERNS),
        ALERTS="|".join(TRUST_ALERTS),
        REJECT=_grep_lines(_REJECT_PATTERNS),
        ORIGIN_HOST=shlex.quote(data["servers"]["origin"]["host"]),
    )
    if proxy is not None:
        text += 'PROXY_URL="http://127.0.0.1:$PROXY_PORT"\n'
        if proxy.get("credentials"):
            text += f'PROXY_AUTH_URL="http://{_dq(proxy["credentials"])}@127.0.0.1:$PROXY_PORT"\n'
    if uses_venv:
        text += _VENV
    text += _DROP
    caller = " ".join(f'${{{v}:+"{v}=${v}"}}' for v in _CALLER_VARS)
    # System paths: nsplan.py shows the store at the real paths in a private mount namespace
    # (a user namespace too as non-root), drops capabilities, then execs the client.
    namespace = (
        ['python3 -I -S "$HERE/nsplan.py" --scenario "$HERE/scenario.json" --store "$STORE"',
         '--stage "$RUN/ns" --']
        if data["system_paths"]
        else []
    )  # fmt: skip
    for i, run in enumerate(runs, 1):
        client_word = main_client if run.argv[0] == main_client else None
        words = [*namespace, *(_shell_word(a, client=client_word) for a in run.argv)]
        assigns = [_shell_word(f"{k}={v}") for k, v in sorted(run.env.items())]
        note = "an in-process call; Python's ssl stands in" if run.stand_in else "a recorded run"
        if namespace:
            note += ", the store shown at the system paths"
        recorded = f"recorded verdict {run.verdict}" if run.verdict else "not run before export"
        text += _fill(
            _RUN,
            N=str(i),
            TOTAL=str(len(runs)),
            NOTE=f"{note} ({recorded})",
            ECHO=shlex.quote(f"tlsenv: run {i}:")
            + (' "$CLIENT" ' if client_word else " ")
            + shlex.quote(" ".join(run.argv[1:] if client_word else run.argv)),
            CALLER=caller,
            ASSIGNS="\n".join(f"    {a} \\" for a in assigns),
            COMMAND=" ".join(words),
            RECORDED=run.verdict or "-",
        )
    return text + "exit $STATUS\n"


def _secret_checks(names: Sequence[str]) -> str:
    if not names:
        return ""
    lines = ["# Secrets the client ran with; their values were not exported: set them to run."]
    lines += [f': "${{{n}:?set {n} to reproduce (its value was not exported)}}"' for n in names]
    return "\n".join(lines) + "\n"


def _grep_lines(patterns: Iterable[str]) -> str:
    return "\n".join(f"    -e {shlex.quote(p)} \\" for p in patterns)


def _dq(text: str) -> str:
    """``text`` inside double quotes."""
    return re.sub(r'([\\"$`])', r"\\\1", text)


# -- Dockerfile ----------------------------------------------------------------------------------


def _dockerfile(data: Mapping[str, Any], commands: Sequence[str]) -> str:
    client = data["client"]
    apt = ["ca-certificates", "python3", "python3-venv", "util-linux", "coreutils"]
    install: list[str] = []
    runtime_client = client["name"]
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if client["pip"]:
        install = [
            "# The client, pinned as in the report (a venv keeps Debian's python untouched).",
            "RUN python3 -m venv /opt/client && /opt/client/bin/pip install --no-cache-dir "
            + shlex.quote(client["pip"]),
        ]
        path = "/opt/client/bin:" + path
    elif client["apt"]:
        apt.append(client["apt"])
    else:
        install = [
            f"# Install the client {client['name']!r} here: it is neither in apt nor pip maps."
        ]
    if any(re.search(r"(^|[;&|]\s*)openssl ", c, re.MULTILINE) for c in commands):
        apt.append("openssl")
    sc = data["scenario"]
    copied = [SERVER_SCRIPT, "repro.sh", "scenario.json"]
    secrets = "".join(f"-e {n} " for n in data["secrets"])
    run_hint = f"# docker build -t tlsenv-repro . && docker run --rm {secrets}tlsenv-repro"
    if data["system_paths"]:
        copied += list(NS_SCRIPTS)
        # unshare(2) and mount(2) inside a container: Docker's default seccomp and AppArmor
        # profiles refuse them, and mounting needs CAP_SYS_ADMIN.
        run_hint = (
            f"# docker build -t tlsenv-repro . && docker run --rm {secrets}--cap-add SYS_ADMIN "
            "--security-opt seccomp=unconfined --security-opt apparmor=unconfined tlsenv-repro"
        )
    # RUN heredocs (multi-line store commands) need the BuildKit Dockerfile frontend.
    heredocs = len(commands) > _MAX_RUN_LINES or any("\n" in c for c in commands)
    syntax = ["# syntax=docker/dockerfile:1"] if heredocs else []
    lines = [
        *syntax,
        f"# Reproduction of pytest-tlsenv scenario {sc['name']!r} ({data['generator']}).",
        run_hint,
        "FROM debian:12",
        "RUN apt-get update && apt-get install -y --no-install-recommends "
        + " ".join(sorted(set(apt)))
        + " && rm -rf /var/lib/apt/lists/*",
        *install,
        "RUN useradd -m tlsenv",
        f"COPY certs/ {DOCKER_BUNDLE}/certs/",
        f"COPY index/ {DOCKER_BUNDLE}/index/",
        f"COPY --chown=tlsenv:tlsenv {KEYS_DIR}/ {DOCKER_BUNDLE}/{KEYS_DIR}/",
        f"COPY {' '.join(copied)} {DOCKER_BUNDLE}/",
        "# The store, built as root with the same commands as repro.sh's build_store.",
        f"ENV STORE={DOCKER_STORE} CERTS={DOCKER_BUNDLE}/certs",
        STORE_BEGIN,
        *_docker_store(commands),
        STORE_END,
        "USER tlsenv",
        "WORKDIR /home/tlsenv",
        # Quoted: a client name is the reporter's, and an unquoted space or quote would
        # change the instruction.
        f"ENV TLSENV_STORE={DOCKER_STORE} TLSENV_PREBUILT=1 "
        f"TLSENV_CLIENT={_docker_quote(runtime_client)} PATH={_docker_quote(path)}",
        f'CMD ["sh", "{DOCKER_BUNDLE}/repro.sh"]',
        "",
    ]
    return "\n".join(lines)


def _docker_quote(value: str) -> str:
    """``value`` as one double-quoted Dockerfile word: inside, Docker expands ``$`` and
    takes a backslash before ``"``, ``$`` or ``\\`` as an escape. (Line breaks are refused
    earlier: nothing quotes them.)"""
    return '"' + re.sub(r'([\\"$])', r"\\\1", value) + '"'


# -- ISSUE.md ------------------------------------------------------------------------------------


def _issue_md(data: Mapping[str, Any], runs: Sequence[_Run], scrub: Any) -> str:
    sc = data["scenario"]
    client = data["client"]
    host = data["host"]
    run = runs[-1]
    spec = data["spec"]
    name = client["name"]
    who = client["version"] or name
    system_paths = (
        "\n- the client saw the store at the real system paths (/etc/ssl...) through a private "
        "mount namespace; `repro.sh` does the same (`nsplan.py`, Python's standard library; "
        "needs root or unprivileged user namespaces)"
        if data["system_paths"]
        else ""
    )
    actual = run.verdict or "(not run)"
    expected = ", ".join(data["expected"])
    shown = [name if i == 0 and not run.stand_in else w for i, w in enumerate(run.argv)]
    command = " ".join(shlex.quote(w) for w in shown)
    env_lines = "\n".join(f"{k}={v}" for k, v in sorted(run.env.items()))
    stderr = "\n".join(run.stderr.rstrip().splitlines()[-30:]) or "(empty)"
    listing = "\n".join(data["store"]["listing"])
    source = f" Reported first in {sc['source']}." if sc.get("source") else ""
    faults = (
        "\n".join(
            f"- `{f['name']}` ({f['placement']}): `{', '.join(f['paths'])}`"
            for f in data["applied"]
        )
        or "- nothing in the store (see the scenario above)"
    )
    secrets = (
        "\n\n   The client ran with secrets, which the bundle does not contain: set "
        + ", ".join(f"`{n}`" for n in data["secrets"])
        + " in the environment of `repro.sh` (it stops and says so otherwise; `{$NAME}` "
        "above marks where each goes)."
        if data["secrets"]
        else ""
    )
    install = (
        f"python3's pip at hand (it installs `{client['pip']}` into its work dir)"
        if client["pip"]
        else f"`{name}` on PATH"
    )
    text = f"""\
# {" ".join(who.split()[:2])}: {actual} in a TLS trust environment where {expected} is expected

{_sentence(sc["description"])} {_sentence(sc["why"])}{source}

Found with [pytest-tlsenv](https://pypi.org/project/pytest-tlsenv/) scenario `{sc["name"]}`;
the attached bundle reproduces it without pytest (`sh repro.sh`, or the Dockerfile).

## Environment

- client: `{who}`
- OS: {host["os"]} ({host["kernel"]})
- TLS library seen by Python: {host["openssl"]}; Python {host["python"]}
- user: {host["user"]}{system_paths}
- trust store layout: `{spec["layout"]}`; placement of the faults: `{spec["placement"]}`

## What is broken in the environment

{faults}

The store the client got (mode, uid, gid, size, path under the store's root):

```
{listing}
```

## Steps to reproduce

1. Unpack the bundle and run `sh repro.sh` with {install} (or set `TLSENV_CLIENT=/path/to/{name}`).
   It builds the store above under a temporary directory, starts a loopback HTTPS origin
   (`server.py`, Python standard library only), and runs, with exactly this environment
   (`env -i`; as root, without any capability):

   ```
   {command}
   ```

   ```
{_indent(env_lines, 3)}
   ```{secrets}

2. Or: `docker build -t tlsenv-repro . && docker run --rm tlsenv-repro` (Debian 12, a non-root
   user, the same store commands).

`{{url}}`, `{{index_url}}`, `{{proxy_url}}` are the loopback addresses `repro.sh` fills in,
`{{venv}}` a fresh bare virtualenv's interpreter.

## Expected

{expected}: {sc["why"]}.

## Actual

{actual}: {run.reason}

```
{stderr}
```
"""
    scrubbed: str = scrub(text)
    return scrubbed


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def known_verdicts() -> list[str]:
    """Every verdict name (for parsers of repro.sh's output)."""
    return [v.value for v in Verdict]


# -- the command line: `repro` and `serve` (wired into cli.py) ------------------------------------


def add_cli_commands(sub: Any) -> None:
    """Add the ``repro`` and ``serve`` subcommands to ``python -m pytest_tlsenv``."""
    p = sub.add_parser(
        "repro",
        usage="python -m pytest_tlsenv repro SCENARIO [options] -- CMD...",
        help="write a reproduction bundle: repro SCENARIO [options] -- CMD...",
        description="Build SCENARIO, run CMD in it once (to record the verdict and stderr), "
        "and write a bundle that reproduces it without pytest. In CMD, {url}, {index_url}, "
        "{proxy_url}, {port}, {store} and {venv} stand for the scenario's addresses, its "
        "store's root and a fresh bare virtualenv's interpreter.",
        epilog="example: python -m pytest_tlsenv repro unreadable-file --env UV_NATIVE_TLS=1 "
        "-- uv pip install --python {venv} --index-url {index_url} tlsenv-probe",
    )
    p.add_argument("scenario", help="a catalogue scenario (see: python -m pytest_tlsenv scenarios)")
    p.add_argument("--layout", help="override the scenario's trust store layout")
    p.add_argument("--placement", help="decoy or shadow")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        dest="faults",
        metavar="FAULT",
        help="add a fault to the scenario's (repeatable)",
    )
    p.add_argument("--server", help="a server-group variant (expired, wrong-host...)")
    p.add_argument(
        "--system-paths",
        action="store_true",
        help="show the store at the real system paths (/etc/ssl...) in a private mount namespace",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for CMD on top of the scenario's (repeatable)",
    )
    p.add_argument("--out", metavar="DIR", help="bundle directory (default ./tlsenv-repro-NAME)")
    p.add_argument(
        "--pip", metavar="REQUIREMENT", help="how the Dockerfile installs CMD's client (uv==0.2.29)"
    )
    p.add_argument("--timeout", type=float, default=20.0, help="client timeout in seconds")
    p.set_defaults(func=_cli_repro, parser=p)
    s = sub.add_parser(
        "serve",
        help="start a bundle's origin (and proxy) here",
        description="Serve a reproduction bundle's origin and proxy (what its server.py does) "
        "until interrupted.",
    )
    s.add_argument("--bundle", required=True, metavar="DIR")
    s.add_argument("--state", metavar="DIR", help="where ports.sh and the logs go (default: tmp)")
    s.add_argument("--max-seconds", type=float, default=3600.0)
    s.set_defaults(func=_cli_serve, parser=s)


def _cli_repro(args: Any) -> int:
    from .errors import TLSEnvError
    from .scenarios import resolve
    from .tlsenv import Settings, TLSEnv

    parser = args.parser
    cmd: list[str] = list(getattr(args, "cmd", None) or [])
    if not cmd:
        parser.error("give the client command after --, e.g.: repro good -- curl -fsS {url}")
    env_overrides: dict[str, str | None] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env takes NAME=VALUE, got {item!r}")
        env_overrides[name] = value
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    keywords: dict[str, Any] = {}
    for key in ("layout", "placement", "server"):
        if getattr(args, key) is not None:
            keywords[key] = getattr(args, key)
    if args.faults:
        keywords["faults"] = args.faults
    if args.system_paths:
        keywords["system_paths"] = True
    try:
        spec = resolve(args.scenario, **keywords)
    except TLSEnvError as e:
        parser.error(str(e))
    out = Path(args.out or f"tlsenv-repro-{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec.scenario.name)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(f"{out} exists and is not an empty directory: choose another --out")
    tmp = Path(tempfile.mkdtemp(prefix="tlsenv-repro-cli-"))
    try:
        pki = PKI(tmp / "pki")
        try:
            env = TLSEnv.build(
                spec, pki=pki, root=tmp / "scenario", settings=Settings(timeout=args.timeout)
            )
        except TLSEnvError as e:
            parser.error(str(e))
        with env:
            if "{proxy_url}" in " ".join(cmd) and env.proxy is None:
                parser.error(
                    f"{{proxy_url}} in CMD, but scenario {spec.scenario.name!r} has no proxy"
                )
            argv = _substitute(cmd, env)
            environ = {k: _substitute([v], env)[0] if v else v for k, v in env_overrides.items()}
            try:
                outcome = env.run(argv, env=environ)
            except OSError as e:
                parser.error(f"cannot run {cmd[0]!r}: {e}")
            reason = outcome.redactor().text(outcome.reason)
            print(f"{spec.scenario.name}: {outcome.verdict} - {reason}")
            print(f"expected: {', '.join(sorted(v.value for v in env.scenario.expected))}")
            bundle = env.repro(out, pip_requirement=args.pip)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"bundle: {bundle}  (run: sh {bundle / 'repro.sh'}; paste: {bundle / 'ISSUE.md'})")
    return 0


def _substitute(words: Sequence[str], env: TLSEnv) -> list[str]:
    """Placeholders -> this scenario's real addresses and paths (the reverse of export)."""
    values: dict[str, Any] = {
        "{index_url}": lambda: env.origin.index_url,
        "{url}": lambda: env.origin.url,
        "{port}": lambda: str(env.origin.port),
        "{store}": lambda: str(env.store.root),
        "{work}": lambda: str(env.root),
    }
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
    out = []
    for word in words:
        for key, make in values.items():
            if key in word:
                word = word.replace(key, make())
        out.append(word)
    return out


def _cli_serve(args: Any) -> int:
    from . import _bundle_server

    bundle = Path(args.bundle)
    if not (bundle / "scenario.json").is_file():
        args.parser.error(f"{bundle} is not a reproduction bundle (no scenario.json)")
    state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="tlsenv-serve-"))
    print(f"logs and ports.sh in {state}; Ctrl-C stops", flush=True)
    try:
        return _bundle_server.main(
            ["--bundle", str(bundle), "--state", str(state), "--max-seconds", str(args.max_seconds)]
        )
    finally:
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)
