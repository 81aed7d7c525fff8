"""Helpers for asserting on the events your own code produces, in your own tests.

With pytest the ``codex_telemetry_events`` fixture is available as soon as the package is
installed::

    def test_reports_the_skill(codex_telemetry_events):
        run_my_code()  # calls codex_telemetry.track_fact(...)
        assert codex_telemetry_events.event_types() == ["skill_invocation"]

Without pytest, use :func:`capture_events` as a context manager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from codex_telemetry import _client
from codex_telemetry._client import Telemetry
from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._settings import TelemetrySettings, load_settings
from codex_telemetry.events import AnalyticsEvent

__all__ = ["EventCapture", "InMemorySink", "capture_events"]


class InMemorySink:
    """A sink that keeps every event it is given, in order; safe from any thread.

    Each operation is one operation on a list, which the interpreter performs
    atomically, so the sink needs no lock (and none can be left held across a fork).
    """

    def __init__(self) -> None:
        self._events: list[AnalyticsEvent] = []
        self._timestamps: list[int] = []
        self.delivery = DeliveryCounters()
        """Counts every event as exported; read by the client's ``stats()``."""

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Keep ``events``."""
        self._events.extend(events)
        self._timestamps.extend([timestamp_ns] * len(events))
        self.delivery.exported.add(len(events))

    def force_flush(self, timeout: float) -> bool:
        """Nothing is ever pending."""
        return True

    def shutdown(self, timeout: float) -> bool:
        """Nothing to release; the events stay readable."""
        return True

    @property
    def events(self) -> list[AnalyticsEvent]:
        """A copy of the events delivered so far."""
        return list(self._events)

    @property
    def timestamps_ns(self) -> list[int]:
        """When each event of :attr:`events` was produced (unix nanoseconds)."""
        return list(self._timestamps)

    def dicts(self) -> list[dict[str, Any]]:
        """The events delivered so far, as their exact wire JSON objects."""
        return [event.to_dict() for event in self.events]

    def clear(self) -> None:
        """Forget every event delivered so far."""
        self._events.clear()
        self._timestamps.clear()


class _CaptureSettings(TelemetrySettings):
    # Captured tests must not depend on the developer's shell (DO_NOT_TRACK, .env, ...).
    _read_environment: ClassVar[bool] = False


class EventCapture:
    """What :func:`capture_events` yields: the client, its sink, and flushing readers."""

    def __init__(self, telemetry: Telemetry, sink: InMemorySink) -> None:
        self.telemetry = telemetry
        """The client installed as the default while the capture lasts."""
        self.sink = sink
        """The in-memory sink; read it directly to skip the flush."""

    @property
    def events(self) -> list[AnalyticsEvent]:
        """Every event produced so far (waits for the worker first)."""
        self.telemetry.flush(timeout=10.0)
        return self.sink.events

    def dicts(self) -> list[dict[str, Any]]:
        """Every event produced so far, as wire JSON objects (waits for the worker first)."""
        self.telemetry.flush(timeout=10.0)
        return self.sink.dicts()

    def event_types(self) -> list[str]:
        """The ``event_type`` of every event produced so far, in order."""
        return [event.event_type for event in self.events]

    def clear(self) -> None:
        """Forget the events produced so far (after letting the worker catch up)."""
        self.telemetry.flush(timeout=10.0)
        self.sink.clear()


@contextlib.contextmanager
def capture_events(**overrides: Any) -> Iterator[EventCapture]:
    """Install a client with an in-memory sink as the default for the ``with`` block.

    The GeneralAnalytics flag is on and ``strict`` is on unless ``overrides`` say
    otherwise; the environment and ``.env`` are ignored. On exit the client is shut down
    and the previous default client (if any) is put back.
    """
    settings = load_settings(
        _CaptureSettings, **{"general_analytics": True, "strict": True, **overrides}
    )
    sink = InMemorySink()
    telemetry = Telemetry(settings, sink=sink)
    previous = _client._swap_default(telemetry)
    try:
        yield EventCapture(telemetry, sink)
    finally:
        _client._swap_default(previous)
        telemetry.shutdown(timeout=10.0)
