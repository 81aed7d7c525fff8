"""A loopback OTLP/HTTP receiver that counts log records, run as its own process.

``python -m benchmarks._receiver`` prints its port, then answers commands on stdin:
``wait N`` replies ``ok <count>`` once at least N records arrived in total (or
``timeout <count>`` after 120 s); ``count`` replies at once. Each request body is
decoded into the official ``ExportLogsServiceRequest``, so a record counts only if a
collector could read it.
"""

from __future__ import annotations

import gzip
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

_WAIT_LIMIT = 120.0
_EMPTY_RESPONSE = ExportLogsServiceResponse().SerializeToString()


class _Count:
    def __init__(self) -> None:
        self.records = 0
        self.requests = 0
        self.condition = threading.Condition()

    def add(self, records: int) -> None:
        with self.condition:
            self.records += records
            self.requests += 1
            self.condition.notify_all()

    def wait(self, target: int) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: self.records >= target, _WAIT_LIMIT)


def _count_records(body: bytes) -> int:
    request = ExportLogsServiceRequest()
    request.ParseFromString(body)
    return sum(
        len(scope_logs.log_records)
        for resource_logs in request.resource_logs
        for scope_logs in resource_logs.scope_logs
    )


def serve() -> None:
    """Serve on 127.0.0.1 until stdin closes."""
    count = _Count()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                records = _count_records(body)
            except Exception:
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            count.add(records)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(_EMPTY_RESPONSE)))
            self.end_headers()
            self.wfile.write(_EMPTY_RESPONSE)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "wait":
            reached = count.wait(int(command[1]))
            print(f"{'ok' if reached else 'timeout'} {count.records}", flush=True)
        elif command[0] == "count":
            print(f"ok {count.records} {count.requests}", flush=True)
    server.shutdown()


if __name__ == "__main__":
    serve()
