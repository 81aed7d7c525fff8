"""A bounded queue drained in batches by one background thread, with bounded exit.

Shared by the OTLP log record processor and, through :class:`BatchingSink`, the console,
file and Codex backend sinks. The queue is bounded in items and in bytes (an estimate of
each item's size, made on the SDK's worker thread). ``put`` waits for room instead of
dropping: the SDK's worker slows to the sink's pace, and only the caller's fact queue
can drop. Once shutdown has begun nothing waits any more: what cannot be handed over is
counted ``shutdown``. ``flush`` and ``shutdown`` wait at most their timeout; at the
shutdown deadline every item not yet settled is counted dropped (``shutdown``) exactly
once, and every item of a batch still in flight is counted ``in_flight_at_exit``: it
may yet arrive.

A **durable** worker (``acknowledge`` given) feeds the durable spool: its ``put`` never
waits (the caller hands items over only while :meth:`BatchWorker.has_room`, and keeps the
rest in the spool's backlog), each batch the exporter settled is acknowledged in order,
and what is left at the shutdown deadline is counted ``kept`` (it stays in the spool for
the next process) and never acknowledged.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar, cast

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._retry import IN_FLIGHT_AT_EXIT, StopSignal
from codex_telemetry._internal_errors import log_internal_error
from codex_telemetry._threads import start_thread
from codex_telemetry.events import AnalyticsEvent, WireEvent, wire_values

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_QUEUE_BYTES",
    "BatchWorker",
    "BatchingSink",
    "InFlight",
    "estimate_size",
    "report_undelivered",
]

_logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long shutdown waits, past its deadline, for the worker to notice the deadline.
_JOIN_GRACE = 0.1

MAX_QUEUE_BYTES = 16 * 1024 * 1024
"""The byte bound of an export queue (estimated sizes of the events waiting)."""
# One queued item in this many has its size estimated (see ``BatchWorker._sizes_of``).
_SAMPLE_EVERY = 8
MAX_BATCH_BYTES = 4 * 1024 * 1024
"""The byte bound of one batch (estimated sizes; a batch holds at least one item)."""


# Bytes counted for a value besides its text: about what CPython spends on a small object.
_OBJECT_BYTES = 56
_MAX_DEPTH = 12
_SCALARS = frozenset({int, float, bool, type(None)})
# Per dataclass: a getter of all its fields at once (None: not a dataclass).
_getters: dict[type, Callable[[object], Iterable[object]] | None] = {}


def _wire_values(event: object) -> Iterable[object]:
    return cast(WireEvent, event).values


def _getter(kind: type, value: object) -> Callable[[object], Iterable[object]] | None:
    if kind in _getters:
        return _getters[kind]
    getter: Callable[[object], Iterable[object]] | None = None
    if kind is WireEvent:  # what before_send returned: its values
        getter = _wire_values
    elif isinstance(value, AnalyticsEvent):
        getter = wire_values(kind)
    elif dataclasses.is_dataclass(value):
        names = [field.name for field in dataclasses.fields(value)]
        if names:
            many = operator.attrgetter(*names)
            getter = (lambda item: (many(item),)) if len(names) == 1 else many
    _getters[kind] = getter
    return getter


def estimate_size(value: object, depth: int = 0) -> int:
    """About how many bytes ``value`` holds in memory: its strings' lengths plus a fixed
    amount per object, walking dataclasses, sequences and mappings. A shared sub-object
    is counted each time it appears (an over-estimate, which only makes the bound safer)."""
    kind = type(value)
    if kind is str or kind is bytes:
        return _OBJECT_BYTES + len(value)  # type: ignore[arg-type]
    if kind in _SCALARS or depth > _MAX_DEPTH:
        return _OBJECT_BYTES
    if isinstance(value, dict):
        items: Iterable[object] = itertools.chain.from_iterable(value.items())
    elif isinstance(value, tuple | list):
        items = value
    else:
        getter = _getter(kind, value)
        if getter is None:
            return _OBJECT_BYTES
        items = getter(value)
    total = _OBJECT_BYTES
    for item in items:
        item_kind = type(item)
        if item_kind is str:
            total += _OBJECT_BYTES + len(item)  # type: ignore[arg-type]
        elif item_kind in _SCALARS:
            total += _OBJECT_BYTES
        else:
            total += estimate_size(item, depth + 1)
    return total


class InFlight:
    """The settlement of one batch: counts each of its items exactly once.

    The worker settles items as the exporter reports them; a shutdown that gives up on
    the batch settles the rest as ``shutdown`` and later reports are ignored.
    """

    __slots__ = ("_counters", "_keep_when", "_lock", "_on_settled", "_remaining", "kept")

    def __init__(
        self,
        size: int,
        counters: DeliveryCounters,
        lock: threading.Lock,
        on_settled: Callable[[int, bool], None],
        keep_when: StopSignal | None = None,
    ) -> None:
        self._remaining = size
        self._counters = counters
        self._lock = lock
        self._on_settled = on_settled
        self._keep_when = keep_when
        self.kept = False
        """True when some items were left in the spool instead of dropped."""

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
        """``count`` items were given up on, for ``reason``; with
        :data:`IN_FLIGHT_AT_EXIT`, their request was unanswered at the deadline: counted
        apart, as they may have arrived."""
        taken = self._take(count)
        if taken:
            if self._keep_when is not None and self._keep_when.stopping:
                # Given up on because the process is exiting: the spool still has them.
                self.kept = True
                self._counters.kept.add(taken)
            elif reason == IN_FLIGHT_AT_EXIT:
                self._counters.in_flight_at_exit.add(taken)
            else:
                self._counters.dropped.add(reason, taken)
            self._on_settled(taken, True)

    def settled_in_full(self) -> bool:
        """True once every item was settled."""
        with self._lock:
            return self._remaining == 0

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
    ``size_of(item)`` estimates an item's bytes for the ``max_queue_bytes`` bound, on one
    item in eight (the others count as the running estimate); an item larger than the
    bound still fits in an empty queue.
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
        size_of: Callable[[T], int] | None = None,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        if max_queue_size < 1 or batch_size < 1:
            raise ValueError("max_queue_size and batch_size must be positive")
        self._export_batch = export_batch
        self._counters = counters
        self._max_queue_size = max_queue_size
        self._max_queue_bytes = max(max_queue_bytes, 1)
        self._size_of = size_of
        self._batch_size = min(batch_size, max_queue_size)
        self._interval = interval
        self._queue: collections.deque[T] = collections.deque()
        self._sizes: collections.deque[int] = collections.deque()
        self._queued_bytes = 0
        self._size_countdown = 0
        self._size_estimate = 0
        self._acknowledge: Callable[[int], None] | None = None
        self._acknowledging = True
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
        self._thread = start_thread(self._run, name)

    @property
    def stop_signal(self) -> StopSignal:
        """The signal that carries the shutdown deadline to the exporter's retries."""
        return self._stop

    def _sizes_of(self, items: Sequence[T]) -> list[int]:
        """The items' estimated sizes: one item in ``_SAMPLE_EVERY`` is measured, the
        others count as the running estimate (a larger item raises it at once, smaller
        ones lower it slowly), which keeps the estimate's cost off most items."""
        size_of = self._size_of
        if size_of is None:
            return [0] * len(items)
        sizes = []
        for item in items:
            if self._size_countdown:
                self._size_countdown -= 1
            else:
                self._size_countdown = _SAMPLE_EVERY - 1
                size = size_of(item)
                self._size_estimate = max(size, (self._size_estimate * 7 + size) // 8)
            sizes.append(self._size_estimate)
        return sizes

    def make_durable(self, acknowledge: Callable[[int], None]) -> None:
        """Acknowledge settled batches to the spool through ``acknowledge(count)``, in the
        order they were queued; ``put`` no longer waits (see the module's docstring).
        Call before the first ``put``."""
        self._acknowledge = acknowledge

    @property
    def capacity(self) -> int:
        """The most items the queue holds (``has_room`` is never true for more)."""
        return self._max_queue_size

    def has_room(self, count: int = 1) -> bool:
        """True when ``count`` more items fit now (in items and in bytes)."""
        return (
            len(self._queue) + count <= self._max_queue_size
            and self._queued_bytes < self._max_queue_bytes
        )

    def put(self, items: Sequence[T]) -> None:
        """Queue ``items``, waiting for room while the queue is full (not in durable mode);
        once shutdown has begun, what is not queued yet is counted ``shutdown``."""
        sizes = self._sizes_of(items)
        durable = self._acknowledge is not None
        index = 0
        with self._condition:
            while index < len(items):
                if self._closed:
                    left = len(items) - index
                    self._failed += left
                    if durable:
                        self._counters.kept.add(left)
                    else:
                        self._counters.dropped.add("shutdown", left)
                    return
                queue = self._queue
                if queue and not durable and not self.has_room():
                    self._condition.wait()
                    continue
                if not queue:
                    self._oldest_since = time.monotonic()
                    self._condition.notify_all()
                # Take as many as fit (at least one; all of them in durable mode).
                while index < len(items) and (durable or not queue or self.has_room()):
                    queue.append(items[index])
                    self._sizes.append(sizes[index])
                    self._queued_bytes += sizes[index]
                    self._accepted += 1
                    index += 1
                if len(queue) >= self._batch_size:
                    self._condition.notify_all()

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
                    count = self._batch_count()
                    batch = [self._queue.popleft() for _ in range(count)]
                    sizes = self._sizes
                    self._queued_bytes -= sum(sizes.popleft() for _ in range(count))
                    self._in_flight = InFlight(
                        count,
                        self._counters,
                        self._settle_lock,
                        self._on_settled,
                        keep_when=self._stop if self._acknowledge is not None else None,
                    )
                    self._condition.notify_all()  # room for a waiting put
                    return batch
                self._condition.wait(due_at - now)

    def _batch_count(self) -> int:
        """How many queued items the next batch takes: ``batch_size`` at most, and no more
        than ``MAX_BATCH_BYTES`` (but at least one)."""
        count = min(self._batch_size, len(self._queue))
        if self._queued_bytes <= MAX_BATCH_BYTES:
            return count
        total = 0
        for index, size in enumerate(itertools.islice(self._sizes, count)):
            total += size
            if total > MAX_BATCH_BYTES:
                return max(index, 1)
        return count

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
                log_internal_error("export_batch", "exporting a batch")
                in_flight.abandon("internal_error")
            in_flight.abandon("internal_error")  # no-op when the exporter settled everything
            self._acknowledge_batch(len(batch), in_flight)
            with self._condition:
                self._in_flight = None

    def _acknowledge_batch(self, count: int, in_flight: InFlight) -> None:
        """Tell the spool the batch is settled: delivered, or given up on while running.
        Once a batch is kept for the next process, nothing more is acknowledged: the
        acknowledgements must follow the order of the queue."""
        acknowledge = self._acknowledge
        if acknowledge is None or not self._acknowledging:
            return
        if in_flight.kept or not in_flight.settled_in_full():
            self._acknowledging = False
            return
        try:
            acknowledge(count)
        except Exception:
            log_internal_error("spool_acknowledge", "acknowledging a batch to the spool")

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
            self._sizes.clear()
            self._queued_bytes = 0
            self._settled += leftovers
            self._failed += leftovers
            in_flight = self._in_flight
            self._condition.notify_all()  # a waiting put counts its items
        if leftovers:
            if self._acknowledge is not None:
                self._counters.kept.add(leftovers)
            else:
                self._counters.dropped.add("shutdown", leftovers)
        if in_flight is not None:
            # Handed to the exporter and not settled: it may have gone out, and arrive.
            in_flight.abandon(IN_FLIGHT_AT_EXIT)
        with self._condition:
            self._shutdown_result = self._failed == 0 and self._settled == self._accepted
        report_undelivered(self._counters)
        return self._shutdown_result


class BatchingSink(Generic[T]):
    """A sink whose events one :class:`BatchWorker` hands, batch by batch, to
    :meth:`_deliver_batch` on its own thread; the console, file and Codex backend sinks.

    ``export`` queues, waiting while the queue is full, so the SDK's worker keeps the
    sink's pace and nothing is dropped here; ``force_flush`` and ``shutdown`` wait at
    most their timeout. ``T`` is what is queued per event: the event itself, unless
    :meth:`_items` keeps more (its timestamp).
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
        self._worker: BatchWorker[T] = BatchWorker(
            self._deliver_batch,
            delivery,
            max_queue_size=max_queue_size,
            batch_size=batch_size,
            interval=interval,
            name=name,
            size_of=estimate_size,
        )

    @property
    def capacity(self) -> int:
        """The most events the queue holds."""
        return self._worker.capacity

    def has_room(self, count: int) -> bool:
        """True when ``count`` more events fit in the queue now."""
        return self._worker.has_room(count)

    def make_durable(self, acknowledge: Callable[[int], None]) -> bool:
        """Acknowledge settled batches to the spool (see :class:`BatchWorker`)."""
        self._worker.make_durable(acknowledge)
        return True

    def _deliver_batch(self, events: Sequence[T], in_flight: InFlight, stop: StopSignal) -> None:
        """Deliver ``events``, settling each through ``in_flight`` by ``stop.deadline``."""
        raise NotImplementedError

    def _items(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> Sequence[T]:
        """What is queued for ``events``, produced at ``timestamp_ns``."""
        raise NotImplementedError

    @property
    def delivery(self) -> DeliveryCounters:
        """The counters this sink reports delivered and dropped events through."""
        return self._delivery

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Queue ``events`` for delivery, waiting for room (see :meth:`BatchWorker.put`)."""
        self._worker.put(self._items(events, timestamp_ns))

    def force_flush(self, timeout: float) -> bool:
        """Deliver what was queued, waiting at most ``timeout`` seconds."""
        return self._worker.flush(timeout)

    def shutdown(self, timeout: float) -> bool:
        """Deliver what was queued within ``timeout`` seconds, then stop."""
        return self._worker.shutdown(timeout)


def report_undelivered(delivery: DeliveryCounters, *, owner: bool = False) -> None:
    """Say once, at exit, how many events were not delivered and why (and where they were
    going, and the facts dropped, when the client said so in ``delivery.context``), and
    how many were sent but still unanswered at the deadline (so may have arrived): from
    the sink's shutdown, unless its owner said it reports (``delivery.reporting.deferred``) once
    everything handed to the sink was counted (``owner=True``)."""
    if delivery.reporting.deferred and not owner:
        return
    dropped = delivery.dropped.snapshot()
    total = sum(dropped.values())
    unanswered = delivery.in_flight_at_exit.value
    if not total and not unanswered:
        return
    context = delivery.context
    where = f" to {context.destination}" if context.destination else ""
    facts = {}
    if context.facts_dropped is not None:
        facts = {reason: n for reason, n in context.facts_dropped().items() if n}
    also = ""
    if facts:
        listed = ", ".join(f"{reason}: {count}" for reason, count in sorted(facts.items()))
        also = f", and {sum(facts.values())} facts were dropped ({listed})"
    maybe = "sent but not answered before the shutdown deadline: they may have arrived"
    if total:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items()))
        _logger.warning(
            "codex_telemetry: %d analytics events were not delivered%s (%s)%s%s; "
            "your program is unaffected",
            total,
            where,
            reasons,
            f", and {unanswered} were {maybe}" if unanswered else "",
            also,
        )
    else:
        _logger.warning(
            "codex_telemetry: %d analytics events were %s%s; your program is unaffected",
            unanswered,
            maybe.replace("sent", f"sent{where}", 1),
            also,
        )
