"""The queue and the worker: one daemon thread reduces facts and hands events to the sink.

The caller's side only puts facts in :attr:`Worker.queue` (``SimpleQueue.put`` never
blocks); ``flush`` and ``shutdown`` put a :class:`Marker` behind them and wait until the
worker reaches it. The worker owns the reducer and, in a forked child, makes the sink. A
fault in the reducer or the sink is reported to the client's internal-error policy and
the worker goes on: the worker thread runs in that policy's charge, so nothing is raised
there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from codex_telemetry._stats import Counter

if TYPE_CHECKING:
    from codex_telemetry._export._base import DeliveryCounters, EventSink
    from codex_telemetry._hooks import EventHooks
    from codex_telemetry._internal_errors import InternalErrors
    from codex_telemetry._reducer import AnalyticsReducer
    from codex_telemetry.facts import Fact

__all__ = ["Marker", "Worker"]


class Marker:
    """Put in the queue by ``flush``/``shutdown``; set when the worker reaches it."""

    __slots__ = ("done", "stop")

    def __init__(self, *, stop: bool) -> None:
        self.stop = stop
        self.done = threading.Event()


class Worker:
    """The fact queue and the one thread that empties it into the reducer and the sink.

    ``sink`` is the sink to use, or None to make one with ``sink_factory(delivery)`` on the
    worker's thread when it starts (a forked child). Started at most once.
    """

    def __init__(
        self,
        *,
        sink: EventSink | None,
        sink_factory: Callable[[DeliveryCounters], EventSink] | None,
        delivery: DeliveryCounters,
        reducer_factory: Callable[[], AnalyticsReducer],
        errors: InternalErrors,
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

    def start(self) -> int:
        """Start the thread and return its ident; raises when it cannot (e.g. at
        interpreter shutdown)."""
        thread = threading.Thread(target=self._run, name="codex-telemetry-worker", daemon=True)
        thread.start()  # returns once the thread runs, its ident known
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
        return flushed and clean

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
            self._loop(reducer)

    def _loop(self, reducer: AnalyticsReducer | None) -> None:
        queue = self.queue
        while True:
            item = queue.get()
            if type(item) is Marker:
                if item.stop:
                    self._drain(reducer)
                    self.stopped = True
                    item.done.set()
                    return
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
        sink = self.sink
        if sink is None:
            self.sink_error_drops.add(len(events))
            return
        try:
            sink.export(events, time.time_ns())
        except Exception:
            self.sink_error_drops.add(len(events))
            self._errors.report("sink", "handing events to the sink")
