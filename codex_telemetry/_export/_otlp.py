"""The OTLP sink: each event one OpenTelemetry log record, over gRPC, HTTP/protobuf or HTTP/JSON.

Events go through an OpenTelemetry SDK ``LoggerProvider`` whose batching processor hands
records to our OTLP log exporter. The exporter is an SDK log record exporter built on
public ground only: it writes the request itself (protobuf bytes by
:mod:`codex_telemetry._export._wire`, OTLP/JSON by :mod:`codex_telemetry._export._json`)
and sends it through a :class:`~codex_telemetry._export._transport.Transport` (HTTP with
``requests``, or gRPC with the official service definition), so that the rules of
:mod:`codex_telemetry._export._retry` decide about retries, splitting and counting, and
only the settings we resolved are used. The SDK's ``BatchLogRecordProcessor`` is not
used: it cannot count what it drops, ignores the flush timeout and waits 30 s on
shutdown.

``opentelemetry.sdk._logs`` is where the OpenTelemetry Python SDK keeps its logs signal
(provider, processors, records, exporters): the leading underscore marks the signal as
not yet stable, and there is no other module to build on. The names used from it are
pinned by ``tests/test_export_opentelemetry_surface.py`` and by the supported range in
``pyproject.toml``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from opentelemetry._logs import LogRecord as APILogRecord
from opentelemetry._logs import NoOpLogger, SeverityNumber
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PB2Scope
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._batching import BatchWorker, InFlight, estimate_size
from codex_telemetry._export._encoding import (
    SEVERITY_TEXT_INFO,
    encode_scope,
    event_attributes,
    group_records,
)
from codex_telemetry._export._http import HttpTransport
from codex_telemetry._export._json import JsonRecordWriter, group_request_json
from codex_telemetry._export._retry import RetryPolicy, Settlement, StopSignal
from codex_telemetry._export._transport import Transport, TransportSender
from codex_telemetry._export._wire import RecordWriter, group_request_bytes, resource_bytes
from codex_telemetry._internal_errors import log_internal_error
from codex_telemetry._threads import start_thread
from codex_telemetry._version import __version__
from codex_telemetry.events import AnalyticsEvent

__all__ = [
    "INSTRUMENTATION_SCOPE",
    "OTLPGrpcLogExporter",
    "OTLPHttpLogExporter",
    "OTLPLogExporter",
    "OTLPSink",
]

_logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "codex_telemetry"
"""Name of the instrumentation scope every record is emitted under."""

_USER_AGENT = f"codex-telemetry/{__version__}"

_Record = ReadableLogRecord | ReadWriteLogRecord


class _EventLogRecord(APILogRecord):
    """An API log record that remembers its event, so the exporter encodes from the event.

    The attributes are left to the exporter: encoding straight from the frozen event
    skips the SDK's attribute copying and lets shared sub-objects be encoded once.
    """

    def __init__(self, event: AnalyticsEvent, timestamp_ns: int) -> None:
        super().__init__(
            timestamp=timestamp_ns,
            observed_timestamp=timestamp_ns,
            severity_text=SEVERITY_TEXT_INFO,
            severity_number=SeverityNumber.INFO,
            event_name=event.event_type,
        )
        self.codex_event = event


class _CountingSettlement:
    """A settlement for one-off exports outside a sink: counts what became of a batch."""

    def __init__(self) -> None:
        self.exported_count = 0
        self.dropped_count = 0

    def exported(self, count: int) -> None:
        self.exported_count += count

    def dropped(self, count: int, reason: str) -> None:
        self.dropped_count += count


class _RecordEncoder:
    """Turns batches of SDK log records into the body of one export request.

    Our own records (one resource, one scope) are written straight from their events by
    a writer per resource and scope; records from elsewhere are read into plain fields
    first (:func:`~codex_telemetry._export._encoding.group_records`).
    """

    def __init__(self, json_body: bool) -> None:
        self._json = json_body
        self._writers: dict[tuple[int, int], tuple[Resource, object, Any]] = {}

    def _writer(self, resource: Resource, scope: InstrumentationScope | None) -> Any:
        key = (id(resource), id(scope))
        entry = self._writers.get(key)
        if entry is None or entry[0] is not resource or entry[1] is not scope:
            resource_schema = resource.schema_url or ""
            scope_schema = (scope.schema_url if scope is not None else "") or ""
            writer: RecordWriter | JsonRecordWriter
            if self._json:
                writer = JsonRecordWriter(
                    list(resource.attributes.items()),
                    scope.name if scope is not None else "",
                    (scope.version if scope is not None else "") or "",
                    resource_schema_url=resource_schema,
                    scope_schema_url=scope_schema,
                )
            else:
                writer = RecordWriter(
                    resource_bytes(resource.attributes.items()),
                    (
                        encode_scope(scope.name, scope.version) if scope is not None else PB2Scope()
                    ).SerializeToString(),
                    resource_schema_url=resource_schema,
                    scope_schema_url=scope_schema,
                )
            entry = (resource, scope, writer)
            self._writers[key] = entry
        return entry[2]

    def encode(self, records: Sequence[_Record]) -> bytes:
        first = records[0]
        same_origin = all(
            isinstance(r.log_record, _EventLogRecord)
            and r.resource is first.resource
            and r.instrumentation_scope is first.instrumentation_scope
            and not (r.instrumentation_scope and r.instrumentation_scope.attributes)
            for r in records
        )
        if not same_origin or first.resource is None:
            groups = group_records(records)
            return group_request_json(groups) if self._json else group_request_bytes(groups)
        request = self._writer(first.resource, first.instrumentation_scope).request(
            [(r.log_record.codex_event, r.log_record.timestamp or 0) for r in records]  # type: ignore[attr-defined]
        )
        return request if self._json else request.SerializeToString()  # type: ignore[no-any-return]


def _partial_rejections(json_body: bool) -> Callable[[str, bytes], int]:
    """Reads OTLP partial success (records the collector refused) from a response."""

    def rejected(content_type: str, content: bytes) -> int:
        try:
            if json_body or content_type.startswith("application/json"):
                partial = json.loads(content).get("partialSuccess") or {}
                return int(partial.get("rejectedLogRecords", 0))
            message = ExportLogsServiceResponse.FromString(content)
            return int(message.partial_success.rejected_log_records)
        except Exception:
            # An answer we cannot read still accepted the request.
            return 0

    return rejected


class OTLPLogExporter(LogRecordExporter):
    """An SDK log record exporter that sends OTLP requests through ``transport``.

    Each batch is one request (protobuf, or OTLP/JSON with ``json_body``), retried, split
    and counted by the delivery rules. Usable on any ``LoggerProvider``.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        json_body: bool = False,
        timeout: float = 10.0,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._sender: TransportSender[_Record] = TransportSender(
            transport,
            _RecordEncoder(json_body).encode,
            policy=retry_policy,
            request_timeout=timeout,
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._sender.transport!r})"

    def export_batch(
        self, records: Sequence[_Record], settlement: Settlement, stop: StopSignal
    ) -> None:
        """Deliver ``records``, settling each one; used by the sink's processor."""
        try:
            self._sender.send_batch(records, settlement, stop)
        except Exception:
            log_internal_error("otlp_send", "encoding or sending log records")
            settlement.dropped(len(records), "internal_error")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export ``batch`` under our retry rules (for use on any ``LoggerProvider``)."""
        if self._closed:
            return LogRecordExportResult.FAILURE
        settlement = _CountingSettlement()
        self.export_batch(batch, settlement, StopSignal())
        if settlement.dropped_count:
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here: every export call sends before it returns."""
        return True

    def shutdown(self) -> None:
        """Close the transport; later exports fail. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._sender.close()


class OTLPHttpLogExporter(OTLPLogExporter):
    """OTLP over HTTP: protobuf (``http/protobuf``) or, with ``json=True``, OTLP/JSON."""

    def __init__(
        self,
        endpoint: str,
        *,
        json: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        compression: Literal["gzip", "none"] = "gzip",
        certificate: Path | None = None,
        client_key: Path | None = None,
        client_certificate: Path | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        request_headers = {key.lower(): value for key, value in (headers or {}).items()}
        request_headers["content-type"] = "application/json" if json else "application/x-protobuf"
        request_headers["user-agent"] = _USER_AGENT
        transport = HttpTransport(
            endpoint,
            request_headers,
            gzip=compression == "gzip",
            certificate=certificate,
            client_certificate=client_certificate,
            client_key=client_key,
            rejected=_partial_rejections(json),
        )
        super().__init__(transport, json_body=json, timeout=timeout, retry_policy=retry_policy)


class OTLPGrpcLogExporter(OTLPLogExporter):
    """OTLP over gRPC (``grpc``).

    ``insecure=None`` means: plaintext for ``http://`` and scheme-less endpoints unless
    TLS files are given, TLS for ``https://``.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        compression: Literal["gzip", "none"] = "gzip",
        insecure: bool | None = None,
        certificate: Path | None = None,
        client_key: Path | None = None,
        client_certificate: Path | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        # Imported here so that a program exporting over HTTP never loads gRPC (about
        # 50 ms of init()).
        from codex_telemetry._export._grpc import GrpcTransport  # noqa: PLC0415

        transport = GrpcTransport(
            endpoint,
            headers or {},
            compression=compression,
            insecure=insecure,
            certificate=certificate,
            client_key=client_key,
            client_certificate=client_certificate,
        )
        super().__init__(transport, timeout=timeout, retry_policy=retry_policy)


