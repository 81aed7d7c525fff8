"""A bounded queue drained in batches by one background thread, with bounded exit.

Shared by the OTLP log record processor and, through :class:`BatchingSink`, the console,
file and Codex backend sinks. ``put`` never blocks;
a full queue drops the new item (counted ``export_queue_full``). ``flush`` and
``shutdown`` wait at most their timeout; at the shutdown deadline every item not yet
settled is counted dropped (``shutdown``) exactly once, even if a request is still in
flight.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._retry import StopSignal
from codex_telemetry.events import AnalyticsEvent

__all__ = ["BatchWorker", "BatchingSink", "InFlight", "report_undelivered"]

_logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long shutdown waits, past its deadline, for the worker to notice the deadline.
_JOIN_GRACE = 0.1


class InFlight:
    """The settlement of one batch: counts each of its items exactly once.

    The worker settles items as the exporter reports them; a shutdown that gives up on
    the batch settles the rest as ``shutdown`` and later reports are ignored.
    """

    __slots__ = ("_counters", "_lock", "_on_settled", "_remaining")

    def __init__(
        self,
        size: int,
        counters: DeliveryCounters,
        lock: threading.Lock,
        on_settled: Callable[[int, bool], None],
    ) -> None:
        self._remaining = size
        self._counters = counters
        self._lock = lock
        self._on_settled = on_settled

    def _take(self, count: int) -> int:
        with self._lock:
            taken = min(count, self._remaining)
            self._remaining -= taken
            return taken

    def exported(self, count: int) -> None:
        """``count`` items were delivered."""
        taken = self._take(count)
        if taken:
            self._counters.exported.add(taken)
            self._on_settled(taken, False)

    def dropped(self, count: int, reason: str) -> None:
        """``count`` items were given up on, for ``reason``."""
        taken = self._take(count)
        if taken:
            self._counters.dropped.add(reason, taken)
            self._on_settled(taken, True)

    def abandon(self, reason: str) -> None:
        """Count every item not yet settled as dropped for ``reason``."""
        with self._lock:
            remaining = self._remaining
        self.dropped(remaining, reason)


class BatchWorker(Generic[T]):
    """Queue items and hand them, ``batch_size`` at a time, to ``export_batch``.

    ``export_batch(items, in_flight, stop)`` runs on the worker thread; it must settle
    every item through ``in_flight`` and end by ``stop.deadline``. A batch is sent when
    ``batch_size`` items are waiting, when ``interval`` seconds passed, or on flush.
    """

    def __init__(
        self,
        export_batch: Callable[[Sequence[T], InFlight, StopSignal], None],
        counters: DeliveryCounters,
        *,
        max_queue_size: int,
        batch_size: int,
        interval: float,
        name: str,
    ) -> None:
        if max_queue_size < 1 or batch_size < 1:
            raise ValueError("max_queue_size and batch_size must be positive")
        self._export_batch = export_batch
        self._counters = counters
        self._max_queue_size = max_queue_size
        self._batch_size = min(batch_size, max_queue_size)
        self._interval = interval
        self._queue: collections.deque[T] = collections.deque()
        self._condition = threading.Condition(threading.Lock())
        self._settle_lock = threading.Lock()
        self._stop = StopSignal()
        self._closed = False
        self._accepted = 0  # items queued since start
        self._settled = 0  # of those, items exported or dropped
        self._failed = 0  # of those, items dropped
        self._failed_at_last_flush = 0
        self._flush_target = 0
        self._in_flight: InFlight | None = None
        self._oldest_since = 0.0  # when the oldest queued item arrived (monotonic)
        self._shutdown_result: bool | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def stop_signal(self) -> StopSignal:
        """The signal that carries the shutdown deadline to the exporter's retries."""
        return self._stop

    def put(self, items: Sequence[T]) -> None:
        """Queue ``items``; those that do not fit are counted ``export_queue_full``."""
        with self._condition:
            if self._closed:
                self._counters.dropped.add("shutdown", len(items))
                return
            room = self._max_queue_size - len(self._queue)
            accepted = items if len(items) <= room else items[: max(room, 0)]
            if accepted and not self._queue:
                self._oldest_since = time.monotonic()
                self._condition.notify_all()
            self._queue.extend(accepted)
            self._accepted += len(accepted)
            if len(self._queue) >= self._batch_size:
                self._condition.notify_all()
            refused = len(items) - len(accepted)
            # Refused items were handed over and not delivered: the next flush says so.
            self._failed += refused
        if refused:
            self._counters.dropped.add("export_queue_full", refused)

    def _on_settled(self, count: int, failed: bool) -> None:
        with self._condition:
            self._settled += count
            if failed:
                self._failed += count
            self._condition.notify_all()

    def _take_batch(self) -> list[T] | None:
        """Wait for the next batch; None when the worker should exit."""
        with self._condition:
            while True:
                now = time.monotonic()
                if self._closed and (not self._queue or now >= self._stop.deadline):
                    return None
                if not self._queue:
                    self._condition.wait()
                    continue
                due_at = self._oldest_since + self._interval
                if (
                    self._closed
                    or len(self._queue) >= self._batch_size
                    or self._flush_target > self._settled
                    or now >= due_at
                ):
                    count = min(self._batch_size, len(self._queue))
                    batch = [self._queue.popleft() for _ in range(count)]
                    self._in_flight = InFlight(
                        count, self._counters, self._settle_lock, self._on_settled
                    )
                    return batch
                self._condition.wait(due_at - now)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            in_flight = self._in_flight
            assert in_flight is not None
            try:
                self._export_batch(batch, in_flight, self._stop)
            except Exception:
                # A bug in an exporter must not kill the worker; the batch is counted lost.
                _logger.exception("codex_telemetry: exporting a batch failed unexpectedly")
                in_flight.abandon("internal_error")
            in_flight.abandon("internal_error")  # no-op when the exporter settled everything
            with self._condition:
                self._in_flight = None

    def flush(self, timeout: float) -> bool:
        """Send everything queued so far; True when it was all delivered within ``timeout``.

        Also False when an item was dropped since the previous flush returned.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._condition:
            target = self._accepted
            self._flush_target = max(self._flush_target, target)
            self._condition.notify_all()
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
            clean = self._failed == self._failed_at_last_flush
            self._failed_at_last_flush = self._failed
            return clean

    def shutdown(self, timeout: float) -> bool:
        """Flush within ``timeout``, then stop; anything left is counted ``shutdown``.

        Returns True when everything ever queued was delivered. Later calls return the
        first call's result.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._condition:
            if self._shutdown_result is not None or self._closed:
                return bool(self._shutdown_result)
            self._closed = True
            self._condition.notify_all()
        self._stop.stop(deadline)
        self._thread.join(max(deadline - time.monotonic(), 0.0) + _JOIN_GRACE)
        with self._condition:
            leftovers = len(self._queue)
            self._queue.clear()
            self._settled += leftovers
            self._failed += leftovers
            in_flight = self._in_flight
        if leftovers:
            self._counters.dropped.add("shutdown", leftovers)
        if in_flight is not None:
            in_flight.abandon("shutdown")
        with self._condition:
            self._shutdown_result = self._failed == 0 and self._settled == self._accepted
        report_undelivered(self._counters)
        return self._shutdown_result


