"""A subprocess started while another thread runs an in-process call starts from the user's
environment, not from the call's overlay (the survey runs both kinds at once)."""

from __future__ import annotations

import os
import threading

from pytest_tlsenv.env import ENVIRON_LOCK, Sandbox, build_environ, outer_environ, scrubbed


def test_outer_environ_is_the_users_while_a_call_changes_it(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SSL_CERT_FILE", "/the/users/bundle.pem")  # scrubbed by calls
    inside = threading.Event()
    leave = threading.Event()
    seen: dict[str, str] = {}

    def call() -> None:
        with ENVIRON_LOCK, scrubbed({"TLSENV_OVERLAY_MARK": "1"}):
            seen.update(os.environ)  # the twin: inside the block the overlay is real
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=call)
    worker.start()
    try:
        assert inside.wait(10)
        assert seen.get("TLSENV_OVERLAY_MARK") == "1"
        assert "SSL_CERT_FILE" not in seen
        outer = outer_environ()
        assert "TLSENV_OVERLAY_MARK" not in outer
        assert outer["SSL_CERT_FILE"] == "/the/users/bundle.pem"
        # A child's environment starts from that copy: even a variable it lets through
        # (passenv) is the user's, not the running call's.
        child = build_environ(
            sandbox=Sandbox(tmp_path), scenario={}, passenv=("TLSENV_OVERLAY_MARK",)
        )
        assert "TLSENV_OVERLAY_MARK" not in child
    finally:
        leave.set()
        worker.join(10)
    assert "TLSENV_OVERLAY_MARK" not in os.environ
    assert os.environ["SSL_CERT_FILE"] == "/the/users/bundle.pem"


def test_copies_never_fail_while_calls_come_and_go() -> None:
    # Many short calls on one thread; copies on another: no KeyError from a copy taken while
    # a call deletes the scrubbed names.
    stop = threading.Event()
    errors: list[BaseException] = []

    def calls() -> None:
        while not stop.is_set():
            with ENVIRON_LOCK, scrubbed({"TLSENV_OVERLAY_MARK": "1"}):
                pass

    worker = threading.Thread(target=calls)
    worker.start()
    try:
        for _ in range(2000):
            try:
                assert "TLSENV_OVERLAY_MARK" not in outer_environ()
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)
                break
    finally:
        stop.set()
        worker.join(10)
    assert errors == []
