"""A fact that slips into the queue after the worker stopped is counted, not stranded."""

from __future__ import annotations

import logging

import pytest

from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry.testing import InMemorySink
from tests.test_client import hook_run


def _late_put(client: Telemetry) -> None:
    """What track_fact's lock-free path does for a thread that passed its route check
    just before shutdown() and was descheduled until the worker had stopped."""
    next(client._accepted)
    client._queue.put(hook_run("late"))


def test_a_fact_queued_after_the_worker_stopped_counts_as_dropped_after_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Telemetry(load_settings(strict=False), sink=InMemorySink())
    client.track_fact(hook_run("on time"))
    assert client.shutdown(timeout=5) is True
    _late_put(client)

    stats = client.stats()
    assert stats.facts_accepted == 1
    assert stats.facts_dropped["after_shutdown"] == 1
    assert stats.events_exported == 1
    # Every fact in exactly one bucket: 2 tracked, 1 accepted, 1 dropped after shutdown.
    assert stats.facts_accepted + sum(stats.facts_dropped.values()) == 2
    assert client.stats() == stats  # counted once, however often stats are read
    with caplog.at_level(logging.WARNING, logger="codex_telemetry"):
        client._at_exit()
    assert not [r for r in caplog.records if "not processed" in r.getMessage()]
