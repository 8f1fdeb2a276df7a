"""Every store fault bites: a process started by the runner gets the expected error on it.

DESIGN.md section 5, "Prove the fault bites": for each fault a plain tool (cat, ls, openssl)
launched by ``tlsenv.run`` in the same mode as a client (as root: without CAP_DAC_OVERRIDE /
CAP_DAC_READ_SEARCH; as non-root: itself) meets the expected error on the broken entry, and
the same tool on the healthy CA file next to it succeeds (the negative twin). The module is
marked ``nonroot``: CI runs it again as ``nobody``.

Also here: the fault table itself (every DESIGN.md name, shell lines, placement per kind) and
the FIFO release at teardown.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_tlsenv import CATALOGUE, FAULTS, GROUPS, PKI, TLSEnv, Verdict, resolve
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