def _record_size(record: ReadWriteLogRecord) -> int:
    """The estimated bytes of a queued record: its event's, or its body's and attributes'."""
    log_record = record.log_record
    event = getattr(log_record, "codex_event", None)
    if event is not None:
        return estimate_size(event) + 512  # plus the record around it
    return estimate_size(log_record.body) + estimate_size(dict(log_record.attributes or {})) + 512


class _EventRecordProcessor(LogRecordProcessor):
    """Batches the sink's records on a background thread; counts every record's fate."""

    def __init__(
        self,
        exporter: OTLPLogExporter,
        delivery: DeliveryCounters,
        *,
        max_queue_size: int,
        batch_size: int,
        interval: float,
    ) -> None:
        self._exporter = exporter
        self._exporter_closed = False
        self._worker: BatchWorker[ReadWriteLogRecord] = BatchWorker(
            self._export,
            delivery,
            max_queue_size=max_queue_size,
            batch_size=batch_size,
            interval=interval,
            name="codex-telemetry-otlp",
            size_of=_record_size,
        )

    @property
    def capacity(self) -> int:
        """The most records the queue holds."""
        return self._worker.capacity

    def has_room(self, count: int) -> bool:
        """True when ``count`` more records fit in the queue now."""
        return self._worker.has_room(count)

    def make_durable(self, acknowledge: Callable[[int], None]) -> None:
        """Acknowledge settled batches to the spool (see :class:`BatchWorker`)."""
        self._worker.make_durable(acknowledge)

    def _export(
        self, records: Sequence[ReadWriteLogRecord], in_flight: InFlight, stop: StopSignal
    ) -> None:
        self._exporter.export_batch(records, in_flight, stop)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._worker.put((log_record,))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._worker.flush(timeout_millis / 1000)

    def flush(self, timeout: float) -> bool:
        """Deliver what was queued, waiting at most ``timeout`` seconds."""
        return self._worker.flush(timeout)

    def shutdown(self) -> None:
        self.shutdown_within(0.0)

    def shutdown_within(self, timeout: float) -> bool:
        """Flush within ``timeout`` seconds, then stop the worker and the exporter."""
        delivered = self._worker.shutdown(timeout)
        if not self._exporter_closed:
            self._exporter_closed = True
            try:
                self._exporter.shutdown()
            except Exception:
                log_internal_error("otlp_close", "closing the OTLP exporter")
        return delivered


