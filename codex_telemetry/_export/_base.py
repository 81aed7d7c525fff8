"""The seam between the SDK runtime and the sinks that deliver events."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from codex_telemetry._stats import Counter, ReasonCounter
from codex_telemetry.events import AnalyticsEvent

__all__ = ["DeliveryCounters", "EventSink", "LossContext"]


@dataclass(slots=True)
class LossContext:
    """What a sink's report of undelivered events says besides its own counts; set by
    the client that owns the counters."""

    destination: str = ""
    """Where the events were going (``the collector at http://...``); empty: unnamed."""
    facts_dropped: Callable[[], Mapping[str, int]] | None = None
    """The client's facts dropped before the queue, by reason."""


@dataclass(frozen=True, slots=True)
class DeliveryCounters:
    """What a sink reports back: events delivered, and events given up on by reason."""

    exported: Counter = field(default_factory=Counter)
    dropped: ReasonCounter = field(default_factory=ReasonCounter)
    context: LossContext = field(default_factory=LossContext)


class EventSink(Protocol):
    """Where the worker hands events.

    ``export`` is called from the SDK's single worker thread; it must not block on the
    network (hand the events to the sink's own batching and return). ``force_flush`` and
    ``shutdown`` wait at most ``timeout`` seconds and return True when everything handed
    over so far was delivered. No method raises: failures are counted in the sink's
    :class:`DeliveryCounters` and logged. ``shutdown`` is idempotent.
    """

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Take events produced at ``timestamp_ns`` (unix nanoseconds) for delivery."""
        ...

    def force_flush(self, timeout: float) -> bool:
        """Deliver what was handed over so far, waiting at most ``timeout`` seconds."""
        ...

    def shutdown(self, timeout: float) -> bool:
        """Flush, then release every resource; later calls do nothing."""
        ...
