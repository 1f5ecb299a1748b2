"""The loop ``serve`` runs Granian in: restart after a crash-loop exit, stop for good on a signal."""

from __future__ import annotations

import pytest

from trustyard.cli import supervise


class FakeServer:
    """Stands in for granian.server.Server: ``outcome`` says how its serve() ends."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.interrupt_signal = outcome == "signal"

    def serve(self) -> None:
        if self.outcome in ("crash loop", "signal"):
            raise SystemExit(1)  # what Granian's shutdown() does after either
        if self.outcome == "broken":
            raise RuntimeError("cannot load the certificate")


def run(outcomes: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(supervise, "FIRST_PAUSE", 0.0)
    started: list[str] = []

    def make() -> FakeServer:
        started.append(outcomes[len(started)])
        return FakeServer(started[-1])

    try:
        supervise.serve_supervised(make)
    except SystemExit:
        started.append("exit")
    except RuntimeError:
        started.append("raised")
    return started


def test_a_crash_loop_exit_starts_granian_again(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["crash loop", "crash loop", "stopped"], monkeypatch) == ["crash loop", "crash loop", "stopped"]


def test_a_signal_ends_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["crash loop", "signal", "never"], monkeypatch) == ["crash loop", "signal", "exit"]


def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["broken", "never"], monkeypatch) == ["broken", "raised"]
