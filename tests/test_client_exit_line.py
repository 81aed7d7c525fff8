"""The exit line speaks of undelivered events only when there are some."""

from __future__ import annotations

import logging
import threading

import pytest

from codex_telemetry._client import Telemetry
from codex_telemetry._reducer import AnalyticsReducer
from codex_telemetry._runtime import current_runtime
from codex_telemetry._settings import load_settings
from codex_telemetry.events import AnalyticsEvent
from codex_telemetry.facts import Fact, HookRun
from codex_telemetry.testing import InMemorySink
from tests.test_client import hook_run

_release = threading.Event()
_entered = threading.Event()


class _SlowReducer(AnalyticsReducer):
    def ingest(self, fact: Fact) -> list[AnalyticsEvent]:
        if isinstance(fact, HookRun) and fact.tracking.turn_id == "slow":
            _entered.set()
            _release.wait(30)
        return super().ingest(fact)


def test_facts_left_unreduced_at_exit_are_not_reported_as_zero_undelivered_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Telemetry(
        load_settings(shutdown_timeout=0.2),
        sink=InMemorySink(),
        reducer_factory=lambda: _SlowReducer(runtime=current_runtime("0.1.0")),
    )
    try:
        client.track_fact(hook_run("fast"))
        client.track_fact(hook_run("slow"))
        client.track_fact(hook_run("waiting"))
        assert _entered.wait(10)
        with caplog.at_level(logging.WARNING, logger="codex_telemetry"):
            client._at_exit()
        logged = [r.getMessage() for r in caplog.records if r.name == "codex_telemetry._telemetry"]
        assert logged == [
            "codex_telemetry: 1 facts were not processed before exit "
            "(shutdown_timeout 0.2 s reached); your program is unaffected"
        ]
    finally:
        _release.set()
