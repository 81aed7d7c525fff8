"""The OTLP sink against real loopback receivers: what arrives, byte for byte in meaning."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry._logs import SeverityNumber as OTelSeverityNumber
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.version import __version__ as otel_sdk_version
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._factory import create_sink
from codex_telemetry._export._otlp import (
    OTLPGrpcLogExporter,
    OTLPHttpLogExporter,
    OTLPSink,
)
from codex_telemetry._export._sdk import build_resource
from codex_telemetry._settings import TelemetrySettings
from codex_telemetry._version import __version__
from codex_telemetry.events import (
    AnalyticsEvent,
    AppServerClient,
    PluginUsedEvent,
    SkillInvocationEvent,
    ThreadInitializedEvent,
    TurnEvent,
)
from codex_telemetry.facts import RuntimeMetadata
from tests.otlp_receiver import (
    GrpcReceiver,
    HttpReceiver,
    Received,
    plain_records,
    records_of,
)

TIMESTAMP_NS = 1_700_000_000_123_456_789

CLIENT = AppServerClient(
    product_client_id="codex-tui",
    client_name="codex-tui",
    client_version="1.0.0",
    rpc_transport="stdio",
    experimental_api_enabled=None,
)
RUNTIME = RuntimeMetadata(
    codex_rs_version="0.1.0",
    runtime_os="macos",
    runtime_os_version="15.3.1",
    runtime_arch="aarch64",
)
THREAD_INITIALIZED = ThreadInitializedEvent(
    thread_id="thread-2",
    app_server_client=CLIENT,
    runtime=RUNTIME,
    model="gpt-5",
    ephemeral=False,
    thread_source="user",
    initialization_mode="new",
    subagent_source=None,
    parent_thread_id=None,
    created_at=1,
)
TURN = TurnEvent(
    thread_id="thread-2",
    turn_id="turn-2",
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
    input_tokens=123,
    cached_input_tokens=45,
    output_tokens=140,
    reasoning_output_tokens=13,
    total_tokens=321,
    duration_ms=1234,
    started_at=455,
    completed_at=456,
)
SKILL = SkillInvocationEvent(
    skill_id="037cfe53fd881d2ea36aec8302ccde76376a0f7a",
    skill_name="doc",
    product_client_id="codex_cli_rs",
    skill_scope="user",
    repo_url=None,
    thread_id="thread-2",
    invoke_type="explicit",
    model_slug="gpt-5",
)
PLUGIN = PluginUsedEvent(
    plugin_id="sample@test",
    plugin_name="sample",
    marketplace_name="test",
    has_skills=True,
    mcp_server_count=2,
    connector_ids=("calendar", "drive"),
    product_client_id="codex_cli_rs",
    thread_id="thread-2",
    turn_id="turn-2",
    model_slug="gpt-5",
)
EVENTS: list[AnalyticsEvent] = [THREAD_INITIALIZED, TURN, SKILL, PLUGIN]

APP_SERVER_CLIENT_WIRE = {
    "product_client_id": "codex-tui",
    "client_name": "codex-tui",
    "client_version": "1.0.0",
    "rpc_transport": "stdio",
    "experimental_api_enabled": None,
}
RUNTIME_WIRE = {
    "codex_rs_version": "0.1.0",
    "runtime_os": "macos",
    "runtime_os_version": "15.3.1",
    "runtime_arch": "aarch64",
}
EXPECTED_WIRE_EVENTS: list[dict[str, Any]] = [
    {
        "event_type": "codex_thread_initialized",
        "event_params": {
            "thread_id": "thread-2",
            "app_server_client": APP_SERVER_CLIENT_WIRE,
            "runtime": RUNTIME_WIRE,
            "model": "gpt-5",
            "ephemeral": False,
            "thread_source": "user",
            "initialization_mode": "new",
            "subagent_source": None,
            "parent_thread_id": None,
            "created_at": 1,
        },
    },
    {
        "event_type": "codex_turn_event",
        "event_params": {
            "thread_id": "thread-2",
            "turn_id": "turn-2",
            "submission_type": None,
            "app_server_client": APP_SERVER_CLIENT_WIRE,
            "runtime": RUNTIME_WIRE,
            "ephemeral": False,
            "thread_source": "user",
            "initialization_mode": "new",
            "subagent_source": None,
            "parent_thread_id": None,
            "model": "gpt-5",
            "model_provider": "openai",
            "sandbox_policy": "read_only",
            "reasoning_effort": None,
            "reasoning_summary": None,
            "service_tier": "default",
            "approval_policy": "on-request",
            "approvals_reviewer": "guardian_subagent",
            "sandbox_network_access": True,
            "collaboration_mode": "plan",
            "personality": None,
            "num_input_images": 1,
            "is_first_turn": True,
            "status": "failed",
            "turn_error": {"httpConnectionFailed": {"httpStatusCode": 502}},
            "steer_count": 0,
            "total_tool_call_count": None,
            "shell_command_count": None,
            "file_change_count": None,
            "mcp_tool_call_count": None,
            "dynamic_tool_call_count": None,
            "subagent_tool_call_count": None,
            "web_search_count": None,
            "image_generation_count": None,
            "input_tokens": 123,
            "cached_input_tokens": 45,
            "output_tokens": 140,
            "reasoning_output_tokens": 13,
            "total_tokens": 321,
            "duration_ms": 1234,
            "started_at": 455,
            "completed_at": 456,
        },
    },
    {
        "event_type": "skill_invocation",
        "skill_id": "037cfe53fd881d2ea36aec8302ccde76376a0f7a",
        "skill_name": "doc",
        "event_params": {
            "product_client_id": "codex_cli_rs",
            "skill_scope": "user",
            "repo_url": None,
            "thread_id": "thread-2",
            "invoke_type": "explicit",
            "model_slug": "gpt-5",
        },
    },
    {
        "event_type": "codex_plugin_used",
        "event_params": {
            "plugin_id": "sample@test",
            "plugin_name": "sample",
            "marketplace_name": "test",
            "has_skills": True,
            "mcp_server_count": 2,
            "connector_ids": ["calendar", "drive"],
            "product_client_id": "codex_cli_rs",
            "thread_id": "thread-2",
            "turn_id": "turn-2",
            "model_slug": "gpt-5",
        },
    },
]

INSTANCE_ID = "<service.instance.id>"
# Recent releases of the OpenTelemetry SDK give every resource a random instance id.
INSTANCE_ID_ATTRIBUTES = (
    [{"key": "service.instance.id", "value": {"stringValue": INSTANCE_ID}}]
    if "service.instance.id" in Resource.create().attributes
    else []
)

# The OTLP/JSON of one export request holding THREAD_INITIALIZED, as a collector sees it.
EXPECTED_THREAD_INITIALIZED_REQUEST: dict[str, Any] = {
    "resourceLogs": [
        {
            "resource": {
                "attributes": [
                    {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}},
                    {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
                    {"key": "telemetry.sdk.version", "value": {"stringValue": otel_sdk_version}},
                    *INSTANCE_ID_ATTRIBUTES,
                    {"key": "deployment.environment", "value": {"stringValue": "test"}},
                    {"key": "service.name", "value": {"stringValue": "codex-telemetry-tests"}},
                    {"key": "service.version", "value": {"stringValue": "9.9.9"}},
                ]
            },
            "scopeLogs": [
                {
                    "scope": {"name": "codex_telemetry", "version": __version__},
                    "logRecords": [
                        {
                            "timeUnixNano": "1700000000123456789",
                            "observedTimeUnixNano": "1700000000123456789",
                            "severityNumber": 9,
                            "severityText": "INFO",
                            "body": {},
                            "eventName": "codex_thread_initialized",
                            "attributes": [
                                {"key": "thread_id", "value": {"stringValue": "thread-2"}},
                                {
                                    "key": "app_server_client",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {
                                                    "key": "product_client_id",
                                                    "value": {"stringValue": "codex-tui"},
                                                },
                                                {
                                                    "key": "client_name",
                                                    "value": {"stringValue": "codex-tui"},
                                                },
                                                {
                                                    "key": "client_version",
                                                    "value": {"stringValue": "1.0.0"},
                                                },
                                                {
                                                    "key": "rpc_transport",
                                                    "value": {"stringValue": "stdio"},
                                                },
                                                {"key": "experimental_api_enabled", "value": {}},
                                            ]
                                        }
                                    },
                                },
                                {
                                    "key": "runtime",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {
                                                    "key": "codex_rs_version",
                                                    "value": {"stringValue": "0.1.0"},
                                                },
                                                {
                                                    "key": "runtime_os",
                                                    "value": {"stringValue": "macos"},
                                                },
                                                {
                                                    "key": "runtime_os_version",
                                                    "value": {"stringValue": "15.3.1"},
                                                },
                                                {
                                                    "key": "runtime_arch",
                                                    "value": {"stringValue": "aarch64"},
                                                },
                                            ]
                                        }
                                    },
                                },
                                {"key": "model", "value": {"stringValue": "gpt-5"}},
                                {"key": "ephemeral", "value": {"boolValue": False}},
                                {"key": "thread_source", "value": {"stringValue": "user"}},
                                {"key": "initialization_mode", "value": {"stringValue": "new"}},
                                {"key": "subagent_source", "value": {}},
                                {"key": "parent_thread_id", "value": {}},
                                {"key": "created_at", "value": {"intValue": "1"}},
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}

# The http/json body of the same request, as sent: a null value leaves out the ``value``
# of its key-value (collectors refuse ``"value": {}``), and the empty body is left out.
EXPECTED_THREAD_INITIALIZED_JSON_BODY: dict[str, Any] = {
    "resourceLogs": [
        {
            "resource": {
                "attributes": [
                    {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}},
                    {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
                    {"key": "telemetry.sdk.version", "value": {"stringValue": otel_sdk_version}},
                    *INSTANCE_ID_ATTRIBUTES,
                    {"key": "deployment.environment", "value": {"stringValue": "test"}},
                    {"key": "service.name", "value": {"stringValue": "codex-telemetry-tests"}},
                    {"key": "service.version", "value": {"stringValue": "9.9.9"}},
                ]
            },
            "scopeLogs": [
                {
                    "scope": {"name": "codex_telemetry", "version": __version__},
                    "logRecords": [
                        {
                            "timeUnixNano": "1700000000123456789",
                            "observedTimeUnixNano": "1700000000123456789",
                            "severityNumber": 9,
                            "severityText": "INFO",
                            "eventName": "codex_thread_initialized",
                            "attributes": [
                                {"key": "thread_id", "value": {"stringValue": "thread-2"}},
                                {
                                    "key": "app_server_client",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {
                                                    "key": "product_client_id",
                                                    "value": {"stringValue": "codex-tui"},
                                                },
                                                {
                                                    "key": "client_name",
                                                    "value": {"stringValue": "codex-tui"},
                                                },
                                                {
                                                    "key": "client_version",
                                                    "value": {"stringValue": "1.0.0"},
                                                },
                                                {
                                                    "key": "rpc_transport",
                                                    "value": {"stringValue": "stdio"},
                                                },
                                                {"key": "experimental_api_enabled"},
                                            ]
                                        }
                                    },
                                },
                                {
                                    "key": "runtime",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {
                                                    "key": "codex_rs_version",
                                                    "value": {"stringValue": "0.1.0"},
                                                },
                                                {
                                                    "key": "runtime_os",
                                                    "value": {"stringValue": "macos"},
                                                },
                                                {
                                                    "key": "runtime_os_version",
                                                    "value": {"stringValue": "15.3.1"},
                                                },
                                                {
                                                    "key": "runtime_arch",
                                                    "value": {"stringValue": "aarch64"},
                                                },
                                            ]
                                        }
                                    },
                                },
                                {"key": "model", "value": {"stringValue": "gpt-5"}},
                                {"key": "ephemeral", "value": {"boolValue": False}},
                                {"key": "thread_source", "value": {"stringValue": "user"}},
                                {"key": "initialization_mode", "value": {"stringValue": "new"}},
                                {"key": "subagent_source"},
                                {"key": "parent_thread_id"},
                                {"key": "created_at", "value": {"intValue": "1"}},
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}

PROTOCOLS = ["grpc", "http/protobuf", "http/json"]


def python_value(value: AnyValue) -> Any:
    """Decode an OTLP ``AnyValue`` the way a collector rebuilding wire JSON would."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {item.key: python_value(item.value) for item in value.kvlist_value.values}
    if kind == "array_value":
        return [python_value(item) for item in value.array_value.values]
    return getattr(value, kind)


