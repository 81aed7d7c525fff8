"""The OTLP sink: each event one OpenTelemetry log record, over gRPC, HTTP/protobuf or HTTP/JSON.

Events go through an OpenTelemetry SDK ``LoggerProvider`` whose batching processor hands
records to a subclass of the SDK's own OTLP log exporter. The subclasses keep the SDK's
channel, session and configuration but send each request once per attempt, so that the
rules of :mod:`codex_telemetry._export._retry` decide about retries, splitting and
counting. The SDK's ``BatchLogRecordProcessor`` is not used: it cannot count what it
drops, ignores the flush timeout and waits 30 s on shutdown.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import requests
from opentelemetry._logs import LogRecord as APILogRecord
from opentelemetry._logs import NoOpLogger, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression as OTelHttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as OTelHttpLogExporter,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PB2Scope
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._batching import BatchWorker, InFlight
from codex_telemetry._export._encoding import (
    SEVERITY_TEXT_INFO,
    encode_scope,
    event_attributes,
    request_to_json,
)
from codex_telemetry._export._http import post_with_rules
from codex_telemetry._export._retry import (
    Attempt,
    RetryPolicy,
    Settlement,
    StopSignal,
    deliver,
)
from codex_telemetry._export._wire import EncodedRequest, RecordWriter, resource_bytes
from codex_telemetry._version import __version__
from codex_telemetry.events import AnalyticsEvent

__all__ = [
    "INSTRUMENTATION_SCOPE",
    "OTLPGrpcLogExporter",
    "OTLPHttpLogExporter",
    "OTLPSink",
    "build_resource",
]

_logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "codex_telemetry"
"""Name of the instrumentation scope every record is emitted under."""

_USER_AGENT = f"codex-telemetry/{__version__}"


def build_resource(service_name: str, service_version: str | None) -> Resource:
    """The OTel resource of the records: service name and version, the SDK's
    ``telemetry.sdk.*`` attributes, and ``OTEL_RESOURCE_ATTRIBUTES``."""
    return Resource.create(
        {"service.name": service_name, "service.version": service_version or __version__}
    )


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
    """Turns batches of SDK log records into export requests.

    Our own records are written straight to wire bytes by a :class:`RecordWriter` per
    resource and scope (which caches encoded attributes); records from elsewhere go
    through the SDK's encoder.
    """

    def __init__(self) -> None:
        self._writers: dict[tuple[int, int], tuple[Resource, object, RecordWriter]] = {}

    def _writer(self, resource: Resource, scope: InstrumentationScope | None) -> RecordWriter:
        key = (id(resource), id(scope))
        entry = self._writers.get(key)
        if entry is None or entry[0] is not resource or entry[1] is not scope:
            writer = RecordWriter(
                resource_bytes(resource.attributes.items()),
                (
                    encode_scope(scope.name, scope.version) if scope is not None else PB2Scope()
                ).SerializeToString(),
                resource_schema_url=resource.schema_url or "",
                scope_schema_url=(scope.schema_url if scope is not None else "") or "",
            )
            entry = (resource, scope, writer)
            self._writers[key] = entry
        return entry[2]

    def encode(self, records: Sequence[ReadableLogRecord | ReadWriteLogRecord]) -> Any:
        first = records[0]
        same_origin = all(
            isinstance(r.log_record, _EventLogRecord)
            and r.resource is first.resource
            and r.instrumentation_scope is first.instrumentation_scope
            for r in records
        )
        if not same_origin or first.resource is None:
            # Records from elsewhere: the SDK's own encoder handles every shape.
            return encode_logs(records)  # type: ignore[arg-type]
        return self._writer(first.resource, first.instrumentation_scope).request(
            [(r.log_record.codex_event, r.log_record.timestamp or 0) for r in records]  # type: ignore[attr-defined]
        )


def _as_message(request: ExportLogsServiceRequest | EncodedRequest) -> ExportLogsServiceRequest:
    """The protobuf message of a request (gRPC and OTLP/JSON need one, not bytes)."""
    return request.message() if isinstance(request, EncodedRequest) else request


class _RetryingExporterMixin:
    """Delivery through :func:`deliver` for an exporter that can make one attempt."""

    _policy: RetryPolicy
    _request_timeout: float
    _encoder: _RecordEncoder

    def _attempt(self, request: ExportLogsServiceRequest, timeout: float) -> Attempt:
        raise NotImplementedError

    def export_batch(
        self,
        records: Sequence[ReadableLogRecord | ReadWriteLogRecord],
        settlement: Settlement,
        stop: StopSignal,
    ) -> None:
        """Deliver ``records``, settling each one; used by the sink's processor."""
        try:
            request = self._encoder.encode(records)
        except Exception:
            records = self._encodable(records, settlement)
            if not records:
                return
            request = self._encoder.encode(records)
        last: list[Any] = [records, request]

        def send(
            items: Sequence[ReadableLogRecord | ReadWriteLogRecord], timeout: float
        ) -> Attempt:
            # A retry resends the request already encoded for the same items.
            if last[0] is not items:
                last[0], last[1] = items, self._encoder.encode(items)
            return self._attempt(last[1], timeout)

        try:
            deliver(
                records,
                send,
                settlement,
                policy=self._policy,
                request_timeout=self._request_timeout,
                stop=stop,
            )
        except Exception:
            _logger.exception("codex_telemetry: encoding or sending log records failed")
            settlement.dropped(len(records), "internal_error")

    def _encodable(
        self,
        records: Sequence[ReadableLogRecord | ReadWriteLogRecord],
        settlement: Settlement,
    ) -> list[ReadableLogRecord | ReadWriteLogRecord]:
        """The records that encode on their own; the others are dropped, not the batch."""
        kept = []
        for record in records:
            try:
                self._encoder.encode([record])
            except Exception as error:
                _logger.warning("codex_telemetry: an event could not be encoded: %s", error)
                settlement.dropped(1, "encoding_error")
            else:
                kept.append(record)
        return kept

    def _export_once(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        settlement = _CountingSettlement()
        self.export_batch(batch, settlement, StopSignal())
        if settlement.dropped_count:
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS


def _http_partial_rejections(response: requests.Response, json_body: bool) -> int:
    if not response.content:
        return 0
    try:
        if json_body or response.headers.get("Content-Type", "").startswith("application/json"):
            data = response.json()
            partial = data.get("partialSuccess") or {}
            return int(partial.get("rejectedLogRecords", 0))
        message = ExportLogsServiceResponse()
        message.ParseFromString(response.content)
        return int(message.partial_success.rejected_log_records)
    except Exception:
        return 0


class OTLPHttpLogExporter(_RetryingExporterMixin, OTelHttpLogExporter):
    """The SDK's OTLP/HTTP log exporter, sending once per attempt under our retry rules.

    ``json=True`` sends OTLP/JSON (``http/json``), which the SDK does not offer, with the
    same session, headers, timeout, compression and TLS settings.
    """

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
        session = requests.Session()
        super().__init__(
            endpoint=endpoint,
            certificate_file=str(certificate) if certificate else None,
            client_key_file=str(client_key) if client_key else None,
            client_certificate_file=str(client_certificate) if client_certificate else None,
            headers=dict(headers or {}),
            timeout=timeout,
            compression=OTelHttpCompression.Gzip
            if compression == "gzip"
            else OTelHttpCompression.NoCompression,
            session=session,
        )
        # Our settings already resolved the environment: these are the TLS settings.
        self._verify: bool | str = str(certificate) if certificate else True
        self._cert: str | tuple[str, str] | None = None
        if client_certificate is not None:
            self._cert = (
                (str(client_certificate), str(client_key))
                if client_key is not None
                else str(client_certificate)
            )
        self._http_session = session
        self._url = endpoint
        self._json = json
        self._gzip = compression == "gzip"
        request_headers = {key.lower(): value for key, value in (headers or {}).items()}
        request_headers["content-type"] = "application/json" if json else "application/x-protobuf"
        request_headers["user-agent"] = _USER_AGENT
        if self._gzip:
            request_headers["content-encoding"] = "gzip"
        self._request_headers = request_headers
        self._policy = retry_policy or RetryPolicy()
        self._request_timeout = timeout
        self._encoder = _RecordEncoder()

    def _attempt(self, request: ExportLogsServiceRequest, timeout: float) -> Attempt:
        body = request_to_json(_as_message(request)) if self._json else request.SerializeToString()
        if self._gzip:
            body = gzip.compress(body, compresslevel=6)
        attempt, response = post_with_rules(
            self._http_session,
            self._url,
            body,
            self._request_headers,
            timeout,
            verify=self._verify,
            cert=self._cert,
        )
        if response is not None and attempt.outcome.value == "ok":
            return Attempt.ok(_http_partial_rejections(response, self._json))
        return attempt

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export ``batch`` under our retry rules (for use on any ``LoggerProvider``)."""
        return self._export_once(batch)


if TYPE_CHECKING:
    from codex_telemetry._export._otlp_grpc import OTLPGrpcLogExporter

    _Exporter: TypeAlias = OTLPGrpcLogExporter | OTLPHttpLogExporter


def __getattr__(name: str) -> Any:
    # The gRPC exporter lives in its own module so that HTTP users never import gRPC
    # (about 50 ms of init()); it is still importable from here.
    if name == "OTLPGrpcLogExporter":
        from codex_telemetry._export import _otlp_grpc  # noqa: PLC0415

        return _otlp_grpc.OTLPGrpcLogExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _EventRecordProcessor(LogRecordProcessor):
    """Batches the sink's records on a background thread; counts every record's fate."""

    def __init__(
        self,
        exporter: _Exporter,
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
        )

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
                _logger.debug("closing the OTLP exporter failed", exc_info=True)
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
        exporter: _Exporter | None = None,
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
    def logger_provider(self) -> LoggerProvider:
        """The provider the records are emitted into."""
        return self._provider

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        """Emit one log record per event; never blocks on the network, never raises."""
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
            _logger.exception("codex_telemetry: emitting log records failed")
            self._delivery.dropped.add("internal_error", len(events))

    def force_flush(self, timeout: float) -> bool:
        """Deliver what was handed over so far, waiting at most ``timeout`` seconds."""
        try:
            if self._processor is not None:
                return self._processor.flush(timeout)
        except Exception:
            _logger.exception("codex_telemetry: flushing log records failed")
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
                _logger.exception("codex_telemetry: flushing the LoggerProvider failed")
                result.append(False)

        helper = threading.Thread(target=flush, name="codex-telemetry-flush", daemon=True)
        helper.start()
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
            _logger.exception("codex_telemetry: shutting the OTLP sink down failed")
            delivered = False
        return delivered
