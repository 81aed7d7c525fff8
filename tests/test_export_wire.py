"""Records written straight to wire bytes decode to exactly the reference encoding.

The reference is built here, independently, with the official protobuf classes from
each event's wire JSON (``event.to_dict()``): a collector decoding our bytes sees the
same attributes, values and types as it would from the message-by-message encoder.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._otlp import OTLPHttpLogExporter, OTLPSink
from codex_telemetry._export._sdk import build_resource
from codex_telemetry._export._wire import (
    EncodedRequest,
    RecordWriter,
    any_value_bytes,
    resource_bytes,
)
from codex_telemetry.events import (
    AnalyticsEvent,
    AppMentionedEvent,
    AppServerClient,
    CompactionEvent,
    HookRunEvent,
    PluginInstalledEvent,
    PluginUsedEvent,
    SkillInvocationEvent,
    ThreadInitializedEvent,
    TurnEvent,
    TurnSteerEvent,
    to_wire,
)
from codex_telemetry.facts import RuntimeMetadata
from tests.otlp_receiver import HttpReceiver, records_of

RESOURCE = Resource(
    attributes=[
        KeyValue(key="service.name", value=AnyValue(string_value="svc")),
        KeyValue(key="telemetry.sdk.language", value=AnyValue(string_value="python")),
    ]
)
SCOPE = InstrumentationScope(name="codex_telemetry", version="9.9.9")
CLIENT = AppServerClient("codex-tui", "codex-tui", "1.0.0", "stdio", None)
OTHER_CLIENT = AppServerClient("vscode", None, None, "websocket", True)
RUNTIME = RuntimeMetadata("0.169.0", "linux", "12.0.0", "x86_64")

TURN = TurnEvent(
    thread_id="thread-1",
    turn_id="turn-1",
    submission_type=None,
    app_server_client=CLIENT,
    runtime=RUNTIME,
    ephemeral=False,
    thread_source="user",
    initialization_mode="new",
    subagent_source=None,
    parent_thread_id=None,
    model="gpt-5",
    model_provider="openai",
    sandbox_policy="read_only",
    reasoning_effort=None,
    reasoning_summary=None,
    service_tier="default",
    approval_policy="on-request",
    approvals_reviewer="guardian_subagent",
    sandbox_network_access=True,
    collaboration_mode="plan",
    personality=None,
    num_input_images=1,
    is_first_turn=True,
    status="failed",
    turn_error={"httpConnectionFailed": {"httpStatusCode": 502}},
    steer_count=0,
    total_tool_call_count=None,
    shell_command_count=None,
    file_change_count=None,
    mcp_tool_call_count=None,
    dynamic_tool_call_count=None,
    subagent_tool_call_count=None,
    web_search_count=None,
    image_generation_count=None,
    input_tokens=0,
    cached_input_tokens=2**63 - 1,
    output_tokens=-1,
    reasoning_output_tokens=-(2**63),
    total_tokens=300,
    duration_ms=None,
    started_at=1,
    completed_at=0,
)

EVENTS: list[AnalyticsEvent] = [
    TURN,
    dataclasses.replace(
        TURN,
        turn_id="turn-2 ✓ ünïcode " + "x" * 300,  # longer than any cached value
        app_server_client=OTHER_CLIENT,
        turn_error="contextWindowExceeded",
        model="",
        status=None,
    ),
    ThreadInitializedEvent(
        "thread-2", CLIENT, RUNTIME, "gpt-5", True, None, "forked", None, None, 0
    ),
    TurnSteerEvent(
        "thread-1",
        "turn-1",
        None,
        CLIENT,
        RUNTIME,
        "subagent",
        "review",
        "p",
        2,
        "rejected",
        "no_active_turn",
        1_795_580_000,
    ),
    SkillInvocationEvent("0" * 40, "doc", "codex_cli_rs", "repo", None, "t", "explicit", "m"),
    AppMentionedEvent(None, "t", "u", None, "codex_cli_rs", None, "m"),
    PluginUsedEvent("a@b", "a", "b", True, 1, ("c1", "c2"), "codex_cli_rs", "t", "u", "m"),
    PluginUsedEvent("a@b", "a", "b", False, 0, (), "codex_cli_rs", "t", "u", "m"),
    PluginInstalledEvent("a@b", "a", "b", None, None, None, "codex_cli_rs"),
    HookRunEvent("t", "u", "m", "PreToolUse", "user", "failed"),
    CompactionEvent(
        "thread-1",
        "turn-1",
        CLIENT,
        RUNTIME,
        "user",
        None,
        None,
        "auto",
        "context_limit",
        "responses",
        "mid_turn",
        "memento",
        "failed",
        "boom",
        1000,
        10,
        5,
        6,
        None,
    ),
]


def reference_value(value: Any) -> AnyValue:
    """A wire JSON value as the official classes hold it."""
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
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[reference_value(v) for v in value]))
    assert isinstance(value, dict)
    return AnyValue(
        kvlist_value=KeyValueList(
            values=[KeyValue(key=k, value=reference_value(v)) for k, v in value.items()]
        )
    )


def reference_request(events: list[AnalyticsEvent], timestamp_ns: int) -> ExportLogsServiceRequest:
    records = []
    for event in events:
        wire = event.to_dict()
        attributes = {k: v for k, v in wire.items() if k not in ("event_type", "event_params")}
        attributes.update(wire["event_params"])
        records.append(
            LogRecord(
                time_unix_nano=timestamp_ns,
                observed_time_unix_nano=timestamp_ns,
                severity_number=9,  # type: ignore[arg-type]
                severity_text="INFO",
                body=AnyValue(),
                attributes=[
                    KeyValue(key=k, value=reference_value(v)) for k, v in attributes.items()
                ],
                event_name=wire["event_type"],
            )
        )
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=RESOURCE,
                scope_logs=[ScopeLogs(scope=SCOPE, log_records=records, schema_url="s2")],
                schema_url="s1",
            )
        ]
    )


def write(events: list[AnalyticsEvent], timestamp_ns: int) -> EncodedRequest:
    writer = RecordWriter(
        RESOURCE.SerializeToString(),
        SCOPE.SerializeToString(),
        resource_schema_url="s1",
        scope_schema_url="s2",
    )
    return writer.request([(event, timestamp_ns) for event in events])


def test_bytes_decode_to_the_reference_records() -> None:
    timestamp_ns = 1_700_000_000_123_456_789
    expected = reference_request(EVENTS, timestamp_ns)
    written = write(EVENTS, timestamp_ns)
    assert written.message() == expected
    # Same field order as the protobuf serializer: byte for byte the same request.
    assert written.SerializeToString() == expected.SerializeToString()


def test_bytes_stay_equal_to_the_reference_when_cached() -> None:
    writer = RecordWriter(
        RESOURCE.SerializeToString(),
        SCOPE.SerializeToString(),
        resource_schema_url="s1",
        scope_schema_url="s2",
    )
    batch = [(event, 7) for event in EVENTS * 3]  # the second and third rounds hit the caches
    reference = reference_request(EVENTS * 3, 7).SerializeToString()
    assert writer.request(batch).SerializeToString() == reference
    assert writer.request(batch).SerializeToString() == reference


def test_an_equal_client_at_another_address_is_written_from_its_own_values() -> None:
    # The writer caches a connection's client by identity: another object must not
    # be served the cached bytes of the first.
    writer = RecordWriter(b"", b"")
    other = AppServerClient("other", None, None, "websocket", True)
    moved = dataclasses.replace(TURN, app_server_client=other)
    for event in (TURN, moved, moved):
        record = LogRecord.FromString(writer.record(event, 1))
        values = {kv.key: kv.value for kv in record.attributes}
        assert values["app_server_client"] == reference_value(
            event.to_dict()["event_params"]["app_server_client"]
        )
    assert values["app_server_client"] == reference_value(
        {
            "product_client_id": "other",
            "client_name": None,
            "client_version": None,
            "rpc_transport": "websocket",
            "experimental_api_enabled": True,
        }
    )


def test_bool_and_int_of_one_name_are_kept_apart_by_the_caches() -> None:
    writer = RecordWriter(b"", b"")
    one = PluginUsedEvent("a@b", "a", "b", True, 1, None, "x", "t", "u", "m")
    flipped = dataclasses.replace(one, has_skills=None, mcp_server_count=True)
    for event in (one, flipped, one):
        record = LogRecord.FromString(writer.record(event, 1))
        values = {kv.key: kv.value for kv in record.attributes}
        assert values["has_skills"] == reference_value(event.has_skills)
        assert values["mcp_server_count"] == reference_value(event.mcp_server_count)


def test_an_empty_batch_and_empty_strings_decode() -> None:
    assert write([], 1).message() == ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=RESOURCE,
                scope_logs=[ScopeLogs(scope=SCOPE, schema_url="s2")],
                schema_url="s1",
            )
        ]
    )
    assert AnyValue.FromString(any_value_bytes("")) == AnyValue(string_value="")
    assert AnyValue.FromString(any_value_bytes(b"\x00\xff")) == AnyValue(bytes_value=b"\x00\xff")
    assert AnyValue.FromString(any_value_bytes(0.25)) == AnyValue(double_value=0.25)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, object()])
def test_a_value_the_wire_cannot_hold_raises(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        write([dataclasses.replace(TURN, input_tokens=value)], 1)  # type: ignore[arg-type]


def test_a_record_emitted_into_the_sinks_own_provider_is_sent_with_the_events() -> None:
    with HttpReceiver() as receiver:
        delivery = DeliveryCounters()
        sink = OTLPSink(
            delivery,
            exporter=OTLPHttpLogExporter(receiver.url()),
            resource=build_resource("svc", "1.0"),
        )
        sink.logger_provider.get_logger("host.app").emit(body="hello", event_name="host")
        sink.export(EVENTS[:2], 5)
        assert sink.shutdown(10.0) is True
    records = list(records_of(receiver.received))
    assert sorted(record.event_name for record in records) == [
        "codex_turn_event",
        "codex_turn_event",
        "host",
    ]
    assert delivery.exported.value == 3


class _RecordingProcessor(LogRecordProcessor):
    """A processor a program could add to the sink's provider: it sees every record."""

    def __init__(self) -> None:
        self.records: list[tuple[str | None, int | None, str | None]] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        self.records.append((record.event_name, record.timestamp, record.severity_text))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_each_event_is_emitted_as_a_log_record_through_the_sdk_provider() -> None:
    # sdk.md 3: events go through the OpenTelemetry SDK's LoggerProvider, so every
    # processor on that provider sees one log record per event.
    with HttpReceiver() as receiver:
        delivery = DeliveryCounters()
        sink = OTLPSink(
            delivery,
            exporter=OTLPHttpLogExporter(receiver.url()),
            resource=build_resource("svc", "1.0"),
        )
        seen = _RecordingProcessor()
        sink.logger_provider.add_log_record_processor(seen)
        sink.export(EVENTS[:2], 7)
        assert sink.shutdown(10.0) is True
    assert seen.records == [("codex_turn_event", 7, "INFO"), ("codex_turn_event", 7, "INFO")]
    assert [record.event_name for record in records_of(receiver.received)] == [
        "codex_turn_event",
        "codex_turn_event",
    ]
    assert delivery.exported.value == 2


