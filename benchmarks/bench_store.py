"""Trust-store budgets: scenario materialisation and a 10,000-CA store.

1. Scenario materialisation: the store part of ``TLSEnv.build`` (CA and leaf cached, as in a
   session): create the layout, install the trusted CA (file, NAME.pem link, hash link,
   bundle), write the bundle, apply the scenario's faults. Median over many runs, on the
   pytest basetemp's file system and on tmpfs (/dev/shm) when there is one.
   Target <= 1 ms median; anchors 0.3 ms (tmpfs) / 0.7 ms (ext4) for CA + leaf + store + link.
2. A 10,000-CA store with hash links, generated and written (cold: filler CAs made in this
   process) and written again (warm: the session's fillers reused). Target <= 1.5 s. The hash
   links are counted and a sample checked against ``openssl x509 -subject_hash``.

    python benchmarks/bench_store.py [--quick]

Prints figures and ratios; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_tlsenv.faults import FAULTS, Site
from pytest_tlsenv.pki import PKI
from pytest_tlsenv.store import TrustStore, filler_cas

TARGET_MS = 1.0
ANCHOR_MS = {"tmpfs": 0.3, "ext4": 0.7}
BIG = 10_000
BIG_TARGET_S = 1.5


def _fs_type(path: Path) -> str:
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            _dev, mnt, fstype, *_ = line.split()
            if str(path).startswith(mnt) and len(mnt) > len(best):
                best, kind = mnt, fstype
    return kind


def materialise(root: Path, pki: PKI, faults: tuple[str, ...], placement: str) -> TrustStore:
    store = TrustStore.create(root, "debian")
    trusted = pki.authorities["trusted"]
    store.install(trusted)
    store.write_bundle()
    for n, name in enumerate(faults):
        FAULTS[name].apply(Site(store, placement, trusted, pki.decoy(n)))
    return store


FLOOR = "(bare syscalls)"


def _floor(root: Path) -> float:
    """The same inodes as a healthy debian store, made with bare os calls: the disk's floor."""
    start = time.perf_counter()
    os.mkdir(root)
    for rel in ("etc", "etc/ssl", "etc/ssl/certs", "usr", "usr/local", "usr/local/share"):
        os.mkdir(f"{root}/{rel}")
    for rel in ("usr/local/share/ca-certificates", "usr/share", "usr/share/ca-certificates"):
        os.mkdir(f"{root}/{rel}")
    os.mkdir(f"{root}/usr/share/ca-certificates/tlsenv")
    for rel in ("usr/share/ca-certificates/tlsenv/a.crt", "etc/ssl/certs/ca-certificates.crt"):
        with open(f"{root}/{rel}", "wb") as f:
            f.write(b"x" * 700)
    os.symlink("x", f"{root}/etc/ssl/certs/a.pem")
    os.symlink("a.pem", f"{root}/etc/ssl/certs/12345678.0")
    elapsed = time.perf_counter() - start
    shutil.rmtree(root)
    return elapsed


def bench_scenarios(base: Path, pki: PKI, runs: int) -> dict[str, float]:
    cases: dict[str, tuple[str, ...]] = {"healthy": (), "unreadable-file": ("unreadable-file",)}
    cases.update({name: (name,) for name in FAULTS if name not in cases})
    times: dict[str, list[float]] = {label: [] for label in cases}
    times[FLOOR] = []
    # Round-robin over the cases, so that a burst of disk load from elsewhere (a shared
    # machine) spreads over all of them instead of landing on a few.
    for i in range(runs):
        for label, faults in cases.items():
            root = base / f"{label}-{i}"
            start = time.perf_counter()
            store = materialise(root, pki, faults, "decoy")
            times[label].append(time.perf_counter() - start)
            store.destroy()
        times[FLOOR].append(_floor(base / f"floor-{i}"))
    return {label: statistics.median(t) * 1000 for label, t in times.items()}


def bench_big(base: Path, pki: PKI, generation: float) -> None:
    root = base / "big"
    start = time.perf_counter()
    store = TrustStore.create(root, "debian")
    store.install(pki.authorities["trusted"])
    store.install_many(filler_cas(BIG))
    store.write_bundle()
    write = time.perf_counter() - start
    cold = generation + write
    cert_dir = store.cert_dir
    assert cert_dir is not None
    links = [n for n in os.listdir(cert_dir) if len(n) > 9 and n[8] == "."]
    resolved = sum(os.path.exists(cert_dir / n) for n in links)
    distinct = len({n[:8] for n in links})
    sample = random.Random(0).sample(links, 10)
    agree = 0
    for name in sample:
        got = subprocess.run(
            ["openssl", "x509", "-noout", "-subject_hash", "-in", str(cert_dir / name)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        agree += got == name[:8]
    print(
        f"  {BIG:,}-CA store: generated and written in {cold:.3f} s (generation "
        f"{generation:.3f} s, once per process, + writing {write:.3f} s); target "
        f"{BIG_TARGET_S} s -> {cold / BIG_TARGET_S:.2f}x of budget"
    )
    print(
        f"    hash links: {len(links):,} ({resolved:,} resolve, {distinct:,} distinct "
        f"hashes; openssl agrees on {agree}/{len(sample)} sampled); bundle "
        f"{store.bundle.stat().st_size / 1e6 if store.bundle else 0:.1f} MB"
    )
    assert len(links) == BIG + 1 == resolved == distinct
    assert agree == len(sample)
    start = time.perf_counter()
    store.destroy()
    print(
        f"    teardown (restore + rmtree, not in the budget): {time.perf_counter() - start:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (CI smoke)")
    args = parser.parse_args()
    runs = 30 if args.quick else 200

    places = [Path(tempfile.gettempdir())]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        places.append(Path("/dev/shm"))
    with tempfile.TemporaryDirectory() as pki_dir:
        pki = PKI(Path(pki_dir))
        pki.origin_leaf  # noqa: B018 - cached, as in a session
        start = time.perf_counter()
        filler_cas(BIG)
        generation = time.perf_counter() - start
        for place in places:
            base = Path(tempfile.mkdtemp(prefix="tlsenv-bench-", dir=place))
            try:
                fs = _fs_type(base)
                print(f"on {place} ({fs})")
                medians = bench_scenarios(base, pki, runs)
                anchor = ANCHOR_MS.get(fs)
                print(
                    f"  scenario materialisation (store part of TLSEnv.build; CA + leaf "
                    f"cached), median of {runs}:"
                )
                floor = medians.pop(FLOOR)
                print(
                    f"    {FLOOR}: {floor:.3f} ms for the 15 inodes of a healthy store; "
                    f"healthy / floor = {medians['healthy'] / floor:.2f}x"
                )
                for label, ms in medians.items():
                    ratio = f"{ms / anchor:.2f}x anchor {anchor} ms" if anchor else "no anchor"
                    print(
                        f"    {label:18} {ms:6.3f} ms  ({ms / TARGET_MS:.2f}x of the "
                        f"{TARGET_MS:g} ms target; {ratio})"
                    )
                if not args.quick or place == places[0]:  # quick: the basetemp's fs only
                    bench_big(base, pki, generation)
            finally:
                shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
