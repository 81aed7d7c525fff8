"""A newer app-server's unknown values never cost an event.

``c_full_turn`` of app-server 0.171, altered as a newer server might send it: a thread
source, a sandbox type, an approval policy, an input item type, a turn status and an
error info that this release does not know. Every thread and turn event of the
recording is still produced; each unknown value is reported as documented (as the server
sent it where the wire field is a string, a null ``thread_source`` for the unknown session
source), counted by field in ``stats().unknown_values`` and logged once per field.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from codex_telemetry._observer import AppServerObserver
from codex_telemetry._reducer import AnalyticsReducer
from codex_telemetry.facts import (
    Fact,
    Other,
    Response,
    SubAgent,
    Thread,
    ThreadStartResponse,
    TurnResolvedConfig,
    UnknownValue,
)
from tests.test_observer import Recorder, recorded, resolved, start_turn, started_thread
from tests.test_observer_replay import CLOCK, FIXTURES_0171

THREAD_ID = "01a23b15-c636-7c30-9ded-9d8463cb7e2b"
FIRST_TURN = "01a23b15-caa5-76a3-9a6c-0594d603326b"
SECOND_TURN = "01a23b15-d0fa-7b13-90ff-700447190c8b"

CLIENT = {
    "product_client_id": "oracle-recorder",
    "client_name": "oracle-recorder",
    "client_version": "0.0.1",
    "rpc_transport": "stdio",
    "experimental_api_enabled": True,
}
RUNTIME = {
    "codex_rs_version": "0.171.0",
    "runtime_os": "linux",
    "runtime_os_version": "12.0.0",
    "runtime_arch": "x86_64",
}


def altered(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` as a newer server (or client) might have sent it."""
    message = json.loads(json.dumps(message))
    result = message.get("result")
    if isinstance(result, dict) and "thread" in result:
        result["thread"]["source"] = "desktopApp"
        result["sandbox"] = {"type": "microVm", "networkAccess": True}
        result["approvalPolicy"] = "on-anomaly"
    if message.get("method") == "turn/start" and message["id"] == 4:
        message["params"]["input"].append({"type": "audio", "url": "data:audio/wav;base64,"})
    if message.get("method") == "turn/completed":
        turn = message["params"]["turn"]
        if turn["id"] == FIRST_TURN:
            turn["status"] = "abandoned"
            turn["error"] = {"message": "refused by policy", "codexErrorInfo": "bioPolicy"}
    return message


def replay_altered() -> tuple[list[dict[str, Any]], AppServerObserver]:
    reducer = AnalyticsReducer(clock=lambda: CLOCK)
    events: list[dict[str, Any]] = []

    def track(fact: Fact) -> None:
        events.extend(event.to_dict() for event in reducer.ingest(fact))

    observer = AppServerObserver(track=track)
    for _, direction, message in recorded("c_full_turn.jsonl", FIXTURES_0171):
        observer.observe(altered(message), direction)  # type: ignore[arg-type]
    return events, observer


def turn_event(turn_id: str, **values: Any) -> dict[str, Any]:
    return {
        "event_type": "codex_turn_event",
        "event_params": {
            "thread_id": THREAD_ID,
            "turn_id": turn_id,
            "submission_type": None,
            "app_server_client": CLIENT,
            "runtime": RUNTIME,
            "ephemeral": False,
            "thread_source": None,
            "initialization_mode": "new",
            "subagent_source": None,
            "parent_thread_id": None,
            "model": "mock-model",
            "model_provider": "mock_provider",
            "sandbox_policy": "microVm",
            "reasoning_effort": None,
            "reasoning_summary": None,
            "service_tier": "default",
            "approval_policy": "on-anomaly",
            "approvals_reviewer": "user",
            "sandbox_network_access": True,
            "collaboration_mode": "default",
            "personality": None,
            **values,
        },
    }


