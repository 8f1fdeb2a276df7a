"""Every store fault bites: a process started by the runner gets the expected error on it.

Prove the fault bites: for each fault a plain tool (cat, ls, openssl)
launched by ``tlsenv.run`` in the same mode as a client (as root: without CAP_DAC_OVERRIDE /
CAP_DAC_READ_SEARCH; as non-root: itself) meets the expected error on the broken entry, and
the same tool on the healthy CA file next to it succeeds (the negative twin). The module is
marked ``nonroot``: CI runs it again as ``nobody``.

Also here: the fault table itself (every documented name, shell lines, placement per kind) and
the FIFO release at teardown.
"""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from commands import uv_pip_install_argv

from pytest_tlsenv import CATALOGUE, FAULTS, GROUPS, PKI, Outcome, TLSEnv, Verdict, resolve
from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.faults import HUGE_SIZE, KINDS, release_fifo

pytestmark = pytest.mark.nonroot

DESIGN_STORE_FAULTS = [
    "unreadable-file",
    "unreadable-bundle",
    "unreadable-dir",
    "dangling-symlink",
    "symlink-loop",
    "fifo",
    "empty-file",
    "garbage-file",
    "truncated-pem",
    "der-file",
    "private-key-file",
    "garbage-in-bundle",
    "expired-decoy",
    "non-ca-cert",
    "huge-file",
    "crlf-pem",
    "missing-file-env",
    "missing-dir-env",
    "dir-as-file",
]

OPENSSL_PEM = ["openssl", "x509", "-inform", "PEM", "-noout", "-in"]


@dataclass(frozen=True)
class Bite:
    """``argv`` (``{entry}`` stands for the broken path) and what it must meet there."""

    argv: tuple[str, ...]
    returncode: int | None  # None: the process must hang (HUNG at the timeout)
    text: str  # in stderr (or stdout when the tool reports there)


CAT = ("cat", "{entry}")
BITES: dict[str, Bite] = {
    "unreadable-file": Bite(CAT, 1, "Permission denied"),
    "unreadable-dir": Bite(CAT, 1, "Permission denied"),
    "dangling-symlink": Bite(CAT, 1, "No such file or directory"),
    "symlink-loop": Bite(CAT, 1, "Too many levels of symbolic links"),
    "fifo": Bite(CAT, None, ""),
    "empty-file": Bite((*OPENSSL_PEM, "{entry}"), 1, "Could not read certificate"),
    "garbage-file": Bite((*OPENSSL_PEM, "{entry}"), 1, "Unable to load certificate"),
    "truncated-pem": Bite((*OPENSSL_PEM, "{entry}"), 1, "Unable to load certificate"),
    # `openssl x509` sniffs DER by itself; forcing PEM is what a cert dir lookup does.
    "der-file": Bite((*OPENSSL_PEM, "{entry}"), 1, "Unable to load certificate"),
    "private-key-file": Bite((*OPENSSL_PEM, "{entry}"), 1, "Could not read certificate"),
    # OpenSSL's PEM reader does not find the block behind 64 MiB of NULs (measured).
    "huge-file": Bite((*OPENSSL_PEM, "{entry}"), 1, "Could not read certificate"),
    "expired-decoy": Bite(
        ("openssl", "x509", "-noout", "-checkend", "0", "-in", "{entry}"),
        1,
        "Certificate will expire",
    ),
    "non-ca-cert": Bite(
        ("openssl", "x509", "-noout", "-ext", "basicConstraints", "-in", "{entry}"),
        0,
        "CA:FALSE",
    ),
    "crlf-pem": Bite(("cat", "-v", "{entry}"), 0, "-----BEGIN CERTIFICATE-----^M"),
    "garbage-in-bundle": Bite(
        ("openssl", "crl2pkcs7", "-nocrl", "-certfile", "{entry}"), 1, "PEM_X509_INFO_read_bio"
    ),
    # Env faults: the variable the client gets is what is broken, so read it from there.
    "unreadable-bundle": Bite(("sh", "-c", 'cat "$SSL_CERT_FILE"'), 1, "Permission denied"),
    "missing-file-env": Bite(("sh", "-c", 'cat "$SSL_CERT_FILE"'), 1, "No such file"),
    "missing-dir-env": Bite(("sh", "-c", 'ls "$SSL_CERT_DIR"'), 2, "No such file"),
    "dir-as-file": Bite(("sh", "-c", 'cat "$SSL_CERT_FILE"'), 1, "Is a directory"),
}


