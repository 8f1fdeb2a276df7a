"""The bundle's own PKI: the same CAs as a session's, fresh for each bundle."""

from __future__ import annotations

from pathlib import Path

from ..pki import ORIGIN_HOSTS, PKI, Authority, Leaf
from .common import BUNDLE_VALIDITY, now

__all__ = ["BundlePKI"]


class BundlePKI(PKI):
    """A fresh PKI for one bundle: the same CAs as a session's, valid for BUNDLE_VALIDITY."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._not_after = now() + BUNDLE_VALIDITY
        self.authorities = {
            label: Authority.create(label, not_after=self._not_after)
            for label in ("trusted", "mitm", "untrusted")
        }

    def decoy(self, n: int) -> Authority:
        with self._lock:
            while len(self._decoys) <= n:
                i = len(self._decoys)
                self._decoys.append(
                    Authority.create(
                        f"decoy-{i}", common_name=f"tlsenv decoy {i} CA", not_after=self._not_after
                    )
                )
            return self._decoys[n]

    @property
    def decoys(self) -> list[Authority]:
        return list(self._decoys)

    @property
    def origin_leaf(self) -> Leaf:
        with self._lock:
            if self._origin is None:
                self._origin = self.authorities["trusted"].issue(
                    ORIGIN_HOSTS, not_after=self._not_after
                )
            return self._origin
