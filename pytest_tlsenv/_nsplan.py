"""Which mounts show a trust store at the system paths: the plan, computed on the host at hand.

Standard library only, like :mod:`pytest_tlsenv._nsexec`: :mod:`pytest_tlsenv.namespace`
builds its :class:`~pytest_tlsenv.namespace.MountPlan` with it, and reproduction bundles carry
both files (``nsplan.py``, ``nsexec.py``) so that ``repro.sh`` shows the store at the real
paths of the maintainer's machine, whose /etc differs from the reporter's (binds, grafts and
masks depend on what the host has). The design is documented in ``namespace.py``.

Bundle use (``repro.sh`` runs it inside its ``env -i``)::

    python3 -I -S nsplan.py --scenario scenario.json --store STORE --stage DIR -- ARGV...

computes the plan for the layout in ``scenario.json``, creates the staging directories, then
enters the namespace, mounts, drops every capability and sets no_new_privs, and execs ARGV,
with ``nsexec.py`` from the same directory.
"""

from __future__ import annotations

import os
import stat
import sys

# Where Linux clients look for trust when no variable is set (openssl-probe's and Go's lists,
# Debian/RHEL/SUSE/Alpine/Arch tooling). Those of them that a layout does not define are
# masked (an empty directory or file bound over them), so a client never falls back to the
# host's store: under layout="bundle-only" on Debian, /etc/ssl/certs is empty, not the host's.
SYSTEM_TRUST_PATHS = (
    "etc/ssl/certs",
    "etc/ssl/cert.pem",
    "etc/ssl/ca-bundle.pem",
    "etc/pki/tls/certs",
    "etc/pki/tls/cert.pem",
    "etc/pki/tls/cacert.pem",
    "etc/pki/ca-trust",
    "etc/ca-certificates/trust-source",
    "usr/local/share/ca-certificates",
)

Bind = tuple[str, str]
Graft = tuple[str, str, tuple[tuple[str, str], ...]]


class PlanError(ValueError):
    """The store cannot be shown at the system paths (the message says why)."""


def under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def is_dir(path: str) -> bool | None:
    """Whether ``path`` (following symlinks) is a directory; None if it does not resolve."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return None


def plan(
    rels: list[str], store_root: str, stage: str
) -> tuple[tuple[Bind, ...], tuple[Graft, ...], tuple[str, ...]]:
    """``(binds, grafts, masks)`` that show the store's ``rels`` (paths relative to ``/``) at
    the host's real paths; ``stage`` is a directory of ours for graft staging."""
    targets: list[str] = []
    for rel in sorted({r.strip("/") for r in rels if r}):
        if not any(under(rel, t) for t in targets):
            targets.append(rel)
    binds: list[Bind] = []
    missing: dict[str, str] = {}  # topmost missing host path -> its store counterpart
    for rel in targets:
        host, source = "/" + rel, os.path.join(store_root, rel)
        if not os.path.lexists(host):
            top = host
            while not os.path.lexists(os.path.dirname(top)):
                top = os.path.dirname(top)
            missing[top] = os.path.join(store_root, top.lstrip("/"))
            continue
        same_alias = os.path.islink(host) and os.path.islink(source)
        if same_alias and os.readlink(host) == os.readlink(source):
            continue  # the same alias: it resolves into the paths bound here
        src_dir, host_dir = is_dir(source), is_dir(host)
        if src_dir is None:
            raise PlanError(
                f"system_paths: the store's {source} does not resolve, so it cannot be shown "
                f"at {host}"
            )
        if src_dir != host_dir:
            raise PlanError(
                f"system_paths: cannot show {source} at {host}: one is a directory and the "
                "other is not"
            )
        binds.append((source, host))
    by_parent: dict[str, list[tuple[str, str]]] = {}
    for top, source in sorted(missing.items()):
        by_parent.setdefault(os.path.dirname(top), []).append((os.path.basename(top), source))
    grafts = tuple(
        (parent, os.path.join(stage, f"graft-{i}"), tuple(adds))
        for i, (parent, adds) in enumerate(
            sorted(by_parent.items(), key=lambda kv: kv[0].count("/"))
        )
    )
    masks: list[str] = []
    for rel in SYSTEM_TRUST_PATHS:
        host = "/" + rel
        # Inside a shown path, or an ancestor of one (the rest of a partly shown tree, e.g.
        # /etc/pki/ca-trust/extracted/java on a RHEL host, stays the host's).
        if any(under(rel, t) or under(t, rel) for t in targets):
            continue
        if is_dir(host) is None:
            continue  # absent (or dangling): nothing to hide
        real = os.path.realpath(host)
        if any(under(real, "/" + t) for t in targets) or any(under(real, m) for m in masks):
            continue  # an alias into what is shown or masked already
        masks.append(host)
    return tuple(binds), grafts, tuple(masks)


