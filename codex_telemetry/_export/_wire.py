"""Events written straight to OTLP protobuf wire bytes, with cached fragments.

Protobuf's wire format is a concatenation of fields, each a tag followed by its value;
a length-delimited field (a string, a nested message) carries its byte length first.
So the bytes of an attribute are the same in every record that has it: the key, and a
value such as ``"model": "gpt-5"`` or a connection's whole ``app_server_client`` object.
Building protobuf messages attribute by attribute dominated the cost of exporting; here
each attribute's field is looked up, or encoded once, and a record is the join of its
fields. The output is what ``ExportLogsServiceRequest.SerializeToString()`` produces for
the same records (the tests decode it with the official classes and compare).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from codex_telemetry._export._encoding import (
    SEVERITY_NUMBER_INFO,
    SEVERITY_TEXT_INFO,
    RecordFields,
    RecordGroup,
)
from codex_telemetry.events import (
    AnalyticsEvent,
    AppServerClient,
    WireEvent,
    WireShape,
    params_fields,
    wire_values,
)
from codex_telemetry.facts import RuntimeMetadata

__all__ = [
    "EncodedRequest",
    "RecordWriter",
    "any_value_bytes",
    "group_request_bytes",
    "resource_bytes",
]

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT64_MASK: Final = (1 << 64) - 1
_SMALL_VARINTS: Final = tuple(bytes((n,)) for n in range(128))
_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack

# Per attribute name, this many distinct values are kept encoded (then the cache starts
# over): enough for enum strings and models, bounded for ids that never repeat.
_VALUES_PER_NAME: Final = 256
_MAX_CACHED_LENGTH: Final = 256
# Shared objects (a connection's client and runtime) kept encoded, by identity.
_SHARED_LIMIT: Final = 1024
_SHARED_TYPES: Final = (AppServerClient, RuntimeMetadata)


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, byte length, payload."""
    return tag + _varint(len(payload)) + payload


def _key_value_bytes(key: str, value: Any) -> bytes:
    """A ``KeyValue`` message; the value is always present, empty for None."""
    return _field(b"\x0a", key.encode()) + _field(b"\x12", any_value_bytes(value))


def _scalar_bytes(value: Any) -> bytes | None:
    """The ``AnyValue`` of a value that holds no other values; None for containers."""
    if value is None:
        return b""
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} does not fit an OTLP int64 value")
        return b"\x18" + _varint(value & _UINT64_MASK)
    if isinstance(value, float):
        return b"!" + _pack_double(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    return None


class _Container:
    """A map or array being written: its members, and the fields written so far."""

    __slots__ = ("index", "key", "members", "parts", "tag")

    def __init__(self, value: Any, key: str | None) -> None:
        self.key = key
        self.index = 0
        self.parts: list[bytes] = []
        if isinstance(value, tuple | list):
            self.tag = b"\x2a"
            self.members: list[tuple[str | None, Any]] = [(None, v) for v in value]
        elif isinstance(value, dict):
            self.tag = b"\x32"
            self.members = [(str(k), v) for k, v in value.items()]
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            self.tag = b"\x32"
            self.members = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
        else:
            raise TypeError(
                f"cannot encode a value of type {type(value).__name__} as an OTLP AnyValue"
            )

    def add(self, key: str | None, any_value: bytes) -> None:
        if key is None:  # an array's element
            self.parts.append(_field(b"\x0a", any_value))
        else:  # a map's KeyValue
            self.parts.append(
                _field(b"\x0a", _field(b"\x0a", key.encode()) + _field(b"\x12", any_value))
            )

    def finish(self) -> bytes:
        return _field(self.tag, b"".join(self.parts))


def any_value_bytes(value: Any) -> bytes:
    """The ``AnyValue`` message of a wire value: ``None`` the empty value, mappings and
    dataclasses ``kvlist`` values in key order, sequences arrays.

    Iterative, with a stack of its own: any nesting is written, however deep, without
    reaching the interpreter's recursion limit.
    """
    scalar = _scalar_bytes(value)
    if scalar is not None:
        return scalar
    stack = [_Container(value, None)]
    while True:
        top = stack[-1]
        if top.index < len(top.members):
            key, member = top.members[top.index]
            top.index += 1
            encoded = _scalar_bytes(member)
            if encoded is None:
                stack.append(_Container(member, key))
            else:
                top.add(key, encoded)
            continue
        stack.pop()
        finished = top.finish()
        if not stack:
            return finished
        stack[-1].add(top.key, finished)


def resource_bytes(attributes: Iterable[tuple[str, Any]]) -> bytes:
    """A ``Resource`` message holding ``(key, value)`` attributes."""
    return b"".join(_field(b"\x0a", _key_value_bytes(key, value)) for key, value in attributes)


class _Attribute:
    """One attribute name of an event class, with its encoded fields cached by value."""

    __slots__ = ("false", "integers", "key", "name", "none", "shared", "strings", "true")

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = _field(b"\x0a", name.encode())
        self.none = self.encode(None)
        self.true = self.encode(True)
        self.false = self.encode(False)
        self.strings: dict[str, bytes] = {}
        self.integers: dict[int, bytes] = {}
        self.shared: dict[int, tuple[object, bytes]] = {}

    def encode(self, value: Any) -> bytes:
        """The record's ``attributes`` field (number 6) for this name and ``value``."""
        return _field(b"\x32", _key_value_bytes(self.name, value))

    def integer(self, value: int) -> bytes:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} does not fit an OTLP int64 value")
        # An int64 AnyValue is at most 11 bytes: its length is a one-byte varint.
        any_value = b"\x18" + _varint(value & _UINT64_MASK)
        encoded = _field(b"\x32", self.key + b"\x12" + _SMALL_VARINTS[len(any_value)] + any_value)
        integers = self.integers
        if len(integers) >= _VALUES_PER_NAME:
            integers.clear()
        integers[value] = encoded
        return encoded

    def string(self, value: str) -> bytes:
        encoded = _field(b"\x32", self.key + _field(b"\x12", _field(b"\x0a", value.encode())))
        if len(encoded) <= _MAX_CACHED_LENGTH:
            strings = self.strings
            if len(strings) >= _VALUES_PER_NAME:
                strings.clear()
            strings[value] = encoded
        return encoded

    def shared_object(self, value: object) -> bytes:
        entry = self.shared.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        encoded = self.encode(value)
        if len(self.shared) >= _SHARED_LIMIT:
            self.shared.clear()
        # Holding the object keeps its id from being reused while the entry lives.
        self.shared[id(value)] = (value, encoded)
        return encoded


