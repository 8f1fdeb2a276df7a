"""What a library preset does: one fetch per library, in process or in a pinned interpreter.

The same function serves both: in process it runs here (``TLSEnv.call``); pinned, its source
becomes a standalone script run by the pinned environment's interpreter
(:func:`fetch_script`), so the request is the same and only the library's version differs.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..outcome import exception_chain

__all__ = [
    "FETCHERS",
    "aiohttp_fetch",
    "fetch_script",
    "httpx_fetch",
    "library_of",
    "requests_fetch",
    "urllib3_fetch",
    "urllib_fetch",
]


def _context(cafile: str | None = None, capath: str | None = None) -> Any:
    """``ssl.create_default_context()``, or with explicit locations (the flags mode)."""
    import ssl

    if cafile is None and capath is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def urllib_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, context=_context(cafile, capath), timeout=10) as r:
        data: bytes = r.read()
        return data


def requests_fetch(url: str, verify: str | None = None) -> bytes:
    import requests

    with requests.Session() as s:
        r = s.get(url, timeout=10, verify=True if verify is None else verify)
        r.raise_for_status()
        return r.content


def httpx_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import httpx

    explicit = {"verify": _context(cafile, capath)} if cafile or capath else {}
    # trust_env: SSL_CERT_FILE/SSL_CERT_DIR, proxies.
    with httpx.Client(timeout=10, **explicit) as c:
        r = c.get(url)
        r.raise_for_status()
        return r.content


def urllib3_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import urllib3

    proxy = os.environ.get("HTTPS_PROXY")
    explicit: dict[str, Any] = {}
    if cafile is not None:
        explicit["ca_certs"] = cafile
    if capath is not None:
        explicit["ca_cert_dir"] = capath
    # urllib3 reads no proxy variable itself; the preset honours the scenario's proxy.
    with (
        urllib3.ProxyManager(proxy, **explicit) if proxy else urllib3.PoolManager(**explicit)
    ) as pool:
        r = pool.request("GET", url, timeout=10, retries=False)
        if r.status >= 400:
            raise urllib3.exceptions.HTTPError(f"HTTP {r.status}")
        return r.data


def aiohttp_fetch(url: str, cafile: str | None = None, capath: str | None = None) -> bytes:
    import asyncio

    import aiohttp

    # aiohttp builds its default SSL context once, at import, from the environment of that
    # moment: later SSL_CERT_FILE changes are invisible to it. An explicit context per request
    # measures what a fresh process would do.
    ctx = _context(cafile, capath)

    async def go() -> bytes:
        async with (
            aiohttp.ClientSession(trust_env=True) as s,
            s.get(url, ssl=ctx, timeout=aiohttp.ClientTimeout(total=10)) as r,
        ):
            r.raise_for_status()
            body: bytes = await r.read()
            return body

    return asyncio.run(go())


# The in-process fetchers, by preset: a pinned library preset runs the same function's source
# in the pinned environment's interpreter.
FETCHERS: dict[str, Callable[[str], bytes]] = {
    "requests": requests_fetch,
    "httpx": httpx_fetch,
    "urllib3": urllib3_fetch,
    "aiohttp": aiohttp_fetch,
}

_FETCH_MARKER = "# pytest-tlsenv: pinned library fetch"

# Run as ``python -c SCRIPT LIBRARY URL``. First line on stderr: the library's own version, as
# the interpreter imported it (the evidence that the pin is what ran). Then the fetch; the
# body goes to stdout. A refusal or network failure is one line and exit 1, worded as the
# in-process verdicts decide (the exception chain); anything else escapes as a traceback.
_FETCH_MAIN = """
def _tlsenv_main():
    import importlib, socket, ssl, sys, urllib.error

    library, url = sys.argv[1], sys.argv[2]
    module = importlib.import_module(library)
    where = os.path.dirname(module.__file__ or "?")
    version = getattr(module, "__version__", "?")
    print(f"{library} {version} from {where} (python {sys.version.split()[0]})",
          file=sys.stderr, flush=True)
    try:
        body = _tlsenv_fetch(url)
    except Exception as exc:
        for e in exception_chain(exc):
            if isinstance(e, ssl.SSLCertVerificationError) or (
                isinstance(e, ssl.SSLError) and e.reason == "CERTIFICATE_VERIFY_FAILED"
            ):
                print(f"{type(e).__name__}: {e}", file=sys.stderr)
                sys.exit(1)
        network = (ssl.SSLError, ConnectionError, TimeoutError, socket.gaierror,
                   socket.herror, urllib.error.URLError, EOFError)
        modules = ("requests", "urllib3", "httpx", "httpcore", "aiohttp", "http.client")
        if isinstance(exc, network) or any(
            (c.__module__ or "").split(".")[0] in modules or c.__module__ in modules
            for c in type(exc).__mro__ if c.__module__ != "builtins"
        ):
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            sys.exit(1)
        raise
    sys.stdout.buffer.write(body)


_tlsenv_main()
"""


def fetch_script(fetch: Callable[[str], bytes]) -> str:
    """Source of a standalone script doing what ``fetch`` does (its own source, verbatim)."""
    return "\n".join(
        [
            _FETCH_MARKER,
            "import os",
            "from collections.abc import Iterator",
            "from typing import Any",
            inspect.getsource(_context),  # the fetchers' shared helper
            # The chain the in-process verdicts walk (outcome.py), the same code.
            inspect.getsource(exception_chain),
            inspect.getsource(fetch),
            f"_tlsenv_fetch = {fetch.__name__}",
            _FETCH_MAIN,
        ]
    )


def library_of(argv: Sequence[str]) -> str | None:
    """The library a pinned library preset's command runs (``requests``), else None."""
    if len(argv) >= 4 and argv[1] == "-c" and str(argv[2]).startswith(_FETCH_MARKER):
        return str(argv[3])
    return None