def hidden_masks(hidden: list[str], masks: tuple[str, ...]) -> tuple[str, ...]:
    """``masks`` plus each of a layout's ``hidden`` directories that exists on this host (an
    absent one needs no hiding: a client's default there points nowhere already)."""
    out = list(masks)
    for rel in hidden:
        host = "/" + rel.strip("/")
        if is_dir(host) and host not in out:
            out.append(host)
    return tuple(out)


# Name resolution of a client, as the C library, musl and Go's resolver configure it.
HOSTS = "/etc/hosts"
RESOLV_CONF = "/etc/resolv.conf"
NSSWITCH_CONF = "/etc/nsswitch.conf"
# nscd answers lookups with the host's configuration, before any file here is read.
NSCD_SOCKETS = ("/run/nscd/socket", "/var/run/nscd/socket")
LOOPBACK_RESOLV_CONF = "nameserver 127.0.0.1\n"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o644)  # a client switched to another user reads it too


def _nsswitch_without_other_sources(text: str) -> str | None:
    """``text`` with its ``hosts:`` line made ``files dns``; None if it is that already.

    Sources such as ``resolve`` (systemd-resolved), ``mdns4_minimal`` or ``myhostname``
    would ask something other than the files and resolver bound here.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        key, sep, value = line.partition(":")
        if sep and key.strip() == "hosts":
            sources = {w for w in value.split("#")[0].split() if not w.startswith("[")}
            if sources <= {"files", "dns"}:
                return None
            lines[i] = "hosts: files dns"
            return "\n".join(lines) + "\n"
    return None  # no hosts line: the C library's default asks files and dns only


def names_binds(names: tuple[str, ...], stage: str) -> tuple[Bind, ...]:
    """Binds that keep a client's name lookups on this machine (files staged in ``stage``).

    ``names`` (the scenario's invented names) map to 127.0.0.1 and ::1 ahead of the host's own
    /etc/hosts lines; /etc/resolv.conf names only ``nameserver 127.0.0.1``, so a lookup of
    any other name goes to loopback port 53, never to the host's resolver; an nsswitch.conf
    whose ``hosts:`` line has other sources gets ``hosts: files dns``; nscd's socket is
    hidden. A file the host lacks is not bound: a missing resolv.conf already means
    127.0.0.1, a missing hosts file only means the names do not resolve.
    """
    os.makedirs(stage, exist_ok=True)
    binds: list[Bind] = []
    hosts = os.path.join(stage, "hosts")
    ours = "".join(f"127.0.0.1\t{n}\n::1\t{n}\n" for n in names)
    _write(hosts, f"# pytest-tlsenv: invented names on loopback\n{ours}\n{_read(HOSTS)}")
    if os.path.isfile(HOSTS):
        binds.append((hosts, HOSTS))
    resolv = os.path.join(stage, "resolv.conf")
    _write(resolv, LOOPBACK_RESOLV_CONF)
    if os.path.isfile(RESOLV_CONF):
        binds.append((resolv, RESOLV_CONF))
    nsswitch = _nsswitch_without_other_sources(_read(NSSWITCH_CONF))
    if nsswitch is not None and os.path.isfile(NSSWITCH_CONF):
        _write(os.path.join(stage, "nsswitch.conf"), nsswitch)
        binds.append((os.path.join(stage, "nsswitch.conf"), NSSWITCH_CONF))
    sockets = {os.path.realpath(p) for p in NSCD_SOCKETS if os.path.exists(p)}
    if sockets:
        # connect() to a regular file fails at once, and the C library then asks NSS itself.
        _write(os.path.join(stage, "no-nscd"), "")
        binds += [(os.path.join(stage, "no-nscd"), sock) for sock in sorted(sockets)]
    return tuple(binds)


def empty_dir(stage: str) -> str:
    """What a masked directory shows (created by :func:`prepare`)."""
    return os.path.join(stage, "empty-dir")


def empty_file(stage: str) -> str:
    """What a masked file shows (created by :func:`prepare`)."""
    return os.path.join(stage, "empty-file")


def prepare(grafts: tuple[Graft, ...], masks: tuple[str, ...], stage: str) -> None:
    """Create the (empty) staging directories; they stay empty as seen from outside."""
    for _parent, directory, _adds in grafts:
        os.makedirs(directory, exist_ok=True)
    if masks:
        os.makedirs(empty_dir(stage), mode=0o755, exist_ok=True)
        with open(empty_file(stage), "ab"):
            pass
        os.chmod(empty_file(stage), 0o644)


def words(
    binds: tuple[Bind, ...],
    grafts: tuple[Graft, ...],
    masks: tuple[str, ...],
    stage: str,
    *,
    userns: bool,
    drop: str,
    switch: tuple[int, int] | None,
) -> list[str]:
    """The plan as ``_nsexec.apply``'s words: grafts first, then binds, then masks (read-only:
    a uid-0 client would otherwise write into the stage's empty stand-ins, for later runs)."""
    who = "-" if switch is None else f"{switch[0]}:{switch[1]}"
    out = ["1" if userns else "0", drop, who]
    for parent, directory, adds in grafts:
        out += ["graft", parent, directory, str(len(adds))]
        for name, src in adds:
            out += [name, src]
    for src, host in binds:
        out += ["bind", src, host]
    for host in masks:
        out += ["robind", empty_dir(stage) if is_dir(host) else empty_file(stage), host]
    return out


def _layout_rels(layout: dict[str, object]) -> list[str]:
    """The trust paths of a layout as ``dataclasses.asdict(Layout)`` wrote it to JSON."""
    rels = [layout.get(k) for k in ("cert_dir", "bundle", "anchors", "shared")]
    aliases = layout.get("aliases")
    if isinstance(aliases, list):
        rels += [pair[0] for pair in aliases if isinstance(pair, list) and pair]
    return [r for r in rels if isinstance(r, str) and r]


def main(argv: list[str]) -> int:
    """The bundle's entry point (see the module docstring)."""
    import json  # only here: pytest_tlsenv imports this module on every system_paths run

    usage = "usage: nsplan.py --scenario JSON --store DIR --stage DIR -- ARGV..."
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(usage, file=sys.stderr)
        return 2
    sep = argv.index("--")
    pairs = argv[1:sep]
    opts = dict(zip(pairs[::2], pairs[1::2], strict=False))
    if len(pairs) != 6 or set(opts) != {"--scenario", "--store", "--stage"}:
        print(usage, file=sys.stderr)
        return 2
    try:
        with open(opts["--scenario"]) as f:
            layout = json.load(f)["layout"]
        stage = opts["--stage"]
        binds, grafts, masks = plan(_layout_rels(layout), opts["--store"], stage)
        hidden = layout.get("hidden")
        if isinstance(hidden, list):
            masks = hidden_masks([h for h in hidden if isinstance(h, str)], masks)
        prepare(grafts, masks, stage)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"tlsenv-nsplan: {e}", file=sys.stderr)
        return 125
    userns = os.geteuid() != 0
    # As root repro.sh's setpriv left only what mounting needs; as non-root the user
    # namespace grants every capability there. Either way all of them go before the exec.
    plan_words = words(binds, grafts, masks, stage, userns=userns, drop="all", switch=None)
    import importlib.util

    sys.dont_write_bytecode = True  # no __pycache__ in the bundle
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nsexec.py")
    spec = importlib.util.spec_from_file_location("nsexec", helper)
    if spec is None or spec.loader is None:
        print(f"tlsenv-nsplan: cannot load {helper}", file=sys.stderr)
        return 125
    nsexec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nsexec)
    result: int = nsexec.main([helper, *plan_words, "--", *argv[sep + 1 :]])
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv))