def test_resource_bytes_are_what_the_official_classes_serialize() -> None:
    attributes = [
        ("service.name", "svc"),
        ("process.pid", 4242),
        ("debug", True),
        ("ratio", 0.5),
        ("tags", ("a", "b")),
        ("empty", ""),
    ]
    expected = Resource(
        attributes=[KeyValue(key=k, value=reference_value(to_wire(v))) for k, v in attributes]
    )
    assert resource_bytes(attributes) == expected.SerializeToString()
    assert Resource.FromString(resource_bytes(attributes)) == expected


def test_values_nested_far_deeper_than_protobufs_decoder_allows_are_written() -> None:
    # The official classes build and serialize a value 300 maps deep (900 messages) but
    # cannot decode it; the writer keeps a stack of its own and writes the same bytes.
    expected = AnyValue(string_value="leaf")
    value: Any = "leaf"
    for _ in range(300):
        outer = AnyValue()
        outer.kvlist_value.values.add(key="k").value.CopyFrom(expected)
        expected, value = outer, {"k": value}
    assert any_value_bytes(value) == expected.SerializeToString()
    for _ in range(5000):  # far beyond the interpreter's recursion limit
        value = {"k": [value]}
    assert any_value_bytes(value).endswith(b"\x0a\x04leaf")
