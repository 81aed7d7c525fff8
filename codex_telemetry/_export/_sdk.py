"""What of the OpenTelemetry SDK the OTLP sink needs before the interpreter starts to exit.

``init()`` imports this module while the sink itself waits for its first batch (see
:mod:`codex_telemetry._export._deferred`), and that batch may come only with the exit.
By then the SDK can no longer be set up: ``Resource.create`` runs the resource detectors
on a thread pool, which refuses work once the interpreter exits, and the logs SDK calls
it when it is imported. So the logs SDK is imported here and the resource made with it;
``requests``, protobuf and the exporter's own modules are imported with the sink.
"""

from __future__ import annotations

# Imported for what importing it does: it makes a Resource (see above).
from opentelemetry.sdk._logs import LoggerProvider  # noqa: F401
from opentelemetry.sdk.resources import Resource

from codex_telemetry._version import __version__

__all__ = ["build_resource"]


def build_resource(service_name: str, service_version: str | None) -> Resource:
    """The OTel resource of the records: service name and version, the SDK's
    ``telemetry.sdk.*`` attributes, and ``OTEL_RESOURCE_ATTRIBUTES``."""
    return Resource.create(
        {"service.name": service_name, "service.version": service_version or __version__}
    )
