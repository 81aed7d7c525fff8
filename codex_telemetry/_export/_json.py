"""Events written straight to OTLP/JSON, the body of ``http/json`` requests.

OTLP/JSON is the protobuf JSON mapping of the OTLP messages with OTLP's own rules:
lowerCamelCase field names, enums as integers, 64-bit integers as decimal strings, trace
and span ids as hex strings (not base64), and fields at their default value left out.
A null value is an ``AnyValue`` with nothing set. Where a field holds it (a key-value's
``value``, a record's ``body``) the field is left out, which is how the mapping writes an
unset message field and what collectors parse (Rotel refuses ``"value": {}`` and
``"body": {}``); an array element cannot be left out and is ``{}``, which the mapping
reads but Rotel refuses. An empty array or map is written with its empty ``values``
list, which the mapping reads too and Rotel needs.

The text is written from the events themselves, never by decoding the protobuf request
again, so any nesting the events hold can be sent.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any, Final

from codex_telemetry._export._encoding import (
    SEVERITY_NUMBER_INFO,
    SEVERITY_TEXT_INFO,
    RecordFields,
    RecordGroup,
)
from codex_telemetry.events import AnalyticsEvent, WireEvent, params_fields, wire_values

__all__ = ["JsonRecordWriter", "any_value_json", "group_request_json", "key_value_json"]

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1

_string = json.JSONEncoder(ensure_ascii=False).encode


class _Text(str):
    """A fragment of JSON text on the writer's stack (as opposed to a value to write)."""

    __slots__ = ()


_OPEN_ARRAY: Final = '{"arrayValue":{"values":['
_OPEN_KVLIST: Final = '{"kvlistValue":{"values":['
_CLOSE: Final = _Text("]}}")
_COMMA: Final = _Text(",")
_CLOSE_KEY_VALUE: Final = _Text("}")
# The mapping leaves an empty list of values out; collectors need it ("missing field
# `values`"), and the mapping reads it either way.
_EMPTY_ARRAY: Final = '{"arrayValue":{"values":[]}}'
_EMPTY_KVLIST: Final = '{"kvlistValue":{"values":[]}}'


