"""The ``Telemetry`` client: a gate in front of the worker, its counters and lifecycle.

``track_fact`` runs on the caller's thread and does only cheap, non-blocking work: one
dict lookup decides what happens to a fact (:mod:`._gate`), and an accepted fact is put in
the worker's queue (:mod:`._worker`). The exit hook and fork handling are in
:mod:`._lifecycle`, the parts are built from settings in :mod:`._setup`, and every fault
goes through one policy (:mod:`._internal_errors`). Nothing here raises into the host
program after construction, except in strict mode. The module-level functions over the
default client are in :mod:`._client`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from codex_telemetry import _lifecycle, _notices, _setup
from codex_telemetry._export._base import DeliveryCounters, EventSink
from codex_telemetry._gate import (
    AFTER_SHUTDOWN_ROUTES,
    FILTER,
    FILTER_NOTICE,
    GENERAL_ANALYTICS_FACTS,
    Gate,
    routes,
)
from codex_telemetry._internal_errors import InternalErrors, RateLimitedLog
from codex_telemetry._stats import TelemetryStats
from codex_telemetry._worker import Marker, Worker

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider

    from codex_telemetry._hooks import EventHooks
    from codex_telemetry._reducer import AnalyticsReducer
    from codex_telemetry._settings import TelemetrySettings

__all__ = ["GENERAL_ANALYTICS_FACTS", "Telemetry", "delivery_of"]

_logger = logging.getLogger(__name__)
_get_ident = threading.get_ident
_DEFAULT_FLUSH_TIMEOUT: Final = 30.0


class Telemetry(Gate):
    """An SDK client: gates and queues facts, reduces them on one worker, exports events.

    Made by :func:`codex_telemetry.init`; build one directly to choose the sink
    (``sink=`` for a ready object, or ``sink_factory=`` called with the
    :class:`DeliveryCounters` the client reports, and called again in a forked child).
    Every method is safe to call from any thread.
    """

    def __init__(
        self,
        settings: TelemetrySettings | None = None,
        *,
        sink: EventSink | None = None,
        sink_factory: Callable[[DeliveryCounters], EventSink] | None = None,
        logger_provider: LoggerProvider | None = None,
        reducer_factory: Callable[[], AnalyticsReducer] | None = None,
    ) -> None:
        if settings is None:
            from codex_telemetry._settings import load_settings  # noqa: PLC0415 - start-up time

            settings = load_settings()
        self._settings = settings
        self._strict = self._settings.effective_strict()
        self._active = self._settings.enabled and (
            sink is not None or sink_factory is not None or self._settings.exporter != "none"
        )
        self._routes = routes(
            enabled=self._active, general_analytics=self._settings.general_analytics
        )
        # The routes to swap back in once nothing is due on a FILTER_NOTICE fact.
        self._plain_routes: dict[type, int] | None = None
        self._filtered_notice_due = False
        if self._settings.debug:  # each filtered fact gets its debug line
            self._routes = _with_filter_notice(self._routes)
        # Made from the settings: the notices may name its endpoint and settings.
        self._own_sink = sink is None and sink_factory is None and logger_provider is None
        # The spool only with our own sink: a given sink or provider cannot acknowledge.
        self._spool_plan = (
            _setup.spool_plan(self._settings)
            if self._active and sink is None and sink_factory is None and logger_provider is None
            else None
        )
        if sink_factory is None and sink is None:
            sink_factory = _setup.default_sink_factory(self._settings, logger_provider)
        self._sink_factory = sink_factory if sink is None else None
        self._sink_name = type(sink).__name__ if sink is not None else None
        self._reducer_factory = reducer_factory or _setup.default_reducer_factory(self._settings)
        self._max_queue = self._settings.max_queue_size
        self._instrumented: list[str] = []
        self._shutdown_result: bool | None = None
        self._shutdown_done = threading.Event()
        sink_now: EventSink | None = None
        delivery = self._new_delivery()
        errors = self._new_errors()
        if self._active:
            _setup.import_worker_modules()
            if sink is not None:
                sink_now = sink
                delivery = delivery_of(sink)
            else:
                assert self._sink_factory is not None
                with errors.in_charge():  # a sink may keep the policy for its own threads
                    sink_now = self._sink_factory(delivery)
        self._reset_state(sink_now, delivery, errors)
        if self._active:
            _lifecycle.register_fork_handler(self)
        if self._spool_plan is not None and _setup.has_spooled_events(self._spool_plan):
            # Events a previous process left go first, even if this one tracks nothing.
            self._start_worker()

    def _new_errors(self) -> InternalErrors:
        return InternalErrors(strict=self._strict, log=RateLimitedLog(_logger))

    def _new_delivery(self) -> DeliveryCounters:
        delivery = DeliveryCounters()
        if self._own_sink:
            delivery.context.destination = _notices.describe_destination(self._settings)
        return delivery

    def _dropped_facts(self) -> dict[str, int]:
        """Facts dropped before the queue, by reason (not ``disabled``), for the exit line."""
        dropped = dict(self._fact_counts(0)[3])
        dropped.pop("disabled", None)
        return dropped

    def _reset_state(
        self, sink: EventSink | None, delivery: DeliveryCounters, errors: InternalErrors
    ) -> None:
        """Fresh locks, queue, worker, dedupe keys and counters (at construction, and after
        fork)."""
        self._notices = _notices.Notices.for_settings(self._settings, own_sink=self._own_sink)
        delivery.dropped.watch(self._notices.events_dropped)
        delivery.context.facts_dropped = self._dropped_facts
        worker = Worker(
            sink=sink,
            sink_factory=self._sink_factory,
            delivery=delivery,
            reducer_factory=self._reducer_factory,
            errors=errors,
            spool=self._spool_plan,
            max_queue_size=self._settings.max_queue_size,
            set_queue_limit=self._limit_queue,
        )
        worker.hooks = _setup.event_hooks(self._settings, errors)
        self._max_queue = self._settings.max_queue_size
        self._reset_gate(worker, errors)

    def _limit_queue(self, count: int) -> None:
        """The worker's byte bound of the fact queue, as a count of facts of the size seen."""
        self._max_queue = count

    # --- public -------------------------------------------------------------------------

    @property
    def settings(self) -> TelemetrySettings:
        """The settings this client was built with."""
        return self._settings

    @property
    def enabled(self) -> bool:
        """True when facts are collected (not switched off, not ``exporter="none"``)."""
        return self._active

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything queued so far; True when it all was exported in time.

        ``timeout`` in seconds; None waits up to 30 s.
        """
        timeout = _lifecycle.bounded(_DEFAULT_FLUSH_TIMEOUT if timeout is None else timeout)
        if not self._active:
            return True
        if self._routes is AFTER_SHUTDOWN_ROUTES:
            return self._shutdown_outcome(timeout)
        deadline = time.monotonic() + timeout
        _lifecycle.claim_orphaned_events(self._worker)
        if not self._worker.reach(Marker(stop=False), timeout):
            return False
        return self._worker.flush_sink(max(0.0, deadline - time.monotonic()))

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` for asyncio programs: the wait runs in a thread of its own, so the
        event loop keeps serving other tasks meanwhile. Cancelled, it stops waiting at
        once; the flush goes on in the background, and ``asyncio.run`` does not wait for
        it (as it would for the loop's default executor)."""
        return await _in_own_thread(lambda: self.flush(timeout), "codex-telemetry-aflush")

    async def ashutdown(self, timeout: float | None = None) -> bool:
        """:meth:`shutdown` for asyncio programs, as :meth:`aflush` runs :meth:`flush`."""
        return await _in_own_thread(lambda: self.shutdown(timeout), "codex-telemetry-ashutdown")

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then stop the worker and the sink; True when everything was delivered.

        Waits at most ``timeout`` seconds (None: ``shutdown_timeout``). Idempotent: a
        later call returns the first call's result (waiting, within its own timeout, for
        a shutdown in progress on another thread). Facts tracked afterwards are counted
        as dropped ``after_shutdown``.
        """
        timeout = _lifecycle.bounded(
            self._settings.shutdown_timeout if timeout is None else timeout
        )
        if not self._close():
            return self._shutdown_outcome(timeout)
        deadline = time.monotonic() + timeout
        worker = self._worker
        try:
            self._uninstrument()
            _lifecycle.claim_orphaned_events(worker)
        finally:  # a strict-mode fault above is raised once the client is down
            drained = worker.reach(Marker(stop=True), timeout)
            delivered = True
            if worker.sink is not None:
                delivered = _lifecycle.call_with_deadline(
                    worker.sink.shutdown, max(0.0, deadline - time.monotonic()), self._errors
                )
            worker.close_spool(_lifecycle.SHUTDOWN_GRACE)  # what the sink did not settle
            _lifecycle.unregister_exit_hook(self._at_exit)
            result = drained and delivered and worker.sink_error_drops.value == 0
            self._shutdown_result = result
            self._shutdown_done.set()
        return result

    def _shutdown_outcome(self, timeout: float) -> bool:
        self._shutdown_done.wait(timeout)
        return bool(self._shutdown_result)

    def stats(self) -> TelemetryStats:
        """A snapshot of the counters; cheap, from any thread, at any time."""
        worker = self._worker
        if worker.stopped:
            worker.reclaim_stranded()
        stranded = worker.stranded.value
        reducer = worker.reducer
        evicted: Mapping[str, int] = MappingProxyType(
            dict(reducer.evictions) if reducer is not None else {}
        )
        events_dropped = dict(worker.delivery.dropped.snapshot())
        sink_errors = worker.sink_error_drops.value
        if sink_errors:
            events_dropped["sink_error"] = events_dropped.get("sink_error", 0) + sink_errors
        accepted, filtered, deduplicated, dropped = self._fact_counts(stranded)
        return TelemetryStats(
            facts_accepted=accepted,
            facts_filtered=filtered,
            facts_deduplicated=deduplicated,
            facts_dropped=dropped,
            facts_without_event=reducer.no_event if reducer is not None else {},
            turns_waiting=reducer.turns_waiting() if reducer is not None else {},
            events_produced=worker.produced.value,
            events_exported=worker.delivery.exported.value,
            events_dropped=MappingProxyType(events_dropped),
            events_in_flight_at_exit=worker.delivery.in_flight_at_exit.value,
            reducer_evicted=evicted,
            internal_errors=self._errors.count,
            notices=self._notices.counts(),
            **_hook_counts(worker.hooks),
            events_spooled=worker.spooled.value,
            events_replayed=worker.replayed.value,
            events_kept=worker.kept,
        )

    def __repr__(self) -> str:
        state = "shut down" if self._routes is AFTER_SHUTDOWN_ROUTES else "running"
        if not self._active:
            state = "disabled"
        if self._sink_name is not None:  # the exporter setting did not choose the sink
            return f"<Telemetry sink={self._sink_name} {state}>"
        return f"<Telemetry exporter={self._settings.exporter!r} {state}>"

    # --- lifecycle ------------------------------------------------------------------------

    def _on_worker_start(self) -> None:
        _lifecycle.register_exit_hook(self._at_exit, self._settings.shutdown_timeout)

    def _at_exit(self) -> None:
        """Shut down at interpreter exit and say what was not delivered."""
        with self._errors.in_charge():
            self.shutdown(self._settings.shutdown_timeout)
            _lifecycle.report_at_exit(
                self.stats(),
                self._worker.processed.value,
                self._settings.shutdown_timeout,
                _logger,
            )

    def _after_fork_in_child(self) -> None:
        """Start over in a forked child: nothing the parent queued is sent twice."""
        self._worker.forget_spool_after_fork()
        sink = self._worker.sink
        delivery = self._new_delivery()
        if self._routes is not AFTER_SHUTDOWN_ROUTES:
            self._shutdown_done = threading.Event()
            if self._sink_factory is not None:
                # The parent's sink (its threads, sockets and queued events) stays the
                # parent's; the child makes its own when its first fact arrives.
                _lifecycle.abandon_in_child(sink)
                sink = None
            else:
                delivery = delivery_of(sink)
        self._reset_state(sink, delivery, self._new_errors())

    def _instrument(self, names: Sequence[str]) -> None:
        if not self._settings.general_analytics:
            self._notice_filtered()
        for name in names:
            _setup.instrument(name, self)
            self._instrumented.append(name)

    def _notice_filtered(self) -> None:
        """Route flag-filtered facts through FILTER_NOTICE until the first one is told."""
        with self._lock:
            if self._routes is AFTER_SHUTDOWN_ROUTES or self._filtered_notice_due:
                return
            self._filtered_notice_due = True
            if FILTER in self._routes.values():
                self._plain_routes = self._routes
                self._routes = _with_filter_notice(self._routes)

    def _on_filtered(self, fact: object) -> None:
        if self._settings.debug:
            from codex_telemetry._explain import log_filtered  # noqa: PLC0415 - debug only

            log_filtered(fact)
        if not self._filtered_notice_due:
            return
        with self._lock:
            if not self._filtered_notice_due:
                return
            self._filtered_notice_due = False
            if self._plain_routes is not None and self._routes is not AFTER_SHUTDOWN_ROUTES:
                # Later filtered facts take the plain FILTER route: telling cost them nothing.
                self._routes = self._plain_routes
            self._plain_routes = None
        self._notices.filtered_while_instrumented(list(self._instrumented))

    def _uninstrument(self) -> None:
        try:
            for name in self._instrumented:
                doing = f"removing the {name!r} instrumentation"
                with self._errors.handling("uninstrument", doing):
                    _setup.uninstrument(name)
        finally:
            self._instrumented.clear()


def _with_filter_notice(table: dict[type, int]) -> dict[type, int]:
    return {cls: FILTER_NOTICE if route == FILTER else route for cls, route in table.items()}


def _hook_counts(hooks: EventHooks | None) -> dict[str, int]:
    if hooks is None:
        return {}
    return {
        "events_filtered_by_type": hooks.filtered.value,
        "events_dropped_by_before_send": hooks.dropped.value,
        "before_send_errors": hooks.failed.value,
    }


def delivery_of(sink: EventSink | None) -> DeliveryCounters:
    """A sink may expose the counters it reports through as ``delivery``."""
    delivery = getattr(sink, "delivery", None)
    return delivery if isinstance(delivery, DeliveryCounters) else DeliveryCounters()


async def _in_own_thread(call: Callable[[], bool], name: str) -> bool:
    """Await ``call()`` run in a daemon thread of its own.

    Not ``asyncio.to_thread``: its threads are the loop's default executor, which
    ``asyncio.run`` joins on the way out, so a cancelled flush against a dead collector
    held the program's exit for the whole flush timeout.
    """
    import asyncio  # noqa: PLC0415 - only asyncio programs pay for it

    from codex_telemetry._threads import start_thread  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def settle(result: bool | None, error: BaseException | None) -> None:
        if future.done():  # cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(bool(result))

    def run() -> None:
        result: bool | None = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as raised:  # strict mode: the caller gets it, as from flush()
            error = raised
        with contextlib.suppress(RuntimeError):  # the loop closed while it ran
            loop.call_soon_threadsafe(settle, result, error)

    start_thread(run, name)
    return await future