def test_every_design_store_fault_is_in_the_table() -> None:
    assert set(DESIGN_STORE_FAULTS) <= set(FAULTS)
    assert set(BITES) == set(DESIGN_STORE_FAULTS)
    for name in DESIGN_STORE_FAULTS:
        fault = FAULTS[name]
        assert fault.kind in KINDS
        assert fault.description
        assert "\n" not in fault.description
        scenario = CATALOGUE[name]
        assert scenario.groups == ("store",)
        assert scenario.faults == (name,)
        assert set(scenario.expected_by_placement) == {"decoy", "shadow"}, name
        assert scenario.why
        assert name in GROUPS["store"]


@pytest.mark.parametrize("name", ["missing-file-env", "missing-dir-env", "dir-as-file"])
def test_env_faults_expect_a_clean_refusal(name: str) -> None:
    for expected in CATALOGUE[name].expected_by_placement.values():
        assert expected == {Verdict.OK, Verdict.FAILED, Verdict.REJECTED}


def _entry(env: TLSEnv) -> str:
    (applied,) = env.applied
    return str(applied.paths[0])


def _healthy(env: TLSEnv) -> str:
    """The healthy twin of an entry: the trusted CA's own file (or the bundle)."""
    if env.store.cert_dir is not None:
        return str(env.store.cert_dir / "tlsenv-trusted.pem")
    assert env.store.bundle is not None
    return str(env.store.bundle)


@pytest.mark.parametrize("placement", ["decoy", "shadow"])
@pytest.mark.parametrize("name", DESIGN_STORE_FAULTS)
def test_fault_bites(make_tlsenv, name: str, placement: str) -> None:  # type: ignore[no-untyped-def]
    bite = BITES[name]
    env: TLSEnv = make_tlsenv(scenario=name, placement=placement, timeout=1)
    entry = _entry(env)
    argv = [a.format(entry=entry) for a in bite.argv]
    out = env.run(argv, timeout=1 if bite.returncode is None else 10)
    if bite.returncode is None:
        assert out.verdict is Verdict.HUNG, out.explain("a blocking open")
    else:
        assert out.returncode == bite.returncode, out.explain(f"exit {bite.returncode}")
        assert bite.text in out.stderr + out.stdout, out.explain(repr(bite.text))
    # The negative twin: the same tool, the same runner, a healthy store.
    healthy = make_tlsenv(timeout=5)
    twin = [a.format(entry=_healthy(healthy)) for a in bite.argv]
    if name == "garbage-in-bundle":
        twin = [a.format(entry=str(healthy.store.bundle)) for a in bite.argv]
    good = healthy.run(twin)
    assert good.returncode == 0, good.explain("the healthy twin to work")
    if name == "non-ca-cert":
        assert "CA:TRUE" in good.stdout
    elif bite.text:
        assert bite.text not in good.stderr + good.stdout


@pytest.mark.tlsenv(scenario="unreadable-dir")
def test_unreadable_dir_cannot_be_listed(tlsenv: TLSEnv) -> None:
    sub = Path(_entry(tlsenv)).with_suffix("")
    out = tlsenv.run(["ls", str(sub)])
    assert out.returncode == 2, out.explain("EACCES")
    assert "Permission denied" in out.stderr
    st = os.stat(sub)
    if os.geteuid() == 0:
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (65533, 0o700)
    else:
        assert stat.S_IMODE(st.st_mode) == 0
    # Twin: the cert dir itself lists fine.
    assert tlsenv.run(["ls", str(tlsenv.store.cert_dir)]).returncode == 0


@pytest.mark.tlsenv(scenario="huge-file")
def test_huge_file_is_sparse_and_huge(tlsenv: TLSEnv) -> None:
    st = os.stat(_entry(tlsenv))
    assert st.st_size > HUGE_SIZE
    assert st.st_blocks * 512 < 1 << 20  # sparse: costs (almost) no disk
    out = tlsenv.run(["wc", "-c", _entry(tlsenv)])
    assert int(out.stdout.split()[0]) == st.st_size


