"""flush() and shutdown() say False when an event handed to the sink was lost."""

from __future__ import annotations

from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry.testing import InMemorySink
from tests.test_client import _RaisingSink, hook_run


def test_flush_is_false_when_the_sink_raised_on_an_event_and_true_again_after() -> None:
    sink = _RaisingSink()
    client = Telemetry(load_settings(strict=False), sink=sink)
    try:
        client.track_fact(hook_run())
        assert client.flush(timeout=10) is False
        assert client.stats().events_dropped == {"sink_error": 1}
        # Nothing was lost since: the next flush is clean, as the export sinks' flushes are.
        assert client.flush(timeout=10) is True
    finally:
        assert client.shutdown(timeout=5) is False


def test_shutdown_is_true_when_every_event_reached_the_sink() -> None:
    client = Telemetry(load_settings(strict=False), sink=InMemorySink())
    client.track_fact(hook_run())
    assert client.shutdown(timeout=5) is True
