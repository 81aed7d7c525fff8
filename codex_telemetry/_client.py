"""The public face: ``init``/``track_fact``/``shutdown`` over one default client.

``init()`` builds a :class:`~codex_telemetry._telemetry.Telemetry` client and makes it
the default; the module-level ``track_fact`` is its hot path, repeated here so that a
fact costs one Python call. Children that multiprocessing starts with spawn or forkserver
repeat the parent's ``init()`` on their first fact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from codex_telemetry import _lifecycle, _notices, _setup
from codex_telemetry._gate import ACCEPT, DISABLED, FILTER, GENERAL_ANALYTICS_FACTS
from codex_telemetry._telemetry import Telemetry

if TYPE_CHECKING:
    from typing import Unpack

    from opentelemetry.sdk._logs import LoggerProvider

    from codex_telemetry._init_options import InitOptions
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
