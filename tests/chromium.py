"""Headless Chromium for the HTML report's tests and benchmark, driven over
``--remote-debugging-pipe`` (the DevTools protocol on fds 3 and 4: standard library only).

The browser never touches the network: every background service is off by flag, every host
name resolves to nothing, no proxy is used, and as root it runs in a fresh network namespace
(loopback only, down), so nothing but ``file:`` can load even if a flag were ignored.
:meth:`Browser.requests` lists every URL a page asked for, for the tests to check.

:func:`find` returns the browser or the reason there is none (the tests skip with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-headless-shell", "chromium-browser")

FLAGS = (
    "--headless=new",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-gpu",
    "--metrics-recording-only",
    "--no-pings",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
    "--hide-scrollbars",
    "--mute-audio",
)


def find() -> tuple[str | None, str]:
    """(path of a Chromium, "") or (None, why there is none)."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path is not None:
            return path, ""
    return None, (
        f"no Chromium on PATH (looked for {', '.join(CANDIDATES)}): apt-get install chromium "
        "(.ci/run does this as root)"
    )


class ChromiumError(RuntimeError):
    """The browser did not start or did not answer."""


class Browser:
    """One headless Chromium with its own profile directory; :meth:`close` ends it all."""

    def __init__(self, executable: str, *, width: int = 1280, height: int = 900) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="tlsenv-chromium-"))
        argv = [executable, *FLAGS, f"--user-data-dir={self.profile}"]
        argv.append(f"--window-size={width},{height}")
        if os.geteuid() == 0:
            # Root: Chromium's sandbox refuses to run as root; the namespace keeps it off the
            # network for real.
            argv.append("--no-sandbox")
            if shutil.which("unshare") is not None:
                argv = ["unshare", "--net", "--", *argv]
        self.argv = argv
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()
        self.events: list[dict[str, Any]] = []
        self._buf = b""
        self._n = 0

        def fds() -> None:  # in the child: its fds 3 (commands in) and 4 (answers out)
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        try:
            self.proc = subprocess.Popen(
                argv,
                pass_fds=(3, 4),
                preexec_fn=fds,  # only dup2 in the child: no lock is taken
                start_new_session=True,  # its own process group: close() ends every helper
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except BaseException:
            for fd in (to_r, from_w, self._to_w, self._from_r):
                os.close(fd)
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        os.close(to_r)
        os.close(from_w)
        try:
            self.call("Target.getTargets", timeout=30)
        except BaseException:
            self.close()
            raise

    # -- the protocol ---------------------------------------------------------------------------

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise ChromiumError(f"Chromium exited: {self._stderr_tail()}")
            self._buf += chunk
        message, _, self._buf = self._buf.partition(b"\0")
        data: dict[str, Any] = json.loads(message)
        return data

    def _stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        *,
        timeout: float = 20,
    ) -> dict[str, Any]:
        """Send one command; return its result (events seen meanwhile go to ``events``)."""
        self._n += 1
        message: dict[str, Any] = {"id": self._n, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._to_w, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            # It exited before reading a command (a browser that cannot start): say so, as
            # a read of its closed pipe would.
            self.proc.wait(timeout=10)
            raise ChromiumError(f"Chromium exited: {self._stderr_tail()}") from None
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._n:
                if "error" in answer:
                    raise ChromiumError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def wait_event(self, method: str, session: str, *, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event
            seen = len(self.events)
            self.events.append(self._read(deadline))

    # -- pages ----------------------------------------------------------------------------------

    def open(self, url: str) -> str:
        """A new tab showing ``url`` once loaded; returns its session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired", session)
        return session

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise ChromiumError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, session: str, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of ``selector``'s box."""
        box = self.evaluate(
            session,
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center', inline: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()",
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                session=session,
            )

    def requests(self, session: str) -> list[str]:
        """Every URL the page asked for (the Network domain's view)."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == session
        ]

    def console(self, session: str) -> list[str]:
        """What the page logged, CSP refusals included."""
        out = []
        for e in self.events:
            if e.get("sessionId") != session:
                continue
            if e.get("method") == "Log.entryAdded":
                out.append(str(e["params"]["entry"].get("text")))
            elif e.get("method") == "Runtime.consoleAPICalled":
                out.append(" ".join(str(a.get("value")) for a in e["params"]["args"]))
        return out

    def screenshot(self, session: str, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """End the browser and every process of its group; remove its profile."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(OSError):  # already gone: the kill below counts
                    os.write(self._to_w, b'{"id":0,"method":"Browser.close"}\0')
                # Wait for it to exit without reaping it: while the leader is a zombie its
                # group id stays ours, so the kill below reaches only its helpers.
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not os.waitid(
                    os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT
                ):
                    time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):  # no helper outlived the browser
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        finally:
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            for fd in (self._to_w, self._from_r):
                os.close(fd)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
