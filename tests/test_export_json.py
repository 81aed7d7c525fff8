"""The OTLP/JSON writer against the official protobuf JSON mapping of the OTLP messages."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from codex_telemetry._export._json import JsonRecordWriter, any_value_json, key_value_json
from tests.test_export_wire import EVENTS, reference_request


def as_collectors_read_it(data: Any) -> Any:
    """The official mapping of ``data`` with what collectors need (Rotel refuses the
    mapping's own output here): a key-value whose value is empty leaves ``value`` out, an
    empty body is left out, and an empty array or map keeps its empty ``values``."""
    if isinstance(data, list):
        return [as_collectors_read_it(item) for item in data]
    if not isinstance(data, dict):
        return data
    return {
        key: (
            {"values": []}
            if key in ("arrayValue", "kvlistValue") and value == {}
            else as_collectors_read_it(value)
        )
        for key, value in data.items()
        if not (value == {} and (key == "body" or (key == "value" and "key" in data)))
    }


def test_requests_are_the_official_mapping_with_null_values_left_out() -> None:
    writer = JsonRecordWriter(
        [("service.name", "svc"), ("telemetry.sdk.language", "python")],
        "codex_telemetry",
        "9.9.9",
        resource_schema_url="s1",
        scope_schema_url="s2",
    )
    timestamp_ns = 1_700_000_000_123_456_789
    body = writer.request([(event, timestamp_ns) for event in EVENTS])
    reference = reference_request(EVENTS, timestamp_ns)

    expected = json_format.MessageToDict(reference, use_integers_for_enums=True)
    assert json.loads(body) == as_collectors_read_it(expected)
    # The official parser reads it back into the same records; only the empty body and
    # empty values, left out, are unset instead of set to nothing.
    parsed = json_format.Parse(body, ExportLogsServiceRequest())
    assert as_collectors_read_it(
        json_format.MessageToDict(parsed, use_integers_for_enums=True)
    ) == as_collectors_read_it(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "{}"),
        ("", '{"stringValue":""}'),
        ('ü\n"', '{"stringValue":"ü\\n\\""}'),
        (True, '{"boolValue":true}'),
        (-(2**63), '{"intValue":"-9223372036854775808"}'),
        (0.25, '{"doubleValue":0.25}'),
        (1e300, '{"doubleValue":1e+300}'),
        (math.inf, '{"doubleValue":"Infinity"}'),
        (-math.inf, '{"doubleValue":"-Infinity"}'),
        (math.nan, '{"doubleValue":"NaN"}'),
        (b"\x00\xff", '{"bytesValue":"AP8="}'),
        ([], '{"arrayValue":{"values":[]}}'),
        ({}, '{"kvlistValue":{"values":[]}}'),
        (
            [None, 1, [None]],
            '{"arrayValue":{"values":[{},{"intValue":"1"},{"arrayValue":{"values":[{}]}}]}}',
        ),
        (
            {"a": None, "b": {"c": None}},
            '{"kvlistValue":{"values":[{"key":"a"},'
            '{"key":"b","value":{"kvlistValue":{"values":[{"key":"c"}]}}}]}}',
        ),
    ],
)
def test_values_are_written_as_the_mapping_says(value: Any, expected: str) -> None:
    assert any_value_json(value) == expected
    # The official parser accepts it, and writes back the same JSON (empty lists aside).
    parsed = json_format.Parse(expected, AnyValue())
    assert as_collectors_read_it(json_format.MessageToDict(parsed)) == json.loads(expected)


def test_a_null_key_value_leaves_value_out() -> None:
    assert key_value_json("k", None) == '{"key":"k"}'
    assert key_value_json("k", 1) == '{"key":"k","value":{"intValue":"1"}}'


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, object(), {1.5j}])
def test_a_value_json_cannot_hold_raises(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        any_value_json([value])


def test_nesting_far_beyond_the_recursion_limit_is_written() -> None:
    value: Any = "leaf"
    for _ in range(5000):
        value = {"k": [value]}
    text = any_value_json(value)
    assert text.startswith('{"kvlistValue":{"values":[{"key":"k","value":{"arrayValue"')
    assert text.count('"key":"k"') == 5000
    assert text.endswith('{"stringValue":"leaf"}' + "]}}}]}}" * 5000)
