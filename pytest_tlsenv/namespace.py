"""System paths: show a scenario's trust store at /etc/ssl (and friends) to one client only.

Many clients never read SSL_CERT_FILE/SSL_CERT_DIR: wget with GnuTLS, rustls-native-certs
probing /etc/ssl/certs (uv 0.2.x with UV_NATIVE_TLS=1 and no variable set), Go's default
roots, Java's cacerts. With ``system_paths=True`` the client runs in a private mount
namespace in which the store's layout is bind-mounted over the real paths; the host never
changes, and the namespace (with its mounts) disappears with its last process.

How (the mechanics live in :mod:`pytest_tlsenv._nsexec`, a stdlib-only helper):

* **Which paths.** The layout's trust paths themselves: its cert dir, bundle, anchor dir,
  shared-certificate dir and aliases, minus those inside another one (Debian's bundle lives in
  /etc/ssl/certs). Never all of /etc/ssl: hiding /etc/ssl/openssl.cnf would silently change
  OpenSSL's defaults. A path the host has is bound over (file over file, dir over dir). A path
  the host lacks (/etc/pki on Debian, /usr/share/ca-certificates/tlsenv, Alpine's
  /etc/ssl/cert.pem) is *grafted*: its nearest existing parent gets a tmpfs with the parent's
  mode, every original entry of the parent is bound back into it (symlinks copied), and the
  missing entry is added, bound to the store. As non-root the grafted parent directory itself
  is then owned by the caller instead of root (the real owner is not mapped in a user
  namespace); its entries keep their real owners. The other places where Linux clients look
  for trust (:data:`SYSTEM_TRUST_PATHS`) that the layout does not define are *masked* by an
  empty directory or file, so no client falls back to the host's store.
* **Read-only host.** Whatever of the host a plan puts back under the client's view (the
  entries a graft binds back, the grafted tmpfs itself, the empty stand-ins of masks) is
  read-only there (MS_BIND, then MS_REMOUNT|MS_BIND|MS_RDONLY): a uid-0 client owns
  root-owned files, and must not write the host's through the namespace. The store's own
  binds stay as they are (the store is the scenario's, reachable at its own path anyway).
* **As root**: ``unshare(CLONE_NEWNS)``, ``mount --make-rprivate /``, the mounts, then every
  capability goes, all in :func:`~pytest_tlsenv.runner.run_process`'s throwaway thread (a
  thread may have a mount namespace of its own; pytest's other threads keep the host's). The
  thread first keeps only CAP_SYS_ADMIN, CAP_CHOWN and CAP_SETPCAP (and CAP_SETUID/CAP_SETGID
  for a user switch) and sets no_new_privs; after mounting it empties every set, bounding and
  ambient included, and forks the client into its namespace, so the client cannot unmount
  the store to see the host's, nor chmod a fault away. With ``user=`` the switch is
  ``Popen(user=...)``'s, as without system paths. No helper program runs.
* **As non-root**: a user namespace mapping only the caller's own uid and gid to themselves,
  plus the mount namespace; only a single-threaded process may unshare a user namespace, so
  the forked child does it before exec (``preexec_fn``: system calls only, the plan computed
  beforehand). It holds every capability *in that namespace* until it drops them all
  (bounding, ambient, effective, permitted, inheritable) before exec, so a chmod-000 file the
  caller owns stays unreadable. Files of unmapped owners (root's) show as the overflow uid
  (nobody) inside; their modes still apply.
* A setup that fails raises a :class:`~pytest_tlsenv.errors.TLSEnvError` naming the step:
  no client ran, so there is no verdict to give.
* ``call`` forks a child that does the same setup, drops the capabilities (as root only the
  DAC ones: the callable is the test author's own code, not contained; all of them as
  non-root), runs the callable and pickles its return value or exception back
  through a pipe (see :func:`call_in_namespace` for the caveats).

Availability is probed once per session with a real attempt (:func:`probe`). Where namespaces
are unavailable, ``system_paths=True`` raises :class:`SystemPathsUnavailableError` and never
falls back to the host store.
"""