def test_an_altered_recording_yields_every_event_with_the_unknown_values_as_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="codex_telemetry")
    events, observer = replay_altered()
    assert events == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": THREAD_ID,
                "app_server_client": CLIENT,
                "runtime": RUNTIME,
                "model": "mock-model",
                "ephemeral": False,
                "thread_source": None,
                "initialization_mode": "new",
                "subagent_source": None,
                "parent_thread_id": None,
                "created_at": 1796287612,
            },
        },
        turn_event(
            FIRST_TURN,
            num_input_images=1,
            is_first_turn=True,
            status="abandoned",
            turn_error="bioPolicy",
            steer_count=0,
            total_tool_call_count=None,
            shell_command_count=None,
            file_change_count=None,
            mcp_tool_call_count=None,
            dynamic_tool_call_count=None,
            subagent_tool_call_count=None,
            web_search_count=None,
            image_generation_count=None,
            input_tokens=1234,
            cached_input_tokens=200,
            output_tokens=56,
            reasoning_output_tokens=7,
            total_tokens=1290,
            duration_ms=94,
            started_at=1796287613,
            completed_at=1796287613,
        ),
        turn_event(
            SECOND_TURN,
            num_input_images=0,
            is_first_turn=False,
            status="completed",
            turn_error=None,
            steer_count=0,
            total_tool_call_count=None,
            shell_command_count=None,
            file_change_count=None,
            mcp_tool_call_count=None,
            dynamic_tool_call_count=None,
            subagent_tool_call_count=None,
            web_search_count=None,
            image_generation_count=None,
            input_tokens=1234,
            cached_input_tokens=200,
            output_tokens=56,
            reasoning_output_tokens=7,
            total_tokens=1290,
            duration_ms=67,
            started_at=1796287615,
            completed_at=1796287615,
        ),
    ]
    stats = observer.stats()
    assert (stats.malformed, stats.unrecognized, stats.track_errors) == (0, 0, 0)
    assert stats.unknown_values == {
        "session_source": 1,
        "sandbox_policy": 1,
        "approval_policy": 1,
        "input_item": 1,
        "turn_status": 1,
        "codex_error_info": 1,
    }
    assert [record.getMessage() for record in caplog.records] == [
        "codex_telemetry does not know the session_source 'desktopApp' sent by the app-server "
        "(a newer version?); it is reported as sent, your code is unaffected. Further unknown "
        "session_source values are only counted.",
        "codex_telemetry does not know the sandbox_policy 'microVm' sent by the app-server "
        "(a newer version?); it is reported as sent, your code is unaffected. Further unknown "
        "sandbox_policy values are only counted.",
        "codex_telemetry does not know the approval_policy 'on-anomaly' sent by the "
        "app-server (a newer version?); it is reported as sent, your code is unaffected. "
        "Further unknown approval_policy values are only counted.",
        "codex_telemetry does not know the input_item 'audio' sent by the app-server (a newer "
        "version?); it is reported as sent, your code is unaffected. Further unknown "
        "input_item values are only counted.",
        "codex_telemetry does not know the turn_status 'abandoned' sent by the app-server (a "
        "newer version?); it is reported as sent, your code is unaffected. Further unknown "
        "turn_status values are only counted.",
        "codex_telemetry does not know the codex_error_info 'bioPolicy' sent by the "
        "app-server (a newer version?); it is reported as sent, your code is unaffected. "
        "Further unknown codex_error_info values are only counted.",
    ]


def test_each_field_is_logged_once_and_counted_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    started_thread(recorder, approvalsReviewer="council", reasoningEffort="extreme")
    start_turn(recorder, 2, "turn-1", approvalsReviewer="jury")
    config = resolved(start_turn(recorder, 3, "turn-2"))
    assert (config.approvals_reviewer, config.reasoning_effort) == (
        UnknownValue("jury"),
        UnknownValue("extreme"),
    )
    assert recorder.observer.stats().unknown_values == {
        "approvals_reviewer": 2,
        "reasoning_effort": 1,
    }
    assert [record.getMessage().split(" sent ")[0] for record in caplog.records] == [
        "codex_telemetry does not know the approvals_reviewer 'council'",
        "codex_telemetry does not know the reasoning_effort 'extreme'",
    ]