class OTLPSink:
    """Export events as OTel log records through an SDK ``LoggerProvider``.

    With ``exporter``, the sink owns a provider (resource from ``resource``) whose batching
    processor delivers through that exporter and counts every event in ``delivery``.
    With ``logger_provider`` instead, events are emitted into the host program's provider:
    they count as exported once handed over, delivery is that provider's business, and
    the sink never shuts it down.
    """

    def __init__(
        self,
        delivery: DeliveryCounters,
        *,
        exporter: OTLPLogExporter | None = None,
        resource: Resource | None = None,
        logger_provider: LoggerProvider | None = None,
        max_export_queue_size: int = 2048,
        export_batch_size: int = 512,
        export_interval: float = 1.0,
    ) -> None:
        if (exporter is None) == (logger_provider is None):
            raise ValueError("give exactly one of exporter and logger_provider")
        self._delivery = delivery
        self._lock = threading.Lock()
        self._closed = False
        self._processor: _EventRecordProcessor | None = None
        if logger_provider is not None:
            self._provider = logger_provider
        else:
            assert exporter is not None
            self._provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
            self._processor = _EventRecordProcessor(
                exporter,
                delivery,
                max_queue_size=max_export_queue_size,
                batch_size=export_batch_size,
                interval=export_interval,
            )
            self._provider.add_log_record_processor(self._processor)
        self._logger = self._provider.get_logger(INSTRUMENTATION_SCOPE, __version__)
        # OTEL_SDK_DISABLED hands out a no-op logger: say so in the counts instead of
        # losing events silently.
        self._disabled = isinstance(self._logger, NoOpLogger)

    @property
    def delivery(self) -> DeliveryCounters:
        """The counters this sink reports delivered and dropped events through."""
        return self._delivery

    @property
    def capacity(self) -> int | None:
        """The most events the export queue holds; None: no bound (the host's provider)."""
        return self._processor.capacity if self._processor is not None else None

    def has_room(self, count: int) -> bool:
        """True when ``count`` more events fit in the export queue now (always with the
        host's provider, which queues on its own)."""
        return self._processor is None or self._processor.has_room(count)

    def make_durable(self, acknowledge: Callable[[int], None]) -> bool:
        """Acknowledge settled batches to the spool; False when this sink cannot (the
        host's provider, or an SDK switched off by ``OTEL_SDK_DISABLED``)."""
        if self._processor is None or self._disabled:
            return False
        self._processor.make_durable(acknowledge)
        return True

    @property
    def logger_provider(self) -> LoggerProvider:
        """The provider the records are emitted into."""
        return self._provider

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Emit one log record per event; waits while the export queue is full (never in
        durable mode), never raises."""
        if self._closed or self._disabled:
            reason = "shutdown" if self._closed else "disabled"
            self._delivery.dropped.add(reason, len(events))
            return
        try:
            if self._processor is not None:
                for event in events:
                    self._logger.emit(_EventLogRecord(event, timestamp_ns))
                return
            for event in events:
                self._logger.emit(
                    timestamp=timestamp_ns,
                    observed_timestamp=timestamp_ns,
                    severity_number=SeverityNumber.INFO,
                    severity_text=SEVERITY_TEXT_INFO,
                    attributes=event_attributes(event),
                    event_name=event.event_type,
                )
                self._delivery.exported.increment()
        except Exception:
            log_internal_error("otlp_emit", "emitting log records")
            self._delivery.dropped.add("internal_error", len(events))

    def force_flush(self, timeout: float) -> bool:
        """Deliver what was handed over so far, waiting at most ``timeout`` seconds."""
        try:
            if self._processor is not None:
                return self._processor.flush(timeout)
        except Exception:
            log_internal_error("otlp_flush", "flushing log records")
            return False
        return self._flush_host_provider(timeout)

    def _flush_host_provider(self, timeout: float) -> bool:
        # The SDK's batching processor ignores the flush timeout and exports on the
        # caller's thread, so a hung collector would hold our caller (and exit) hostage:
        # flush on a helper thread and stop waiting at the timeout.
        result: list[bool] = []

        def flush() -> None:
            try:
                result.append(bool(self._provider.force_flush(int(max(timeout, 0.0) * 1000))))
            except Exception:
                log_internal_error("provider_flush", "flushing the LoggerProvider")
                result.append(False)

        helper = start_thread(flush, "codex-telemetry-flush")
        helper.join(max(timeout, 0.0))
        return bool(result and result[0])

    def shutdown(self, timeout: float) -> bool:
        """Flush within ``timeout`` seconds, then stop; later calls do nothing."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
        if self._processor is None:
            return self.force_flush(timeout)
        try:
            delivered = self._processor.shutdown_within(timeout)
            # Our processor is already down, so this returns at once.
            self._provider.shutdown()
        except Exception:
            log_internal_error("otlp_shutdown", "shutting the OTLP sink down")
            delivered = False
        return delivered
