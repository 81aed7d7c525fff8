"""Figure 5, in a fresh interpreter that has imported nothing else:
``python -m benchmarks._startup SIDE`` prints the import and setup times as JSON.

``ours``: ``import codex_telemetry``, then ``init()`` of an OTLP/HTTP client, and which
heavy modules each step imported. ``plain``: importing the OpenTelemetry SDK's logs
pipeline and OTLP/HTTP exporter, then building ``LoggerProvider`` +
``BatchLogRecordProcessor`` + ``OTLPLogExporter``.
"""

from __future__ import annotations

import time

_START = time.perf_counter()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

__all__: list[str] = []

# Modules whose import is the cost an exporter brings.
_HEAVY_MODULES = (
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.grpc",
    "grpc",
    "requests",
    "opentelemetry.sdk._logs",
    "google.protobuf",
    "codex_telemetry._export._otlp",
)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/logs"


def _loaded() -> dict[str, bool]:
    return {name: name in sys.modules for name in _HEAVY_MODULES}


def main() -> None:
    """Measure one side and print the JSON result."""
    side = sys.argv[1]
    url = _closed_port_url()
    already = _loaded()
    start = time.perf_counter()
    if side == "ours":
        import codex_telemetry  # noqa: PLC0415

        imported = time.perf_counter()
        after_import = _loaded()
        telemetry = codex_telemetry.init(
            exporter="otlp",
            general_analytics=True,
            otlp={"endpoint": url, "protocol": "http/protobuf"},
        )
        ready = time.perf_counter()
        after_init = _loaded()
        telemetry.shutdown(0.1)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
            OTLPLogExporter,
        )
        from opentelemetry.sdk._logs import LoggerProvider  # noqa: PLC0415
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

        imported = time.perf_counter()
        after_import = _loaded()
        provider = LoggerProvider(resource=Resource.create({"service.name": "benchmark"}))
        provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=url)))
        provider.get_logger("plain_benchmark")
        ready = time.perf_counter()
        after_init = _loaded()
        provider.shutdown()
    print(
        json.dumps(
            {
                "import_ms": (imported - start) * 1e3,
                "init_ms": (ready - imported) * 1e3,
                "interpreter_ms": (start - _START) * 1e3,
                "loaded_before": already,
                "loaded_after_import": after_import,
                "loaded_after_init": after_init,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
