"""The Java client: its source (``java/TlsenvGet.java``, shipped in the package), compiled
once per JDK into the client cache, and the JVM's trust properties.

Compiling costs seconds (javac is a JVM too), so it happens once per JDK version and source,
under a file lock (pytest-xdist workers share the cache), into a temporary directory renamed
into place. Each scenario gets its own copy of the one class file under its root, so a client
run as another ``user`` can read it even when the cache lives in a home directory nobody
else may enter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from functools import cache
from pathlib import Path

from filelock import FileLock

from ..errors import ClientUnavailableError
from ..versions import version_of
from .pinning import cache_dir

__all__ = [
    "JVM_OPTIONS",
    "SOURCE",
    "java_class_dir",
    "java_system_keystore",
]

#: The client's source, shipped with the package.
SOURCE = Path(__file__).with_name("java") / "TlsenvGet.java"
_CLASS = "TlsenvGet.class"

#: Options for a short-lived client: the quickest JIT tier, the serial collector, and no
#: /tmp/hsperfdata_USER file (a world-writable place we would leave something in).
JVM_OPTIONS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData")

_lock = threading.Lock()


def _key() -> str:
    """The cache key: the JDK's version line and the source's digest."""
    javac = version_of("javac", "-version") or "javac-unknown"
    return hashlib.sha256(SOURCE.read_bytes() + javac.encode()).hexdigest()[:16]


def compiled() -> Path:
    """The directory holding the compiled client in the cache, compiling it the first time
    (once per JDK and source, whatever the number of workers)."""
    base = cache_dir() / "java"
    base.mkdir(mode=0o755, exist_ok=True)
    target = base / f"tlsenv-get-{_key()}"
    with _lock:
        if (target / _CLASS).is_file():
            return target
        with FileLock(str(base / ".lock")):
            if (target / _CLASS).is_file():
                return target
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
            try:
                argv = ["javac", "-d", str(tmp), str(SOURCE)]
                # A clean environment: JAVA_TOOL_OPTIONS and friends would change javac.
                env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}
                try:
                    out = subprocess.run(
                        argv, capture_output=True, text=True, env=env, timeout=300, check=False
                    )
                except (OSError, subprocess.TimeoutExpired) as e:
                    raise ClientUnavailableError(f"java: cannot compile its client: {e}") from e
                if out.returncode != 0:
                    raise ClientUnavailableError(
                        f"java: javac failed on {SOURCE} (exit {out.returncode}): "
                        f"{out.stderr.strip()[-2000:]}"
                    )
                os.chmod(tmp, 0o755)
                os.rename(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def java_class_dir(root: Path) -> Path:
    """A copy of the compiled client under a scenario's ``root`` (its class path)."""
    staged = root / "java-client"
    if not (staged / _CLASS).is_file():
        staged.mkdir(mode=0o755, exist_ok=True)
        shutil.copyfile(compiled() / _CLASS, staged / _CLASS)
        os.chmod(staged / _CLASS, 0o644)
    return staged


@cache
def java_system_keystore() -> tuple[str, ...]:
    """The keystore the JDK on the PATH reads with no property set: its
    ``lib/security/cacerts``, resolved (Debian's is a link to /etc/ssl/certs/java/cacerts;
    a JDK with its own file there reads no system path at all)."""
    java = shutil.which("java")
    if java is None:
        return ()
    home = Path(os.path.realpath(java)).parent.parent
    return (os.path.realpath(home / "lib" / "security" / "cacerts"),)
