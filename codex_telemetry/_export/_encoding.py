"""OTLP values around the records: attributes as Python values, scope, foreign records.

Every event becomes one log record whose attributes are the event's ``event_params``
nested as they are, plus ``skill_id``/``skill_name`` for ``skill_invocation``. The
records themselves are written to protobuf bytes by :mod:`codex_telemetry._export._wire`
and to OTLP/JSON by :mod:`codex_telemetry._export._json`. Records that other code emitted
into a provider our exporter serves are read into :class:`RecordFields` first, grouped by
resource and scope, so that both writers share one reading of the SDK's records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

from codex_telemetry.events import AnalyticsEvent, WireEvent

__all__ = [
    "SEVERITY_NUMBER_INFO",
    "SEVERITY_TEXT_INFO",
    "RecordFields",
    "RecordGroup",
    "encode_scope",
    "event_attributes",
    "group_records",
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
    if type(event) is WireEvent:  # what before_send returned, its own values
        wire = event.wire
        return {**{name: wire[name] for name in event.shape.top}, **wire["event_params"]}
    attributes: dict[str, Any] = {name: getattr(event, name) for name in event.top_level_fields}
    attributes.update(event.params())
    return attributes


def encode_scope(name: str, version: str | None) -> InstrumentationScope:
    """An OTLP instrumentation scope."""
    return InstrumentationScope(name=name, version=version or "")


@dataclass(frozen=True, slots=True)
class RecordFields:
    """The fields of one OTLP ``LogRecord`` as plain values (zero, empty: not set)."""

    time_unix_nano: int
    observed_time_unix_nano: int
    severity_number: int
    severity_text: str
    body: Any  # None: no body
    attributes: Sequence[tuple[str, Any]]
    dropped_attributes_count: int
    flags: int
    trace_id: bytes
    span_id: bytes
    event_name: str


@dataclass(frozen=True, slots=True)
class RecordGroup:
    """The records of one resource and one instrumentation scope."""

    resource_attributes: Sequence[tuple[str, Any]]
    resource_schema_url: str
    scope_name: str
    scope_version: str
    scope_attributes: Sequence[tuple[str, Any]]
    scope_schema_url: str
    records: list[RecordFields]


def _record_fields(item: Any) -> RecordFields:
    record = item.log_record
    event = getattr(record, "codex_event", None)
    if isinstance(event, AnalyticsEvent):
        attributes: Sequence[tuple[str, Any]] = list(event_attributes(event).items())
    else:
        attributes = list((record.attributes or {}).items())
    severity = record.severity_number
    trace_id = record.trace_id or 0
    span_id = record.span_id or 0
    # ``dropped_attributes`` is on the readable record (or, in older SDK releases, on the
    # record itself).
    dropped = getattr(item, "dropped_attributes", None)
    if dropped is None:
        dropped = getattr(record, "dropped_attributes", 0)
    return RecordFields(
        time_unix_nano=record.timestamp or 0,
        observed_time_unix_nano=record.observed_timestamp or 0,
        severity_number=int(getattr(severity, "value", severity) or 0),
        severity_text=record.severity_text or "",
        body=record.body,
        attributes=attributes,
        dropped_attributes_count=int(dropped or 0),
        flags=int(record.trace_flags or 0),
        trace_id=trace_id.to_bytes(16, "big") if trace_id else b"",
        span_id=span_id.to_bytes(8, "big") if span_id else b"",
        event_name=getattr(record, "event_name", None) or "",
    )


def group_records(items: Iterable[Any]) -> list[RecordGroup]:
    """Read SDK log records (readable records, or ``LogData`` of older SDK releases)
    into groups by resource and scope, in order of first appearance."""
    groups: dict[tuple[int, int], RecordGroup] = {}
    for item in items:
        record = item.log_record
        resource = getattr(item, "resource", None) or getattr(record, "resource", None)
        scope = item.instrumentation_scope
        key = (id(resource), id(scope))
        group = groups.get(key)
        if group is None:
            group = RecordGroup(
                resource_attributes=list(resource.attributes.items()) if resource else [],
                resource_schema_url=(resource.schema_url if resource else "") or "",
                scope_name=(scope.name if scope else "") or "",
                scope_version=(scope.version if scope else "") or "",
                scope_attributes=list((getattr(scope, "attributes", None) or {}).items()),
                scope_schema_url=(scope.schema_url if scope else "") or "",
                records=[],
            )
            groups[key] = group
        group.records.append(_record_fields(item))
    return list(groups.values())
