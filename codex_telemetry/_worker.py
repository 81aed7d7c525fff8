"""The queue and the worker: one daemon thread reduces facts and hands events to the sink.

The caller's side only puts facts in :attr:`Worker.queue` (``SimpleQueue.put`` never
blocks); ``flush`` and ``shutdown`` put a :class:`Marker` behind them and wait until the
worker reaches it. The worker owns the reducer and, in a forked child, makes the sink. A
fault in the reducer or the sink is reported to the client's internal-error policy and
the worker goes on: the worker thread runs in that policy's charge, so nothing is raised
there.

With a durable spool (:mod:`codex_telemetry._spool`), the worker opens it when it starts
(claiming what dead processes left for the same destination), appends every batch of
events the reducer produces before the sink sees them, and hands the spool's backlog
(those orphans first, then what the sink had no room for) to the sink, oldest first,
whenever the sink has room. The sink acknowledges settled batches to the spool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from codex_telemetry._stats import Counter
from codex_telemetry._threads import start_thread

if TYPE_CHECKING:
    from codex_telemetry._export._base import DeliveryCounters, EventSink
    from codex_telemetry._export._factory import SpoolPlan
    from codex_telemetry._hooks import EventHooks
    from codex_telemetry._internal_errors import InternalErrors
    from codex_telemetry._reducer import AnalyticsReducer
    from codex_telemetry._spool import Spool
    from codex_telemetry.events import AnalyticsEvent
    from codex_telemetry.facts import Fact

__all__ = ["Marker", "Worker"]

_logger = logging.getLogger("codex_telemetry")

# While the spool has a backlog, how often the worker looks for room in the sink (s).
_BACKLOG_POLL = 0.02
# How often an idle worker claims segments that processes sharing the spool left behind
# (a multiprocessing child ends with os._exit, before its sink delivered) (s).
_CLAIM_INTERVAL = 1.0
# Events read back from the spool at a time.
_TAKE = 128
# Events of consecutive facts appended to the spool with one write, while more facts wait.
_APPEND_BATCH = 256
# While facts wait behind a full sink, how long the worker waits for room before it leaves
# the events in the spool's backlog (s), and how often it looks (s).
_ROOM_WAIT = 0.5
_ROOM_POLL = 0.002
MAX_FACT_QUEUE_BYTES = 64 * 1024 * 1024
"""About the most the facts waiting in the fact queue hold (see :class:`_FactSizes`)."""
# One fact in this many is measured.
_SAMPLE_EVERY = 32


class _FactSizes:
    """Bounds the fact queue in bytes without costing the caller anything: the worker
    measures one fact in ``_SAMPLE_EVERY`` and lowers the queue's count limit so that
    the facts it holds stay near ``MAX_FACT_QUEUE_BYTES`` (a larger fact raises the
    estimate at once; smaller ones lower it slowly)."""

    __slots__ = ("_countdown", "_estimate", "_limit", "_max_count", "_set_limit")

    def __init__(self, max_count: int, set_limit: Callable[[int], None] | None) -> None:
        self._max_count = max_count
        self._set_limit = set_limit
        self._countdown = 0
        self._estimate = 0.0
        self._limit = max_count

    @property
    def limit(self) -> int:
        """How many facts the fact queue admits now."""
        return self._limit

    def observe(self, fact: object) -> None:
        if self._set_limit is None:
            return
        if self._countdown:
            self._countdown -= 1
            return
        self._countdown = _SAMPLE_EVERY - 1
        from codex_telemetry._export._batching import estimate_size  # noqa: PLC0415

        size = estimate_size(fact)
        self._estimate = max(float(size), self._estimate * 0.9 + size * 0.1)
        limit = max(1, min(self._max_count, int(MAX_FACT_QUEUE_BYTES // self._estimate)))
        if limit != self._limit:
            self._limit = limit
            self._set_limit(limit)


def _at_most_capacity(sink: EventSink, count: int) -> int:
    """``count``, or fewer: never more events than ``sink``'s queue holds (its
    ``capacity``; a sink without one has no bound), since room for more never comes."""
    capacity = getattr(sink, "capacity", None)
    return count if capacity is None else max(1, min(count, capacity))


class Marker:
    """Put in the queue by ``flush``/``shutdown``; set when the worker reaches it."""

    __slots__ = ("deadline", "done", "stop")

    def __init__(self, *, stop: bool) -> None:
        self.stop = stop
        self.done = threading.Event()
        self.deadline = 0.0
        """When the waiter gives up (monotonic): the stop marker's backlog feeding ends."""


