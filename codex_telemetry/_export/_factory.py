"""From settings to a sink: the only place that reads ``TelemetrySettings`` for export."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from codex_telemetry._export._base import DeliveryCounters, EventSink

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.resources import Resource

    from codex_telemetry._export._otlp import OTLPLogExporter
    from codex_telemetry._settings import TelemetrySettings

__all__ = [
    "SpoolPlan",
    "create_deferred_sink",
    "create_sink",
    "has_spooled_events",
    "spool_plan",
]

_logger = logging.getLogger(__name__)

# The console is for a developer watching: print promptly rather than every interval.
_CONSOLE_INTERVAL = 0.1


def create_sink(
    settings: TelemetrySettings,
    delivery: DeliveryCounters,
    logger_provider: LoggerProvider | None = None,
    *,
    resource: Resource | None = None,
) -> EventSink:
    """Build the sink ``settings.exporter`` names, counting into ``delivery``.

    ``logger_provider`` (the host program's own) is used by the ``otlp`` exporter: events
    are emitted into it instead of a provider of ours. ``resource``: the ``otlp`` sink's,
    made already (else made here). ``none`` has no sink; asking for it is a programming
    error.
    """
    # Imported here so that a program that never exports never loads gRPC or requests.
    kind = settings.exporter
    if kind == "otlp":
        from codex_telemetry._export._otlp import OTLPSink  # noqa: PLC0415
        from codex_telemetry._export._sdk import build_resource  # noqa: PLC0415

        if logger_provider is not None:
            return OTLPSink(delivery, logger_provider=logger_provider)
        return OTLPSink(
            delivery,
            exporter=_otlp_exporter(settings),
            resource=resource or build_resource(settings.service_name, settings.service_version),
            max_export_queue_size=settings.max_export_queue_size,
            export_batch_size=settings.export_batch_size,
            export_interval=settings.export_interval,
        )
    if logger_provider is not None:
        _logger.info("codex_telemetry: exporter %r ignores the given LoggerProvider", kind)
    if kind == "console":
        from codex_telemetry._export._console import ConsoleSink  # noqa: PLC0415

        return ConsoleSink(
            delivery,
            max_queue_size=settings.max_export_queue_size,
            interval=min(settings.export_interval, _CONSOLE_INTERVAL),
        )
    if kind == "file":
        from codex_telemetry._export._file import FileSink  # noqa: PLC0415

        if settings.file.path is None:
            raise ValueError("exporter 'file' needs file.path")
        return FileSink(
            settings.file.path,
            delivery,
            max_queue_size=settings.max_export_queue_size,
            batch_size=settings.export_batch_size,
            interval=settings.export_interval,
        )
    if kind == "codex_backend":
        from codex_telemetry._export._codex_backend import CodexBackendSink  # noqa: PLC0415

        backend = settings.codex_backend
        if backend.token is None:
            raise ValueError("exporter 'codex_backend' needs codex_backend.token")
        return CodexBackendSink(
            backend.base_url,
            backend.token.get_secret_value(),
            delivery,
            account_id=backend.account_id,
            timeout=backend.timeout,
            max_queue_size=settings.max_export_queue_size,
            batch_size=settings.export_batch_size,
            interval=settings.export_interval,
        )
    raise ValueError(f"exporter {kind!r} has no sink")


def create_deferred_sink(
    settings: TelemetrySettings,
    delivery: DeliveryCounters,
    logger_provider: LoggerProvider | None = None,
) -> EventSink:
    """:func:`create_sink`, but a network sink of our own (``otlp``, ``codex_backend``)
    is made when its first batch is due (see
    :class:`~codex_telemetry._export._deferred.DeferredSink`), so that ``init()`` does
    not import what it sends with. What making it could refuse is checked now, and
    raises as :func:`create_sink` would.
    """
    kind = settings.exporter
    if kind not in ("otlp", "codex_backend") or logger_provider is not None:
        # The host's provider has its own batching, and its SDK is imported already.
        return create_sink(settings, delivery, logger_provider)
    _check_network_sink(settings)
    from codex_telemetry._export._deferred import DeferredSink  # noqa: PLC0415

    resource = None
    if kind == "otlp":
        from codex_telemetry._export._sdk import build_resource  # noqa: PLC0415

        # Now: the sink may be made at exit, when the resource no longer can.
        resource = build_resource(settings.service_name, settings.service_version)
    return DeferredSink(
        lambda: create_sink(settings, delivery, resource=resource),
        delivery,
        max_queue_size=settings.max_export_queue_size,
        batch_size=settings.export_batch_size,
        interval=settings.export_interval,
    )


def _check_network_sink(settings: TelemetrySettings) -> None:
    """Raise what making the ``otlp`` or ``codex_backend`` sink would raise for these
    settings, without importing it."""
    if settings.exporter == "codex_backend":
        if settings.codex_backend.token is None:
            raise ValueError("exporter 'codex_backend' needs codex_backend.token")
        return
    otlp = settings.otlp
    otlp.headers_dict()
    if otlp.protocol == "grpc":
        # The gRPC transport reads its TLS files when it is made (OSError).
        for path in (otlp.certificate, otlp.client_key, otlp.client_certificate):
            if path is not None:
                path.read_bytes()


def _otlp_exporter(settings: TelemetrySettings) -> OTLPLogExporter:
    from codex_telemetry._export._otlp import (  # noqa: PLC0415
        OTLPGrpcLogExporter,
        OTLPHttpLogExporter,
    )

    otlp = settings.otlp
    if otlp.protocol == "grpc":
        return OTLPGrpcLogExporter(
            otlp.endpoint,
            headers=otlp.headers_dict(),
            timeout=otlp.timeout,
            compression=otlp.compression,
            insecure=otlp.insecure,
            certificate=otlp.certificate,
            client_key=otlp.client_key,
            client_certificate=otlp.client_certificate,
        )
    return OTLPHttpLogExporter(
        otlp.endpoint,
        json=otlp.protocol == "http/json",
        headers=otlp.headers_dict(),
        timeout=otlp.timeout,
        compression=otlp.compression,
        certificate=otlp.certificate,
        client_key=otlp.client_key,
        client_certificate=otlp.client_certificate,
    )


@dataclass(frozen=True, slots=True)
class SpoolPlan:
    """Where and how the worker opens the durable spool (see :mod:`codex_telemetry._spool`)."""

    key: str
    """Everything that decides where events go; hashed, never written."""
    label: str
    """For people reading the spool directory: no secret in it."""
    root: Path | None
    max_bytes: int


def spool_plan(settings: TelemetrySettings) -> SpoolPlan | None:
    """The spool the sink of ``settings`` uses, or None when it uses none.

    The key holds the sink, the endpoint and what is sent in each request besides the
    events (the service name for OTLP, the account for the backend), so that a spooled
    event is only ever sent where it was meant to go. Tokens and headers stay out of it.
    """
    spool = settings.spool
    if not settings.enabled or not spool.active_for(settings.exporter):
        return None
    kind = settings.exporter
    if kind == "otlp":
        otlp = settings.otlp
        key = f"otlp\n{otlp.protocol}\n{otlp.endpoint}\n{settings.service_name}"
        label = f"otlp {otlp.protocol} {_without_credentials(otlp.endpoint)}"
    elif kind == "codex_backend":
        backend = settings.codex_backend
        key = f"codex_backend\n{backend.base_url}\n{backend.account_id or ''}"
        label = f"codex_backend {_without_credentials(backend.base_url)}"
    elif kind == "file":
        key = f"file\n{settings.file.path}"
        label = f"file {settings.file.path}"
    else:
        key = label = kind
    return SpoolPlan(key, label, spool.directory, spool.max_bytes)


def _without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part and without its query."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    path = path.partition("?")[0]
    return f"{scheme}{separator}{host}{slash}{path}"


def has_spooled_events(plan: SpoolPlan) -> bool:
    """Whether the destination's spool folder holds segments (a dead process's events to
    send first, or a living one's); one directory listing, never raises."""
    from codex_telemetry._spool import (  # noqa: PLC0415
        default_spool_directory,
        destination_directory_name,
    )

    try:
        root = plan.root if plan.root is not None else default_spool_directory()
        folder = root / destination_directory_name(plan.key)
        return any(name.endswith(".jsonl") for name in os.listdir(folder))
    except (OSError, ImportError, ValueError):
        return False
