"""Loopback OTLP receivers for tests and benchmarks: gRPC and HTTP, scriptable to fail.

Both decode what arrives into the official ``ExportLogsServiceRequest`` (HTTP: protobuf
or OTLP/JSON bodies, gzip or not) and record it with its headers and its raw body. A
request nested deeper than the official decoders allow (protobuf's limit is 100 levels)
is recorded undecoded; :func:`plain_records` reads any request from its raw body. Each
request consumes the next scripted reply; when the script is exhausted, requests
succeed. A reply can be a status with headers, or a hang (accept and never answer until
the receiver stops).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import ssl
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

__all__ = [
    "GrpcReceiver",
    "GrpcReply",
    "HttpReceiver",
    "HttpReply",
    "PlainRecord",
    "Received",
    "json_to_request",
    "plain_records",
    "records_of",
]


@dataclass(frozen=True)
class Received:
    """One request as it arrived: decoded message, headers (lower-case keys), raw JSON."""

    request: ExportLogsServiceRequest
    headers: dict[str, str]
    path: str = ""
    json_body: Any = None
    raw: bytes = b""  # the protobuf body (uncompressed); empty for OTLP/JSON
    decoded: bool = True  # False: too deep for the official decoders, ``request`` is empty


@dataclass(frozen=True)
class HttpReply:
    """A scripted HTTP reply; ``hang`` accepts the request and never answers."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False


@dataclass(frozen=True)
class GrpcReply:
    """A scripted gRPC reply: ``code`` None means OK; ``retry_delay`` adds RetryInfo."""

    code: grpc.StatusCode | None = None
    details: str = ""
    retry_delay: float | None = None
    # Where RetryInfo travels: in the status details, or in its own trailer.
    retry_info_trailer: bool = False
    hang: bool = False


def json_to_request(data: Any) -> ExportLogsServiceRequest:
    """Parse an OTLP/JSON object (hex trace/span ids) into the protobuf message."""
    copy = json.loads(json.dumps(data))
    for resource_logs in copy.get("resourceLogs", ()):
        for scope_logs in resource_logs.get("scopeLogs", ()):
            for record in scope_logs.get("logRecords", ()):
                for key in ("traceId", "spanId"):
                    if record.get(key):
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    request = ExportLogsServiceRequest()
    json_format.ParseDict(copy, request)
    return request


def records_of(received: Iterable[Received]) -> Iterator[Any]:
    """Every log record in the received requests, in arrival order."""
    for item in received:
        for resource_logs in item.request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                yield from scope_logs.log_records


def _decode_protobuf(body: bytes, headers: dict[str, str], path: str = "") -> Received:
    try:
        return Received(ExportLogsServiceRequest.FromString(body), headers, path, raw=body)
    except DecodeError:
        return Received(ExportLogsServiceRequest(), headers, path, raw=body, decoded=False)


# --- reading a request without the official decoders' depth limit ---------------------


@dataclass(frozen=True)
class PlainRecord:
    """A log record read from a raw request: its event name and attributes as Python
    values (an unset ``AnyValue`` is None)."""

    event_name: str
    attributes: dict[str, Any]


def _varint(data: bytes, index: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[index]
        index += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, index
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, Any]]:
    """The (field number, value) pairs of one protobuf message, in order."""
    index = 0
    value: Any
    while index < len(data):
        key, index = _varint(data, index)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, index = _varint(data, index)
        elif wire_type == 1:
            value, index = data[index : index + 8], index + 8
        elif wire_type == 2:
            length, index = _varint(data, index)
            value, index = data[index : index + length], index + length
        elif wire_type == 5:
            value, index = data[index : index + 4], index + 4
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
        yield number, value


def _wire_any_value(data: bytes) -> Any:
    value: Any = None
    for number, field_value in _fields(data):
        if number == 1:
            value = field_value.decode()
        elif number == 2:
            value = bool(field_value)
        elif number == 3:
            value = field_value - (1 << 64) if field_value >= 1 << 63 else field_value
        elif number == 4:
            value = struct.unpack("<d", field_value)[0]
        elif number == 5:
            value = [_wire_any_value(item) for n, item in _fields(field_value) if n == 1]
        elif number == 6:
            value = dict(_wire_key_value(item) for n, item in _fields(field_value) if n == 1)
        elif number == 7:
            value = bytes(field_value)
    return value


def _wire_key_value(data: bytes) -> tuple[str, Any]:
    key, value = "", None
    for number, field_value in _fields(data):
        if number == 1:
            key = field_value.decode()
        elif number == 2:
            value = _wire_any_value(field_value)
    return key, value


