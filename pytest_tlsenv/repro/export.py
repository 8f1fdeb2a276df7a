"""Writing a bundle: :func:`export` stages the store, records the runs and writes every file."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import ssl
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import ConfigError
from ..outcome import Verdict
from ..pki import ORIGIN_HOSTS, write_private
from ..placeholders import Translator, trust_paths
from ..proxyenv import ENVIRONMENTS
from ..scenarios import CATALOGUE
from ..servers import probe_wheel
from ..versions import version_of
from .common import BUNDLE_VALIDITY, KEYS_DIR, NS_SCRIPTS, SERVER_SCRIPT, now
from .docker import dockerfile
from .issue import issue_md, scrubber
from .record import bundle_redactor, recorded_runs, secret_env, secret_names
from .script import repro_sh
from .staging import Staged, stage
from .template import load

if TYPE_CHECKING:
    from .common import BundleEnv

__all__ = ["export", "known_verdicts"]


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


def _servers(staged: Staged, env: BundleEnv, bundle: Path) -> dict[str, Any]:
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
                ORIGIN_HOSTS, not_after=now() + BUNDLE_VALIDITY
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
    env: BundleEnv,
    path: str | os.PathLike[str],
    *,
    pip_requirement: str | None = None,
) -> Path:
    """Write the reproduction bundle of ``env`` into ``path`` (created; must not be a file).

    The bundle reruns the client command(s) ``env.run`` recorded (an in-process ``call`` is
    replaced by a Python ``ssl`` stand-in). ``pip_requirement`` (e.g. ``"uv==0.2.29"``) says
    how the Dockerfile installs the client when it cannot be guessed.
    """
    if env.spec.proxy in ENVIRONMENTS:
        # Its server.py has the CONNECT proxy only: a bundle would show another scenario.
        raise ConfigError(
            f"no reproduction bundle for proxy scenario {env.spec.proxy!r}: bundles carry the "
            "CONNECT proxy only, not the HTTPS or SOCKS proxies, two proxies or NO_PROXY"
        )
    bundle = Path(path)
    if bundle.exists() and (not bundle.is_dir() or any(bundle.iterdir())):
        raise ConfigError(f"{bundle} exists and is not an empty directory: choose another --out")
    bundle.mkdir(parents=True, exist_ok=True)
    os.chmod(bundle, 0o755)
    for sub in ("certs", KEYS_DIR):
        (bundle / sub).mkdir()
    os.chmod(bundle / KEYS_DIR, 0o700)
    translate = Translator(env)
    red = bundle_redactor(env)
    scrub = scrubber(env, translate, red)
    runs = recorded_runs(env, translate, red)
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
    version = version_of(_session_argv0(env) or main_client)
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
        "created": now().isoformat(),
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
            "trust": spec.trust,
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
        "environment": secret_env({k: translate(v) for k, v in env.environ.items()}, red),
        "store": {
            "commands": commands,
            "listing": [translate(str(e)) for e in env.store.entries],
            # {bundle}, {cert_dir}, {ssl_cert_file}, {ssl_cert_dir} as repro.sh defines them.
            "paths": {k: translate(v) for k, v in trust_paths(env).items()},
        },
        "runs": [dataclasses.asdict(r) for r in runs],
        # Variables the runs need whose values were not exported: repro.sh's caller sets them.
        "secrets": secret_names(runs),
        "servers": servers,
        "leak_is_bad": leak_is_bad,
        # How the store reached the client (docs/trust-modes.md); "system" shows it at the
        # system paths, so repro.sh runs the client through nsplan.py as with system_paths.
        "trust": env.trust,
        "system_paths": bool(env.system_paths or env.trust == "system"),
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
    _write(bundle / KEYS_DIR / "README", load("throwaway-keys-README"))
    _write(bundle / "repro.sh", repro_sh(data, runs, commands), 0o755)
    _write(bundle / "Dockerfile", dockerfile(data, commands))
    _write(bundle / "ISSUE.md", issue_md(data, runs, scrub))
    return bundle


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


def _session_argv0(env: BundleEnv) -> str | None:
    recorded = [o.argv for o in env.outcomes if o.argv]
    return str(recorded[-1][0]) if recorded else None


def _base_name(label: str) -> str | None:
    names = sorted((n for n in CATALOGUE if label == n or label.startswith(n)), key=len)
    return names[-1] if names else None


def known_verdicts() -> list[str]:
    """Every verdict name (for parsers of repro.sh's output)."""
    return [v.value for v in Verdict]