from __future__ import annotations

import errno
import functools
import os
import pickle
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import _nsexec, _nsplan
from .errors import TLSEnvError
from .runner import InChild, InThread
from .store import TrustStore

__all__ = [
    "HELPER",
    "ForkResult",
    "MountPlan",
    "RemoteError",
    "SystemPathsUnavailableError",
    "call_in_namespace",
    "probe",
    "require",
]

HELPER = str(Path(_nsexec.__file__).resolve())


class SystemPathsUnavailableError(TLSEnvError, OSError):
    """``system_paths=True`` was asked for, but this machine cannot make mount namespaces."""


class RemoteError(Exception):
    """Stands for an exception raised in the namespace child that could not be pickled.

    ``remote_mro`` names the original's classes (``module.QualName``, most derived first),
    so a verdict can still tell a network library's error from a crash."""

    def __init__(self, message: str = "", remote_mro: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.remote_mro = tuple(remote_mro)

    def __reduce__(self) -> tuple[Any, tuple[str, tuple[str, ...]]]:
        return (type(self), (str(self), self.remote_mro))


# -- the plan -------------------------------------------------------------------------------


# Where Linux clients look for trust when no variable is set; see _nsplan.py.
SYSTEM_TRUST_PATHS = _nsplan.SYSTEM_TRUST_PATHS


@dataclass(frozen=True)
class MountPlan:
    """What to mount where, as data: words for the helper, lines for a person (``describe``).

    ``binds`` are ``(store path, host path)``; ``grafts`` are ``(host parent, stage dir,
    ((name, store path), ...))``; ``masks`` are host trust paths the layout does not define,
    hidden behind an empty directory or file of ``stage``.
    """

    binds: tuple[tuple[str, str], ...]
    grafts: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = ()
    stage: str = ""
    masks: tuple[str, ...] = ()

    @classmethod
    def for_store(cls, store: TrustStore, stage: Path) -> MountPlan:
        """The mounts that show ``store`` at the real paths of its layout.

        ``stage`` is a directory of ours (under the scenario root) for graft staging.
        """
        layout = store.layout
        rels = [layout.cert_dir, layout.bundle, layout.anchors, layout.shared, layout.keystore]
        rels += [alias for alias, _target in layout.aliases]
        try:
            binds, grafts, masks = _nsplan.plan([r for r in rels if r], str(store.root), str(stage))
        except _nsplan.PlanError as e:
            raise TLSEnvError(str(e)) from None
        masks = _nsplan.hidden_masks(list(layout.hidden), masks)
        return cls(binds=binds, grafts=grafts, stage=str(stage), masks=masks)

    @classmethod
    def for_names(cls, names: Sequence[str], stage: Path) -> MountPlan:
        """The mounts that keep name lookups on loopback, alone (see :meth:`with_names`)."""
        return cls(binds=(), stage=str(stage)).with_names(names)

    def with_names(self, names: Sequence[str]) -> MountPlan:
        """This plan plus a private /etc/hosts (``names`` on 127.0.0.1 and ::1, then the
        host's lines), an /etc/resolv.conf naming only ``nameserver 127.0.0.1``, and, where
        needed, ``hosts: files dns`` in nsswitch.conf and nscd hidden
        (:func:`pytest_tlsenv._nsplan.names_binds`): an invented name never reaches the
        machine's resolver."""
        staged = _nsplan.names_binds(tuple(names), os.path.join(self.stage, "names"))
        return replace(self, binds=self.binds + staged)

    @property
    def empty_dir(self) -> str:
        """What a masked directory shows (created by :meth:`prepare`)."""
        return _nsplan.empty_dir(self.stage)

    @property
    def empty_file(self) -> str:
        """What a masked file shows (created by :meth:`prepare`)."""
        return _nsplan.empty_file(self.stage)

    @property
    def host_paths(self) -> list[str]:
        """Every host path this plan changes the view of (for checks and messages)."""
        paths = [host for _src, host in self.binds]
        for parent, _stage, adds in self.grafts:
            paths += [os.path.join(parent, name) for name, _src in adds]
        return sorted(paths + list(self.masks))

    def prepare(self) -> None:
        """Create the (empty) staging directories; they stay empty as seen from outside."""
        _nsplan.prepare(self.grafts, self.masks, self.stage)

    def words(self, *, userns: bool, drop: str, switch: tuple[int, int] | None) -> list[str]:
        """The plan as the helper's words (``_nsexec.apply``): grafts first, then binds."""
        return _nsplan.words(
            self.binds, self.grafts, self.masks, self.stage, userns=userns, drop=drop, switch=switch
        )

    def describe(self) -> str:
        """One line per mount: ``bind SRC -> HOST``, ``graft HOST -> SRC``, ``mask HOST``."""
        lines = [f"bind {src} -> {host}" for src, host in self.binds]
        for parent, _stage, adds in self.grafts:
            lines += [f"graft {os.path.join(parent, n)} -> {src}" for n, src in adds]
        lines += [f"mask {host} (empty)" for host in self.masks]
        return "\n".join(lines)

    # -- launching ------------------------------------------------------------------------

    @property
    def launcher(self) -> InThread | InChild:
        """How ``run_process`` starts a client inside the namespace (its ``launcher`` hook).

        No helper interpreter either way (it cost about 20 ms per run: a bare interpreter
        start plus ctypes). As root, in the spawning thread itself (:meth:`enter_here`): a
        thread may unshare a mount namespace of its own, so the client is forked straight
        into it, and no Python code runs in a forked child. As non-root the namespace needs a
        user namespace, which only a single-threaded process may unshare: the forked child
        does it before exec (:class:`~pytest_tlsenv.runner.InChild`), with the plan's words
        computed and its staging directories created here, in the parent, so that the child
        only makes system calls. :meth:`helper_argv` is the route through the helper.
        """
        if os.geteuid() == 0:
            return InThread(self.enter_here)
        self.prepare()
        return InChild(functools.partial(_apply, self.words(userns=True, drop="all", switch=None)))

    def enter_here(self) -> None:
        """Unshare a mount namespace for *this thread* (root only) and mount the plan in it.

        Only this thread sees the mounts, and the children it forks; the process's other
        threads and the host keep theirs. Capabilities are left as they are: the caller
        (``run_process``'s throwaway thread) drops them all before it forks the client.
        """
        self.prepare()
        _apply(self.words(userns=False, drop="none", switch=None))

    def helper_argv(
        self, argv: Sequence[str], environ: Mapping[str, str], switch: tuple[int, int] | None
    ) -> list[str]:
        """The argv that runs ``argv`` inside the namespace through the helper interpreter.

        ``switch`` is the (uid, gid) to become after mounting (root only), or None.
        """
        self.prepare()
        # Popen would raise this in the caller; keep it so rather than an exit 127. (A name is
        # looked up only for this user: another one may have another view of the PATH.)
        if "/" in argv[0]:
            missing = not os.path.exists(argv[0])
        else:
            path = environ.get("PATH", os.defpath)
            missing = switch is None and shutil.which(argv[0], path=path) is None
        if missing:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
        userns = os.geteuid() != 0
        # Everything goes after mounting, root or not (run_process's thread left the helper
        # only what mounting and a user switch need).
        plan = self.words(userns=userns, drop="all", switch=switch)
        return [sys.executable, "-I", "-S", HELPER, *plan, "--", *argv]


def _apply(words: list[str]) -> None:
    """:func:`pytest_tlsenv._nsexec.apply`, its failures as a TLSEnvError naming the step."""
    try:
        _nsexec.apply(words)
    except (OSError, ValueError, IndexError) as e:
        raise TLSEnvError(f"system_paths: namespace setup failed: {e}") from None


# -- probing --------------------------------------------------------------------------------


@functools.cache
def probe() -> str | None:
    """Why system paths cannot work here, or None if they can (a real attempt, once).

    Runs the helper the way ``run`` will (from a thread that kept only what mounting needs):
    a private mount namespace (plus a user namespace as non-root), a bind mount and a tmpfs
    graft with its read-only remounts, then checks from inside that both are visible.
    """
    from .runner import run_process

    if sys.platform != "linux":
        return f"mount namespaces need Linux, this is {sys.platform}"
    with tempfile.TemporaryDirectory(prefix="tlsenv-probe-") as tmp:
        base = Path(tmp)
        (base / "store").mkdir()
        (base / "store" / "marker").write_text("tlsenv\n")
        (base / "host" / "certs").mkdir(parents=True)
        (base / "stage").mkdir()
        plan = MountPlan(
            binds=((str(base / "store"), str(base / "host" / "certs")),),
            grafts=((str(base / "host"), str(base / "stage"), (("added", str(base / "store")),)),),
        )
        check = f'test -f "{base}/host/certs/marker" && test -f "{base}/host/added/marker"'
        try:
            done = run_process(
                ["/bin/sh", "-c", check],
                environ={"PATH": "/usr/bin:/bin"},
                timeout=20.0,
                launcher=plan.launcher,
            )
        except TLSEnvError as e:  # the in-thread setup (root) says which step failed
            return f"cannot make a private mount namespace here: {e}"
        except OSError as e:
            return f"cannot start the namespace helper: {e}"
    if done.timed_out:
        return "the namespace probe did not finish within 20 s"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"cannot make a private mount namespace here (exit {done.returncode}): {tail}"
    return None


def require() -> None:
    """Raise :class:`SystemPathsUnavailableError` (with the probe's reason) if unavailable."""
    reason = probe()
    if reason is not None:
        raise SystemPathsUnavailableError(
            f"system_paths=True needs a private mount namespace, and {reason}. "
            + (
                ""
                if os.geteuid() == 0
                else "As non-root this takes unprivileged user namespaces "
                "(sysctl user.max_user_namespaces > 0, and kernel.unprivileged_userns_clone=1 "
                "or kernel.apparmor_restrict_unprivileged_userns=0 where those exist). "
            )
            + "The host store is never used instead: drop system_paths or run where "
            "namespaces work."
        )


# -- call: a forked child in the namespace --------------------------------------------------


@dataclass(frozen=True)
class ForkResult:
    """What a callable run by :func:`call_in_namespace` did."""

    value: Any
    exception: BaseException | None
    timed_out: bool
    duration: float


def _portable(exc: BaseException, depth: int = 0) -> dict[str, Any]:
    """``exc`` with its cause/context chain, each link pickled or replaced by its repr."""
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
    except Exception:  # noqa: BLE001 - anything pickle raises means "send the repr"
        mro = tuple(f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__)
        blob = pickle.dumps(RemoteError(f"{mro[0]}: {exc!r}", mro))
    node: dict[str, Any] = {
        "blob": blob,
        "tb": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False)),
        "suppress": exc.__suppress_context__,
    }
    if depth < 16:
        for link in ("__cause__", "__context__"):
            inner = getattr(exc, link)
            if inner is not None:
                node[link] = _portable(inner, depth + 1)
    return node


