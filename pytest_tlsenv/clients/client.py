"""A client made ready for one scenario, and running it there."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._types import EnvView
    from ..outcome import Outcome, Verdict

    # A TLSEnv as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView[Outcome, Verdict]

__all__ = ["Client"]


@dataclass(frozen=True)
class Client:
    """A client made ready for one TLSEnv: an argv (a CLI) or a callable (in-process).

    ``env`` holds the variables of its trust mode (``trust``): in ``env`` mode the ones users
    of that client set (REQUESTS_CA_BUNDLE for requests, which ignores SSL_CERT_FILE), the
    other trust variables unset. :meth:`run` runs it through ``tlsenv.run``/``tlsenv.call`` in
    that mode. ``label`` names the variant: ``curl`` (env), ``curl (system)``,
    ``curl --cacert`` (flags).
    """

    preset: str
    tlsenv: TLSEnv
    argv: tuple[str, ...] | None = None
    fn: Callable[[], Any] | None = None
    env: Mapping[str, str | None] = field(default_factory=dict)
    version: str | None = None
    trust: str = "env"
    label: str = ""

    def run(self, *, timeout: float | None = None) -> Outcome:
        """Run the client in its TLSEnv (in its trust mode) and return the Outcome."""
        if self.argv is not None:
            return self.tlsenv.run(list(self.argv), env=self.env, timeout=timeout, trust=self.trust)
        assert self.fn is not None
        return self.tlsenv.call(self.fn, env=self.env, timeout=timeout, trust=self.trust)
