"""What lower modules see of a :class:`~pytest_tlsenv.tlsenv.TLSEnv`: structural types.

An :class:`~pytest_tlsenv.outcome.Outcome` keeps the environment that made it (for its
failure text) and a :class:`~pytest_tlsenv.clients.Client` runs through one, but both sit
below ``tlsenv`` in the package's layers (docs/architecture.md): importing ``TLSEnv``, even
for a type hint, would point an arrow upwards. They name :class:`EnvView` instead, which
``TLSEnv`` satisfies structurally (mypy checks it wherever a TLSEnv is passed).

The outcome and verdict types are parameters because ``outcome`` defines them above this
module: ``EnvView[Outcome, Verdict]`` is a TLSEnv as outcome.py and clients use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .fallback import Overrides
    from .faults import Applied
    from .proxy import Proxy
    from .servers import Origin
    from .store import TrustStore

__all__ = ["EnvView", "ScenarioView"]

O_co = TypeVar("O_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)


class ScenarioView(Protocol[V_co]):
    """The parts of a :class:`~pytest_tlsenv.scenarios.Scenario` an Outcome shows."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def why(self) -> str: ...
    @property
    def expected(self) -> frozenset[V_co]: ...


class EnvView(Protocol[O_co, V_co]):
    """The parts of a TLSEnv that outcomes and client presets use."""

    @property
    def root(self) -> Path: ...
    @property
    def trust(self) -> str: ...
    @property
    def keeps_root(self) -> bool: ...
    @property
    def fallback(self) -> Overrides | None: ...
    @property
    def store(self) -> TrustStore: ...
    @property
    def origin(self) -> Origin: ...
    @property
    def proxy(self) -> Proxy | None: ...
    @property
    def proxy_name(self) -> str | None: ...
    @property
    def applied(self) -> list[Applied]: ...
    @property
    def scenario(self) -> ScenarioView[V_co]: ...

    def venv(self) -> str: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
        trust: str | None = None,
    ) -> O_co: ...

    def call(
        self,
        fn: Callable[[], Any],
        *,
        timeout: float | None = None,
        env: Mapping[str, str | None] | None = None,
        trust: str | None = None,
    ) -> O_co: ...