# Fields of every record before its attributes: severity number, severity text, and
# the empty body (present, as the message encoder writes it).
_AFTER_TIME: Final = (
    b"\x10"
    + _varint(SEVERITY_NUMBER_INFO)
    + _field(b"\x1a", SEVERITY_TEXT_INFO.encode())
    + b"\x2a\x00"
)


class EncodedRequest:
    """An ``ExportLogsServiceRequest`` already serialised.

    ``SerializeToString()`` returns the bytes, so it stands in for the message wherever
    only the bytes are needed; :meth:`message` decodes them where a message is.
    """

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    def SerializeToString(self) -> bytes:  # noqa: N802 - the protobuf method it stands in for
        """The request's wire bytes."""
        return self._body

    def message(self) -> ExportLogsServiceRequest:
        """The request decoded by the official protobuf classes."""
        return ExportLogsServiceRequest.FromString(self._body)


# Per event class: its attributes in order, a function returning all of an event's values
# in that order, and the record's ``event_name`` field.
_Plan = tuple[tuple["_Attribute", ...], Callable[[Any], Iterable[Any]], bytes]


class RecordWriter:
    """Writes batches of events as one OTLP export request (one resource, one scope).

    ``resource`` and ``scope`` are the serialised ``Resource`` and ``InstrumentationScope``
    messages. Safe to share between threads: caches only ever gain complete entries.
    """

    def __init__(
        self,
        resource: bytes,
        scope: bytes,
        *,
        resource_schema_url: str = "",
        scope_schema_url: str = "",
    ) -> None:
        self._resource_field = _field(b"\x0a", resource)
        self._scope_field = _field(b"\x0a", scope)
        self._resource_tail = (
            _field(b"\x1a", resource_schema_url.encode()) if resource_schema_url else b""
        )
        self._scope_tail = _field(b"\x1a", scope_schema_url.encode()) if scope_schema_url else b""
        self._plans: dict[type, _Plan] = {}
        self._shapes: dict[WireShape, tuple[_Attribute, ...]] = {}
        self._event_names: dict[str, bytes] = {}

    def _plan(self, cls: type[AnalyticsEvent]) -> _Plan:
        plan = self._plans.get(cls)
        if plan is None:
            names = (*cls.top_level_fields, *params_fields(cls))
            attributes = tuple(_Attribute(name) for name in names)
            plan = (attributes, wire_values(cls), _field(b"\x62", cls.event_type.encode()))
            self._plans[cls] = plan
        return plan

    def _shape_plan(self, shape: WireShape) -> tuple[_Attribute, ...]:
        attributes = self._shapes.get(shape)
        if attributes is None:
            attributes = self._shapes[shape] = tuple(_Attribute(name) for name in shape.names)
        return attributes

    def _event_name(self, event_type: str) -> bytes:
        name = self._event_names.get(event_type)
        if name is None:
            if len(self._event_names) >= _VALUES_PER_NAME:
                self._event_names.clear()
            name = self._event_names[event_type] = _field(b"\x62", event_type.encode())
        return name

    def record(self, event: AnalyticsEvent, timestamp_ns: int) -> bytes:
        """One ``LogRecord`` message: INFO, empty body, the event's attributes and name."""
        if type(event) is WireEvent:
            return self._wire_record(event, timestamp_ns)
        attributes, values, event_name = self._plans.get(type(event)) or self._plan(type(event))
        time_bytes = _pack_fixed64(timestamp_ns)
        parts = [b"\x09", time_bytes, _AFTER_TIME]
        append = parts.append
        for attribute, value in zip(attributes, values(event), strict=True):
            kind = type(value)
            if kind is str:
                encoded = attribute.strings.get(value)
                append(encoded if encoded is not None else attribute.string(value))
            elif value is None:
                append(attribute.none)
            elif kind is int:
                encoded = attribute.integers.get(value)
                append(encoded if encoded is not None else attribute.integer(value))
            elif kind is bool:
                append(attribute.true if value else attribute.false)
            elif kind in _SHARED_TYPES:
                append(attribute.shared_object(value))
            else:
                append(attribute.encode(value))
        parts.append(b"\x59")
        parts.append(time_bytes)
        parts.append(event_name)
        return b"".join(parts)

    def _wire_record(self, event: WireEvent, timestamp_ns: int) -> bytes:
        """:meth:`record` of what ``before_send`` returned: the values of its keys, in order."""
        attributes = self._shapes.get(event.shape) or self._shape_plan(event.shape)
        time_bytes = _pack_fixed64(timestamp_ns)
        parts = [b"\x09", time_bytes, _AFTER_TIME]
        append = parts.append
        shared = event.shared or {}
        for attribute, value in zip(attributes, event.values, strict=True):
            kind = type(value)
            if kind is str:
                encoded = attribute.strings.get(value)
                append(encoded if encoded is not None else attribute.string(value))
            elif value is None:
                append(attribute.none)
            elif kind is int:
                encoded = attribute.integers.get(value)
                append(encoded if encoded is not None else attribute.integer(value))
            elif kind is bool:
                append(attribute.true if value else attribute.false)
            elif kind is dict and id(value) in shared:  # as the SDK made it: the event's own
                append(attribute.shared_object(shared[id(value)]))
            elif kind in _SHARED_TYPES:
                append(attribute.shared_object(value))
            else:
                append(attribute.encode(value))
        parts.append(b"\x59")
        parts.append(time_bytes)
        parts.append(self._event_names.get(event.event_type) or self._event_name(event.event_type))
        return b"".join(parts)

    def request(self, events: Sequence[tuple[AnalyticsEvent, int]]) -> EncodedRequest:
        """One export request holding a record per ``(event, timestamp_ns)``."""
        record = self.record
        parts = [self._scope_field]
        append = parts.append
        for event, timestamp_ns in events:
            body = record(event, timestamp_ns)
            append(b"\x12")
            append(_varint(len(body)))
            append(body)
        parts.append(self._scope_tail)
        resource_logs = b"".join(
            (self._resource_field, _field(b"\x12", b"".join(parts)), self._resource_tail)
        )
        return EncodedRequest(_field(b"\x0a", resource_logs))


