"""The public face: the ``Telemetry`` client, and ``init``/``track_fact``/``shutdown``.

``track_fact`` runs on the caller's thread and does only cheap, non-blocking work: one
dict lookup decides what happens to a fact (:mod:`._gate`), and an accepted fact is put in
the worker's queue (:mod:`._worker`). The exit hook and fork handling are in
:mod:`._lifecycle`, the parts are built from settings in :mod:`._setup`, and every fault
goes through one policy (:mod:`._internal_errors`). Nothing here raises into the host
program after construction, except in strict mode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from codex_telemetry import _lifecycle, _notices, _setup
from codex_telemetry._export._base import DeliveryCounters, EventSink
from codex_telemetry._gate import (
    ACCEPT,
    AFTER_SHUTDOWN_ROUTES,
    DISABLED,
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
    from typing import Unpack

    from opentelemetry.sdk._logs import LoggerProvider

    from codex_telemetry._hooks import EventHooks
    from codex_telemetry._init_options import InitOptions
    from codex_telemetry._reducer import AnalyticsReducer
    from codex_telemetry._settings import TelemetrySettings
    from codex_telemetry.facts import Fact

__all__ = [
    "GENERAL_ANALYTICS_FACTS",
    "Telemetry",
    "ashutdown",
    "init",
    "shutdown",
    "track_fact",
]

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
            if sink is not None:
                sink_now = sink
                delivery = _delivery_of(sink)
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
        """:meth:`flush` for asyncio programs: the wait runs in a thread, so the event loop
        keeps serving other tasks meanwhile."""
        import asyncio  # noqa: PLC0415 - only asyncio programs pay for it

        return await asyncio.to_thread(self.flush, timeout)

    async def ashutdown(self, timeout: float | None = None) -> bool:
        """:meth:`shutdown` for asyncio programs: the wait runs in a thread, so the event
        loop keeps serving other tasks meanwhile."""
        import asyncio  # noqa: PLC0415 - only asyncio programs pay for it

        return await asyncio.to_thread(self.shutdown, timeout)

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
                delivery = _delivery_of(sink)
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


def _delivery_of(sink: EventSink | None) -> DeliveryCounters:
    """A sink may expose the counters it reports through as ``delivery``."""
    delivery = getattr(sink, "delivery", None)
    return delivery if isinstance(delivery, DeliveryCounters) else DeliveryCounters()


# --- the default client -----------------------------------------------------------------

_default: Telemetry | None = None
_default_lock = threading.Lock()


class _Capture(Protocol):
    def init(
        self, overrides: Mapping[str, Any], instrument: Sequence[str], logger_provider: object
    ) -> Telemetry: ...


_capture: _Capture | None = None
"""Set by ``codex_telemetry.testing.capture_events()`` while it lasts: ``init()`` then
builds a client that reports to the capture, never to a real sink."""


def init(
    *,
    logger_provider: LoggerProvider | None = None,
    instrument: Sequence[str] = (),
    **overrides: Unpack[InitOptions],
) -> Telemetry:
    """Configure the SDK once and return its client (also the default for :func:`track_fact`).

    Every setting below is a keyword; a nested one is given as a dict
    (``otlp={"endpoint": ...}``), as its settings object, or as ``otlp__endpoint=...``.
    An argument given as None counts as not given. A setting not given is read from its
    variable (``CODEX_TELEMETRY_`` and the name upper-cased, ``__`` for the dot:
    ``CODEX_TELEMETRY_OTLP__ENDPOINT``), then the ``.env`` file, then the standard
    ``OTEL_*`` variable named in parentheses, then the default.

    ``logger_provider``: an OpenTelemetry ``LoggerProvider`` of your own, for the ``otlp``
    exporter (refused with another exporter); its processors and resource replace the
    ``otlp.*``, export batching and service settings, and a warning names those given.
    ``instrument``: names of instrumentations to switch on (``"openai_codex"``).
    Calling ``init()`` again shuts the previous client down first. Inside
    ``codex_telemetry.testing.capture_events()`` (or the ``codex_telemetry_events``
    fixture) the client reports to the capture's in-memory sink instead of an exporter.

    Settings:

        enabled: bool = True (off when DO_NOT_TRACK or OTEL_SDK_DISABLED says so)
        general_analytics: bool = False (the flag of thread, turn, steer, sub-agent and
            compaction facts)
        originator: str = "codex_cli_rs" (product_client_id of skill, app, plugin events)
        exporter: "otlp" (default) | "console" | "file" | "codex_backend" | "none"
        service_name: str = "codex-telemetry" (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES)
        service_version: str = the package version
        runtime_version: str = the package version (codex_rs_version without a runtime)
        max_queue_size: int = 10000 (facts waiting for the worker)
        max_export_queue_size: int = 2048 (events waiting for export)
        export_batch_size: int = 512 (events per export request)
        export_interval: float = 1.0 (seconds between exports)
        shutdown_timeout: float = 1.0 (the most exit waits for delivery, in seconds)
        strict: bool = on under pytest (raise TypeError for a value that is not a fact)
        debug: bool = False (log what each fact did, or what its turn waits for, at DEBUG)
        otlp.protocol: "grpc" | "http/protobuf" (default) | "http/json"
            (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL)
        otlp.endpoint: str = "http://localhost:4318/v1/logs", "localhost:4317" for gRPC
            (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT + /v1/logs)
        otlp.headers: str "k=v,k2=v2" or a mapping; secret (OTEL_EXPORTER_OTLP_*HEADERS)
        otlp.timeout: float = 10.0 seconds (OTEL_EXPORTER_OTLP_*TIMEOUT, milliseconds)
        otlp.compression: "gzip" (default) | "none" (OTEL_EXPORTER_OTLP_*COMPRESSION)
        otlp.certificate: path of the CA bundle (OTEL_EXPORTER_OTLP_*CERTIFICATE)
        otlp.client_key: path, mutual TLS (OTEL_EXPORTER_OTLP_*CLIENT_KEY)
        otlp.client_certificate: path, mutual TLS (OTEL_EXPORTER_OTLP_*CLIENT_CERTIFICATE)
        otlp.insecure: bool, gRPC without TLS (OTEL_EXPORTER_OTLP_*INSECURE)
        file.path: path of the JSON Lines file; required by exporter="file"
        codex_backend.base_url: str = "https://chatgpt.com/backend-api"
        codex_backend.token: str, secret; required by exporter="codex_backend"
        codex_backend.account_id: str (sent as ChatGPT-Account-Id)
        codex_backend.timeout: float = 10.0 seconds
        reducer.max_connections: int = 1024
        reducer.max_threads: int = 16384
        reducer.max_pending_requests: int = 4096
        reducer.max_turns: int = 4096
        reducer.idle_seconds: float = 86400.0 (state untouched this long may be evicted)
        event_types.include: event types to send, none other (a list, or a JSON array or
            comma list in the variable); default every type
        event_types.exclude: event types not to send (same forms); default none
        before_send: a function of each event's wire dict, set in code only, returning
            the dict (changed or not) to send or None to drop the event
        spool.enabled: bool = on for "otlp" and "codex_backend", off for the others
        spool.directory: path = the "spool" folder of the per-user cache directory
        spool.max_bytes: int = 67108864 (64 MiB on disk per destination, oldest dropped)

    Raises :class:`ConfigurationError` for a bad setting, naming it and its variable.
    """
    global _default  # the module-level facade needs one client
    from codex_telemetry._settings import (  # noqa: PLC0415
        ConfigurationError,
        check_logger_provider,
        load_settings,
    )

    names = (instrument,) if isinstance(instrument, str) else tuple(instrument)
    capture = _capture
    if capture is not None:  # inside codex_telemetry.testing.capture_events()
        return capture.init(overrides, names, logger_provider)
    settings = load_settings(**overrides)
    check_logger_provider(settings, overrides, given=logger_provider is not None)
    _setup.check_instrumentation_names(names)
    try:
        client = Telemetry(settings, logger_provider=logger_provider)
    except (OSError, ValueError) as error:
        if isinstance(error, ConfigurationError):
            raise
        raise _setup.sink_error(settings, error) from None
    with _default_lock:
        previous, _default = _default, client
    if previous is not None:
        previous.shutdown()
    if not client.enabled:
        reason = _notices.collection_off_reason(settings, overrides)
        if reason is not None:
            _notices.log_collection_off(reason)
    if names and client.enabled:
        try:
            client._instrument(names)
        except ConfigurationError:
            client.shutdown(0)
            raise
    if client.enabled:
        _lifecycle.record_init_for_children(
            overrides, names, logger_provider_given=logger_provider is not None
        )
    else:  # a child with no client collects nothing either, and says nothing
        _lifecycle.forget_init_for_children()
    return client


def track_fact(fact: Fact) -> None:
    """Report a fact to the client made by :func:`init`; does nothing before ``init()``."""
    client = _default
    if client is None:
        if not _inheritance_pending:
            return
        client = _client_from_parent()
        if client is None:
            return
    # Telemetry.track_fact, repeated here so that a fact costs one Python call, not two:
    # this facade is what programs call on their hot paths.
    try:  # free unless it raises (zero-cost exceptions, Python 3.11+)
        route = client._routes.get(type(fact))
    except Exception:  # a type whose metaclass's __hash__ raises or is None
        route = None
    if route == FILTER:
        next(client._filtered)
    elif route == DISABLED:
        next(client._disabled)
    elif route == ACCEPT:
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
    if client is None:
        return True
    _lifecycle.forget_init_for_children()
    return client.shutdown(timeout)


# --- children started by multiprocessing with spawn or forkserver --------------------------

# True until this process has looked, once, for a parent's init() to repeat.
_inheritance_pending = True
_inheritance_lock = threading.RLock()
_inheriting = False


def _client_from_parent() -> Telemetry | None:
    """In a child of multiprocessing that did not inherit its parent's memory (spawn,
    forkserver), repeat the parent's ``init()`` once, on the first fact tracked."""
    global _inheritance_pending, _inheriting  # noqa: PLW0603 - once per process
    with _inheritance_lock:  # re-entrant: a signal handler on this thread gets in
        if _inheriting or not _inheritance_pending:
            # A signal handler interrupted this very init (its fact is not counted: the
            # client does not exist yet), or another thread made the client meanwhile.
            return _default
        if _lifecycle.child_still_starting():
            return None  # a fact tracked while importing the main module: decide later
        _inheriting = True
        try:
            return _init_from_parent()
        finally:
            _inheritance_pending = _inheriting = False


