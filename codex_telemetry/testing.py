"""Helpers for asserting on the events your own code produces, in your own tests.

With pytest the ``codex_telemetry_events`` fixture is available as soon as the package is
installed::

    def test_reports_the_skill(codex_telemetry_events):
        run_my_code()  # calls codex_telemetry.track_fact(...)
        assert codex_telemetry_events.event_types() == ["skill_invocation"]

Without pytest, use :func:`capture_events` as a context manager.

While a capture lasts, a call to :func:`codex_telemetry.init` by the code under test (an
app's ``main()``) keeps reporting to the capture: it builds a client with the app's
settings, but with the capture's in-memory sink, and never opens a file or a network
connection. ``capture_events(instrument=["openai_codex"])`` (with the fixture:
``@pytest.mark.codex_telemetry(instrument=["openai_codex"])``) captures what an
instrumentation derives too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from codex_telemetry import _client, _setup
from codex_telemetry._client import Telemetry
from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._settings import TelemetrySettings, load_settings
from codex_telemetry.events import AnalyticsEvent, WireEvent

__all__ = ["EventCapture", "InMemorySink", "capture_events"]


class InMemorySink:
    """A sink that keeps every event it is given, in order; safe from any thread.

    Each operation is one operation on a list, which the interpreter performs
    atomically, so the sink needs no lock (and none can be left held across a fork).
    """

    def __init__(self, *, share: InMemorySink | None = None) -> None:
        # ``share``: keep the events in that sink's lists (the clients of one capture
        # write to one place), counting only this sink's own deliveries.
        self._events: list[AnalyticsEvent] = [] if share is None else share._events
        self._timestamps: list[int] = [] if share is None else share._timestamps
        self.delivery = DeliveryCounters()
        """Counts every event as exported; read by the client's ``stats()``."""

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Keep ``events``; what ``before_send`` returned is kept as the typed event it
        still is (a :class:`~codex_telemetry.events.WireEvent` when it was reshaped)."""
        self._events.extend([_typed(event) for event in events])
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


def _typed(event: AnalyticsEvent) -> AnalyticsEvent:
    if type(event) is not WireEvent:
        return event
    from codex_telemetry._spool import event_from_wire  # noqa: PLC0415

    try:
        return event_from_wire(event.to_dict())
    except ValueError:
        return event


class _CaptureSettings(TelemetrySettings):
    # Captured tests must not depend on the developer's shell (DO_NOT_TRACK, .env, ...).
    _read_environment: ClassVar[bool] = False


class EventCapture:
    """What :func:`capture_events` yields: the client, its sink, and flushing readers."""

    def __init__(
        self,
        sink: InMemorySink,
        overrides: Mapping[str, Any],
        instrument: Sequence[str],
    ) -> None:
        self.sink = sink
        """The in-memory sink every client of the capture reports to; read it directly to
        skip the flush."""
        self._overrides = dict(overrides)
        self._instrument = tuple(instrument)
        self._clients: list[Telemetry] = []

    @property
    def telemetry(self) -> Telemetry:
        """The client reporting to the capture now: the capture's own, or the one the code
        under test made by calling ``init()``."""
        return self._clients[-1]

    def _new_client(self, app_overrides: Mapping[str, Any], instrument: Sequence[str]) -> Telemetry:
        """A client with the app's settings (then the capture's), reporting to the sink.

        The GeneralAnalytics flag and ``strict`` are on unless the app or the capture say
        otherwise; the capture's own overrides win over the app's. The export settings are
        checked but not used: the sink is the capture's.
        """
        names = tuple(dict.fromkeys((*self._instrument, *instrument)))
        _setup.check_instrumentation_names(names)
        settings = load_settings(
            _CaptureSettings,
            **{"general_analytics": True, "strict": True, **app_overrides, **self._overrides},
        )
        sink = self.sink if not self._clients else InMemorySink(share=self.sink)
        telemetry = Telemetry(settings, sink=sink)
        previous = _client._swap_default(telemetry)
        if self._clients and previous is self._clients[-1]:
            previous.shutdown(timeout=10.0)  # as init() does with the client it replaces
        self._clients.append(telemetry)
        if names and telemetry.enabled:
            telemetry._instrument(names)
        return telemetry

    def init(
        self,
        overrides: Mapping[str, Any],
        instrument: Sequence[str],
        logger_provider: object = None,
    ) -> Telemetry:
        """What ``codex_telemetry.init()`` does while this capture lasts (a
        ``logger_provider`` is an export destination: not used)."""
        return self._new_client(overrides, instrument)

    def _close(self) -> None:
        for telemetry in self._clients:
            telemetry.shutdown(timeout=10.0)

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

    def __repr__(self) -> str:
        count = len(self.sink.events)
        return (
            f"<EventCapture in memory: {count} event{'' if count == 1 else 's'}, "
            f"reported by {self.telemetry!r}>"
        )


@contextlib.contextmanager
def capture_events(*, instrument: Sequence[str] = (), **overrides: Any) -> Iterator[EventCapture]:
    """Install a client with an in-memory sink as the default for the ``with`` block.

    The GeneralAnalytics flag is on and ``strict`` is on unless ``overrides`` say
    otherwise; the environment and ``.env`` are ignored. ``instrument`` names
    instrumentations to switch on (``"openai_codex"``) for the block. A call to
    ``codex_telemetry.init()`` inside the block reports to the capture too (see
    :class:`EventCapture`). On exit every client of the capture is shut down and the
    previous default client (if any) is put back.
    """
    names = (instrument,) if isinstance(instrument, str) else tuple(instrument)
    capture = EventCapture(InMemorySink(), overrides, names)
    previous = _client._default
    outer = _client._capture
    try:
        capture._new_client({}, ())
        _client._capture = capture
        yield capture
    finally:
        _client._capture = outer
        _client._swap_default(previous)
        capture._close()