@pytest.mark.tlsenv(scenario="fifo", timeout=1)
def test_fifo_in_process_reader_is_hung_then_released(tlsenv: TLSEnv) -> None:
    entry = _entry(tlsenv)

    def read() -> bytes:
        with open(entry, "rb") as f:
            return f.read()

    out = tlsenv.call(read)
    assert out.verdict is Verdict.HUNG
    # The blocked thread is released by TLSEnv.close (the fixture's teardown): the autouse
    # thread check of tests/conftest.py fails the test if it were not.


def test_release_fifo_frees_blocked_readers(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as f:
            got.append(f.read())

    readers = [threading.Thread(target=reader, name=f"tlsenv-test-{i}") for i in range(2)]
    for t in readers:
        t.start()
    time.sleep(0.1)
    assert all(t.is_alive() for t in readers)  # blocked in open()
    assert release_fifo(fifo) >= 1
    for t in readers:
        t.join(2)
    assert not any(t.is_alive() for t in readers)
    assert got == [b"", b""]
    assert not fifo.exists()
    # Twin: no reader waiting, nothing to release; the FIFO is removed all the same.
    os.mkfifo(fifo)
    assert release_fifo(fifo) == 0
    assert not fifo.exists()


@pytest.mark.parametrize("placement", ["decoy", "shadow"])
def test_entry_placement(make_tlsenv, tlsenv_pki: PKI, placement: str) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(scenario="empty-file", placement=placement)
    cert_dir = env.store.cert_dir
    assert cert_dir is not None
    trusted = tlsenv_pki.authorities["trusted"].subject_hash
    slot0 = os.readlink(cert_dir / f"{trusted}.0")
    if placement == "shadow":
        assert slot0 == "tlsenv-empty-file.pem"
        assert os.readlink(cert_dir / f"{trusted}.1") == "tlsenv-trusted.pem"
    else:
        assert slot0 == "tlsenv-trusted.pem"
        assert not os.path.lexists(cert_dir / f"{trusted}.1")


@pytest.mark.parametrize("placement", ["decoy", "shadow"])
def test_bundle_placement(make_tlsenv, tlsenv_pki: PKI, placement: str) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(scenario="garbage-in-bundle", placement=placement)
    assert env.store.bundle is not None
    text = env.store.bundle.read_bytes()
    good = text.index(tlsenv_pki.authorities["trusted"].cert_pem)
    bad = text.index(b"dGxzZW52IGdhcmJhZ2U6")
    assert (bad < good) if placement == "shadow" else (bad > good)


@pytest.mark.parametrize("placement", ["decoy", "shadow"])
def test_env_placement(make_tlsenv, placement: str) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(scenario="missing-file-env", placement=placement)
    assert not os.path.exists(env.environ["SSL_CERT_FILE"])
    cert_dir = Path(env.environ["SSL_CERT_DIR"])
    if placement == "shadow":
        assert cert_dir.is_dir()
        assert not any(cert_dir.iterdir())
    else:
        assert cert_dir == env.store.cert_dir


def test_shell_lines_describe_each_fault(make_tlsenv) -> None:  # type: ignore[no-untyped-def]
    env: TLSEnv = make_tlsenv(faults=list(DESIGN_STORE_FAULTS[:-4]), placement="shadow")
    shell = "\n".join(line for applied in env.applied for line in applied.shell)
    for word in ("chown 65533:65533", "mkfifo", "ln -s", "openssl x509", "TLSENV_EOF", "mv "):
        assert word in shell
    assert len(env.applied) == len(DESIGN_STORE_FAULTS) - 4


def test_entry_fault_needs_a_cert_dir(make_tlsenv) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="needs a cert dir"):
        make_tlsenv(scenario="fifo", layout="bundle-only")
    with pytest.raises(ConfigError, match="needs a bundle"):
        make_tlsenv(scenario="garbage-in-bundle", layout="dir-only")


def test_composed_faults_resolve() -> None:
    spec = resolve(faults=["fifo", "garbage-file"], placement="shadow")
    assert spec.faults == ("fifo", "garbage-file")
    assert spec.scenario.expected == {Verdict.OK, Verdict.REJECTED}