class BatchingSink:
    """A sink whose events one :class:`BatchWorker` hands, batch by batch, to
    :meth:`_deliver_batch` on its own thread; the console, file and Codex backend sinks.

    ``export`` only queues, so a slow terminal, disk or network never stalls the SDK's
    worker; ``force_flush`` and ``shutdown`` wait at most their timeout.
    """

    def __init__(
        self,
        delivery: DeliveryCounters,
        *,
        name: str,
        max_queue_size: int,
        batch_size: int,
        interval: float,
    ) -> None:
        self._delivery = delivery
        self._worker: BatchWorker[AnalyticsEvent] = BatchWorker(
            self._deliver_batch,
            delivery,
            max_queue_size=max_queue_size,
            batch_size=batch_size,
            interval=interval,
            name=name,
        )

    def _deliver_batch(
        self, events: Sequence[AnalyticsEvent], in_flight: InFlight, stop: StopSignal
    ) -> None:
        """Deliver ``events``, settling each through ``in_flight`` by ``stop.deadline``."""
        raise NotImplementedError

    @property
    def delivery(self) -> DeliveryCounters:
        """The counters this sink reports delivered and dropped events through."""
        return self._delivery

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Queue ``events`` for delivery; never blocks."""
        self._worker.put(events)

    def force_flush(self, timeout: float) -> bool:
        """Deliver what was queued, waiting at most ``timeout`` seconds."""
        return self._worker.flush(timeout)

    def shutdown(self, timeout: float) -> bool:
        """Deliver what was queued within ``timeout`` seconds, then stop."""
        return self._worker.shutdown(timeout)


def report_undelivered(delivery: DeliveryCounters) -> None:
    """Say once, at exit, how many events were not delivered and why (and where they were
    going, and the facts dropped, when the client said so in ``delivery.context``)."""
    dropped = delivery.dropped.snapshot()
    total = sum(dropped.values())
    if total:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items()))
        context = delivery.context
        where = f" to {context.destination}" if context.destination else ""
        facts = {}
        if context.facts_dropped is not None:
            facts = {reason: n for reason, n in context.facts_dropped().items() if n}
        also = ""
        if facts:
            listed = ", ".join(f"{reason}: {count}" for reason, count in sorted(facts.items()))
            also = f", and {sum(facts.values())} facts were dropped ({listed})"
        _logger.warning(
            "codex_telemetry: %d analytics events were not delivered%s (%s)%s; "
            "your program is unaffected",
            total,
            where,
            reasons,
            also,
        )
