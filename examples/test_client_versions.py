"""One client, every store scenario: run it under several versions and diff the verdicts.

The client under test is whatever version the tox env installed (uv, pip) or imports
(requests). A baseline recorded with one version (``--tlsenv-update-baseline``) turns a
regression in another into one failing line per scenario, e.g.::

    unreadable-file: OK -> CRASHED (baseline examples/baselines/uv.json)

Run: ``tox -e uv0228,uv0229`` (see tox.ini) or by hand with ``pytest -p tlsenv examples``.
"""

from __future__ import annotations

import os

import pytest

CLIENT = os.environ.get("TLSENV_EXAMPLE_CLIENT", "uv")


@pytest.mark.tlsenv_matrix("store")
def test_store_scenarios(tlsenv, request):  # type: ignore[no-untyped-def]
    out = tlsenv.client(CLIENT).run(timeout=10)
    if request.config.getoption("tlsenv_baseline"):
        # Bisecting: the assertion is the baseline. Every verdict must equal the reference
        # version's (the plugin fails the test with "scenario: OLD -> NEW (baseline PATH)").
        # The reference may itself crash somewhere (uv 0.2.28 panics on a missing
        # SSL_CERT_FILE): that is recorded, and only a *change* fails.
        return
    out.assert_graceful()  # without a baseline: no crash, no hang, no leak


@pytest.mark.tlsenv_matrix("proxy")
def test_interception(tlsenv):  # type: ignore[no-untyped-def]
    out = tlsenv.client(CLIENT).run(timeout=10)
    assert tlsenv.proxy is not None
    assert tlsenv.proxy.leaked == b"", "a client must never leak through an untrusted proxy"
    out.assert_graceful()