def _rebuild(node: dict[str, Any]) -> BaseException:
    exc: BaseException = pickle.loads(node["blob"])
    exc.add_note("raised in the system-paths namespace child:\n" + node["tb"].rstrip())
    if "__cause__" in node:
        exc.__cause__ = _rebuild(node["__cause__"])
    if "__context__" in node:
        exc.__context__ = _rebuild(node["__context__"])
    exc.__suppress_context__ = node["suppress"]
    return exc


def _payload(kind: str, obj: Any, duration: float) -> bytes:
    if kind == "exception":
        return pickle.dumps((kind, _portable(obj), duration))
    try:
        return pickle.dumps((kind, obj, duration))
    except Exception:  # noqa: BLE001 - an unpicklable value comes back as its repr
        return pickle.dumps((kind, repr(obj), duration))


def _child(fn: Callable[[], Any], plan: list[str], w: int) -> None:
    """The forked child: setup, call, report, ``_exit``. Never returns into pytest."""
    try:
        os.setpgid(0, 0)
        try:
            _nsexec.apply(plan)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            data = pickle.dumps(("setup", f"{type(e).__name__}: {e}", 0.0))
        else:
            start = time.perf_counter()
            try:
                value = fn()
            except BaseException as e:  # noqa: BLE001 - everything the client raises is evidence
                data = _payload("exception", e, time.perf_counter() - start)
            else:
                data = _payload("value", value, time.perf_counter() - start)
        frame = len(data).to_bytes(8, "big") + data
        while frame:
            frame = frame[os.write(w, frame) :]
    finally:
        os._exit(0)


