"""The client: gate and dedupe in front of a bounded queue, one worker, and the lifecycle.

``track_fact`` runs on the caller's thread and does only cheap, non-blocking work: one
dict lookup decides what happens to a fact (disabled, filtered by the GeneralAnalytics
flag, deduplicated, dropped or queued). A single daemon worker, started with the first
queued fact, runs the reducer and hands events to the sink. Nothing here raises into the
host program after construction, except ``TypeError`` for a non-fact in strict mode.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from queue import Empty, SimpleQueue
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, get_args

from codex_telemetry._errors import ConfigurationError
from codex_telemetry._export._base import DeliveryCounters, EventSink

# Imported with the client (by init()), not by the worker as it starts: a thread that
# imports modules holds the GIL for long stretches, which the caller's first facts felt.
from codex_telemetry._reducer import AnalyticsReducer, ReducerLimits
from codex_telemetry._runtime import current_runtime
from codex_telemetry._stats import Counter, TelemetryStats, count_value
from codex_telemetry.facts import (
    AppMentioned,
    AppUsed,
    Compaction,
    ErrorResponse,
    Fact,
    Initialize,
    Notification,
    PluginUsed,
    Request,
    Response,
    SkillInvoked,
    SubAgentThreadStarted,
    TurnResolvedConfig,
    TurnTokenUsage,
)

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider

    from codex_telemetry._settings import TelemetrySettings

__all__ = ["GENERAL_ANALYTICS_FACTS", "Telemetry", "init", "shutdown", "track_fact"]

_logger = logging.getLogger(__name__)
_get_ident = threading.get_ident

GENERAL_ANALYTICS_FACTS: Final[frozenset[type]] = frozenset(
    {
        Initialize,
        Request,
        Response,
        ErrorResponse,
        Notification,
        SubAgentThreadStarted,
        TurnResolvedConfig,
        TurnTokenUsage,
        Compaction,
    }
)
"""The fact types gated by the GeneralAnalytics feature flag (events.md section 5)."""

_FACT_TYPES: Final[tuple[type, ...]] = get_args(Fact)
_DEDUPE_CAPACITY: Final = 4096
_DEFAULT_FLUSH_TIMEOUT: Final = 30.0
# Extra time granted to a sink's shutdown beyond what the caller asked, so that a sink
# that honours its timeout exactly is not reported as hung. It must exceed the time the
# batching sinks themselves take past their deadline (``_batching._JOIN_GRACE``, 0.1 s)
# to give up on a request still in flight and say what was lost: cut shorter, exit
# logged a second, partial count over the sink's own report.
_SHUTDOWN_GRACE: Final = 0.25
_LOG_INTERVAL: Final = 60.0

# What track_fact does with a fact, by its type. Small ints: the hot path compares them.
_ACCEPT: Final = 0
_FILTER: Final = 1
_DISABLED: Final = 2
_AFTER_SHUTDOWN: Final = 3
_APP_USED: Final = 4
_PLUGIN_USED: Final = 5
_SKILLS: Final = 6
_MENTIONS: Final = 7

_DROP_REASONS: Final = (
    "queue_full",
    "invalid",
    "after_shutdown",
    "empty",
    "reentrant",
    "no_worker",
)


def _routes(*, enabled: bool, general_analytics: bool) -> dict[type, int]:
    if not enabled:
        return dict.fromkeys(_FACT_TYPES, _DISABLED)
    routes = dict.fromkeys(_FACT_TYPES, _ACCEPT)
    if not general_analytics:
        routes.update(dict.fromkeys(GENERAL_ANALYTICS_FACTS, _FILTER))
    routes[AppUsed] = _APP_USED
    routes[PluginUsed] = _PLUGIN_USED
    routes[SkillInvoked] = _SKILLS
    routes[AppMentioned] = _MENTIONS
    return routes


_AFTER_SHUTDOWN_ROUTES: Final = dict.fromkeys(_FACT_TYPES, _AFTER_SHUTDOWN)


class _Marker:
    """Put in the queue by ``flush``/``shutdown``; set when the worker reaches it."""

    __slots__ = ("done", "stop")

    def __init__(self, *, stop: bool) -> None:
        self.stop = stop
        self.done = threading.Event()


class _RateLimitedLog:
    """Logs the first occurrence of each problem, then at most once per interval.

    A thread-local guard keeps a logging handler that ends up back in the SDK from
    recursing into another report.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._guard = threading.local()

    def error(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        if getattr(self._guard, "active", False):
            return
        now = time.monotonic()
        with self._lock:
            if now < self._next.get(key, 0.0):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._next[key] = now + _LOG_INTERVAL
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += f" ({suppressed} similar reports suppressed)"
        self._guard.active = True
        try:
            _logger.error(message, *args, exc_info=exc_info)
        except Exception:  # a broken logging handler is not ours to crash on
            pass
        finally:
            self._guard.active = False


class Telemetry:
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
        from codex_telemetry._settings import load_settings  # noqa: PLC0415 - pydantic-settings

        self._settings = settings if settings is not None else load_settings()
        self._strict = self._settings.effective_strict()
        self._active = self._settings.enabled and (
            sink is not None or sink_factory is not None or self._settings.exporter != "none"
        )
        self._routes = _routes(
            enabled=self._active, general_analytics=self._settings.general_analytics
        )
        if sink_factory is None and sink is None:
            sink_factory = _default_sink_factory(self._settings, logger_provider)
        self._sink_factory = sink_factory if sink is None else None
        self._reducer_factory = reducer_factory or _default_reducer_factory(self._settings)
        self._max_queue = self._settings.max_queue_size
        self._instrumented: list[str] = []
        self._shutdown_result: bool | None = None
        self._shutdown_done = threading.Event()
        self._reset_state()
        self._sink: EventSink | None = None
        if self._active:
            if sink is not None:
                self._sink = sink
                self._delivery = _delivery_of(sink)
            else:
                assert self._sink_factory is not None
                self._sink = self._sink_factory(self._delivery)
            _register_fork_handler(self)

    def _reset_state(self) -> None:
        """Fresh locks, queue, dedupe keys and counters (at construction, and after fork)."""
        self._lock = threading.Lock()
        self._dedupe_lock = threading.Lock()
        self._log = _RateLimitedLog()
        self._queue: SimpleQueue[Fact | _Marker] = SimpleQueue()
        self._worker: threading.Thread | None = None
        self._worker_started = False
        self._worker_ident: int | None = None
        self._reducer: AnalyticsReducer | None = None
        self._app_keys: set[tuple[str, str]] = set()
        self._plugin_keys: set[tuple[str, str]] = set()
        self._delivery = DeliveryCounters()
        self._accepted = itertools.count()
        # The counters the hot path bumps are bare itertools.count objects: next()
        # on one is a single C call, atomic under the GIL (see _stats.Counter).
        self._filtered = itertools.count()
        self._disabled = itertools.count()
        self._deduplicated = Counter()
        self._dropped = {reason: Counter() for reason in _DROP_REASONS}
        self._produced = Counter()
        self._processed = Counter()
        # Facts put in the queue after the worker stopped (see _reclaim_stranded).
        self._stranded = Counter()
        self._worker_stopped = False
        self._internal_errors = Counter()
        self._sink_error_drops = Counter()
        self._sink_error_drops_at_last_flush = 0

    # --- public -------------------------------------------------------------------------

    @property
    def settings(self) -> TelemetrySettings:
        """The settings this client was built with."""
        return self._settings

    @property
    def enabled(self) -> bool:
        """True when facts are collected (not switched off, not ``exporter="none"``)."""
        return self._active

    def track_fact(self, fact: Fact) -> None:
        """Report one fact. Never blocks, never does I/O, never raises (except strict mode).

        A value that is not a fact is counted and logged, or raises ``TypeError`` when
        ``strict`` is on (the default under pytest).
        """
        route = self._routes.get(type(fact))
        if route == _FILTER:
            next(self._filtered)
        elif route == _DISABLED:
            next(self._disabled)
        elif route == _ACCEPT:
            # _enqueue's common case, inline: one Python call fewer per fact.
            queue = self._queue
            if (
                self._worker_started
                and queue.qsize() < self._max_queue
                and self._worker_ident != _get_ident()
            ):
                next(self._accepted)
                queue.put(fact)
            else:
                self._enqueue(fact)
        else:
            self._track_special(fact, route)

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything queued so far; True when it all was exported in time.

        ``timeout`` in seconds; None waits up to 30 s.
        """
        timeout = _bounded(_DEFAULT_FLUSH_TIMEOUT if timeout is None else timeout)
        if not self._active:
            return True
        if self._routes is _AFTER_SHUTDOWN_ROUTES:
            return self._shutdown_outcome(timeout)
        deadline = time.monotonic() + timeout
        if not self._reach_marker(_Marker(stop=False), timeout):
            return False
        # Events the sink raised on were lost on our side of it: like the sinks' own
        # flushes, say False once for what was lost since the previous flush.
        lost = self._sink_error_drops.value
        clean = lost == self._sink_error_drops_at_last_flush
        self._sink_error_drops_at_last_flush = lost
        sink = self._sink
        if sink is None:
            return clean
        try:
            return bool(sink.force_flush(max(0.0, deadline - time.monotonic()))) and clean
        except Exception:
            self._internal_error("flushing the sink")
            return False

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then stop the worker and the sink; True when everything was delivered.

        Waits at most ``timeout`` seconds (None: ``shutdown_timeout``). Idempotent: a
        later call returns the first call's result (waiting, within its own timeout, for
        a shutdown in progress on another thread). Facts tracked afterwards are counted
        as dropped ``after_shutdown``.
        """
        timeout = _bounded(self._settings.shutdown_timeout if timeout is None else timeout)
        with self._lock:
            first = self._routes is not _AFTER_SHUTDOWN_ROUTES
            self._routes = _AFTER_SHUTDOWN_ROUTES
        if not first:
            return self._shutdown_outcome(timeout)
        deadline = time.monotonic() + timeout
        self._uninstrument()
        drained = self._reach_marker(_Marker(stop=True), timeout)
        delivered = True
        sink = self._sink
        if sink is not None:
            delivered = _call_with_deadline(sink.shutdown, max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(Exception):  # the interpreter may be finalising
            atexit.unregister(self._at_exit)
        self._shutdown_result = drained and delivered and self._sink_error_drops.value == 0
        self._shutdown_done.set()
        return self._shutdown_result

    def _shutdown_outcome(self, timeout: float) -> bool:
        self._shutdown_done.wait(timeout)
        return bool(self._shutdown_result)

    def stats(self) -> TelemetryStats:
        """A snapshot of the counters; cheap, from any thread, at any time."""
        if self._worker_stopped:
            self._reclaim_stranded()
        stranded = self._stranded.value
        reducer = self._reducer
        evicted: Mapping[str, int] = MappingProxyType(
            dict(reducer.evictions) if reducer is not None else {}
        )
        events_dropped = dict(self._delivery.dropped.snapshot())
        sink_errors = self._sink_error_drops.value
        if sink_errors:
            events_dropped["sink_error"] = events_dropped.get("sink_error", 0) + sink_errors
        return TelemetryStats(
            facts_accepted=count_value(self._accepted) - stranded,
            facts_filtered=count_value(self._filtered),
            facts_deduplicated=self._deduplicated.value,
            facts_dropped=MappingProxyType(
                {
                    **{reason: counter.value for reason, counter in self._dropped.items()},
                    "after_shutdown": self._dropped["after_shutdown"].value + stranded,
                    "disabled": count_value(self._disabled),
                }
            ),
            events_produced=self._produced.value,
            events_exported=self._delivery.exported.value,
            events_dropped=MappingProxyType(events_dropped),
            reducer_evicted=evicted,
            internal_errors=self._internal_errors.value,
        )

    def __repr__(self) -> str:
        state = "shut down" if self._routes is _AFTER_SHUTDOWN_ROUTES else "running"
        if not self._active:
            state = "disabled"
        return f"<Telemetry exporter={self._settings.exporter!r} {state}>"

    # --- the caller's side ----------------------------------------------------------------

    def _track_special(self, fact: Any, route: int | None) -> None:
        if route in (_APP_USED, _PLUGIN_USED, _SKILLS, _MENTIONS):
            # The fields read here are the caller's value, read on the caller's thread: a
            # fact that lacks them (built around validation) is refused, never raised on.
            try:
                if route == _APP_USED:
                    connector_id = fact.app.connector_id
                    key = None if connector_id is None else (fact.tracking.turn_id, connector_id)
                elif route == _PLUGIN_USED:
                    key = (fact.tracking.turn_id, fact.plugin.key)
                else:
                    key = None
                    empty = not (fact.invocations if route == _SKILLS else fact.mentions)
                hash(key)
            except Exception:
                self._refuse(fact, "a malformed ")
                return
            if route in (_SKILLS, _MENTIONS) and empty:
                self._dropped["empty"].increment()
            elif key is None or self._first_time(
                self._app_keys if route == _APP_USED else self._plugin_keys, key
            ):
                self._enqueue(fact)
        elif route == _AFTER_SHUTDOWN:
            self._dropped["after_shutdown"].increment()
        else:
            base = next((cls for cls in type(fact).__mro__ if cls in self._routes), None)
            if base is not None:  # a subclass of a fact type: treat it as its base
                self._route_as(base, fact)
            else:
                self._refuse(fact)

    def _route_as(self, base: type, fact: Any) -> None:
        route = self._routes[base]
        if route == _FILTER:
            next(self._filtered)
        elif route == _ACCEPT:
            self._enqueue(fact)
        elif route == _DISABLED:
            next(self._disabled)
        else:
            self._track_special(fact, route)

    def _first_time(self, keys: set[tuple[str, str]], key: tuple[str, str]) -> bool:
        with self._dedupe_lock:
            if key in keys:
                self._deduplicated.increment()
                return False
            if len(keys) >= _DEDUPE_CAPACITY:
                keys.clear()
            keys.add(key)
            return True

    def _refuse(self, value: object, malformed: str = "") -> None:
        self._dropped["invalid"].increment()
        message = (
            "codex_telemetry.track_fact() takes a fact from codex_telemetry.facts, "
            f"not {malformed}{type(value).__module__}.{type(value).__qualname__}"
        )
        if self._strict:
            raise TypeError(message)
        self._log.error("invalid", "codex_telemetry: %s; it was dropped", message)

    def _enqueue(self, fact: Fact) -> None:
        # qsize() then put() may overshoot the bound by the number of racing threads;
        # that keeps the hot path lock-free and the queue still bounded.
        if self._queue.qsize() >= self._max_queue:
            self._dropped["queue_full"].increment()
            return
        if not self._worker_started and not self._start_worker():
            return
        if self._worker_ident == _get_ident():
            # Tracked from inside the pipeline (a logging handler or a sink): looping
            # it back would feed the SDK its own output.
            self._dropped["reentrant"].increment()
            return
        next(self._accepted)
        self._queue.put(fact)

    def _start_worker(self) -> bool:
        with self._lock:
            if self._routes is _AFTER_SHUTDOWN_ROUTES:
                self._dropped["after_shutdown"].increment()
                return False
            if self._worker_started:
                return True
            try:
                worker = threading.Thread(
                    target=self._run, name="codex-telemetry-worker", daemon=True
                )
                worker.start()
            except Exception:  # e.g. no new threads while the interpreter shuts down
                self._dropped["no_worker"].increment()
                self._internal_error("starting the worker")
                return False
            self._worker = worker
            self._worker_started = True
            atexit.unregister(self._at_exit)
            atexit.register(self._at_exit)
            return True

    def _reach_marker(self, marker: _Marker, timeout: float) -> bool:
        """Queue ``marker`` behind every fact so far; wait until the worker reaches it."""
        if not self._worker_started:
            return True
        if self._worker_ident == _get_ident():
            return False  # the worker cannot wait for itself
        self._queue.put(marker)
        return marker.done.wait(timeout)

    # --- the worker's side ----------------------------------------------------------------

    def _run(self) -> None:
        self._worker_ident = threading.get_ident()
        queue = self._queue
        if self._sink is None and self._sink_factory is not None:
            # Only in a forked child: its sink is made here, off the caller's thread.
            try:
                self._sink = self._sink_factory(self._delivery)
            except Exception:
                self._internal_error("creating the sink")
        try:
            reducer = self._reducer = self._reducer_factory()
        except Exception:
            self._internal_error("building the reducer")
            reducer = None
        while True:
            item = queue.get()
            if type(item) is _Marker:
                if item.stop:
                    self._drain(queue, reducer)
                    self._worker_stopped = True
                    item.done.set()
                    return
                item.done.set()
                continue
            self._process(item, reducer)

    def _drain(self, queue: SimpleQueue[Fact | _Marker], reducer: AnalyticsReducer | None) -> None:
        """Process what raced in behind the stop marker, so no accepted fact is skipped."""
        while True:
            try:
                item = queue.get_nowait()
            except Empty:
                return
            if type(item) is _Marker:
                item.done.set()
            else:
                self._process(item, reducer)

    def _reclaim_stranded(self) -> None:
        """Count what the lock-free path of ``track_fact`` put in the queue after the
        worker stopped (a thread that passed its check just before ``shutdown``) as
        dropped after shutdown instead of accepted, and let it go."""
        while True:
            try:
                item = self._queue.get_nowait()
            except Empty:
                return
            if type(item) is _Marker:
                item.done.set()
            else:
                self._stranded.increment()

    def _process(self, fact: Any, reducer: AnalyticsReducer | None) -> None:
        self._processed.increment()
        if reducer is None:
            return
        try:
            events = reducer.ingest(fact)
        except Exception:
            self._internal_error(f"reducing a {type(fact).__name__} fact")
            return
        if not events:
            return
        self._produced.add(len(events))
        sink = self._sink
        if sink is None:
            self._sink_error_drops.add(len(events))
            return
        try:
            sink.export(events, time.time_ns())
        except Exception:
            self._sink_error_drops.add(len(events))
            self._internal_error("handing events to the sink")

    def _internal_error(self, doing: str) -> None:
        self._internal_errors.increment()
        self._log.error(
            doing,
            "codex_telemetry: internal error while %s; your code is unaffected",
            doing,
            exc_info=True,
        )

    # --- lifecycle ------------------------------------------------------------------------

    def _at_exit(self) -> None:
        self.shutdown(self._settings.shutdown_timeout)
        # The sink reports, once, the events it was given but could not deliver; this
        # adds only what it cannot know: events it never finished taking, and facts the
        # worker had not reduced yet when the time was up.
        stats = self.stats()
        stuck = stats.events_produced - stats.events_exported - stats.events_dropped_total
        unreduced = stats.facts_accepted - self._processed.value
        if stuck > 0 or unreduced > 0:
            # A sink that did not finish its shutdown has not reported what it dropped
            # either: count every event not delivered, so that this one line is the total.
            undelivered = stats.events_produced - stats.events_exported if stuck > 0 else 0
            if undelivered <= 0:
                # The sink said what it lost, if anything: a second "not delivered" line
                # (of 0 events) would only contradict it.
                _logger.warning(
                    "codex_telemetry: %d facts were not processed before exit "
                    "(shutdown_timeout %.1f s reached); your program is unaffected",
                    unreduced,
                    self._settings.shutdown_timeout,
                )
                return
            _logger.warning(
                "codex_telemetry: %d analytics events were not delivered before exit, and "
                "%d facts were not processed (shutdown_timeout %.1f s reached); "
                "your program is unaffected",
                undelivered,
                max(unreduced, 0),
                self._settings.shutdown_timeout,
            )

    def _after_fork_in_child(self) -> None:
        """Start over in a forked child: nothing the parent queued is sent twice."""
        closed = self._routes is _AFTER_SHUTDOWN_ROUTES
        self._reset_state()
        if closed:
            return
        self._shutdown_done = threading.Event()
        # The parent's sink (its threads, sockets and queued events) stays the parent's;
        # the child makes its own when its first fact arrives.
        if self._sink_factory is not None:
            # Kept referenced, never closed: collecting it could flush the parent's
            # buffered output a second time from the child.
            _abandoned_in_child.append(self._sink)
            self._sink = None
        else:
            self._delivery = _delivery_of(self._sink)

    def _instrument(self, names: Sequence[str]) -> None:
        from codex_telemetry import _instrumentation  # noqa: PLC0415 - it patches libraries

        for name in names:
            try:
                _instrumentation.instrument(name, self)
            except ValueError as error:
                raise ConfigurationError([f"instrument: {error}"]) from None
            self._instrumented.append(name)

    def _uninstrument(self) -> None:
        if not self._instrumented:
            return
        from codex_telemetry import _instrumentation  # noqa: PLC0415

        for name in self._instrumented:
            try:
                _instrumentation.uninstrument(name)
            except Exception:
                self._internal_error(f"removing the {name!r} instrumentation")
        self._instrumented.clear()


def _bounded(timeout: float) -> float:
    """``timeout`` as the threading primitives accept it: an infinite or huge one would
    raise ``OverflowError`` into the caller, a NaN or negative one means "do not wait".
    Half the platform's limit leaves room for the graces added on top (still years)."""
    if not timeout > 0.0:
        return 0.0
    return min(timeout, threading.TIMEOUT_MAX / 2)


def _delivery_of(sink: EventSink | None) -> DeliveryCounters:
    """A sink may expose the counters it reports through as ``delivery``."""
    delivery = getattr(sink, "delivery", None)
    return delivery if isinstance(delivery, DeliveryCounters) else DeliveryCounters()


def _default_sink_factory(
    settings: TelemetrySettings, logger_provider: LoggerProvider | None
) -> Callable[[DeliveryCounters], EventSink]:
    def create(delivery: DeliveryCounters) -> EventSink:
        # Imported here so that ``import codex_telemetry`` does not import exporters.
        from codex_telemetry._export._factory import create_sink  # noqa: PLC0415

        return create_sink(settings, delivery, logger_provider)

    return create


def _default_reducer_factory(settings: TelemetrySettings) -> Callable[[], AnalyticsReducer]:
    def create() -> AnalyticsReducer:
        return AnalyticsReducer(
            originator=settings.originator,
            runtime=current_runtime(settings.runtime_version),
            limits=ReducerLimits(**settings.reducer.given()),
        )

    return create


def _call_with_deadline(method: Callable[[float], bool], timeout: float) -> bool:
    """Call ``method(timeout)`` but return after ``timeout`` even if it hangs."""
    result: list[bool] = []

    def call() -> None:
        try:
            result.append(bool(method(timeout)))
        except Exception:
            _logger.exception(
                "codex_telemetry: the sink failed to shut down; your code is unaffected"
            )
            result.append(False)

    helper = threading.Thread(target=call, name="codex-telemetry-shutdown", daemon=True)
    try:
        helper.start()
    except RuntimeError:  # no new threads during interpreter finalisation
        call()
        return bool(result and result[0])
    helper.join(timeout + _SHUTDOWN_GRACE)
    return bool(result and result[0])


# --- fork -------------------------------------------------------------------------------

_forkable: weakref.WeakSet[Telemetry] = weakref.WeakSet()
_abandoned_in_child: list[EventSink | None] = []
_fork_handler_registered = False


def _after_fork_in_child() -> None:
    for client in list(_forkable):
        client._after_fork_in_child()


def _register_fork_handler(client: Telemetry) -> None:
    global _fork_handler_registered  # noqa: PLW0603 - one process-wide hook
    _forkable.add(client)
    if not _fork_handler_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_handler_registered = True


# --- the default client -----------------------------------------------------------------

_default: Telemetry | None = None
_default_lock = threading.Lock()


def init(
    *,
    logger_provider: LoggerProvider | None = None,
    instrument: Sequence[str] = (),
    **overrides: Any,
) -> Telemetry:
    """Configure the SDK once and return its client (also the default for :func:`track_fact`).

    Any :class:`TelemetrySettings` field is a keyword (``otlp={"endpoint": ...}`` or
    ``otlp__endpoint=...`` for a nested one); an argument given as None counts as not
    given. ``logger_provider``: an OpenTelemetry ``LoggerProvider`` of your own for the
    ``otlp`` exporter. ``instrument``: names of instrumentations to switch on
    (``"openai_codex"``). Calling ``init()`` again shuts the previous client down first.

    Raises :class:`ConfigurationError` for a bad setting, naming it and its variable.
    """
    global _default  # the module-level facade needs one client
    names = (instrument,) if isinstance(instrument, str) else tuple(instrument)
    from codex_telemetry._settings import load_settings  # noqa: PLC0415 - pydantic-settings

    settings = load_settings(**overrides)
    _check_instrumentation_names(names)
    try:
        client = Telemetry(settings, logger_provider=logger_provider)
    except ConfigurationError:
        raise
    except OSError as error:
        # The only sink that opens something at construction is the file sink.
        setting = "file.path (CODEX_TELEMETRY_FILE__PATH)"
        if settings.exporter != "file":
            setting = "exporter (CODEX_TELEMETRY_EXPORTER)"
        raise ConfigurationError([f"{setting}: cannot open: {error}"]) from None
    except ValueError as error:
        raise ConfigurationError(
            [f"exporter (CODEX_TELEMETRY_EXPORTER): cannot create the sink: {error}"]
        ) from None
    with _default_lock:
        previous, _default = _default, client
    if previous is not None:
        previous.shutdown()
    if names and client.enabled:
        try:
            client._instrument(names)
        except ConfigurationError:
            client.shutdown(0)
            raise
    return client


def _check_instrumentation_names(names: Sequence[str]) -> None:
    """Raise for an unknown name before anything changes (a disabled SDK instruments
    nothing, but a typo is still a configuration error)."""
    if not names:
        return
    # Only the names are checked: the instrumentation modules stay unimported.
    from codex_telemetry._instrumentation import check_name  # noqa: PLC0415

    problems = []
    for name in names:
        try:
            check_name(name)
        except ValueError as error:
            problems.append(f"instrument: {error}")
    if problems:
        raise ConfigurationError(problems)


def track_fact(fact: Fact) -> None:
    """Report a fact to the client made by :func:`init`; does nothing before ``init()``."""
    client = _default
    if client is None:
        return
    # Telemetry.track_fact, repeated here so that a fact costs one Python call, not two:
    # this facade is what programs call on their hot paths.
    route = client._routes.get(type(fact))
    if route == _FILTER:
        next(client._filtered)
    elif route == _DISABLED:
        next(client._disabled)
    elif route == _ACCEPT:
        queue = client._queue
        if (
            client._worker_started
            and queue.qsize() < client._max_queue
            and client._worker_ident != _get_ident()
        ):
            next(client._accepted)
            queue.put(fact)
        else:
            client._enqueue(fact)
    else:
        client._track_special(fact, route)


def shutdown(timeout: float | None = None) -> bool:
    """Shut the default client down (see :meth:`Telemetry.shutdown`); True without one."""
    client = _default
    return True if client is None else client.shutdown(timeout)


def _swap_default(client: Telemetry | None) -> Telemetry | None:
    """Install ``client`` as the default without shutting the previous one down."""
    global _default
    with _default_lock:
        previous, _default = _default, client
    return previous