def _record_fields_bytes(fields: RecordFields) -> bytes:
    """A ``LogRecord`` message from plain fields, in field-number order; unset fields
    (zero, empty, a None body) are left out as protobuf does."""
    parts = []
    if fields.time_unix_nano:
        parts.append(b"\x09" + _pack_fixed64(fields.time_unix_nano))
    if fields.severity_number:
        parts.append(b"\x10" + _varint(fields.severity_number))
    if fields.severity_text:
        parts.append(_field(b"\x1a", fields.severity_text.encode()))
    if fields.body is not None:
        parts.append(_field(b"\x2a", any_value_bytes(fields.body)))
    parts.extend(_field(b"\x32", _key_value_bytes(k, v)) for k, v in fields.attributes)
    if fields.dropped_attributes_count:
        parts.append(b"\x38" + _varint(fields.dropped_attributes_count))
    if fields.flags:
        parts.append(b"\x45" + _pack_fixed32(fields.flags))
    if fields.trace_id:
        parts.append(_field(b"\x4a", fields.trace_id))
    if fields.span_id:
        parts.append(_field(b"\x52", fields.span_id))
    if fields.observed_time_unix_nano:
        parts.append(b"\x59" + _pack_fixed64(fields.observed_time_unix_nano))
    if fields.event_name:
        parts.append(_field(b"\x62", fields.event_name.encode()))
    return b"".join(parts)


def group_request_bytes(groups: Sequence[RecordGroup]) -> bytes:
    """An ``ExportLogsServiceRequest`` holding one ``ResourceLogs`` per group."""
    out = []
    for group in groups:
        scope = b"".join(
            (
                _field(b"\x0a", group.scope_name.encode()) if group.scope_name else b"",
                _field(b"\x12", group.scope_version.encode()) if group.scope_version else b"",
                *(_field(b"\x1a", _key_value_bytes(k, v)) for k, v in group.scope_attributes),
            )
        )
        scope_logs = b"".join(
            (
                _field(b"\x0a", scope),
                *(_field(b"\x12", _record_fields_bytes(r)) for r in group.records),
                _field(b"\x1a", group.scope_schema_url.encode()) if group.scope_schema_url else b"",
            )
        )
        resource_logs = b"".join(
            (
                _field(b"\x0a", resource_bytes(group.resource_attributes)),
                _field(b"\x12", scope_logs),
                _field(b"\x1a", group.resource_schema_url.encode())
                if group.resource_schema_url
                else b"",
            )
        )
        out.append(_field(b"\x0a", resource_logs))
    return b"".join(out)