def _read_frame(r: int, deadline: float) -> bytes | None:
    """The child's length-prefixed report, or None at the deadline; b"" if it died silently.

    Framed rather than read to EOF: a grandchild the client left behind may hold the pipe.
    """
    buf = b""
    need: int | None = None
    while need is None or len(buf) < need + 8:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            return None
        chunk = os.read(r, 1 << 16)
        if not chunk:
            return b""
        buf += chunk
        if need is None and len(buf) >= 8:
            need = int.from_bytes(buf[:8], "big")
    return buf[8 : 8 + need]


def call_in_namespace(
    fn: Callable[[], Any], plan: MountPlan, *, timeout: float, drop: str
) -> ForkResult:
    """Run ``fn`` in a forked child inside the namespace; bring back its value or exception.

    ``drop`` is the capability drop after mounting: ``dac`` (root: ``fn`` is the test
    author's own code and keeps every other capability, as in ``call`` without system paths;
    it is not contained) or ``all``. The child sees ``os.environ`` as it is
    now (``call`` scrubs it first), and ``fn`` as it is: a closure over objects of this process
    works, but effects on them stay in the child, and only the return value (pickled; its repr
    if it does not pickle) and the exception (pickled link by link with its cause/context
    chain, a :class:`RemoteError` carrying the repr where a link does not pickle, and the
    child's traceback as a note) come back. Output written to ``sys.stdout`` inside the child
    goes to the child's copy of pytest's capture and is lost; file-descriptor output is kept.

    Caveat: this forks a multi-threaded process (the origin's server threads run here). The
    child does nothing but the namespace setup and ``fn``; a lock another thread held at the
    fork (a logging handler, a lock of your own) stays held in the child, so ``fn`` must not
    need one. Python 3.12+ warns about exactly this (DeprecationWarning); the warning is
    silenced for this one fork, since the child never returns into the interpreter's normal
    shutdown. Trust loaded before the call (a module-level SSLContext, certifi caches) came
    from the host store, not the namespace.
    """
    userns = os.geteuid() != 0
    plan.prepare()
    words = plan.words(userns=userns, drop=drop, switch=None)
    r, w = os.pipe()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            os.close(r)
            _child(fn, words, w)
        os.close(w)
        w = -1
        frame = _read_frame(r, time.monotonic() + timeout)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)
    # The child's own group: whatever fn started goes too (the child itself, if it hung).
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # the child had not made its group yet
        os.kill(pid, signal.SIGKILL)
    _pid, status = os.waitpid(pid, 0)
    duration = time.perf_counter() - start
    if frame is None:
        return ForkResult(None, None, True, duration)
    if frame == b"":
        return ForkResult(
            None, RemoteError(f"the namespace child died without a report: {_status(status)}"),
            False, duration,
        )  # fmt: skip
    kind, obj, inner = pickle.loads(frame)
    if kind == "setup":
        raise TLSEnvError(f"system_paths: namespace setup failed in the call child: {obj}")
    if kind == "exception":
        return ForkResult(None, _rebuild(obj), False, inner)
    return ForkResult(obj, None, False, inner)


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.waitstatus_to_exitcode(status)}"