def rebuild_wire_event(record: Any) -> dict[str, Any]:
    """``{"event_type": event_name, [skill_id, skill_name,] "event_params": attributes}``."""
    attributes = {item.key: python_value(item.value) for item in record.attributes}
    wire: dict[str, Any] = {"event_type": record.event_name}
    if record.event_name == "skill_invocation":
        wire["skill_id"] = attributes.pop("skill_id")
        wire["skill_name"] = attributes.pop("skill_name")
    wire["event_params"] = attributes
    return wire


def as_otlp_json(received: Received) -> Any:
    """What arrived as OTLP/JSON: the raw body for http/json, else the decoded message."""
    if received.json_body is not None:
        data = received.json_body
    else:
        data = json_format.MessageToDict(received.request, use_integers_for_enums=True)
    for resource_logs in data["resourceLogs"]:
        for attribute in resource_logs["resource"]["attributes"]:
            if attribute["key"] == "service.instance.id":
                uuid.UUID(attribute["value"]["stringValue"])
                attribute["value"]["stringValue"] = INSTANCE_ID
    return data


class Collector:
    """A running receiver for one protocol, and an exporter pointed at it."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.receiver: GrpcReceiver | HttpReceiver = (
            GrpcReceiver() if protocol == "grpc" else HttpReceiver()
        )

    def exporter(self, **options: Any) -> OTLPGrpcLogExporter | OTLPHttpLogExporter:
        if isinstance(self.receiver, GrpcReceiver):
            return OTLPGrpcLogExporter(self.receiver.endpoint, **options)
        return OTLPHttpLogExporter(
            self.receiver.url(), json=self.protocol == "http/json", **options
        )


@pytest.fixture(params=PROTOCOLS)
def collector(request: pytest.FixtureRequest) -> Iterator[Collector]:
    item = Collector(request.param)
    with item.receiver:
        yield item


def make_sink(
    exporter: OTLPGrpcLogExporter | OTLPHttpLogExporter, delivery: DeliveryCounters
) -> OTLPSink:
    return OTLPSink(
        delivery,
        exporter=exporter,
        resource=build_resource("codex-telemetry-tests", "9.9.9"),
        export_interval=60.0,
    )


def test_one_event_arrives_as_the_exact_otlp_request(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    delivery = DeliveryCounters()
    sink = make_sink(collector.exporter(), delivery)

    sink.export([THREAD_INITIALIZED], TIMESTAMP_NS)

    assert sink.force_flush(10.0) is True
    assert sink.shutdown(5.0) is True
    [received] = collector.receiver.received
    # Decoded by the official classes (http/json: by the protobuf JSON mapping), the
    # record rebuilds the event's exact wire JSON.
    assert [rebuild_wire_event(record) for record in records_of([received])] == [
        EXPECTED_WIRE_EVENTS[0]
    ]
    if collector.protocol == "http/json":
        assert as_otlp_json(received) == EXPECTED_THREAD_INITIALIZED_JSON_BODY
        return
    assert as_otlp_json(received) == EXPECTED_THREAD_INITIALIZED_REQUEST
    assert delivery.exported.value == 1
    assert delivery.dropped.snapshot() == {}


def test_events_rebuild_into_their_exact_wire_json(collector: Collector) -> None:
    delivery = DeliveryCounters()
    sink = make_sink(collector.exporter(), delivery)

    sink.export(EVENTS, TIMESTAMP_NS)

    assert sink.force_flush(10.0) is True
    sink.shutdown(5.0)
    records = list(records_of(collector.receiver.received))
    assert [rebuild_wire_event(record) for record in records] == EXPECTED_WIRE_EVENTS
    assert [event.to_dict() for event in EVENTS] == EXPECTED_WIRE_EVENTS
    assert delivery.exported.value == 4


def test_headers_compression_and_content_type_are_sent(collector: Collector) -> None:
    sink = make_sink(
        collector.exporter(headers={"X-Api-Key": "secret-value"}, compression="gzip"),
        DeliveryCounters(),
    )
    sink.export([SKILL], TIMESTAMP_NS)
    assert sink.force_flush(10.0) is True
    sink.shutdown(5.0)

    [received] = collector.receiver.received
    assert received.headers["x-api-key"] == "secret-value"
    if collector.protocol == "grpc":
        assert received.headers["user-agent"].startswith("OTel-OTLP-Exporter-Python/")
        return
    assert received.path == "/v1/logs"
    assert received.headers["content-encoding"] == "gzip"
    assert received.headers["user-agent"] == f"codex-telemetry/{__version__}"
    expected_type = (
        "application/json" if collector.protocol == "http/json" else "application/x-protobuf"
    )
    assert received.headers["content-type"] == expected_type


def test_uncompressed_http_request_has_no_content_encoding() -> None:
    with HttpReceiver() as receiver:
        sink = make_sink(
            OTLPHttpLogExporter(receiver.url(), compression="none"), DeliveryCounters()
        )
        sink.export([SKILL], TIMESTAMP_NS)
        assert sink.force_flush(10.0) is True
        sink.shutdown(5.0)
    [received] = receiver.received
    assert "content-encoding" not in received.headers


def test_http_json_body_uses_otlp_json_rules() -> None:
    with HttpReceiver() as receiver:
        sink = make_sink(
            OTLPHttpLogExporter(receiver.url(), json=True, compression="none"),
            DeliveryCounters(),
        )
        sink.export([PLUGIN], TIMESTAMP_NS)
        assert sink.force_flush(10.0) is True
        sink.shutdown(5.0)
    [received] = receiver.received
    [record] = received.json_body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    # Enums as integers, lowerCamelCase keys, 64-bit integers as decimal strings.
    assert record["severityNumber"] == 9
    assert record["eventName"] == "codex_plugin_used"
    assert record["attributes"][5] == {
        "key": "connector_ids",
        "value": {
            "arrayValue": {"values": [{"stringValue": "calendar"}, {"stringValue": "drive"}]}
        },
    }
    assert record["attributes"][4] == {"key": "mcp_server_count", "value": {"intValue": "2"}}


def test_host_logger_provider_receives_nested_attributes_and_is_not_shut_down() -> None:
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    delivery = DeliveryCounters()
    sink = OTLPSink(delivery, logger_provider=provider)

    sink.export([THREAD_INITIALIZED, PLUGIN], TIMESTAMP_NS)
    assert sink.shutdown(1.0) is True

    first, second = memory.get_finished_logs()
    assert first.log_record.event_name == "codex_thread_initialized"
    assert first.log_record.timestamp == TIMESTAMP_NS
    assert first.log_record.severity_text == "INFO"
    assert first.log_record.body is None
    assert first.instrumentation_scope is not None
    assert first.instrumentation_scope.name == "codex_telemetry"
    assert dict(first.log_record.attributes or {}) == {
        "thread_id": "thread-2",
        "app_server_client": APP_SERVER_CLIENT_WIRE,
        "runtime": RUNTIME_WIRE,
        "model": "gpt-5",
        "ephemeral": False,
        "thread_source": "user",
        "initialization_mode": "new",
        "subagent_source": None,
        "parent_thread_id": None,
        "created_at": 1,
    }
    # The SDK stores sequences as tuples.
    assert (second.log_record.attributes or {})["connector_ids"] == ("calendar", "drive")
    assert delivery.exported.value == 2

    # Still the host's: a record emitted after our shutdown is exported.
    provider.get_logger("host").emit(body="after")
    assert len(memory.get_finished_logs()) == 3


def test_export_after_shutdown_is_counted_not_sent(collector: Collector) -> None:
    delivery = DeliveryCounters()
    sink = make_sink(collector.exporter(), delivery)
    assert sink.shutdown(1.0) is True
    assert sink.shutdown(1.0) is False  # idempotent: nothing happens the second time

    sink.export([SKILL, PLUGIN], TIMESTAMP_NS)

    assert delivery.dropped.snapshot() == {"shutdown": 2}
    assert collector.receiver.attempts == 0


def test_full_export_queue_delivers_every_event_instead_of_dropping() -> None:
    with HttpReceiver() as receiver:
        delivery = DeliveryCounters()
        sink = OTLPSink(
            delivery,
            exporter=OTLPHttpLogExporter(receiver.url()),
            max_export_queue_size=3,
            export_batch_size=3,
            export_interval=60.0,
        )
        # The worker may take the first three before the rest arrive, so send in one call
        # more than the queue can hold at once.
        sink.export([SKILL] * 3, TIMESTAMP_NS)
        sink.export([SKILL] * 2, TIMESTAMP_NS)
        sink.force_flush(10.0)
        sink.shutdown(5.0)
    assert delivery.exported.value == 5
    assert delivery.dropped.snapshot() == {}
    assert len(list(records_of(receiver.received))) == 5


def test_factory_builds_the_sink_the_settings_name(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tempfile.gettempdir())  # no stray .env file
    endpoint = (
        collector.receiver.endpoint
        if isinstance(collector.receiver, GrpcReceiver)
        else collector.receiver.url()
    )
    settings = TelemetrySettings(
        exporter="otlp",
        service_name="factory-test",
        otlp={
            "endpoint": endpoint,
            "protocol": collector.protocol,
            "headers": "x-team=analytics",
            "compression": "none",
        },
    )
    delivery = DeliveryCounters()
    sink = create_sink(settings, delivery)

    sink.export([SKILL], TIMESTAMP_NS)
    assert sink.force_flush(10.0) is True
    assert sink.shutdown(5.0) is True

    [received] = collector.receiver.received
    assert received.headers["x-team"] == "analytics"
    resource = {
        item.key: python_value(item.value)
        for item in received.request.resource_logs[0].resource.attributes
    }
    assert resource["service.name"] == "factory-test"
    assert resource["service.version"] == __version__
    assert [rebuild_wire_event(record) for record in records_of([received])] == [
        EXPECTED_WIRE_EVENTS[2]
    ]


def test_factory_emits_into_the_host_logger_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tempfile.gettempdir())
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    sink = create_sink(TelemetrySettings(), DeliveryCounters(), logger_provider=provider)
    sink.export([SKILL], TIMESTAMP_NS)
    sink.shutdown(1.0)
    [record] = memory.get_finished_logs()
    assert record.log_record.event_name == "skill_invocation"


def test_an_event_that_cannot_be_encoded_is_dropped_alone() -> None:
    unencodable = dataclasses.replace(TURN, input_tokens=2**70)  # beyond OTLP's int64
    with HttpReceiver() as receiver:
        delivery = DeliveryCounters()
        sink = make_sink(OTLPHttpLogExporter(receiver.url()), delivery)
        sink.export([SKILL, unencodable, PLUGIN], TIMESTAMP_NS)
        assert sink.force_flush(10.0) is False
        sink.shutdown(1.0)
    records = list(records_of(receiver.received))
    assert [rebuild_wire_event(record) for record in records] == [
        EXPECTED_WIRE_EVENTS[2],
        EXPECTED_WIRE_EVENTS[3],
    ]
    assert delivery.exported.value == 2
    assert delivery.dropped.snapshot() == {"encoding_error": 1}


def test_a_disabled_opentelemetry_sdk_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with HttpReceiver() as receiver:
        delivery = DeliveryCounters()
        sink = make_sink(OTLPHttpLogExporter(receiver.url()), delivery)
        sink.export([SKILL, PLUGIN], TIMESTAMP_NS)
        sink.shutdown(1.0)
    assert receiver.attempts == 0
    assert delivery.dropped.snapshot() == {"disabled": 2}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    directory = tmp_path_factory.mktemp("tls")
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_verifies_the_collector_with_the_given_certificate(
    tls_files: tuple[Path, Path],
) -> None:
    certificate, _ = tls_files
    with HttpReceiver(tls=tls_files) as receiver:
        trusted = DeliveryCounters()
        sink = make_sink(OTLPHttpLogExporter(receiver.url(), certificate=certificate), trusted)
        sink.export([SKILL], TIMESTAMP_NS)
        assert sink.shutdown(10.0) is True

        untrusted = DeliveryCounters()
        sink = make_sink(OTLPHttpLogExporter(receiver.url()), untrusted)
        sink.export([SKILL], TIMESTAMP_NS)
        assert sink.shutdown(10.0) is False
    assert trusted.exported.value == 1
    assert untrusted.dropped.snapshot() == {"tls_error": 1}  # not retried: it cannot heal
    assert receiver.attempts == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_grpc_over_tls_with_the_given_certificate(tls_files: tuple[Path, Path]) -> None:
    certificate, _ = tls_files
    with GrpcReceiver(tls=tls_files) as receiver:
        delivery = DeliveryCounters()
        exporter = OTLPGrpcLogExporter(
            f"https://127.0.0.1:{receiver.port}", certificate=certificate
        )
        sink = make_sink(exporter, delivery)
        sink.export([SKILL], TIMESTAMP_NS)
        assert sink.shutdown(10.0) is True
    assert delivery.exported.value == 1
    assert [rebuild_wire_event(r) for r in records_of(receiver.received)] == [
        EXPECTED_WIRE_EVENTS[2]
    ]


def test_otlp_json_writes_trace_and_span_ids_as_hex() -> None:
    span = NonRecordingSpan(
        SpanContext(
            trace_id=0x5B8EFFF798038103D269B633813FC60C,
            span_id=0xEEE19B7EC3C1B174,
            is_remote=False,
            trace_flags=TraceFlags(1),
        )
    )
    with HttpReceiver() as receiver:
        provider = LoggerProvider(resource=Resource({"service.name": "plain"}))
        exporter = OTLPHttpLogExporter(receiver.url(), json=True, compression="none")
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        provider.get_logger("host.app").emit(
            timestamp=1,
            observed_timestamp=2,
            context=set_span_in_context(span),
            severity_number=OTelSeverityNumber.WARN,
        )
        provider.shutdown()
    [received] = receiver.received
    assert received.json_body == {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "plain"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "host.app"},
                        "logRecords": [
                            {
                                "timeUnixNano": "1",
                                "observedTimeUnixNano": "2",
                                "severityNumber": 13,
                                "flags": 1,
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                            }
                        ],
                    }
                ],
            }
        ]
    }
    [record] = records_of([received])
    assert record.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert record.span_id == bytes.fromhex("eee19b7ec3c1b174")


def test_the_exporters_still_work_as_plain_otel_exporters(collector: Collector) -> None:
    """Any program can put our exporter on its own provider and get the same rules."""
    provider = LoggerProvider(resource=build_resource("plain", "1.0"), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(collector.exporter()))
    provider.get_logger("host.app", "2.0").emit(
        timestamp=TIMESTAMP_NS,
        severity_number=OTelSeverityNumber.WARN,
        severity_text="WARN",
        body="disk almost full",
        attributes={"free": {"bytes": 12, "paths": ["/", "/tmp"]}, "unset": None},
        event_name="host.disk",
    )
    provider.shutdown()

    [record] = list(records_of(collector.receiver.received))
    assert record.event_name == "host.disk"
    assert python_value(record.body) == "disk almost full"
    assert {item.key: python_value(item.value) for item in record.attributes} == {
        "free": {"bytes": 12, "paths": ["/", "/tmp"]},
        "unset": None,
    }
    scope = collector.receiver.received[0].request.resource_logs[0].scope_logs[0].scope
    assert (scope.name, scope.version) == ("host.app", "2.0")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_mutual_tls_sends_the_client_certificate(tls_files: tuple[Path, Path]) -> None:
    certificate, key = tls_files
    # The self-signed certificate doubles as the client's, and as the CA that signs it.
    with HttpReceiver(tls=tls_files, client_ca=certificate) as receiver:
        with_client = DeliveryCounters()
        exporter = OTLPHttpLogExporter(
            receiver.url(), certificate=certificate, client_certificate=certificate, client_key=key
        )
        sink = make_sink(exporter, with_client)
        sink.export([SKILL], TIMESTAMP_NS)
        assert sink.shutdown(10.0) is True

        without_client = DeliveryCounters()
        sink = make_sink(
            OTLPHttpLogExporter(receiver.url(), certificate=certificate), without_client
        )
        sink.export([SKILL], TIMESTAMP_NS)
        assert sink.shutdown(2.0) is False
    assert with_client.exported.value == 1
    assert without_client.exported.value == 0
    assert len(receiver.received) == 1


def nested(depth: int) -> dict[str, Any]:
    """``{"cause": {"cause": ... {"httpStatusCode": 502, "retry": null, "path": [...]}}}``."""
    value: dict[str, Any] = {"httpStatusCode": 502, "retry": None, "path": ["a", None, 1.5]}
    for _ in range(depth - 1):
        value = {"cause": value}
    return value


def test_values_nested_200_deep_arrive_whole_over_every_protocol(collector: Collector) -> None:
    # 200 levels of maps are 600 levels of protobuf messages: beyond what protobuf's own
    # decoders accept (100), so nothing on the way may decode the request again.
    turn = dataclasses.replace(TURN, turn_error=nested(200))
    delivery = DeliveryCounters()
    sink = make_sink(collector.exporter(), delivery)
    sink.export([turn, SKILL], TIMESTAMP_NS)
    assert sink.force_flush(10.0) is True
    sink.shutdown(5.0)

    [received] = collector.receiver.received
    assert received.decoded is False  # too deep for the receiver's official decoder
    deep, skill = plain_records(received)
    assert deep.event_name == "codex_turn_event"
    assert deep.attributes["turn_error"] == nested(200)
    assert deep.attributes == {**EXPECTED_WIRE_EVENTS[1]["event_params"], "turn_error": nested(200)}
    assert skill.attributes == {
        "skill_id": "037cfe53fd881d2ea36aec8302ccde76376a0f7a",
        "skill_name": "doc",
        **EXPECTED_WIRE_EVENTS[2]["event_params"],
    }
    assert delivery.exported.value == 2
    assert delivery.dropped.snapshot() == {}
