"""End to end through a real collector: the SDK -> rotel-agent -> a loopback receiver.

The session is the quickstart's (``examples/quickstart.py``) with fixed times, paths and
runtime, so that every event type it produces can be written out as literal wire JSON.
Each protocol the SDK speaks (gRPC, HTTP/protobuf, HTTP/JSON) goes into Rotel; Rotel
forwards over OTLP/gRPC, and the wire JSON is rebuilt from what arrives on the far side.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.version import __version__ as otel_sdk_version

import codex_telemetry
import tests.collector
from codex_telemetry import facts
from codex_telemetry._version import __version__
from tests.collector import RotelCollector, run_rotel
from tests.otlp_receiver import GrpcReceiver, records_of
from tests.test_export_otlp import python_value, rebuild_wire_event

CREATED_AT = 1_760_000_000
RUNTIME = facts.RuntimeMetadata(
    codex_rs_version="0.169.0",
    runtime_os="linux",
    runtime_os_version="12.0.0",
    runtime_arch="x86_64",
)
SKILL_PATH = "/home/me/.codex/skills/summarise/SKILL.md"
STEER_CREATED_AT = "<steer created_at>"


def report_quickstart_session() -> None:
    """The facts of ``examples/quickstart.py``, with fixed times, paths and runtime."""
    track = codex_telemetry.track_fact
    track(
        facts.Initialize(
            connection_id=1,
            params=facts.InitializeParams(
                client_info=facts.ClientInfo(name="quickstart", version="1.0.0"),
                capabilities=facts.Capabilities(experimental_api=False),
            ),
            product_client_id="quickstart",
            rpc_transport="stdio",
            runtime=RUNTIME,
        )
    )
    track(
        facts.Response(
            connection_id=1,
            request_id=1,
            response=facts.ThreadStartResponse(
                thread=facts.Thread(
                    id="thread-1", ephemeral=False, created_at=CREATED_AT, source="cli"
                ),
                model="gpt-5",
            ),
        )
    )
    track(
        facts.Request(
            connection_id=1,
            request_id=2,
            request=facts.TurnStartRequest(
                thread_id="thread-1",
                input=(
                    facts.TextInput(text="Summarise the design document"),
                    facts.ImageInput(url="https://example.com/diagram.png"),
                ),
            ),
        )
    )
    track(
        facts.Response(
            connection_id=1,
            request_id=2,
            response=facts.TurnStartResponse(turn=facts.Turn(id="turn-1", status="in_progress")),
        )
    )
    track(
        facts.TurnResolvedConfig(
            turn_id="turn-1",
            thread_id="thread-1",
            num_input_images=1,
            submission_type="default",
            ephemeral=False,
            session_source="cli",
            model="gpt-5",
            model_provider="openai",
            sandbox_policy="workspace_write",
            reasoning_effort="medium",
            reasoning_summary="auto",
            service_tier=None,
            approval_policy="on-request",
            approvals_reviewer="user",
            sandbox_network_access=False,
            collaboration_mode="default",
            personality=None,
            is_first_turn=True,
        )
    )
    track(
        facts.Notification(
            notification=facts.TurnStartedNotification(
                thread_id="thread-1",
                turn=facts.Turn(id="turn-1", status="in_progress", started_at=CREATED_AT + 1),
            )
        )
    )
    track(
        facts.Request(
            connection_id=1,
            request_id=3,
            request=facts.TurnSteerRequest(
                thread_id="thread-1",
                expected_turn_id="turn-1",
                input=(facts.TextInput(text="Focus on the storage layer"),),
            ),
        )
    )
    track(
        facts.Response(
            connection_id=1, request_id=3, response=facts.TurnSteerResponse(turn_id="turn-1")
        )
    )
    tracking = facts.TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id="turn-1")
    track(
        facts.SkillInvoked(
            tracking=tracking,
            invocations=(
                facts.SkillInvocation(
                    skill_name="summarise",
                    skill_scope="user",
                    skill_path=SKILL_PATH,
                    invocation_type="explicit",
                ),
            ),
        )
    )
    gdrive = facts.AppInvocation(
        connector_id="connector_gdrive", app_name="Google Drive", invocation_type="implicit"
    )
    track(facts.AppUsed(tracking=tracking, app=gdrive))
    track(facts.AppUsed(tracking=tracking, app=gdrive))  # same turn and app: sent once
    track(
        facts.PluginUsed(
            tracking=tracking,
            plugin=facts.PluginMetadata(plugin_name="docs-toolkit", marketplace_name="openai"),
        )
    )
    track(
        facts.TurnTokenUsage(
            turn_id="turn-1",
            thread_id="thread-1",
            token_usage=facts.TokenUsage(
                input_tokens=1200,
                cached_input_tokens=800,
                output_tokens=350,
                reasoning_output_tokens=120,
                total_tokens=1550,
            ),
        )
    )
    track(
        facts.Notification(
            notification=facts.TurnCompletedNotification(
                thread_id="thread-1",
                turn=facts.Turn(
                    id="turn-1", status="completed", completed_at=CREATED_AT + 10, duration_ms=9150
                ),
            )
        )
    )


APP_SERVER_CLIENT = {
    "product_client_id": "quickstart",
    "client_name": "quickstart",
    "client_version": "1.0.0",
    "rpc_transport": "stdio",
    "experimental_api_enabled": False,
}
RUNTIME_WIRE = {
    "codex_rs_version": "0.169.0",
    "runtime_os": "linux",
    "runtime_os_version": "12.0.0",
    "runtime_arch": "x86_64",
}
EXPECTED_WIRE_EVENTS: list[dict[str, Any]] = [
    {
        "event_type": "codex_thread_initialized",
        "event_params": {
            "thread_id": "thread-1",
            "app_server_client": APP_SERVER_CLIENT,
            "runtime": RUNTIME_WIRE,
            "model": "gpt-5",
            "ephemeral": False,
            "thread_source": "user",
            "initialization_mode": "new",
            "subagent_source": None,
            "parent_thread_id": None,
            "created_at": 1760000000,
        },
    },
    {
        "event_type": "codex_turn_steer_event",
        "event_params": {
            "thread_id": "thread-1",
            "expected_turn_id": "turn-1",
            "accepted_turn_id": "turn-1",
            "app_server_client": APP_SERVER_CLIENT,
            "runtime": RUNTIME_WIRE,
            "thread_source": "user",
            "subagent_source": None,
            "parent_thread_id": None,
            "num_input_images": 0,
            "result": "accepted",
            "rejection_reason": None,
            "created_at": STEER_CREATED_AT,
        },
    },
    {
        "event_type": "skill_invocation",
        "skill_id": "628ea8859be39fc0c4670196f37c5b44ecfa1573",
        "skill_name": "summarise",
        "event_params": {
            "product_client_id": "quickstart",
            "skill_scope": "user",
            "repo_url": None,
            "thread_id": "thread-1",
            "invoke_type": "explicit",
            "model_slug": "gpt-5",
        },
    },
    {
        "event_type": "codex_app_used",
        "event_params": {
            "connector_id": "connector_gdrive",
            "thread_id": "thread-1",
            "turn_id": "turn-1",
            "app_name": "Google Drive",
            "product_client_id": "quickstart",
            "invoke_type": "implicit",
            "model_slug": "gpt-5",
        },
    },
    {
        "event_type": "codex_plugin_used",
        "event_params": {
            "plugin_id": "docs-toolkit@openai",
            "plugin_name": "docs-toolkit",
            "marketplace_name": "openai",
            "has_skills": None,
            "mcp_server_count": None,
            "connector_ids": None,
            "product_client_id": "quickstart",
            "thread_id": "thread-1",
            "turn_id": "turn-1",
            "model_slug": "gpt-5",
        },
    },
    {
        "event_type": "codex_turn_event",
        "event_params": {
            "thread_id": "thread-1",
            "turn_id": "turn-1",
            "submission_type": "default",
            "app_server_client": APP_SERVER_CLIENT,
            "runtime": RUNTIME_WIRE,
            "ephemeral": False,
            "thread_source": "user",
            "initialization_mode": "new",
            "subagent_source": None,
            "parent_thread_id": None,
            "model": "gpt-5",
            "model_provider": "openai",
            "sandbox_policy": "workspace_write",
            "reasoning_effort": "medium",
            "reasoning_summary": "auto",
            "service_tier": "default",
            "approval_policy": "on-request",
            "approvals_reviewer": "user",
            "sandbox_network_access": False,
            "collaboration_mode": "default",
            "personality": None,
            "num_input_images": 1,
            "is_first_turn": True,
            "status": "completed",
            "turn_error": None,
            "steer_count": 1,
            "total_tool_call_count": None,
            "shell_command_count": None,
            "file_change_count": None,
            "mcp_tool_call_count": None,
            "dynamic_tool_call_count": None,
            "subagent_tool_call_count": None,
            "web_search_count": None,
            "image_generation_count": None,
            "input_tokens": 1200,
            "cached_input_tokens": 800,
            "output_tokens": 350,
            "reasoning_output_tokens": 120,
            "total_tokens": 1550,
            "duration_ms": 9150,
            "started_at": 1760000001,
            "completed_at": 1760000010,
        },
    },
]

EXPECTED_RESOURCE = {
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": otel_sdk_version,
    "deployment.environment": "e2e",
    "service.name": "quickstart-e2e",
    "service.version": "2.0.0",
}
# Newer OpenTelemetry SDKs add a random service.instance.id to every resource (1.45 does,
# 1.39 does not).
SDK_ADDS_INSTANCE_ID = "service.instance.id" in Resource.create().attributes


@pytest.fixture
def rotel(tmp_path: Path) -> Iterator[RotelCollector]:
    with GrpcReceiver() as receiver, run_rotel(tmp_path, receiver) as collector:
        yield collector


@pytest.fixture(autouse=True)
def _shutdown_default_client() -> Iterator[None]:
    yield
    codex_telemetry.shutdown(timeout=1)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf", "http/json"])
def test_quickstart_session_arrives_exactly_through_rotel(
    protocol: Literal["grpc", "http/protobuf", "http/json"],
    rotel: RotelCollector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=e2e")
    telemetry = codex_telemetry.init(
        exporter="otlp",
        otlp__protocol=protocol,
        otlp__endpoint=rotel.endpoint(protocol),
        general_analytics=True,
        originator="quickstart",
        service_name="quickstart-e2e",
        service_version="2.0.0",
    )
    before = int(time.time())
    report_quickstart_session()
    # Rotel answers before it forwards: this says it accepted, the receiver says more.
    assert telemetry.flush(timeout=10) is True, rotel.log()
    after = int(time.time())
    assert rotel.receiver.wait_for_records(6, timeout=15), rotel.log()

    stats = telemetry.stats()
    assert (stats.events_produced, stats.events_exported) == (6, 6)
    received = rotel.receiver.received
    records = list(records_of(received))
    wire = [rebuild_wire_event(record) for record in records]
    steer_created_at = wire[1]["event_params"]["created_at"]
    assert before <= steer_created_at <= after
    wire[1]["event_params"]["created_at"] = STEER_CREATED_AT
    assert wire == EXPECTED_WIRE_EVENTS
    assert [(r.severity_number, r.severity_text) for r in records] == [(9, "INFO")] * 6

    resources = [
        resource_logs.resource for item in received for resource_logs in item.request.resource_logs
    ]
    for resource in resources:
        attributes = {item.key: python_value(item.value) for item in resource.attributes}
        if SDK_ADDS_INSTANCE_ID:
            uuid.UUID(str(attributes.pop("service.instance.id")))
        assert attributes == EXPECTED_RESOURCE
    scopes = {
        (scope_logs.scope.name, scope_logs.scope.version)
        for item in received
        for resource_logs in item.request.resource_logs
        for scope_logs in resource_logs.scope_logs
    }
    assert scopes == {("codex_telemetry", __version__)}


def test_rotel_is_stopped_by_its_pid_even_when_the_test_fails(tmp_path: Path) -> None:
    with (
        GrpcReceiver() as receiver,
        pytest.raises(RuntimeError, match="the test failed"),
        run_rotel(tmp_path, receiver) as collector,
    ):
        os.kill(collector.pid, 0)  # running
        raise RuntimeError("the test failed")
    with pytest.raises(ProcessLookupError):
        os.kill(collector.pid, 0)
    assert (tmp_path / "home").is_dir()


def test_a_port_taken_before_the_agent_binds_it_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_ports = tests.collector._free_ports
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        handed_out: list[list[int]] = []

        def free_ports(count: int) -> list[int]:
            ports = real_free_ports(count)
            if not handed_out:
                ports[0] = int(taken.getsockname()[1])
            handed_out.append(ports)
            return ports

        monkeypatch.setattr(tests.collector, "_free_ports", free_ports)
        with GrpcReceiver() as receiver, run_rotel(tmp_path, receiver) as collector:
            assert len(handed_out) == 2
            assert collector.grpc_port == handed_out[1][0]
            os.kill(collector.pid, 0)
