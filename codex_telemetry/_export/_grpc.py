"""The gRPC transport (OTLP/gRPC): one call of the logs service's ``Export`` per attempt.

Built on grpcio and the official service definition of ``opentelemetry-proto``: the
request body is already protobuf bytes, so the call sends them as they are (no message is
built or decoded again, whatever the nesting). The channel gets the metadata, timeout,
compression and TLS files our settings resolved; nothing here reads the environment.
Kept apart from the HTTP transport so that a program exporting over HTTP never imports
gRPC.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import grpc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk.version import __version__ as _otel_version

from codex_telemetry._export._retry import Attempt, StopSignal
from codex_telemetry._version import __version__

__all__ = ["EXPORT_METHOD", "GrpcTransport", "classify_grpc_error"]

EXPORT_METHOD = "/{}/Export".format(
    logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name
)
"""The full method name of ``LogsService.Export``, from the official service definition."""

# How the OpenTelemetry exporters introduce themselves, and who sends on their behalf.
_USER_AGENT = f"OTel-OTLP-Exporter-Python/{_otel_version} codex-telemetry/{__version__}"

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


def _target(endpoint: str) -> tuple[str, bool]:
    """``host:port`` of ``endpoint``, and whether its scheme asks for TLS."""
    if "://" in endpoint:
        parsed = urlparse(endpoint)
        return parsed.netloc, parsed.scheme == "https"
    return endpoint, False


class GrpcTransport:
    """Call ``LogsService.Export`` on ``endpoint`` with each request body.

    ``insecure=None`` means: plaintext for ``http://`` and scheme-less endpoints unless
    TLS files are given, TLS for ``https://``.
    """

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str],
        *,
        compression: Literal["gzip", "none"] = "gzip",
        insecure: bool | None = None,
        certificate: Path | None = None,
        client_key: Path | None = None,
        client_certificate: Path | None = None,
    ) -> None:
        target, tls_scheme = _target(endpoint)
        has_tls_files = any(p is not None for p in (certificate, client_key, client_certificate))
        if insecure is None:
            insecure = not tls_scheme and not has_tls_files
        self._target = target
        self._credentials = (
            None
            if insecure
            else grpc.ssl_channel_credentials(
                root_certificates=_read(certificate),
                private_key=_read(client_key),
                certificate_chain=_read(client_certificate),
            )
        )
        self._compression = (
            grpc.Compression.Gzip if compression == "gzip" else grpc.Compression.NoCompression
        )
        self._metadata = tuple((key.lower(), value) for key, value in headers.items())
        self._lock = threading.Lock()
        self._closed = False
        self._channel, self._export = self._connect()

    def __repr__(self) -> str:
        return f"GrpcTransport(target={self._target!r})"

    def _connect(
        self,
    ) -> tuple[grpc.Channel, grpc.UnaryUnaryMultiCallable[bytes, ExportLogsServiceResponse]]:
        options = [("grpc.primary_user_agent", _USER_AGENT)]
        if self._credentials is None:
            channel = grpc.insecure_channel(
                self._target, options=options, compression=self._compression
            )
        else:
            channel = grpc.secure_channel(
                self._target, self._credentials, options=options, compression=self._compression
            )
        # No request serializer: the body is the request's protobuf bytes already.
        export: grpc.UnaryUnaryMultiCallable[bytes, ExportLogsServiceResponse]
        export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        return channel, export

    def send(self, body: bytes, timeout: float, stop: StopSignal) -> Attempt:
        """Call ``Export`` once with ``body`` and classify the outcome; never raises.

        A call still waiting at ``stop.deadline`` is cancelled, so that exit never waits
        for a hung collector.
        """
        with self._lock:
            if self._closed:
                return Attempt.fail("shutdown")
            export = self._export
        call = export.future(body, metadata=self._metadata, timeout=timeout)
        call.add_done_callback(lambda _: stop.wake())
        if not stop.wait_for(call.done):
            call.cancel()
            return Attempt.fail("shutdown")
        try:
            response = call.result()
        except grpc.FutureCancelledError:
            return Attempt.fail("shutdown")
        except grpc.RpcError as error:
            attempt = classify_grpc_error(error)
            if attempt.reason == "unreachable":
                self._reconnect()
            return attempt
        return Attempt.ok(response.partial_success.rejected_log_records)

    def _reconnect(self) -> None:
        # A fresh channel skips gRPC's own reconnect backoff, so the next attempt reaches
        # a collector that came back instead of failing fast on the old channel.
        with self._lock:
            if self._closed:
                return
            old = self._channel
            self._channel, self._export = self._connect()
        old.close()

    def close(self) -> None:
        """Close the channel; later sends fail with ``shutdown``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            channel = self._channel
        channel.close()
