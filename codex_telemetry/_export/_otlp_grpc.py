"""The OTLP/gRPC exporter: the SDK's own, sending once per attempt under our retry rules.

Kept apart from :mod:`codex_telemetry._export._otlp` so that a program exporting over
HTTP never imports gRPC.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import grpc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as OTelGrpcLogExporter,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult

from codex_telemetry._export._otlp import _as_message, _RecordEncoder, _RetryingExporterMixin
from codex_telemetry._export._retry import Attempt, RetryPolicy

__all__ = ["OTLPGrpcLogExporter", "classify_grpc_error"]

# OTLP's retryable gRPC codes; RESOURCE_EXHAUSTED is retried unless it says "too large".
_RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def _grpc_retry_after(error: grpc.Call) -> float | None:
    """The delay from a gRPC ``RetryInfo``, in the trailers or in the status details."""
    try:
        trailers = dict(error.trailing_metadata() or ())
    except Exception:
        return None
    raw = trailers.get("google.rpc.retryinfo-bin")
    info = error_details_pb2.RetryInfo()
    try:
        if isinstance(raw, bytes):
            info.ParseFromString(raw)
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
        details = trailers.get("grpc-status-details-bin")
        if isinstance(details, bytes):
            status = status_pb2.Status()
            status.ParseFromString(details)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    detail.Unpack(info)
                    return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    except Exception:
        return None
    return None


def classify_grpc_error(error: grpc.RpcError) -> Attempt:
    """Map a failed gRPC call to what the delivery loop does next."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (error.details() if isinstance(error, grpc.Call) else "") or ""
    reason = f"grpc_{code.name.lower()}"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return Attempt.retry("timeout")
    if code is grpc.StatusCode.UNAVAILABLE and "connect" in details.lower():
        return Attempt.retry("unreachable")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than" in details.lower():
        return Attempt.too_large(reason)
    if code in _RETRYABLE_GRPC:
        retry_after = _grpc_retry_after(error) if isinstance(error, grpc.Call) else None
        return Attempt.retry(reason, retry_after)
    return Attempt.fail(reason)


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


class OTLPGrpcLogExporter(_RetryingExporterMixin, OTelGrpcLogExporter):
    """The SDK's OTLP/gRPC log exporter, sending once per attempt under our retry rules.

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
        has_tls_files = any(p is not None for p in (certificate, client_key, client_certificate))
        if insecure is None:
            insecure = not endpoint.startswith("https://") and not has_tls_files
        credentials = None
        if not insecure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(certificate),
                private_key=_read(client_key),
                certificate_chain=_read(client_certificate),
            )
        metadata = tuple((key.lower(), value) for key, value in (headers or {}).items())
        super().__init__(
            endpoint=endpoint,
            insecure=insecure,
            credentials=credentials,
            headers=metadata or None,
            timeout=timeout,
            compression=grpc.Compression.Gzip
            if compression == "gzip"
            else grpc.Compression.NoCompression,
        )
        # Headers were resolved by our settings; the SDK's environment fallback must not
        # add others.
        self._headers = metadata
        self._policy = retry_policy or RetryPolicy()
        self._request_timeout = timeout
        self._encoder = _RecordEncoder()
        self._channel_lock = threading.Lock()

    def _attempt(self, request: ExportLogsServiceRequest, timeout: float) -> Attempt:
        client = self._client
        if client is None or self._shutdown:
            return Attempt.fail("shutdown")
        try:
            response = client.Export(
                request=_as_message(request), metadata=self._headers, timeout=timeout
            )
        except grpc.RpcError as error:
            attempt = classify_grpc_error(error)
            if attempt.reason == "unreachable":
                self._reconnect()
            return attempt
        return Attempt.ok(response.partial_success.rejected_log_records)

    def _reconnect(self) -> None:
        # A fresh channel skips gRPC's own reconnect backoff, so the next attempt reaches
        # a collector that came back instead of failing fast on the old channel.
        with self._channel_lock:
            if self._shutdown:
                return
            old = self._channel
            self._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
            if old is not None:
                old.close()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export ``batch`` under our retry rules (for use on any ``LoggerProvider``)."""
        return self._export_once(batch)