# -- acceptance: real clients in every store scenario, both placements ------------------------
#
# Clients, each given the store the hermetic way:
#   python          in-process, ssl.create_default_context() (SSL_CERT_FILE + SSL_CERT_DIR)
#   python-cafile   in-process, create_default_context(cafile=$SSL_CERT_FILE) only
#   python-capath   in-process, create_default_context(capath=$SSL_CERT_DIR) only
#   curl            --cacert $SSL_CERT_FILE --capath $SSL_CERT_DIR (Debian's curl would also load
#                   its compiled-in bundle otherwise)
#   s_client        openssl s_client -CAfile ... -CApath ... -verify_return_error
#   s_client-capath openssl s_client -no-CAfile -no-CAstore -CApath $SSL_CERT_DIR
#   wget            GnuTLS; --ca-certificate ... --ca-directory ... (reads every file of the dir)
#   uv              0.13.9, UV_SYSTEM_CERTS=1: rustls-native-certs 0.8, reads every file
#
# KNOWN lists every verdict that is not OK, as measured on this machine (OpenSSL 3.0.19,
# GnuTLS wget 1.21, uv 0.13.9), root and nobody alike. Where a client is not robust (outside the
# scenario's expected set) the entry says why.

CLIENTS = (
    "python",
    "python-cafile",
    "python-capath",
    "curl",
    "s_client",
    "s_client-capath",
    "wget",
    "uv",
)

R, F, C, H = Verdict.REJECTED, Verdict.FAILED, Verdict.CRASHED, Verdict.HUNG
CAPATH_ONLY_LOST_CA = {"python-capath": R, "s_client-capath": R}
# OpenSSL's file loader (X509_load_cert_crl_file) fails as a whole when the file cannot be read
# or holds one bad block, and curl / s_client then exit ("error setting certificate file")
# instead of going on with the healthy cert dir: FAILED, where python's default paths (which
# ignore load errors) connect.
FILE_LOAD_ABORTS = {"curl": F, "s_client": F}
# python's load_verify_locations(cafile=...) raises the OSError itself (FileNotFoundError,
# PermissionError, IsADirectoryError): a client passing $SSL_CERT_FILE as cafile crashes with
# a traceback (httpx and requests do exactly this with their bundle variables).
CAFILE_OSERROR = {"python-cafile": C}
# The broken variable was the only source (shadow of an env fault): a clean refusal.
ONLY_SOURCE_GONE = {
    "python": R,
    "python-capath": R,
    "s_client-capath": R,
    "wget": R,
    "uv": R,
    **FILE_LOAD_ABORTS,
}

KNOWN: dict[tuple[str, str], dict[str, Verdict]] = {
    **{
        (name, "shadow"): CAPATH_ONLY_LOST_CA
        for name in (
            "unreadable-file",
            "unreadable-dir",
            "dangling-symlink",
            "symlink-loop",
            "empty-file",
            "garbage-file",
            "truncated-pem",
            "der-file",
            "private-key-file",
            # OpenSSL's PEM reader does not find the block behind 64 MiB of NULs; uv does.
            "huge-file",
        )
    },
    # OpenSSL opens the shadow slot with a blocking fopen(): a capath-only OpenSSL client
    # hangs on a FIFO (not robust). uv and wget skip non-regular files.
    ("fifo", "shadow"): {"python-capath": H, "s_client-capath": H},
    # CA:FALSE under the CA's name and key: OpenSSL and GnuTLS pick it and refuse the chain
    # ("invalid CA certificate" / "signer was not a CA"); uv finds the real CA.
    ("non-ca-cert", "shadow"): {"python-capath": R, "s_client-capath": R, "wget": R},
    ("garbage-in-bundle", "decoy"): {**FILE_LOAD_ABORTS, "python-cafile": F},
    ("garbage-in-bundle", "shadow"): {**FILE_LOAD_ABORTS, "python-cafile": F},
    ("unreadable-bundle", "decoy"): {**FILE_LOAD_ABORTS, **CAFILE_OSERROR},
    ("unreadable-bundle", "shadow"): {**ONLY_SOURCE_GONE, **CAFILE_OSERROR},
    ("missing-file-env", "decoy"): {**FILE_LOAD_ABORTS, **CAFILE_OSERROR},
    ("missing-file-env", "shadow"): {**ONLY_SOURCE_GONE, **CAFILE_OSERROR},
    ("dir-as-file", "decoy"): {**FILE_LOAD_ABORTS, **CAFILE_OSERROR},
    ("dir-as-file", "shadow"): {**ONLY_SOURCE_GONE, **CAFILE_OSERROR},
    # s_client refuses a -CApath that does not exist before connecting (usage error).
    ("missing-dir-env", "decoy"): {"python-capath": R, "s_client": F, "s_client-capath": F},
    ("missing-dir-env", "shadow"): {
        **ONLY_SOURCE_GONE,
        "s_client-capath": F,
        "python-cafile": F,  # the empty file: "no certificate or crl found"
    },
}


