"""Events as OTLP log records: attribute values, protobuf messages and OTLP/JSON.

Every event becomes one log record whose attributes are the event's ``event_params``
nested as they are, plus ``skill_id``/``skill_name`` for ``skill_invocation``. The
attribute encoding lives in :func:`encode_attributes` alone, so that a faster encoder can
replace it without touching the transports.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from codex_telemetry.events import AnalyticsEvent, AppServerClient
from codex_telemetry.facts import RuntimeMetadata

__all__ = [
    "SEVERITY_NUMBER_INFO",
    "SEVERITY_TEXT_INFO",
    "encode_any_value",
    "encode_attributes",
    "encode_events_request",
    "encode_resource",
    "encode_scope",
    "event_attributes",
    "request_to_json",
]

SEVERITY_NUMBER_INFO = 9
"""``SEVERITY_NUMBER_INFO`` of the OTel log data model."""
SEVERITY_TEXT_INFO = "INFO"
"""The severity text sent with every event."""

_field_names_by_type: dict[type, tuple[str, ...]] = {}


def _param_names(cls: type[AnalyticsEvent]) -> tuple[str, ...]:
    """Attribute keys of an event class: top-level fields first, then ``event_params``."""
    names = _field_names_by_type.get(cls)
    if names is None:
        top = cls.top_level_fields
        params = tuple(f.name for f in dataclasses.fields(cls) if f.name not in top)  # type: ignore[arg-type]
        names = (*top, *params)
        _field_names_by_type[cls] = names
    return names


def event_attributes(event: AnalyticsEvent) -> dict[str, Any]:
    """The log record attributes of ``event`` as plain Python values.

    Used when the records go to a ``LoggerProvider`` the host program configured, whose
    exporters encode the attributes themselves.
    """
    attributes: dict[str, Any] = {name: getattr(event, name) for name in event.top_level_fields}
    attributes.update(event.params())
    return attributes


# Values shared by identity between the events of one connection are encoded once.
# The cache maps id() to (object, encoded value); holding the object keeps its id valid.
_SHARED_TYPES = (AppServerClient, RuntimeMetadata)
_SHARED_CACHE_LIMIT = 1024
_shared_cache: dict[int, tuple[object, AnyValue]] = {}
_shared_cache_lock = threading.Lock()


def _encode_shared(value: object) -> AnyValue:
    key = id(value)
    entry = _shared_cache.get(key)
    if entry is not None and entry[0] is value:
        return entry[1]
    encoded = _encode_dataclass(value)
    with _shared_cache_lock:
        if len(_shared_cache) >= _SHARED_CACHE_LIMIT:
            _shared_cache.clear()
        _shared_cache[key] = (value, encoded)
    return encoded


def _encode_dataclass(value: Any) -> AnyValue:
    names = _field_names_by_type.get(type(value))
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(value))
        _field_names_by_type[type(value)] = names
    return AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key=name, value=encode_any_value(getattr(value, name))) for name in names
            ]
        )
    )


def encode_any_value(value: Any) -> AnyValue:
    """Encode a wire value (JSON values, tuples, frozen dataclasses) as an OTLP ``AnyValue``.

    ``None`` becomes the empty ``AnyValue``, mappings and dataclasses become ``kvlist``
    values in key order, sequences become arrays.
    """
    if value is None:
        return AnyValue()
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, _SHARED_TYPES):
        return _encode_shared(value)
    if isinstance(value, tuple | list):
        return AnyValue(array_value=ArrayValue(values=[encode_any_value(item) for item in value]))
    if isinstance(value, dict):
        return AnyValue(
            kvlist_value=KeyValueList(
                values=[
                    KeyValue(key=str(key), value=encode_any_value(item))
                    for key, item in value.items()
                ]
            )
        )
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_dataclass(value)
    raise TypeError(f"cannot encode a value of type {type(value).__name__} as an OTLP AnyValue")


# Encoded attributes are reused: (key, value) pairs repeat across events (model names,
# enum strings, flags), and building protobuf messages dominates the cost of exporting.
# Cached messages are never mutated; protobuf copies them into each record.
_KV_CACHE_LIMIT = 8192
_scalar_kvs: dict[tuple[str, type, object], KeyValue] = {}
_shared_kvs: dict[tuple[str, int], tuple[object, KeyValue]] = {}


def _key_value(name: str, value: Any) -> KeyValue:
    if value is None or isinstance(value, str | int | float):
        scalar_key = (name, type(value), value)
        kv = _scalar_kvs.get(scalar_key)
        if kv is None:
            kv = KeyValue(key=name, value=encode_any_value(value))
            if len(_scalar_kvs) >= _KV_CACHE_LIMIT:
                _scalar_kvs.clear()
            _scalar_kvs[scalar_key] = kv
        return kv
    if isinstance(value, _SHARED_TYPES):
        shared_key = (name, id(value))
        entry = _shared_kvs.get(shared_key)
        if entry is None or entry[0] is not value:
            entry = (value, KeyValue(key=name, value=_encode_shared(value)))
            if len(_shared_kvs) >= _SHARED_CACHE_LIMIT:
                _shared_kvs.clear()
            _shared_kvs[shared_key] = entry
        return entry[1]
    return KeyValue(key=name, value=encode_any_value(value))


def encode_attributes(event: AnalyticsEvent) -> list[KeyValue]:
    """The OTLP attributes of ``event``: its ``event_params`` (plus the skill fields).

    This is the one place attributes are encoded; a faster encoder replaces it alone.
    """
    return [_key_value(name, getattr(event, name)) for name in _param_names(type(event))]


_EMPTY = AnyValue()


def encode_events_request(
    resource: Resource,
    scope: InstrumentationScope,
    events: Sequence[tuple[AnalyticsEvent, int]],
    *,
    resource_schema_url: str = "",
    scope_schema_url: str = "",
) -> ExportLogsServiceRequest:
    """One export request holding a record per ``(event, timestamp_ns)``.

    Records are built in place inside the request, so no record is copied.
    """
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add(resource=resource, schema_url=resource_schema_url)
    scope_logs = resource_logs.scope_logs.add(scope=scope, schema_url=scope_schema_url)
    add = scope_logs.log_records.add
    for event, timestamp_ns in events:
        add(
            time_unix_nano=timestamp_ns,
            observed_time_unix_nano=timestamp_ns,
            severity_number=SEVERITY_NUMBER_INFO,
            severity_text=SEVERITY_TEXT_INFO,
            body=_EMPTY,
            attributes=encode_attributes(event),
            event_name=event.event_type,
        )
    return request


def encode_resource(attributes: Iterable[tuple[str, Any]]) -> Resource:
    """An OTLP resource from ``(key, value)`` pairs."""
    return Resource(
        attributes=[KeyValue(key=key, value=encode_any_value(value)) for key, value in attributes]
    )


def encode_scope(name: str, version: str | None) -> InstrumentationScope:
    """An OTLP instrumentation scope."""
    return InstrumentationScope(name=name, version=version or "")


def _hex_ids(record: dict[str, Any]) -> None:
    for key in ("traceId", "spanId"):
        value = record.get(key)
        if isinstance(value, str) and value:
            record[key] = base64.b64decode(value).hex()


def request_to_json(request: ExportLogsServiceRequest) -> bytes:
    """Encode ``request`` as OTLP/JSON.

    OTLP/JSON is the protobuf JSON mapping with three changes: field names are
    lowerCamelCase (the mapping's default), enums are integers, and trace and span ids
    are hex strings instead of base64.
    """
    message = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_logs in message.get("resourceLogs", ()):
        for scope_logs in resource_logs.get("scopeLogs", ()):
            for record in scope_logs.get("logRecords", ()):
                _hex_ids(record)
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
