"""When a scenario does not apply to a client in a trust mode (its verdict would be n/a)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NotApplicableError
from .preset import Wiring

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._types import EnvView
    from ..outcome import Outcome, Verdict

    # A TLSEnv as seen from below it in the layers (_types.py).
    TLSEnv: TypeAlias = EnvView[Outcome, Verdict]

__all__ = ["applicable"]


def applicable(env: TLSEnv, wiring: Wiring, client: str) -> None:
    """Raise NotApplicableError when no fault of ``env`` reaches a source ``wiring`` reads.

    A scenario without faults (server, proxy) applies to every client; with faults, at least
    one of them must break something this client, in this mode, trusts.
    """
    if not env.applied:
        return
    variables = wiring.trust != "system"
    if any(a.reaches_any(set(wiring.sources), variables=variables) for a in env.applied):
        return
    faults = ", ".join(a.fault for a in env.applied)
    reads = " and ".join(sorted(wiring.sources)) or "nothing of the store"
    raise NotApplicableError(
        f"{faults} cannot reach {client} with trust={wiring.trust!r}: it reads only what "
        f"{reads} names there"
        + ("" if variables else " by its compiled-in paths, and no variable is set")
    )