def known_verdict(name: str, placement: str, client: str) -> Verdict:
    return KNOWN.get((name, placement), {}).get(client, Verdict.OK)


def _urlopen(url: str, ctx: ssl.SSLContext) -> bytes:
    with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
        data: bytes = r.read()
        return data


def run_client(env: TLSEnv, client: str, uv: str | None = None, timeout: float = 10) -> Outcome:
    """One client of :data:`CLIENTS` against the origin, with the store's variables."""
    cafile = env.environ.get("SSL_CERT_FILE")
    capath = env.environ.get("SSL_CERT_DIR")
    url = env.origin.url
    if client == "python":
        return env.call(lambda: _urlopen(url, ssl.create_default_context()), timeout=timeout)
    if client == "python-cafile":
        return env.call(
            lambda: _urlopen(url, ssl.create_default_context(cafile=cafile)), timeout=timeout
        )
    if client == "python-capath":
        return env.call(
            lambda: _urlopen(url, ssl.create_default_context(capath=capath)), timeout=timeout
        )
    if client == "curl":
        return env.run(
            [
                "curl",
                "-fsS",
                "--max-time",
                "5",
                "--cacert",
                str(cafile),
                "--capath",
                str(capath),
                url,
            ],
            timeout=timeout,
        )
    if client in ("s_client", "s_client-capath"):
        trust = (
            f"-CAfile '{cafile}' -CApath '{capath}'"
            if client == "s_client"
            else f"-no-CAfile -no-CAstore -CApath '{capath}'"
        )
        request = r"GET / HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        script = (
            f"printf '{request}' | openssl s_client -quiet -no_ign_eof -verify_return_error "
            f"-verify_hostname localhost -servername localhost "
            f"-connect localhost:{env.origin.port} {trust}"
        )
        return env.run(["sh", "-c", script], timeout=timeout)
    if client == "wget":
        return env.run(
            [
                "wget",
                "-nv",
                "-O-",
                "--timeout=5",
                "--tries=1",
                f"--ca-certificate={cafile}",
                f"--ca-directory={capath}",
                url,
            ],
            timeout=timeout,
        )
    assert client == "uv", client
    assert uv is not None
    return env.run(
        uv_pip_install_argv(env, uv),
        env={"UV_SYSTEM_CERTS": "1"},
        timeout=timeout,
    )


# uv 0.13.9 names the broken entry in a warning for these (it skips the others silently).
UV_WARNS = {
    "unreadable-file",
    "unreadable-dir",
    "symlink-loop",
    "truncated-pem",
    "unreadable-bundle",
    "missing-file-env",
    "missing-dir-env",
    "dir-as-file",
}


# GnuTLS (wget) reads every file of --ca-directory in the order the directory lists them, and
# which of the two certificates under the CA's name it then verifies with depends on that
# order: measured REJECTED with ext4's (hash) order on this machine, OK with tmpfs's (newest
# entry first), both in the scenario's expected set.
ORDER_DEPENDENT = {("non-ca-cert", "shadow", "wget"): (Verdict.OK, Verdict.REJECTED)}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("placement", ["decoy", "shadow"])
@pytest.mark.parametrize("name", DESIGN_STORE_FAULTS)
def test_client_verdict(make_tlsenv, uv_pinned, name: str, placement: str, client: str) -> None:  # type: ignore[no-untyped-def]
    known = known_verdict(name, placement, client)
    # Hangs come back HUNG at a short timeout; everything else finishes well within it.
    timeout = 2 if known is Verdict.HUNG else 10
    uv = uv_pinned("0.13.9") if client == "uv" else None
    env: TLSEnv = make_tlsenv(scenario=name, placement=placement)
    out = run_client(env, client, uv, timeout=timeout)
    out.assert_verdict(*ORDER_DEPENDENT.get((name, placement, client), (known,)))
    robust = known in env.scenario.expected
    # The table marks every non-robust verdict with a reason; keep the two in step.
    assert robust or (name, placement) in KNOWN
    if client == "uv" and name in UV_WARNS:
        assert "warning: " in out.stderr
        if name != "truncated-pem":  # "missing section end marker", no path
            assert str(env.applied[0].paths[0]) in out.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_client_healthy_store_control(make_tlsenv, uv_pinned, client: str) -> None:  # type: ignore[no-untyped-def]
    # The control: every client connects in the healthy store, so each non-OK above is the
    # fault's doing.
    uv = uv_pinned("0.13.9") if client == "uv" else None
    run_client(make_tlsenv(), client, uv).assert_ok()


