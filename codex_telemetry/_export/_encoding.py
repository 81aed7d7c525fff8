"""OTLP values around the records: attributes as Python values, scope, OTLP/JSON.

Every event becomes one log record whose attributes are the event's ``event_params``
nested as they are, plus ``skill_id``/``skill_name`` for ``skill_invocation``. The
records themselves are written to protobuf bytes by :mod:`codex_telemetry._export._wire`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    InstrumentationScope,
)

from codex_telemetry.events import AnalyticsEvent

__all__ = [
    "SEVERITY_NUMBER_INFO",
    "SEVERITY_TEXT_INFO",
    "encode_scope",
    "event_attributes",
    "request_to_json",
]

SEVERITY_NUMBER_INFO = 9
"""``SEVERITY_NUMBER_INFO`` of the OTel log data model."""
SEVERITY_TEXT_INFO = "INFO"
"""The severity text sent with every event."""


def event_attributes(event: AnalyticsEvent) -> dict[str, Any]:
    """The log record attributes of ``event`` as plain Python values.

    Used when the records go to a ``LoggerProvider`` the host program configured, whose
    exporters encode the attributes themselves.
    """
    attributes: dict[str, Any] = {name: getattr(event, name) for name in event.top_level_fields}
    attributes.update(event.params())
    return attributes


def encode_scope(name: str, version: str | None) -> InstrumentationScope:
    """An OTLP instrumentation scope."""
    return InstrumentationScope(name=name, version=version or "")


def _hex_ids(record: dict[str, Any]) -> None:
    for key in ("traceId", "spanId"):
        value = record.get(key)
        if isinstance(value, str) and value:
            record[key] = base64.b64decode(value).hex()


def _omit_empty_values(node: Any) -> None:
    # An empty AnyValue (a null attribute, the empty body) maps to ``{}``, which
    # collectors refuse (Rotel: "no known keys found"); an absent field means the same.
    if isinstance(node, dict):
        for key in ("value", "body"):
            if node.get(key) == {}:
                del node[key]
        for child in node.values():
            _omit_empty_values(child)
    elif isinstance(node, list):
        for child in node:
            _omit_empty_values(child)


def request_to_json(request: ExportLogsServiceRequest) -> bytes:
    """Encode ``request`` as OTLP/JSON.

    OTLP/JSON is the protobuf JSON mapping with four changes: field names are
    lowerCamelCase (the mapping's default), enums are integers, trace and span ids are
    hex strings instead of base64, and an empty value (a null attribute, the empty
    body) is left out instead of written as ``{}``.
    """
    message = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_logs in message.get("resourceLogs", ()):
        for scope_logs in resource_logs.get("scopeLogs", ()):
            for record in scope_logs.get("logRecords", ()):
                _hex_ids(record)
    _omit_empty_values(message)
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