def _scalar_json(value: Any) -> str | None:
    """The ``AnyValue`` of a value that holds no other values; None for containers."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        return '{"stringValue":' + _string(value) + "}"
    if isinstance(value, bool):
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} does not fit an OTLP int64 value")
        return '{"intValue":"' + str(int(value)) + '"}'
    if isinstance(value, float):
        if math.isfinite(value):
            return '{"doubleValue":' + repr(value) + "}"
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return '{"doubleValue":"' + text + '"}'
    if isinstance(value, bytes):
        return '{"bytesValue":"' + base64.b64encode(value).decode("ascii") + '"}'
    return None


def _pairs(value: Any) -> list[tuple[str, Any]] | None:
    if isinstance(value, dict):
        return [(str(key), item) for key, item in value.items()]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    return None


def _write(value: Any, out: list[str]) -> None:
    """Append the ``AnyValue`` JSON of ``value`` to ``out``.

    Iterative, with a stack of its own: any nesting the events hold is written, however
    deep, without reaching the interpreter's recursion limit.
    """
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Text:
            out.append(item)
            continue
        scalar = _scalar_json(item)
        if scalar is not None:
            out.append(scalar)
            continue
        if isinstance(item, tuple | list):
            if not item:
                out.append(_EMPTY_ARRAY)
                continue
            out.append(_OPEN_ARRAY)
            stack.append(_CLOSE)
            for index in range(len(item) - 1, -1, -1):
                stack.append(item[index])
                if index:
                    stack.append(_COMMA)
            continue
        pairs = _pairs(item)
        if pairs is None:
            raise TypeError(
                f"cannot encode a value of type {type(item).__name__} as an OTLP AnyValue"
            )
        if not pairs:
            out.append(_EMPTY_KVLIST)
            continue
        out.append(_OPEN_KVLIST)
        stack.append(_CLOSE)
        for index in range(len(pairs) - 1, -1, -1):
            key, member = pairs[index]
            if member is None:
                stack.append(_Text('{"key":' + _string(key) + "}"))
            else:
                stack.append(_CLOSE_KEY_VALUE)
                stack.append(member)
                stack.append(_Text('{"key":' + _string(key) + ',"value":'))
            if index:
                stack.append(_COMMA)


def any_value_json(value: Any) -> str:
    """The OTLP/JSON ``AnyValue`` of a wire value: ``None`` is ``{}``, mappings and
    dataclasses ``kvlistValue`` in key order, sequences ``arrayValue``."""
    scalar = _scalar_json(value)
    if scalar is not None:
        return scalar
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def key_value_json(key: str, value: Any) -> str:
    """An OTLP/JSON ``KeyValue``; a None value leaves ``value`` out."""
    if value is None:
        return '{"key":' + _string(key) + "}"
    return '{"key":' + _string(key) + ',"value":' + any_value_json(value) + "}"


def _attributes(pairs: Sequence[tuple[str, Any]]) -> str:
    return ",".join(key_value_json(key, value) for key, value in pairs)


def _resource_json(attributes: Sequence[tuple[str, Any]]) -> str:
    if not attributes:
        return "{}"
    return '{"attributes":[' + _attributes(attributes) + "]}"


def _scope_json(name: str, version: str, attributes: Sequence[tuple[str, Any]] = ()) -> str:
    fields = []
    if name:
        fields.append('"name":' + _string(name))
    if version:
        fields.append('"version":' + _string(version))
    if attributes:
        fields.append('"attributes":[' + _attributes(attributes) + "]")
    return "{" + ",".join(fields) + "}"


def _request(resource_logs: Sequence[str]) -> bytes:
    return ('{"resourceLogs":[' + ",".join(resource_logs) + "]}").encode("utf-8")


def _resource_logs(
    resource: str, scope: str, records: Sequence[str], resource_schema: str, scope_schema: str
) -> str:
    scope_logs = '{"scope":' + scope
    if records:
        scope_logs += ',"logRecords":[' + ",".join(records) + "]"
    if scope_schema:
        scope_logs += ',"schemaUrl":' + _string(scope_schema)
    text = '{"resource":' + resource + ',"scopeLogs":[' + scope_logs + "}]"
    if resource_schema:
        text += ',"schemaUrl":' + _string(resource_schema)
    return text + "}"


class JsonRecordWriter:
    """Writes batches of events as one OTLP/JSON export request (one resource, one scope).

    Safe to share between threads: its only state is written once per event class.
    """

    def __init__(
        self,
        resource_attributes: Sequence[tuple[str, Any]],
        scope_name: str,
        scope_version: str,
        *,
        resource_schema_url: str = "",
        scope_schema_url: str = "",
    ) -> None:
        self._resource = _resource_json(resource_attributes)
        self._scope = _scope_json(scope_name, scope_version)
        self._resource_schema_url = resource_schema_url
        self._scope_schema_url = scope_schema_url
        self._names: dict[type, tuple[tuple[str, ...], str]] = {}

    def _plan(self, cls: type[AnalyticsEvent]) -> tuple[tuple[str, ...], str]:
        plan = self._names.get(cls)
        if plan is None:
            plan = (
                (*cls.top_level_fields, *params_fields(cls)),
                ',"eventName":' + _string(cls.event_type) + "}",
            )
            self._names[cls] = plan
        return plan

    def record(self, event: AnalyticsEvent, timestamp_ns: int) -> str:
        """One ``LogRecord`` object: INFO, no body, the event's attributes and name."""
        time = '"' + str(timestamp_ns) + '"'
        if type(event) is WireEvent:  # what before_send returned: its keys, in order
            tail = ',"eventName":' + _string(event.event_type) + "}"
            pairs = zip(event.shape.names, event.values, strict=True)
            attributes = ",".join(key_value_json(name, value) for name, value in pairs)
        else:
            names, tail = self._plan(type(event))
            pairs = zip(names, wire_values(type(event))(event), strict=True)
            attributes = ",".join(key_value_json(name, value) for name, value in pairs)
        return (
            '{"timeUnixNano":'
            + time
            + ',"observedTimeUnixNano":'
            + time
            + f',"severityNumber":{SEVERITY_NUMBER_INFO},"severityText":"{SEVERITY_TEXT_INFO}"'
            + ',"attributes":['
            + attributes
            + "]"
            + tail
        )

    def request(self, events: Sequence[tuple[AnalyticsEvent, int]]) -> bytes:
        """One export request holding a record per ``(event, timestamp_ns)``, UTF-8."""
        records = [self.record(event, timestamp_ns) for event, timestamp_ns in events]
        return _request(
            [
                _resource_logs(
                    self._resource,
                    self._scope,
                    records,
                    self._resource_schema_url,
                    self._scope_schema_url,
                )
            ]
        )


def _record_fields_json(fields: RecordFields) -> str:
    parts = []
    if fields.time_unix_nano:
        parts.append(f'"timeUnixNano":"{fields.time_unix_nano}"')
    if fields.observed_time_unix_nano:
        parts.append(f'"observedTimeUnixNano":"{fields.observed_time_unix_nano}"')
    if fields.severity_number:
        parts.append(f'"severityNumber":{fields.severity_number}')
    if fields.severity_text:
        parts.append('"severityText":' + _string(fields.severity_text))
    if fields.body is not None:
        parts.append('"body":' + any_value_json(fields.body))
    if fields.attributes:
        parts.append('"attributes":[' + _attributes(fields.attributes) + "]")
    if fields.dropped_attributes_count:
        parts.append(f'"droppedAttributesCount":{fields.dropped_attributes_count}')
    if fields.flags:
        parts.append(f'"flags":{fields.flags}')
    if fields.trace_id:
        parts.append('"traceId":"' + fields.trace_id.hex() + '"')
    if fields.span_id:
        parts.append('"spanId":"' + fields.span_id.hex() + '"')
    if fields.event_name:
        parts.append('"eventName":' + _string(fields.event_name))
    return "{" + ",".join(parts) + "}"


def group_request_json(groups: Sequence[RecordGroup]) -> bytes:
    """An OTLP/JSON export request holding one ``resourceLogs`` entry per group."""
    return _request(
        [
            _resource_logs(
                _resource_json(group.resource_attributes),
                _scope_json(group.scope_name, group.scope_version, group.scope_attributes),
                [_record_fields_json(record) for record in group.records],
                group.resource_schema_url,
                group.scope_schema_url,
            )
            for group in groups
        ]
    )