def test_untrusted_origin_is_rejected_by_every_openssl_client(make_tlsenv) -> None:  # type: ignore[no-untyped-def]
    # The negative twin of the control: with a store that does not hold the origin's CA (the
    # empty places of a shadowed env fault), every client refuses for a trust reason.
    env: TLSEnv = make_tlsenv(scenario="missing-file-env", placement="shadow")
    for client in ("python", "python-capath", "wget"):
        run_client(env, client).assert_rejected()


# -- the shell lines redo the fault (reproduction bundles are built from them) ---------------


def _shape(root: Path, *, sizes: bool) -> list[tuple[str, str, int, int, str, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            size = st.st_size if sizes and stat.S_ISREG(st.st_mode) else 0
            rel = str(path.relative_to(root))
            out.append((rel, oct(kind), stat.S_IMODE(st.st_mode), st.st_uid, target, size))
    return sorted(out)


def _open_up(root: Path) -> None:
    """Undo what the shell lines did to owners and modes, so the tree can go."""
    uid, gid = os.geteuid(), os.getegid()
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        for name in dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                if uid == 0:
                    os.chown(path, uid, gid)
                os.chmod(path, 0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                if uid == 0:
                    os.chown(path, uid, gid)
                os.chmod(path, 0o644)


@pytest.mark.parametrize("placement", ["decoy", "shadow"])
@pytest.mark.parametrize("name", DESIGN_STORE_FAULTS)
def test_shell_lines_redo_the_fault(  # type: ignore[no-untyped-def]
    make_tlsenv, tlsenv_pki: PKI, tmp_path: Path, name: str, placement: str
) -> None:
    from pytest_tlsenv.store import TrustStore

    env: TLSEnv = make_tlsenv(scenario=name, placement=placement)
    (applied,) = env.applied
    # A fresh healthy store, then the fault's shell lines, with $CERTS holding the CAs.
    certs = tmp_path / "certs"
    certs.mkdir()
    for authority in (tlsenv_pki.authorities["trusted"], tlsenv_pki.decoy(0)):
        (certs / f"{authority.label}.pem").write_bytes(authority.cert_pem)
    twin = TrustStore.create(tmp_path / "store", env.store.layout.name)
    twin.install(tlsenv_pki.authorities["trusted"])
    twin.write_bundle()
    script = "set -e\n" + "\n".join(applied.shell) + "\n"
    try:
        done = subprocess.run(
            ["sh", "-c", script],
            env={"PATH": "/usr/bin:/bin", "STORE": str(twin.root), "CERTS": str(certs)},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # The same tree: paths, kinds, modes, owners, link targets, and sizes (a fresh
        # throwaway key may differ in size by a byte or two).
        sizes = name != "private-key-file"
        assert _shape(twin.root, sizes=sizes) == _shape(env.store.root, sizes=sizes)
    finally:
        _open_up(twin.root)
        for fifo in twin.root.rglob("tlsenv-fifo.pem"):
            fifo.unlink()


def test_store_close_hooks_run_newest_first_and_all_run(tmp_path: Path) -> None:
    from pytest_tlsenv.store import TrustStore

    store = TrustStore.create(tmp_path / "store")
    ran: list[str] = []

    def boom() -> None:
        ran.append("boom")
        raise OSError("hook failed")

    store.on_close(lambda: ran.append("first"))
    store.on_close(boom)
    store.on_close(lambda: ran.append("last"))
    with pytest.raises(OSError, match="hook failed"):
        store.close()
    assert ran == ["last", "boom", "first"]
    store.close()  # idempotent: the hooks ran once
    assert ran == ["last", "boom", "first"]