def _init_from_parent() -> Telemetry | None:
    inherited = _lifecycle.inherited_init()
    if inherited is None:
        return None
    if inherited.withheld:
        _logger.warning(
            "codex_telemetry: this process was started by multiprocessing from process %d, "
            "whose init() cannot be repeated here (%s not passed to child processes); "
            "call codex_telemetry.init() in this process (for a pool, in its initializer) "
            "to report facts from it",
            inherited.parent_pid,
            ", ".join(inherited.withheld),
        )
        return None
    try:
        return init(instrument=inherited.instrument, **inherited.arguments)
    except Exception as error:  # the host never fails because of telemetry
        _logger.warning(
            "codex_telemetry: could not repeat the init() of process %d in this "
            "multiprocessing child (%s: %s); facts are not reported from it",
            inherited.parent_pid,
            type(error).__name__,
            error,
        )
        return None


async def ashutdown(timeout: float | None = None) -> bool:
    """:func:`shutdown` for asyncio programs (``await codex_telemetry.ashutdown()``): the
    wait runs in a thread, so the event loop keeps serving other tasks meanwhile."""
    client = _default
    return True if client is None else await client.ashutdown(timeout)


def _swap_default(client: Telemetry | None) -> Telemetry | None:
    """Install ``client`` as the default without shutting the previous one down."""
    global _default
    with _default_lock:
        previous, _default = _default, client
    return previous