class Worker:
    """The fact queue and the one thread that empties it into the reducer and the sink.

    ``sink`` is the sink to use, or None to make one with ``sink_factory(delivery)`` on the
    worker's thread when it starts (a forked child). ``spool`` says where the durable
    spool is opened, on the worker's thread; None: no spool. ``set_queue_limit(count)``
    lowers (or restores, up to ``max_queue_size``) the fact queue's count limit to keep
    its bytes near ``MAX_FACT_QUEUE_BYTES``. Started at most once.
    """

    def __init__(
        self,
        *,
        sink: EventSink | None,
        sink_factory: Callable[[DeliveryCounters], EventSink] | None,
        delivery: DeliveryCounters,
        reducer_factory: Callable[[], AnalyticsReducer],
        errors: InternalErrors,
        spool: SpoolPlan | None = None,
        max_queue_size: int = 0,
        set_queue_limit: Callable[[int], None] | None = None,
    ) -> None:
        self.queue: SimpleQueue[Fact | Marker] = SimpleQueue()
        self.started = False
        """True once the thread was started (read without a lock on the hot path)."""
        self.ident: int | None = None
        """The worker thread's ident: a fact tracked from it would loop back."""
        self.stopped = False
        self.sink = sink
        self.delivery = delivery
        self.reducer: AnalyticsReducer | None = None
        self._sink_factory = sink_factory
        self._reducer_factory = reducer_factory
        self._errors = errors
        self.processed = Counter()
        self.produced = Counter()
        self.stranded = Counter()
        """Facts put in the queue after the worker stopped (see :meth:`reclaim_stranded`)."""
        self.sink_error_drops = Counter()
        """Events lost because the sink raised on them, or could not be made."""
        self._sink_error_drops_at_last_flush = 0
        self.hooks: EventHooks | None = None
        """The event type filter and ``before_send``, set by the client; None: none."""
        self._spool_plan = spool
        self.spool: Spool | None = None
        self.spooled = Counter()
        """Events appended to the spool."""
        self.replayed = Counter()
        """Events read back from the spool and handed to the sink."""
        self.kept = 0
        """Events left in the spool for the next process when it was closed."""
        self._spool_full_logged = False
        self._fact_sizes = _FactSizes(max_queue_size, set_queue_limit)
        self._unspooled: list[AnalyticsEvent] = []
        self._unspooled_times: list[int] = []
        # The worker says what was not delivered once it counted everything it handed to
        # the sink (events it hands over after the sink closed are dropped too).
        delivery.reporting.deferred = True

    def start(self) -> int:
        """Start the thread and return its ident; raises when it cannot (e.g. at
        interpreter shutdown)."""
        thread = start_thread(self._run, "codex-telemetry-worker")  # runs: its ident known
        assert thread.ident is not None
        self.ident = thread.ident
        self.started = True
        return thread.ident

    def reach(self, marker: Marker, timeout: float) -> bool:
        """Queue ``marker`` behind every fact so far; wait until the worker reaches it."""
        if not self.started:
            return True
        if self.ident == threading.get_ident():
            return False  # the worker cannot wait for itself
        marker.deadline = time.monotonic() + timeout
        self.queue.put(marker)
        return marker.done.wait(timeout)

    def flush_sink(self, timeout: float) -> bool:
        """Flush the sink; True when nothing was lost since the previous flush."""
        # Events the sink raised on were lost on our side of it: like the sinks' own
        # flushes, say False once for what was lost since the previous flush.
        lost = self.sink_error_drops.value
        clean = lost == self._sink_error_drops_at_last_flush
        self._sink_error_drops_at_last_flush = lost
        sink = self.sink
        if sink is None:
            return clean
        flushed = False
        with self._errors.handling("sink_flush", "flushing the sink"):
            flushed = bool(sink.force_flush(timeout))
        spool = self.spool
        # Events still in the spool's backlog were not delivered yet.
        return flushed and clean and not (spool is not None and spool.backlog)

    def close_spool(self, grace: float = 0.0) -> None:
        """After the sink's shutdown: let the worker count, within ``grace`` seconds,
        what it still hands to the closed sink; say once what was not delivered; close
        the spool and say how many events it keeps for the next process, and where."""
        if self.started and not self.stopped and self.ident != threading.get_ident():
            deadline = time.monotonic() + grace
            while not self.stopped and time.monotonic() < deadline:
                time.sleep(0.005)  # the closed sink refuses at once: the queue drains fast
        delivery = self.delivery
        unaccounted = (
            self.produced.value
            + self.replayed.value
            - delivery.exported.value
            - delivery.dropped.total
            - delivery.in_flight_at_exit.value
            - delivery.kept.value
        )
        # A sink still busy past its deadline has not counted everything: then the exit
        # line counts every event not delivered instead (see ``report_at_exit``).
        if delivery.reporting.deferred and (unaccounted <= 0 or self.spool is not None):
            delivery.reporting.deferred = False  # said once
            from codex_telemetry._export._batching import report_undelivered  # noqa: PLC0415

            report_undelivered(delivery, owner=True)
        spool, self.spool = self.spool, None
        if spool is None:
            return
        with self._errors.handling("spool_close", "closing the spool"):
            kept = spool.unsettled_events()
            directory = spool.stats().directory
            spool.close()
            self.kept = kept
            if kept and not spool.in_memory:
                # Where they were going: a user who expected them there learns which
                # destination did not take them in time.
                destination = delivery.context.destination
                _logger.warning(
                    "codex_telemetry: %d analytics events were kept in the spool (%s) and "
                    "will be sent by the next process that uses it%s; your program is "
                    "unaffected",
                    kept,
                    directory,
                    f": they had not reached {destination} before exit" if destination else "",
                )

    def forget_spool_after_fork(self) -> None:
        """In a forked child: let go of the parent's spool without touching its files."""
        spool, self.spool = self.spool, None
        if spool is not None:
            spool.close_after_fork()

    def reclaim_stranded(self) -> None:
        """Count what the lock-free path of ``track_fact`` put in the queue after the
        worker stopped (a thread that passed its check just before ``shutdown``) as
        dropped after shutdown instead of accepted, and let it go."""
        while True:
            try:
                item = self.queue.get_nowait()
            except Empty:
                return
            if type(item) is Marker:
                item.done.set()
            else:
                self.stranded.increment()

    # --- the worker's thread --------------------------------------------------------------

    def _run(self) -> None:
        with self._errors.in_charge():
            if self.sink is None and self._sink_factory is not None:
                # Only in a forked child: its sink is made here, off the caller's thread.
                with self._errors.handling("sink_create", "creating the sink"):
                    self.sink = self._sink_factory(self.delivery)
            reducer = None
            with self._errors.handling("reducer_create", "building the reducer"):
                reducer = self.reducer = self._reducer_factory()
            if self._spool_plan is not None and self.sink is not None:
                with self._errors.handling("spool_open", "opening the spool"):
                    self._open_spool(self._spool_plan, self.sink)
            self._loop(reducer)

    def _open_spool(self, plan: SpoolPlan, sink: EventSink) -> None:
        from codex_telemetry._spool import Spool  # noqa: PLC0415 - only a spooling worker

        make_durable = getattr(sink, "make_durable", None)
        if make_durable is None or not hasattr(sink, "has_room"):
            return
        spool = Spool.open(
            plan.key,
            root=plan.root,
            max_bytes=plan.max_bytes,
            label=plan.label,
            on_drop=self._on_spool_drop,
        )
        if spool.in_memory or not make_durable(spool.acknowledge):
            spool.close()  # the sink's queue waits for room instead, as without a spool
            return
        self.spool = spool

    def _on_spool_drop(self, count: int) -> None:
        self.delivery.dropped.add("spool_full", count)
        if not self._spool_full_logged:
            self._spool_full_logged = True
            _logger.warning(
                "codex_telemetry: the spool is full (spool.max_bytes); its oldest "
                "undelivered analytics events are dropped (counted spool_full); your "
                "program is unaffected"
            )

    def _loop(self, reducer: AnalyticsReducer | None) -> None:
        queue = self.queue
        next_claim = time.monotonic() + _CLAIM_INTERVAL
        while True:
            spool = self.spool
            if spool is None:
                item = queue.get()
            else:
                if spool.backlog:
                    self._feed_backlog(spool)
                try:
                    item = queue.get(timeout=_BACKLOG_POLL if spool.backlog else _CLAIM_INTERVAL)
                except Empty:
                    if time.monotonic() >= next_claim:
                        next_claim = time.monotonic() + _CLAIM_INTERVAL
                        spool.claim_orphans()
                    continue
            if type(item) is Marker:
                self._append_to_spool()
                if item.stop:
                    self._drain(reducer)
                    self._append_to_spool()
                    self._feed_backlog_until(item.deadline)
                    self.stopped = True
                    item.done.set()
                    return
                self._feed_backlog_until(item.deadline)  # a flush delivers the backlog too
                item.done.set()
                continue
            self._process(item, reducer)

    def _drain(self, reducer: AnalyticsReducer | None) -> None:
        """Process what raced in behind the stop marker, so no accepted fact is skipped."""
        while True:
            try:
                item = self.queue.get_nowait()
            except Empty:
                return
            if type(item) is Marker:
                item.done.set()
            else:
                self._process(item, reducer)

    def _process(self, fact: Any, reducer: AnalyticsReducer | None) -> None:
        self.processed.increment()
        self._fact_sizes.observe(fact)
        if reducer is None:
            return
        try:
            events = reducer.ingest(fact)
        except Exception:
            self._errors.report("reducer", f"reducing a {type(fact).__name__} fact")
            return
        if self.hooks is not None and events:
            events = self.hooks.apply(events)
        if not events:
            return
        self.produced.add(len(events))
        self._hand_over(events, time.time_ns())

    def _hand_over(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Give the sink ``events``: through the spool when there is one, which keeps them
        in its backlog instead while the sink has no room or older events still wait."""
        sink = self.sink
        if sink is None:
            self.sink_error_drops.add(len(events))
            return
        if self.spool is not None:
            # Events of facts that follow one another go to the spool with one write; the
            # last fact waiting (or a marker) writes them.
            self._unspooled += events
            self._unspooled_times += [timestamp_ns] * len(events)
            if len(self._unspooled) >= _at_most_capacity(sink, _APPEND_BATCH) or self.queue.empty():
                self._append_to_spool()
            return
        try:
            sink.export(events, timestamp_ns)
        except Exception:
            self.sink_error_drops.add(len(events))
            self._errors.report("sink", "handing events to the sink")

    def _append_to_spool(self) -> None:
        """Append the events waiting for the spool with one write, then hand them to the
        sink, or leave them in the spool's backlog while the sink has no room."""
        events, times = self._unspooled, self._unspooled_times
        spool, sink = self.spool, self.sink
        if not events or spool is None or sink is None:
            return
        self._unspooled, self._unspooled_times = [], []
        try:
            self.spooled.add(len(events))
            room = sink.has_room(len(events))  # type: ignore[attr-defined]
            # (Room for more than the sink's queue holds never comes: no use waiting.)
            if (
                not room
                and not spool.backlog
                and _at_most_capacity(sink, len(events)) == len(events)
            ):
                room = self._wait_for_room(sink, len(events))
            if not spool.append(events, times[0], hand_out=room, timestamps=times):
                return
            start = 0
            for end in range(1, len(events) + 1):  # one export per production time
                if end == len(events) or times[end] != times[start]:
                    sink.export(events[start:end], times[start])
                    start = end
        except Exception:
            self.sink_error_drops.add(len(events))
            self._errors.report("sink", "handing events to the sink")

    def _wait_for_room(self, sink: EventSink, count: int) -> bool:
        """Backpressure before the backlog: while more facts wait in the fact queue, wait
        (up to ``_ROOM_WAIT``) for the sink to make room for ``count`` events, so that a
        sink that is only slower than the facts arrive gets them from memory instead of
        reading them back from disk. False: leave them in the backlog (nothing else waits,
        the fact queue is three quarters full, or the sink is stuck)."""
        queue = self.queue
        high_water = max(1, self._fact_sizes.limit * 3 // 4)
        deadline = time.monotonic() + _ROOM_WAIT
        has_room = sink.has_room  # type: ignore[attr-defined]
        while True:
            waiting = queue.qsize()
            if not waiting or waiting >= high_water or time.monotonic() >= deadline:
                return False
            time.sleep(_ROOM_POLL)
            if has_room(count):
                return True

    # --- the spool's backlog ----------------------------------------------------------------

    def _feed_backlog(self, spool: Spool) -> None:
        """Hand the sink, oldest first, as much of the spool's backlog as it has room for."""
        sink = self.sink
        if sink is None:
            return
        count = _at_most_capacity(sink, _TAKE)
        while spool.backlog and sink.has_room(count):  # type: ignore[attr-defined]
            taken = spool.take(count)
            if not taken:
                return
            self.replayed.add(len(taken))
            try:
                # Each event goes with its own production time: export runs of one time.
                run: list[AnalyticsEvent] = []
                run_time = taken[0].timestamp_ns
                for spooled in taken:
                    try:
                        event = spooled.to_event()
                    except ValueError:  # a line no version of this SDK wrote: not sendable
                        self.delivery.dropped.add("spool_unreadable")
                        continue
                    if spooled.timestamp_ns != run_time and run:
                        sink.export(run, run_time)
                        run = []
                    run_time = spooled.timestamp_ns
                    run.append(event)
                if run:
                    sink.export(run, run_time)
            except Exception:
                self.sink_error_drops.add(len(taken))
                self._errors.report("sink", "handing spooled events to the sink")

    def _feed_backlog_until(self, deadline: float) -> None:
        """At flush and shutdown: claim what processes sharing the spool left (a
        ``multiprocessing`` child), and feed the backlog while the sink makes room,
        until ``deadline``."""
        spool = self.spool
        if spool is not None:
            spool.claim_orphans()
        while spool is not None and spool.backlog and time.monotonic() < deadline:
            self._feed_backlog(spool)
            if spool.backlog:
                time.sleep(_BACKLOG_POLL)