def _json_any_value(data: dict[str, Any]) -> Any:
    if "stringValue" in data:
        return data["stringValue"]
    if "boolValue" in data:
        return data["boolValue"]
    if "intValue" in data:
        return int(data["intValue"])
    if "doubleValue" in data:
        return float(data["doubleValue"])
    if "arrayValue" in data:
        return [_json_any_value(item) for item in data["arrayValue"].get("values", ())]
    if "kvlistValue" in data:
        return dict(_json_key_value(item) for item in data["kvlistValue"].get("values", ()))
    if "bytesValue" in data:
        return base64.b64decode(data["bytesValue"])
    return None


def _json_key_value(data: dict[str, Any]) -> tuple[str, Any]:
    return data["key"], _json_any_value(data.get("value", {}))


def plain_records(received: Received) -> list[PlainRecord]:
    """Every log record of ``received``, read from its raw body by the OTLP field
    numbers (protobuf) or the OTLP/JSON names, at any depth."""
    records = []
    if received.json_body is not None:
        for resource_logs in received.json_body.get("resourceLogs", ()):
            for scope_logs in resource_logs.get("scopeLogs", ()):
                for record in scope_logs.get("logRecords", ()):
                    attributes = dict(_json_key_value(a) for a in record.get("attributes", ()))
                    records.append(PlainRecord(record.get("eventName", ""), attributes))
        return records
    for request_field, resource_logs in _fields(received.raw):
        if request_field != 1:
            continue
        for resource_field, scope_logs in _fields(resource_logs):
            if resource_field != 2:
                continue
            for scope_field, record in _fields(scope_logs):
                if scope_field != 2:
                    continue
                event_name, attributes = "", {}
                for number, value in _fields(record):
                    if number == 6:
                        key, item = _wire_key_value(value)
                        attributes[key] = item
                    elif number == 12:
                        event_name = value.decode()
                records.append(PlainRecord(event_name, attributes))
    return records


class _Script:
    def __init__(self, replies: Sequence[Any], default: Any) -> None:
        self._replies = list(replies)
        self._default = default
        self._lock = threading.Lock()

    def next(self) -> Any:
        with self._lock:
            return self._replies.pop(0) if self._replies else self._default

    def set(self, replies: Sequence[Any]) -> None:
        with self._lock:
            self._replies = list(replies)


