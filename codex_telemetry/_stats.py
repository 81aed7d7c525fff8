"""Counters behind ``Telemetry.stats()``: cheap to bump from any thread, read as a snapshot."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Counter", "ReasonCounter", "TelemetryStats", "count_value"]


class Counter:
    """A monotonic counter that loses no increment under concurrent use.

    ``next()`` on :func:`itertools.count` runs in C while holding the GIL, so it is
    atomic without a lock; this keeps the cost of counting on the caller's hot path to
    one C call.
    """

    __slots__ = ("_count",)

    def __init__(self) -> None:
        self._count = itertools.count()

    def increment(self) -> None:
        """Add one."""
        next(self._count)

    def add(self, amount: int) -> None:
        """Add ``amount`` (a non-negative integer)."""
        for _ in range(amount):
            next(self._count)

    @property
    def value(self) -> int:
        """The current count."""
        return count_value(self._count)


def count_value(count: itertools.count[int]) -> int:
    """How many times ``next()`` was called on ``count`` (started at 0, step 1).

    Read from its repr, ``count(N)``: ``__reduce__`` warns from Python 3.12 and is gone
    in 3.14, and under ``-W error`` a warning would raise into the caller of ``stats()``.
    """
    text = repr(count)
    return int(text[text.index("(") + 1 : -1])


class ReasonCounter:
    """Counts by reason (``"queue_full"``, ``"http_400"``, ...); safe from any thread.

    A watcher (:meth:`watch`) is told of every addition after it is counted: the client
    uses it to say, once, why events are being lost while it happens.
    """

    __slots__ = ("_counts", "_lock", "_watcher")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._watcher: Callable[[str, int], None] | None = None

    def add(self, reason: str, amount: int = 1) -> None:
        """Add ``amount`` under ``reason``."""
        if amount <= 0:
            return
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + amount
        watcher = self._watcher
        if watcher is not None:
            watcher(reason, amount)

    def watch(self, watcher: Callable[[str, int], None] | None) -> None:
        """Call ``watcher(reason, amount)`` after each addition (None: stop); it must not
        raise."""
        self._watcher = watcher

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts, the caller's to keep."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        """The sum over every reason."""
        with self._lock:
            return sum(self._counts.values())


def _empty() -> Mapping[str, int]:
    return {}


_BY_REASON = (
    "facts_dropped",
    "facts_without_event",
    "turns_waiting",
    "events_dropped",
    "reducer_evicted",
    "notices",
)


@dataclass(frozen=True, slots=True, repr=False)
class TelemetryStats:
    """A snapshot of the SDK's counters, from ``Telemetry.stats()``.

    Every fact handed to ``track_fact`` ends in exactly one of ``facts_accepted``,
    ``facts_filtered``, ``facts_deduplicated`` or ``facts_dropped``; every event produced
    ends in ``events_exported``, ``events_dropped`` or, when its request was unanswered at
    the shutdown deadline, ``events_in_flight_at_exit`` (or is still on its way).

    The values are plain: the by-reason counts are ``dict`` copies made when the snapshot
    was taken, so ``dataclasses.asdict(stats)``, :meth:`to_dict`, ``json.dumps`` and
    comparison with a literal dict all work. The repr shows only what is not zero.
    """

    facts_accepted: int = 0
    """Facts queued for the reducer."""
    facts_filtered: int = 0
    """Facts gated off by the GeneralAnalytics feature flag."""
    facts_deduplicated: int = 0
    """``AppUsed``/``PluginUsed`` facts already reported for their turn."""
    facts_dropped: Mapping[str, int] = field(default_factory=_empty)
    """Facts not queued, by reason: ``queue_full``, ``invalid``, ``after_shutdown``,
    ``empty``, ``disabled``, ``reentrant`` (tracked from inside the SDK's own worker, or
    from a signal handler that interrupted the start of the worker on its own thread),
    ``no_worker`` (the worker thread could not be started)."""
    facts_without_event: Mapping[str, int] = field(default_factory=_empty)
    """Accepted facts that could not lead to an event, by reason: ``unknown_connection``
    (no ``Initialize`` was tracked for the connection), ``unknown_thread`` (no thread
    response was tracked for the thread), ``no_pending_request`` (a response whose request
    was not tracked, or was evicted), ``after_emission`` (a fact about a turn whose event
    was already sent); and ``turn_evicted``: turns evicted while still waiting for facts
    (each counts once, however many facts it had)."""
    turns_waiting: Mapping[str, int] = field(default_factory=_empty)
    """Turns the reducer holds now, waiting for an event, by what they wait for:
    ``turn_start_response``, ``resolved_config``, ``completion``, or, with every fact in,
    ``initialize`` (the connection is unknown) and ``thread_response`` (the thread is
    unknown). A turn waiting for several counts under each. A snapshot, not a total."""
    events_produced: int = 0
    """Events the reducer produced that the event type filter and ``before_send`` let
    through (what was handed to the sink)."""
    events_exported: int = 0
    """Events the sink delivered."""
    events_dropped: Mapping[str, int] = field(default_factory=_empty)
    """Events not delivered, by reason (``http_400``, ``spool_full``, ``shutdown``, ...)."""
    events_in_flight_at_exit: int = 0
    """Events whose request was sent but not answered by the shutdown deadline: they may
    have arrived, so they are not counted dropped."""
    reducer_evicted: Mapping[str, int] = field(default_factory=_empty)
    """Reducer state evicted to keep memory bounded, by kind."""
    internal_errors: int = 0
    """Faults caught inside the SDK (each logged; the host program is unaffected)."""
    notices: Mapping[str, int] = field(default_factory=_empty)
    """Lines logged to say what went wrong with the data or the setup (the first drop of
    each reason, a collector that refuses events, ...), by kind."""
    events_filtered_by_type: int = 0
    """Events of a type ``event_types`` excludes; not sent, not in ``events_produced``."""
    events_dropped_by_before_send: int = 0
    """Events ``before_send`` returned None for; not sent, not in ``events_produced``."""
    before_send_errors: int = 0
    """Events ``before_send`` raised on, or returned something that is not a wire event
    for; each was sent unchanged (and the fault is counted in ``internal_errors``)."""
    events_spooled: int = 0
    """Events written to the durable spool as they were produced."""
    events_replayed: int = 0
    """Events read back from the spool and handed to the sink: those a previous process
    left (counted again in ``events_exported`` or ``events_dropped``), and those this
    process spooled while the sink had no room."""
    events_kept: int = 0
    """Events left in the spool at shutdown, for the next process that uses it."""

    def __post_init__(self) -> None:
        # Plain copies, whatever mapping the snapshot was built from: a read-only view
        # could neither be deep-copied by ``asdict`` nor serialised.
        for name in _BY_REASON:
            object.__setattr__(self, name, dict(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """Every counter as plain JSON values (by-reason counts as new dicts)."""
        return {
            item.name: dict(value)
            if isinstance(value := getattr(self, item.name), Mapping)
            else value
            for item in fields(self)
        }

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Mapping):
                value = {reason: count for reason, count in value.items() if count}
            if value:
                shown.append(f"{item.name}={value!r}")
        return f"TelemetryStats({', '.join(shown)})"

    @property
    def facts_dropped_total(self) -> int:
        """All dropped facts, whatever the reason."""
        return sum(self.facts_dropped.values())

    @property
    def events_dropped_total(self) -> int:
        """All events not delivered, whatever the reason."""
        return sum(self.events_dropped.values())
