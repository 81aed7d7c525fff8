"""A network sink made when its first batch is due, not when the client is made.

The OTLP and Codex backend sinks import ``requests``, protobuf and the OpenTelemetry logs
SDK: about half of ``init()``'s time, and module code that, run on the worker thread while
the program builds its first facts, would hold the GIL for stretches the caller would
feel. :class:`DeferredSink` stands in for such a sink: it keeps the first events it is
handed (as the sink's own batching would) and makes the real sink, which then gets them
in order, when the sink would have sent its first batch anyway: ``interval`` seconds after
the first event (on a timer thread), as soon as ``batch_size`` events wait (on the
worker), or on ``force_flush`` or ``shutdown`` (on their caller). Everything the real sink
could refuse as configuration is checked before, by the factory, so that it still fails
``init()``; a fault making it later is reported as internal, and its events stay in the
durable spool for the next process (without one, they are counted dropped,
``internal_error``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from codex_telemetry._internal_errors import current, log_internal_error

if TYPE_CHECKING:
    from codex_telemetry._export._base import DeliveryCounters, EventSink
    from codex_telemetry.events import AnalyticsEvent

__all__ = ["DeferredSink"]


class DeferredSink:
    """Hands events to the sink ``build()`` makes, once it is made (see the module).

    ``build`` makes the real sink reporting through ``delivery``; it is called at most
    once. ``max_queue_size``, ``batch_size`` and ``interval`` are the real sink's: events
    wait here at most as long as they would have waited in its queue before its first
    export.
    """

    def __init__(
        self,
        build: Callable[[], EventSink],
        delivery: DeliveryCounters,
        *,
        max_queue_size: int,
        batch_size: int,
        interval: float,
    ) -> None:
        self._build = build
        self._delivery = delivery
        self._max_queue_size = max_queue_size
        self._batch_size = batch_size
        self._interval = interval
        # Made in the client's charge: the timer thread reports its faults there too.
        self._errors = current()
        self._lock = threading.Lock()  # guards what follows, and the hand-over
        self._building = threading.Lock()  # held while the real sink is made
        self._sink: EventSink | None = None
        self._failed = False
        self._closed = False
        self._pending: list[tuple[Sequence[AnalyticsEvent], int]] = []
        self._pending_count = 0
        self._acknowledge: Callable[[int], None] | None = None
        self._acknowledge_on_hand_over = False
        self._timer: threading.Timer | None = None

    def __repr__(self) -> str:
        sink = self._sink
        return f"DeferredSink({sink!r})" if sink is not None else "DeferredSink(not made yet)"

    @property
    def delivery(self) -> DeliveryCounters:
        """The counters the real sink reports through (and this one, for what it drops)."""
        return self._delivery

    @property
    def made(self) -> EventSink | None:
        """The real sink, once it was made."""
        return self._sink

    # --- the worker's side ------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """The most events the real sink's queue holds (this one's bound until it is made)."""
        sink = self._sink
        capacity = getattr(sink, "capacity", None) if sink is not None else None
        return capacity if isinstance(capacity, int) else self._max_queue_size

    def has_room(self, count: int) -> bool:
        """True when ``count`` more events fit: in the real sink's queue once it is made,
        within its queue's bound until then (more than that is a batch due now: the real
        sink is made, and answers)."""
        sink = self._sink
        if sink is None:
            if self._failed or self._pending_count + count <= self._max_queue_size:
                return True
            sink = self._make()
            if sink is None:
                return True  # counted, not kept waiting: see export
        has_room = getattr(sink, "has_room", None)
        return True if has_room is None else bool(has_room(count))

    def make_durable(self, acknowledge: Callable[[int], None]) -> bool:
        """Acknowledge settled batches to the spool: the real sink will, once made (the
        network sinks always can)."""
        self._acknowledge = acknowledge
        return True

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Keep ``events`` until the real sink is made, then hand them to it."""
        sink = self._sink
        if sink is None:
            with self._lock:
                sink = self._sink
                if sink is None:
                    if self._failed or self._closed:
                        self._leave(len(events), "internal_error" if self._failed else "shutdown")
                        return
                    self._pending.append((events, timestamp_ns))
                    self._pending_count += len(events)
                    if self._pending_count < self._batch_size:
                        self._start_timer()
                        return
            if sink is None:
                self._make()  # a whole batch waits: it is due now
                return
        self._hand_over(sink, events, timestamp_ns)

    # --- the caller's side ------------------------------------------------------------

    def force_flush(self, timeout: float) -> bool:
        """Make the real sink if events wait, then flush it, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        sink = self._sink
        if sink is None:
            if not self._pending and not self._building.locked():
                return not self._failed
            sink = self._make(deadline)
            if sink is None:
                return False
        return bool(sink.force_flush(max(0.0, deadline - time.monotonic())))

    def shutdown(self, timeout: float) -> bool:
        """Make the real sink if events wait, then shut it down, within ``timeout``
        seconds; later calls do nothing."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        sink = self._sink
        if sink is None:
            if not self._pending and not self._building.locked():
                return not self._failed
            sink = self._make(deadline)
            if sink is None:  # not made in time, or not at all
                with self._lock:
                    pending, self._pending, self._pending_count = self._pending, [], 0
                for events, _ in pending:
                    self._leave(len(events), "shutdown")
                return False
        return bool(sink.shutdown(max(0.0, deadline - time.monotonic())))

    # --- making the real sink ---------------------------------------------------------

    def _start_timer(self) -> None:
        # Under self._lock. The timer is a daemon: it never holds the interpreter's exit.
        if self._timer is None and not self._closed:
            timer = threading.Timer(self._interval, self._make_on_timer)
            timer.name = "codex-telemetry-sink-maker"
            timer.daemon = True
            self._timer = timer
            timer.start()

    def _make_on_timer(self) -> None:
        with self._errors.in_charge():
            sink = self._make()
            if sink is not None:
                # The first batch is due now, not an interval after the hand-over: ask
                # for it without waiting (the sink's own worker sends it).
                sink.force_flush(0.0)

    def _make(self, deadline: float | None = None) -> EventSink | None:
        """Make the real sink (once; a concurrent call waits for it, until ``deadline``)
        and hand it what waits here, in order."""
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._building.acquire(timeout=wait):
            return self._sink
        try:
            if self._sink is not None or self._failed:
                return self._sink
            sink: EventSink | None = None
            try:
                sink = self._build()
                if self._acknowledge is not None and not sink.make_durable(  # type: ignore[attr-defined]
                    self._acknowledge
                ):
                    self._acknowledge_on_hand_over = True
            except Exception:
                log_internal_error("sink_create", "creating the sink")
            # The worker's exports wait on the lock meanwhile: the events keep their order.
            with self._lock:
                pending, self._pending, self._pending_count = self._pending, [], 0
                if sink is None:
                    self._failed = True
                    for events, _ in pending:
                        self._leave(len(events), "internal_error")
                    return None
                for events, timestamp_ns in pending:
                    self._hand_over(sink, events, timestamp_ns)
                self._sink = sink
            return sink
        finally:
            self._building.release()

    def _hand_over(
        self, sink: EventSink, events: Sequence[AnalyticsEvent], timestamp_ns: int
    ) -> None:
        try:
            sink.export(events, timestamp_ns)
        except Exception:  # a sink never raises; if it did, the events are lost here
            log_internal_error("sink", "handing events to the sink")
            self._delivery.dropped.add("internal_error", len(events))
        if self._acknowledge_on_hand_over and self._acknowledge is not None:
            self._acknowledge(len(events))

    def _leave(self, count: int, reason: str) -> None:
        """``count`` events no sink took (it could not be made, or shutdown came first):
        kept in the spool for the next process when there is one (unacknowledged), else
        dropped for ``reason``."""
        if self._acknowledge is not None:
            self._delivery.kept.add(count)
        else:
            self._delivery.dropped.add(reason, count)