class _Recorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.attempts = 0
        self.attempt_times: list[float] = []
        self.condition = threading.Condition()
        self.stopping = threading.Event()

    def count_attempt(self) -> None:
        with self.condition:
            self.attempts += 1
            self.attempt_times.append(time.monotonic())
            self.condition.notify_all()

    def add(self, item: Received) -> None:
        with self.condition:
            self.received.append(item)
            self.condition.notify_all()

    def wait_for_records(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.condition:
            while sum(1 for _ in records_of(self.received)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.condition.wait(left)
            return True


class HttpReceiver(_Recorder):
    """An OTLP/HTTP receiver on 127.0.0.1; use as a context manager.

    Only successful requests (2xx) are recorded in ``received``; ``attempts`` counts all.
    """

    def __init__(
        self,
        replies: Sequence[HttpReply] = (),
        default: HttpReply | None = None,
        *,
        max_records: int | None = None,
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
        decode: bool = True,
    ) -> None:
        super().__init__()
        self.script = _Script(replies, default or HttpReply())
        # Like a collector's request size limit: more records than this get a 413.
        self.max_records = max_records
        # decode=False only counts requests and body bytes: a benchmark's receiver
        # should not spend the CPU being measured.
        self.decode_requests = decode
        self.body_bytes = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.count_attempt()
                receiver.body_bytes += len(body)
                reply: HttpReply = receiver.script.next()
                if not receiver.decode_requests:
                    self.send_response(reply.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                decoded = receiver.decode(self.path, dict(self.headers.items()), body)
                if (
                    receiver.max_records is not None
                    and sum(1 for _ in records_of((decoded,))) > receiver.max_records
                ):
                    reply = HttpReply(status=413)
                if reply.hang:
                    receiver.stopping.wait()
                    self.close_connection = True
                    return
                if 200 <= reply.status < 300:
                    receiver.add(decoded)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                payload = reply.body
                if not payload and 200 <= reply.status < 300:
                    payload = ExportLogsServiceResponse().SerializeToString()
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            # tls = (certificate chain, private key): serve HTTPS.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            if client_ca is not None:
                # Mutual TLS: only clients with a certificate signed by client_ca get in.
                context.load_verify_locations(str(client_ca))
                context.verify_mode = ssl.CERT_REQUIRED
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @staticmethod
    def decode(path: str, raw_headers: dict[str, str], body: bytes) -> Received:
        """Decode one request body (gzip, protobuf or OTLP/JSON)."""
        headers = {key.lower(): value for key, value in raw_headers.items()}
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if headers.get("content-type", "").startswith("application/json"):
            data = json.loads(body)
            try:
                return Received(json_to_request(data), headers, path, data)
            except (json_format.ParseError, RecursionError):
                return Received(ExportLogsServiceRequest(), headers, path, data, decoded=False)
        return _decode_protobuf(body, headers, path)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def url(self, path: str = "/v1/logs") -> str:
        """The endpoint URL for ``path``."""
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Release hung requests and stop serving."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    """The official ``LogsService``, handed the request's raw bytes so that a request too
    deep for the official decoder is still received (and recorded undecoded)."""

    def __init__(self, receiver: GrpcReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the generated service's method name
        self,
        request: bytes,
        context: grpc.ServicerContext,
    ) -> ExportLogsServiceResponse:
        receiver = self._receiver
        receiver.count_attempt()
        reply: GrpcReply = receiver.script.next()
        if reply.hang:
            receiver.stopping.wait()
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver stopped")
        if reply.code is not None and reply.code is not grpc.StatusCode.OK:
            if reply.retry_delay is not None:
                info = error_details_pb2.RetryInfo(
                    retry_delay=Duration(
                        seconds=int(reply.retry_delay),
                        nanos=int((reply.retry_delay % 1) * 1e9),
                    )
                )
                if reply.retry_info_trailer:
                    context.set_trailing_metadata(
                        (("google.rpc.retryinfo-bin", info.SerializeToString()),)
                    )
                else:
                    status = status_pb2.Status(code=reply.code.value[0], message=reply.details)
                    status.details.add().Pack(info)
                    context.set_trailing_metadata(
                        (("grpc-status-details-bin", status.SerializeToString()),)
                    )
            context.abort(reply.code, reply.details)
        metadata = {key.lower(): str(value) for key, value in context.invocation_metadata()}
        receiver.add(_decode_protobuf(request, metadata))
        return ExportLogsServiceResponse()


class GrpcReceiver(_Recorder):
    """An OTLP/gRPC receiver on 127.0.0.1 built on the official service definitions."""

    def __init__(
        self,
        replies: Sequence[GrpcReply] = (),
        default: GrpcReply | None = None,
        *,
        max_receive_message_length: int | None = None,
        tls: tuple[Path, Path] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__()
        self.script = _Script(replies, default or GrpcReply())
        options = []
        if max_receive_message_length is not None:
            options.append(("grpc.max_receive_message_length", max_receive_message_length))
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
        service = _LogsService(self)
        self._server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name,
                    {
                        "Export": grpc.unary_unary_rpc_method_handler(
                            service.Export,
                            request_deserializer=None,  # the raw bytes
                            response_serializer=ExportLogsServiceResponse.SerializeToString,
                        )
                    },
                ),
            )
        )
        if tls is None:
            self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        else:
            credentials = grpc.ssl_server_credentials([(tls[1].read_bytes(), tls[0].read_bytes())])
            self.port = self._server.add_secure_port(f"127.0.0.1:{port}", credentials)

    @property
    def endpoint(self) -> str:
        """The ``host:port`` endpoint."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Release hung calls and stop serving."""
        self.stopping.set()
        self._server.stop(grace=None)


def main(argv: Sequence[str] | None = None) -> None:
    """Run a receiver in its own process: ``python -m tests.otlp_receiver http 4318``.

    Prints the requests and body bytes received when interrupted; HTTP requests are
    counted without being decoded, so that the receiver costs the sender nothing.
    """
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("protocol", choices=["http", "grpc"])
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.protocol == "grpc":
        with GrpcReceiver(port=args.port) as grpc_receiver:
            _serve_until_interrupted(grpc_receiver)
    else:
        with HttpReceiver(port=args.port, decode=False) as http_receiver:
            _serve_until_interrupted(http_receiver)


def _serve_until_interrupted(receiver: GrpcReceiver | HttpReceiver) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        receiver.stopping.wait()
    body_bytes = getattr(receiver, "body_bytes", 0)
    print(f"requests={receiver.attempts} body_bytes={body_bytes}", flush=True)


if __name__ == "__main__":
    main()
