"""A fact the worker could not be started for is still counted in exactly one bucket."""

from __future__ import annotations

import threading

import pytest

from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry.testing import InMemorySink
from tests.test_client import hook_run


class _NoNewThreads(threading.Thread):
    def start(self) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")


def test_a_fact_whose_worker_cannot_start_is_counted_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = Telemetry(load_settings(strict=False), sink=InMemorySink())
    monkeypatch.setattr(threading, "Thread", _NoNewThreads)
    client.track_fact(hook_run())
    stats = client.stats()
    assert stats.facts_accepted == 0
    assert stats.facts_dropped["no_worker"] == 1
    assert stats.internal_errors == 1
    monkeypatch.undo()
    assert client.shutdown(timeout=5) is True
