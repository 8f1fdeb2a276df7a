"""The origin's package index as pip and uv see it: the probe as a wheel and as an sdist whose
build backend is another package on the same index, so building from source fetches a build
dependency through the scenario's trust and proxy like any other download."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable

import pytest

from pytest_tlsenv import TLSEnv
from pytest_tlsenv.errors import ClientUnavailableError
from pytest_tlsenv.servers import backend_wheel, probe_sdist, probe_wheel

pytestmark = pytest.mark.nonroot

Maker = Callable[..., TLSEnv]
SDIST, _ = probe_sdist()
BACKEND, _ = backend_wheel()
WHEEL, _ = probe_wheel()


def _paths(env: TLSEnv) -> set[str]:
    return {r.path.rsplit("/", 1)[-1] for r in env.origin.received}


def _from_source(env: TLSEnv, client: str) -> tuple[list[str], dict[str, str | None]]:
    try:
        ready = env.client(client, version="0.13.9" if client == "uv" else None)
    except ClientUnavailableError as e:
        pytest.skip(str(e))
    argv = list(ready.argv)
    at = argv.index("--index-url")
    # Only the probe from source: pip hands --no-binary on to the build environment's install,
    # where ":all:" would exclude the backend's wheel as well.
    return [*argv[:at], "--no-binary", "tlsenv-probe", *argv[at:]], dict(ready.env)


def test_the_sdist_and_the_backend_are_reproducible_packages() -> None:
    name, data = probe_sdist()
    assert name == "tlsenv_probe-0.1.tar.gz"
    assert probe_sdist()[1] == data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        pyproject = tar.extractfile("tlsenv_probe-0.1/pyproject.toml")
        assert pyproject is not None
        text = pyproject.read().decode()
    assert "tlsenv_probe-0.1/PKG-INFO" in names
    assert 'requires = ["tlsenv-backend"]' in text
    assert 'build-backend = "tlsenv_backend"' in text
    with zipfile.ZipFile(io.BytesIO(backend_wheel()[1])) as zf:
        assert "def build_wheel(" in zf.read("tlsenv_backend.py").decode()


@pytest.mark.parametrize("client", ["pip", "uv"])
def test_no_binary_builds_the_sdist_with_a_backend_from_the_index(
    make_tlsenv: Maker, client: str
) -> None:
    env = make_tlsenv("good")
    argv, environ = _from_source(env, client)
    out = env.run(argv, env=environ)
    out.assert_ok()
    got = _paths(env)
    assert SDIST in got, got
    assert BACKEND in got, f"the build dependency was not fetched from the index: {got}"
    if client == "pip":
        # (uv reads the wheel's metadata while it resolves, then builds the sdist anyway.)
        assert WHEEL not in got


@pytest.mark.parametrize("client", ["pip", "uv"])
def test_twin_a_binary_install_takes_the_wheel_and_no_backend(
    make_tlsenv: Maker, client: str
) -> None:
    env = make_tlsenv("good")
    try:
        ready = env.client(client, version="0.13.9" if client == "uv" else None)
    except ClientUnavailableError as e:
        pytest.skip(str(e))
    ready.run().assert_ok()
    got = _paths(env)
    assert WHEEL in got
    assert SDIST not in got
    assert BACKEND not in got


def test_the_build_dependency_goes_through_the_proxy(make_tlsenv: Maker) -> None:
    env = make_tlsenv(proxy="mitm-trusted")
    argv, environ = _from_source(env, "pip")
    env.run(argv, env=environ).assert_ok()
    assert env.proxy is not None
    backend = [r for r in env.origin.received if r.path.endswith(BACKEND)]
    assert backend, _paths(env)
    # The proxy read the backend's request in the tunnel it intercepted: it went that way.
    seen = b"".join(leak.data for leak in env.proxy.intercepted)
    assert f"/files/{BACKEND}".encode() in seen


def test_a_build_dependency_refused_is_a_refusal_of_the_install(make_tlsenv: Maker) -> None:
    # The backend is fetched like the sdist: an untrusted origin refuses both, and pip says
    # so (no build from a half-fetched set).
    env = make_tlsenv(server="untrusted-root")
    argv, environ = _from_source(env, "pip")
    out = env.run(argv, env=environ)
    assert out.verdict.name == "REJECTED", out.reason
    assert BACKEND not in _paths(env)