@pytest.mark.parametrize(
    ("config", "field", "expected"),
    [
        ({"sandbox": "cloud-vm"}, "sandbox_policy", UnknownValue("cloud-vm")),
        ({"sandbox": {"newKind": {"x": 1}}}, "sandbox_policy", UnknownValue("newKind")),
        ({"approvalPolicy": {"delegated": {}}}, "approval_policy", UnknownValue("delegated")),
        ({"serviceTier": "turbo"}, "service_tier", UnknownValue("turbo")),
        ({"reasoningSummary": "verbose"}, "reasoning_summary", UnknownValue("verbose")),
        ({"personality": "stoic"}, "personality", UnknownValue("stoic")),
        (
            {"collaborationMode": {"mode": "swarm", "settings": {}}},
            "collaboration_mode",
            UnknownValue("swarm"),
        ),
    ],
)
def test_every_configuration_field_follows_the_rule(
    config: dict[str, Any], field: str, expected: Any
) -> None:
    recorder = Recorder()
    started_thread(recorder, **config)
    resolved_config: TurnResolvedConfig = resolved(start_turn(recorder, 2, "turn-1"))
    assert getattr(resolved_config, field) == expected
    assert recorder.observer.stats().unknown_values == {field: 1}


def test_an_unknown_sub_agent_source_is_reported_verbatim() -> None:
    recorder = Recorder()
    recorder.sent({"id": 1, "method": "thread/start", "params": {}})
    result: dict[str, Any] = {
        "thread": {
            "id": "thr-1",
            "ephemeral": False,
            "createdAt": 1,
            "source": {"subAgent": "dreaming"},
        },
        "model": "m",
    }
    assert recorder.received({"id": 1, "result": result}) == [
        Response(
            7, 1, ThreadStartResponse(Thread("thr-1", False, 1, SubAgent(Other("dreaming"))), "m")
        )
    ]
    assert recorder.observer.stats().unknown_values == {"subagent_source": 1}


def _replay(transform: Any) -> tuple[list[dict[str, Any]], AppServerObserver]:
    reducer = AnalyticsReducer(clock=lambda: CLOCK)
    events: list[dict[str, Any]] = []

    def track(fact: Fact) -> None:
        events.extend(event.to_dict() for event in reducer.ingest(fact))

    observer = AppServerObserver(track=track)
    for _, direction, message in recorded("c_full_turn.jsonl", FIXTURES_0171):
        observer.observe(transform(json.loads(json.dumps(message))), direction)  # type: ignore[arg-type]
    return events, observer


def test_an_error_info_deeper_than_a_fact_may_carry_still_yields_the_turn_event() -> None:
    """A fact refuses a ``codex_error_info`` deeper than 32 levels; the observer then
    reports the turn without it instead of losing the turn as a malformed message."""

    def deep_error(message: dict[str, Any]) -> dict[str, Any]:
        if message.get("method") == "turn/completed":
            turn = message["params"]["turn"]
            if turn["id"] == FIRST_TURN:
                info: Any = "badRequest"
                for _ in range(40):
                    info = {"nested": info}
                turn["status"] = "failed"
                turn["error"] = {"message": "too deep", "codexErrorInfo": info}
        return message

    plain, _ = _replay(lambda message: message)
    events, observer = _replay(deep_error)
    assert len(events) == len(plain) == 3
    assert [event["event_type"] for event in events] == [
        "codex_thread_initialized",
        "codex_turn_event",
        "codex_turn_event",
    ]
    first_turn = events[1]["event_params"]
    assert (first_turn["turn_id"], first_turn["status"], first_turn["turn_error"]) == (
        FIRST_TURN,
        "failed",
        None,
    )
    assert observer.stats().unknown_values == {"codex_error_info": 1}
    assert observer.stats().malformed == 0
