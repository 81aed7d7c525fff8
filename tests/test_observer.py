"""AppServerObserver: the facts derived from Codex app-server JSON-RPC messages.

Recorded sessions of the real app-server (``tests/fixtures/codex-app-server-0.169``) give
the real shapes; small hand-written messages cover what the recordings do not show
(overrides, sub-agent sources, unusual user agents, broken input).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_telemetry._observer import AppServerObserver, Direction, ObserverStats
from codex_telemetry._observer_errors import classify_rejection
from codex_telemetry.facts import (
    Capabilities,
    ClientInfo,
    CustomSource,
    ErrorResponse,
    Fact,
    ImageInput,
    Initialize,
    InitializeParams,
    JsonRpcError,
    LocalImageInput,
    Notification,
    Other,
    OtherInput,
    Request,
    Response,
    RuntimeMetadata,
    SubAgent,
    TextInput,
    Thread,
    ThreadForkResponse,
    ThreadResumeResponse,
    ThreadSpawn,
    ThreadStartResponse,
    TokenUsage,
    Turn,
    TurnCompletedNotification,
    TurnError,
    TurnResolvedConfig,
    TurnStartedNotification,
    TurnStartRequest,
    TurnStartResponse,
    TurnSteerRequest,
    TurnSteerResponse,
    TurnTokenUsage,
    UnknownValue,
)

FIXTURES = Path(__file__).parent / "fixtures" / "codex-app-server-0.169"


def recorded(name: str, fixtures: Path = FIXTURES) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(conn, direction, message) of a recording, in seq order, meta lines skipped."""
    lines = [json.loads(line) for line in (fixtures / name).read_text().splitlines()]
    for line in sorted(lines, key=lambda item: item["seq"]):
        if line["dir"] == "meta":
            continue
        direction = "sent" if line["dir"] == "client->server" else "received"
        yield line["conn"], direction, line["msg"]


def replay(name: str, connection_ids: dict[str, int] | None = None) -> list[Fact]:
    """Facts of a recording, one observer per connection (ids 1, 2, ... in order)."""
    facts: list[Fact] = []
    observers: dict[str, AppServerObserver] = {}
    for conn, direction, message in recorded(name):
        observer = observers.get(conn)
        if observer is None:
            ids = connection_ids or {}
            observer = AppServerObserver(
                track=facts.append, connection_id=ids.get(conn, len(observers) + 1)
            )
            observers[conn] = observer
        observer.observe(message, direction)  # type: ignore[arg-type]
    return facts


class Recorder:
    """An observer on connection 7 with its facts."""

    def __init__(self, **options: Any) -> None:
        self.facts: list[Fact] = []
        self.observer = AppServerObserver(track=self.facts.append, connection_id=7, **options)

    def sent(self, message: dict[str, Any] | str | bytes) -> list[Fact]:
        start = len(self.facts)
        self.observer.observe_sent(message)
        return self.facts[start:]

    def received(self, message: dict[str, Any] | str | bytes) -> list[Fact]:
        start = len(self.facts)
        self.observer.observe_received(message)
        return self.facts[start:]


ORACLE_CLIENT = InitializeParams(
    client_info=ClientInfo(name="oracle-recorder", version="0.0.1", title="Oracle recorder"),
    capabilities=Capabilities(experimental_api=True),
)
APP_SERVER_RUNTIME = RuntimeMetadata(
    codex_rs_version="0.169.0",
    runtime_os="linux",
    runtime_os_version="12.0.0",
    runtime_arch="x86_64",
)


def thread_result(
    thread_id: str = "thr-1",
    *,
    turns: list[Any] | None = None,
    preview: str = "",
    **config: Any,
) -> dict[str, Any]:
    """A thread/start|resume|fork result shaped as app-server 0.169 sends it."""
    result: dict[str, Any] = {
        "thread": {
            "id": thread_id,
            "ephemeral": False,
            "createdAt": 1795573823,
            "source": "vscode",
            "preview": preview,
            "turns": turns or [],
        },
        "model": "mock-model",
        "modelProvider": "mock_provider",
        "serviceTier": None,
        "approvalPolicy": "never",
        "approvalsReviewer": "user",
        "sandbox": {"type": "readOnly", "networkAccess": False},
        "reasoningEffort": None,
    }
    result.update(config)
    return result


def started_thread(recorder: Recorder, **config: Any) -> None:
    recorder.sent({"id": 1, "method": "thread/start", "params": {"cwd": "/w"}})
    recorder.received({"id": 1, "result": thread_result(**config)})


def start_turn(recorder: Recorder, request_id: int, turn_id: str, **params: Any) -> list[Fact]:
    request = {
        "id": request_id,
        "method": "turn/start",
        "params": {"threadId": "thr-1", "input": [{"type": "text", "text": "hi"}], **params},
    }
    facts = recorder.sent(request)
    response = {
        "id": request_id,
        "result": {"turn": {"id": turn_id, "status": "inProgress", "error": None}},
    }
    return facts + recorder.received(response)


def resolved(facts: list[Fact]) -> TurnResolvedConfig:
    configs = [fact for fact in facts if isinstance(fact, TurnResolvedConfig)]
    assert len(configs) == 1
    return configs[0]


# --- initialize ----------------------------------------------------------------------


def test_initialize_from_the_recorded_handshake() -> None:
    assert replay("a_thread_start.jsonl")[0] == Initialize(
        connection_id=1,
        params=ORACLE_CLIENT,
        product_client_id="oracle-recorder",
        rpc_transport="stdio",
        runtime=APP_SERVER_RUNTIME,
    )


def test_initialize_without_capabilities_and_with_a_macos_user_agent() -> None:
    recorder = Recorder(rpc_transport="websocket")
    assert (
        recorder.sent(
            {
                "id": 0,
                "method": "initialize",
                "params": {"clientInfo": {"name": "ide", "version": "2"}},
            }
        )
        == []
    )
    facts = recorder.received(
        {
            "id": 0,
            "result": {
                "userAgent": "codex_vscode/0.170.1 (Mac OS 15.3.1; arm64) vscode/1.99",
                "platformFamily": "unix",
                "platformOs": "macos",
            },
        }
    )
    assert facts == [
        Initialize(
            connection_id=7,
            params=InitializeParams(client_info=ClientInfo(name="ide", version="2")),
            product_client_id="codex_vscode",
            rpc_transport="websocket",
            runtime=RuntimeMetadata(
                codex_rs_version="0.170.1",
                runtime_os="macos",
                runtime_os_version="15.3.1",
                runtime_arch="aarch64",
            ),
        )
    ]


def test_initialize_prefers_server_info_and_reads_rolling_releases() -> None:
    recorder = Recorder()
    recorder.sent(
        {
            "id": "a",
            "method": "initialize",
            "params": {"clientInfo": {"name": "x", "version": "1"}, "capabilities": {}},
        }
    )
    (fact,) = recorder.received(
        {
            "id": "a",
            "result": {
                "serverInfo": {"name": "codex-app-server", "version": "0.171.0"},
                "userAgent": "my_app/0.171.0 (Arch Linux Rolling Release; x86_64) tmux",
                "platformOs": "linux",
            },
        }
    )
    assert isinstance(fact, Initialize)
    assert fact.product_client_id == "my_app"
    assert fact.params.capabilities == Capabilities(experimental_api=False)
    assert fact.runtime == RuntimeMetadata(
        codex_rs_version="0.171.0",
        runtime_os="linux",
        runtime_os_version="Rolling Release",
        runtime_arch="x86_64",
    )


def test_a_failed_initialize_is_no_fact() -> None:
    recorder = Recorder()
    recorder.sent(
        {"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "x", "version": "1"}}}
    )
    assert recorder.received({"id": 1, "error": {"code": -32600, "message": "no"}}) == []


# --- threads -------------------------------------------------------------------------


def test_thread_responses_from_the_recorded_resume_and_fork() -> None:
    facts = [fact for fact in replay("b_resume_fork.jsonl") if isinstance(fact, Response)]
    threads = [fact for fact in facts if not isinstance(fact.response, TurnStartResponse)]
    original = Thread(
        id="01a2108a-6701-79f3-ab6e-7c8d599a064d",
        ephemeral=False,
        created_at=1795573835,
        source="vscode",
    )
    assert threads == [
        Response(1, 2, ThreadStartResponse(original, "mock-model")),
        Response(2, 2, ThreadResumeResponse(original, "mock-model")),
        Response(
            2,
            3,
            ThreadForkResponse(
                Thread(
                    id="01a2108a-8af1-72b3-8d01-763479d2ec5d",
                    ephemeral=False,
                    created_at=1795573844,
                    source="vscode",
                ),
                "mock-model",
            ),
        ),
        Response(2, 5, ThreadResumeResponse(original, "mock-model")),
    ]


def test_an_ephemeral_thread_is_reported_as_such() -> None:
    facts = replay("a_thread_start.jsonl")
    assert facts[2] == Response(
        1,
        3,
        ThreadStartResponse(
            Thread(
                id="01a2108a-3a43-7ca3-bdc5-5ccf3d8eb292",
                ephemeral=True,
                created_at=1795573824,
                source="vscode",
            ),
            "mock-model",
        ),
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("cli", "cli"),
        ("exec", "exec"),
        ("appServer", "app_server"),
        ("unknown", "unknown"),
        ("someFutureSource", "unknown"),
        ({"custom": "my_bot"}, CustomSource("my_bot")),
        ({"subAgent": "review"}, SubAgent("review")),
        ({"subAgent": "compact"}, SubAgent("compact")),
        ({"subAgent": "memory_consolidation"}, SubAgent("memory_consolidation")),
        ({"subAgent": {"other": "triage"}}, SubAgent(Other("triage"))),
        (
            {
                "subAgent": {
                    "thread_spawn": {
                        "parent_thread_id": "thr-0",
                        "depth": 1,
                        "agent_nickname": "Ada",
                        "agent_role": "explorer",
                    }
                }
            },
            SubAgent(ThreadSpawn("thr-0", 1, "Ada", "explorer")),
        ),
    ],
)
def test_session_sources(source: Any, expected: Any) -> None:
    recorder = Recorder()
    recorder.sent({"id": 1, "method": "thread/start", "params": {}})
    result = thread_result()
    result["thread"]["source"] = source
    (fact,) = recorder.received({"id": 1, "result": result})
    assert isinstance(fact, Response)
    assert isinstance(fact.response, ThreadStartResponse)
    assert fact.response.thread.source == expected


# --- turns ---------------------------------------------------------------------------


def test_a_recorded_turn_with_an_image() -> None:
    facts = replay("c_full_turn.jsonl")
    thread_id = "01a2108a-b5e0-7173-ac32-c8c818802c6f"
    turn_id = "01a2108a-ba62-7bc3-bc93-699d67a9642a"
    question = TextInput("What is in this image?")
    assert facts[2:10] == [
        Request(
            1,
            3,
            TurnStartRequest(
                thread_id, (question, ImageInput("http://127.0.0.1:41277/img/cat.png"))
            ),
        ),
        ErrorResponse(
            1,
            3,
            JsonRpcError(
                -32600, "remote image URLs are not supported; use an inline data URL instead"
            ),
            None,
        ),
        Request(
            1,
            4,
            TurnStartRequest(
                thread_id,
                (
                    question,
                    ImageInput(
                        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
                    ),
                ),
            ),
        ),
        Response(1, 4, TurnStartResponse(Turn(turn_id, "in_progress"))),
        TurnResolvedConfig(
            turn_id=turn_id,
            thread_id=thread_id,
            num_input_images=1,
            submission_type=None,
            ephemeral=False,
            session_source="vscode",
            model="mock-model",
            model_provider="mock_provider",
            sandbox_policy="read_only",
            reasoning_effort=None,
            reasoning_summary=None,
            service_tier=None,
            approval_policy="never",
            approvals_reviewer="user",
            sandbox_network_access=False,
            collaboration_mode="default",
            personality=None,
            is_first_turn=True,
        ),
        Notification(
            TurnStartedNotification(thread_id, Turn(turn_id, "in_progress", started_at=1795573856))
        ),
        TurnTokenUsage(turn_id, thread_id, TokenUsage(1234, 200, 56, 7, 1290)),
        Notification(
            TurnCompletedNotification(
                thread_id,
                Turn(
                    turn_id,
                    "completed",
                    started_at=1795573856,
                    completed_at=1795573856,
                    duration_ms=107,
                ),
            )
        ),
    ]
    second = resolved(facts[10:])
    assert (second.is_first_turn, second.num_input_images) == (False, 0)


def test_a_recorded_failed_turn_keeps_its_error_info() -> None:
    completions = [
        fact.notification.turn
        for fact in replay("d_turn_failed.jsonl")
        if isinstance(fact, Notification)
        and isinstance(fact.notification, TurnCompletedNotification)
    ]
    assert [(turn.status, turn.error) for turn in completions] == [
        (
            "failed",
            TurnError(
                "We\u2019re currently experiencing high demand, which may cause temporary errors.",
                "internalServerError",
            ),
        ),
        (
            "failed",
            TurnError(
                '{"error": {"message": "oracle mock bad request", "type": '
                '"invalid_request_error", "code": "invalid_value"}}',
                "other",
            ),
        ),
        (
            "failed",
            TurnError(
                "You\u2019ve hit your usage limit. Visit https://chatgpt.com/settings/usage to "
                "purchase more credits or try again later.",
                "usageLimitExceeded",
            ),
        ),
        (
            "failed",
            TurnError("stream disconnected before completion: oracle mock stream failure", "other"),
        ),
    ]


def test_error_info_with_data_is_passed_through_unchanged() -> None:
    recorder = Recorder()
    started_thread(recorder)
    start_turn(recorder, 2, "turn-1")
    info = {"httpConnectionFailed": {"httpStatusCode": 502}}
    facts = recorder.received(
        {
            "method": "turn/completed",
            "params": {
                "threadId": "thr-1",
                "turn": {
                    "id": "turn-1",
                    "status": "failed",
                    "error": {"message": "bad gateway", "codexErrorInfo": info},
                    "startedAt": 10,
                    "completedAt": 11,
                    "durationMs": 900,
                },
            },
        }
    )
    assert facts == [
        TurnTokenUsage("turn-1", "thr-1", TokenUsage(0, 0, 0, 0, 0)),
        Notification(
            TurnCompletedNotification(
                "thr-1",
                Turn("turn-1", "failed", TurnError("bad gateway", info), 10, 11, 900),
            )
        ),
    ]
    assert recorder.observer.stats().unknown_values == {}


def test_turn_start_overrides_apply_to_the_turn_and_the_next_ones() -> None:
    recorder = Recorder()
    started_thread(recorder)
    first = resolved(
        start_turn(
            recorder,
            2,
            "turn-1",
            model="gpt-5",
            effort="high",
            summary="concise",
            sandboxPolicy={"type": "workspaceWrite", "networkAccess": True, "writableRoots": []},
            approvalPolicy="on-request",
            approvalsReviewer="guardian_subagent",
            personality="pragmatic",
            serviceTier="flex",
            collaborationMode={"mode": "plan", "settings": {"model": "gpt-5-plan"}},
            input=[
                {"type": "text", "text": "look"},
                {"type": "localImage", "path": "/tmp/a.png"},
                {"type": "image", "url": "data:image/png;base64,AA=="},
                {"type": "mention", "name": "x", "path": "app://x"},
            ],
        )
    )
    assert first == TurnResolvedConfig(
        turn_id="turn-1",
        thread_id="thr-1",
        num_input_images=2,
        submission_type=None,
        ephemeral=False,
        session_source="vscode",
        model="gpt-5-plan",
        model_provider="mock_provider",
        sandbox_policy="workspace_write",
        reasoning_effort="high",
        reasoning_summary="concise",
        service_tier="flex",
        approval_policy="on-request",
        approvals_reviewer="guardian_subagent",
        sandbox_network_access=True,
        collaboration_mode="plan",
        personality="pragmatic",
        is_first_turn=True,
    )
    second = resolved(start_turn(recorder, 3, "turn-2", serviceTierForTurn="fast"))
    assert second == TurnResolvedConfig(
        turn_id="turn-2",
        thread_id="thr-1",
        num_input_images=0,
        submission_type=None,
        ephemeral=False,
        session_source="vscode",
        model="gpt-5-plan",
        model_provider="mock_provider",
        sandbox_policy="workspace_write",
        reasoning_effort="high",
        reasoning_summary="concise",
        service_tier="fast",
        approval_policy="on-request",
        approvals_reviewer="guardian_subagent",
        sandbox_network_access=True,
        collaboration_mode="plan",
        personality="pragmatic",
        is_first_turn=False,
    )
    # serviceTierForTurn held for one turn only.
    assert resolved(start_turn(recorder, 4, "turn-3")).service_tier == "flex"


def test_the_request_fact_carries_every_input_kind() -> None:
    recorder = Recorder()
    started_thread(recorder)
    facts = recorder.sent(
        {
            "id": 9,
            "method": "turn/start",
            "params": {
                "threadId": "thr-1",
                "input": [
                    {"type": "text", "text": "t", "text_elements": []},
                    {"type": "image", "url": "https://example.com/a.png"},
                    {"type": "localImage", "path": "/p.png"},
                    {"type": "skill", "name": "s", "path": "/s/SKILL.md"},
                ],
            },
        }
    )
    assert facts == [
        Request(
            7,
            9,
            TurnStartRequest(
                "thr-1",
                (
                    TextInput("t"),
                    ImageInput("https://example.com/a.png"),
                    LocalImageInput("/p.png"),
                    OtherInput("skill"),
                ),
            ),
        )
    ]


@pytest.mark.parametrize(
    ("sandbox", "policy", "network"),
    [
        ({"type": "dangerFullAccess"}, "danger_full_access", True),
        ({"type": "readOnly", "networkAccess": True}, "read_only", True),
        ({"type": "workspaceWrite"}, "workspace_write", False),
        ({"type": "externalSandbox", "networkAccess": "enabled"}, "external_sandbox", True),
        ({"type": "externalSandbox", "networkAccess": "restricted"}, "external_sandbox", False),
    ],
)
def test_sandbox_policies(sandbox: dict[str, Any], policy: str, network: bool) -> None:
    recorder = Recorder()
    started_thread(recorder, sandbox=sandbox)
    config = resolved(start_turn(recorder, 2, "turn-1"))
    assert (config.sandbox_policy, config.sandbox_network_access) == (policy, network)


@pytest.mark.parametrize(
    ("config", "field", "expected"),
    [
        (
            {"approvalPolicy": {"granular": {"sandbox_approval": True}}},
            "approval_policy",
            "on-request",
        ),
        ({"approvalPolicy": "untrusted"}, "approval_policy", "untrusted"),
        ({"approvalsReviewer": "auto_review"}, "approvals_reviewer", "guardian_subagent"),
        ({"serviceTier": "priority"}, "service_tier", "fast"),
        ({"serviceTier": "default"}, "service_tier", None),
        ({"reasoningEffort": "medium"}, "reasoning_effort", "medium"),
        ({"collaborationMode": {"mode": "plan", "settings": {}}}, "collaboration_mode", "plan"),
    ],
)
def test_thread_configuration_values(config: dict[str, Any], field: str, expected: Any) -> None:
    recorder = Recorder()
    started_thread(recorder, **config)
    assert getattr(resolved(start_turn(recorder, 2, "turn-1")), field) == expected


def test_a_configuration_value_this_release_does_not_know_is_kept_as_sent() -> None:
    recorder = Recorder()
    started_thread(recorder, approvalPolicy="sometimes")
    config = resolved(start_turn(recorder, 2, "turn-1"))
    assert config.approval_policy == UnknownValue("sometimes")
    stats = recorder.observer.stats()
    assert (stats.unrecognized, stats.unknown_values) == (0, {"approval_policy": 1})


def test_a_configuration_value_without_a_name_skips_the_resolved_config() -> None:
    recorder = Recorder()
    started_thread(recorder, approvalPolicy=42)
    facts = start_turn(recorder, 2, "turn-1")
    assert [type(fact) for fact in facts] == [Request, Response]
    assert recorder.observer.stats().unrecognized == 1


def test_first_turn_of_resumed_and_forked_threads() -> None:
    facts = replay("b_resume_fork.jsonl")
    assert [config.is_first_turn for config in facts if isinstance(config, TurnResolvedConfig)] == [
        True,
        False,
    ]
    recorder = Recorder()
    recorder.sent({"id": 1, "method": "thread/resume", "params": {"threadId": "thr-1"}})
    recorder.received({"id": 1, "result": thread_result(preview="hello")})  # excludeTurns
    assert resolved(start_turn(recorder, 2, "turn-1")).is_first_turn is False
    recorder = Recorder()
    recorder.sent({"id": 1, "method": "thread/resume", "params": {"threadId": "thr-1"}})
    recorder.received({"id": 1, "result": thread_result()})
    assert resolved(start_turn(recorder, 2, "turn-1")).is_first_turn is True


def test_a_turn_on_a_thread_not_seen_here_is_not_followed() -> None:
    recorder = Recorder()
    assert start_turn(recorder, 2, "turn-1") == []
    assert (
        recorder.received(
            {
                "method": "turn/started",
                "params": {"threadId": "thr-1", "turn": {"id": "turn-1", "status": "inProgress"}},
            }
        )
        == []
    )


def test_a_failed_turn_start_is_an_error_response_without_reason() -> None:
    recorder = Recorder()
    started_thread(recorder)
    recorder.sent({"id": 2, "method": "turn/start", "params": {"threadId": "thr-1", "input": []}})
    assert recorder.received(
        {
            "id": 2,
            "error": {"code": -32602, "message": "bad", "data": {"input_error_code": "empty"}},
        }
    ) == [ErrorResponse(7, 2, JsonRpcError(-32602, "bad", {"input_error_code": "empty"}), None)]


# --- token usage ---------------------------------------------------------------------


def token_usages(facts: list[Fact]) -> list[tuple[str, TokenUsage]]:
    return [
        (fact.turn_id[-6:], fact.token_usage) for fact in facts if isinstance(fact, TurnTokenUsage)
    ]


def test_a_turn_with_several_model_requests_reports_their_sum() -> None:
    # In g_tools the thread's running total grows by 1290 per model request; tool turns
    # make two or three requests.
    assert token_usages(replay("g_tools.jsonl")) == [
        ("84fbb6", TokenUsage(2468, 400, 112, 14, 2580)),
        ("c8cff1", TokenUsage(2468, 400, 112, 14, 2580)),
        ("f48265", TokenUsage(2468, 400, 112, 14, 2580)),
        ("34b667", TokenUsage(1234, 200, 56, 7, 1290)),
        ("65b41e", TokenUsage(1234, 200, 56, 7, 1290)),
        ("45e97f", TokenUsage(2468, 400, 112, 14, 2580)),
        ("1a87a2", TokenUsage(3702, 600, 168, 21, 3870)),
        ("04aa67", TokenUsage(2468, 400, 112, 14, 2580)),
    ]


def test_an_interrupted_turn_reports_no_usage() -> None:
    # f: the interrupted turn had a usage update too, but the app-server's own analytics
    # report an interrupted turn's tokens as null.
    assert token_usages(replay("f_compact_archive_interrupt.jsonl")) == [
        ("749a86", TokenUsage(1234, 200, 56, 7, 1290)),
    ]


def test_turns_that_failed_before_the_model_answered_used_zero_tokens() -> None:
    zero = TokenUsage(0, 0, 0, 0, 0)
    assert token_usages(replay("d_turn_failed.jsonl")) == [
        ("f58aae", zero),
        ("2fe60a", zero),
        ("fd07d4", zero),
        ("53ab06", zero),
    ]


def test_a_forked_thread_counts_from_its_restored_total() -> None:
    assert token_usages(replay("b_resume_fork.jsonl")) == [
        ("c231b9", TokenUsage(1234, 200, 56, 7, 1290)),
        ("4d1f9a", TokenUsage(1234, 200, 56, 7, 1290)),
    ]


def usage_update(turn_id: str, total: int, last: int) -> dict[str, Any]:
    def usage(tokens: int) -> dict[str, int]:
        return {
            "totalTokens": tokens,
            "inputTokens": tokens - 10 if tokens else 0,
            "cachedInputTokens": 0,
            "cacheWriteInputTokens": 0,
            "outputTokens": 10 if tokens else 0,
            "reasoningOutputTokens": 0,
        }

    return {
        "method": "thread/tokenUsage/updated",
        "params": {
            "threadId": "thr-1",
            "turnId": turn_id,
            "tokenUsage": {"total": usage(total), "last": usage(last), "modelContextWindow": 1},
        },
    }


def completed(turn_id: str) -> dict[str, Any]:
    return {
        "method": "turn/completed",
        "params": {"threadId": "thr-1", "turn": {"id": turn_id, "status": "completed"}},
    }


def test_a_resumed_thread_without_a_restored_total_counts_from_the_first_update() -> None:
    recorder = Recorder()
    recorder.sent({"id": 1, "method": "thread/resume", "params": {"threadId": "thr-1"}})
    recorder.received({"id": 1, "result": thread_result(preview="hi")})
    start_turn(recorder, 2, "turn-1")
    recorder.received(usage_update("turn-1", total=500, last=100))
    recorder.received(usage_update("turn-1", total=700, last=200))
    assert recorder.received(completed("turn-1")) == [
        TurnTokenUsage("turn-1", "thr-1", TokenUsage(290, 0, 10, 0, 300)),
        Notification(TurnCompletedNotification("thr-1", Turn("turn-1", "completed"))),
    ]


def test_a_turn_without_usage_updates_used_zero_tokens() -> None:
    recorder = Recorder()
    started_thread(recorder)
    start_turn(recorder, 2, "turn-1")
    assert recorder.received(completed("turn-1")) == [
        TurnTokenUsage("turn-1", "thr-1", TokenUsage(0, 0, 0, 0, 0)),
        Notification(TurnCompletedNotification("thr-1", Turn("turn-1", "completed"))),
    ]
    # Once completed, the turn is no longer followed.
    assert recorder.received(completed("turn-1")) == []


def test_an_interrupted_turn_has_no_token_usage_fact_even_after_updates() -> None:
    recorder = Recorder()
    started_thread(recorder)
    start_turn(recorder, 2, "turn-1")
    recorder.received(usage_update("turn-1", total=300, last=300))
    interrupted = completed("turn-1")
    interrupted["params"]["turn"]["status"] = "interrupted"
    assert recorder.received(interrupted) == [
        Notification(TurnCompletedNotification("thr-1", Turn("turn-1", "interrupted")))
    ]


# --- steers --------------------------------------------------------------------------


def test_recorded_steers_accepted_and_rejected() -> None:
    facts = replay("e_steer.jsonl")
    steers = [
        fact
        for fact in facts
        if isinstance(fact, ErrorResponse)
        or (isinstance(fact, Request) and isinstance(fact.request, TurnSteerRequest))
        or (isinstance(fact, Response) and isinstance(fact.response, TurnSteerResponse))
    ]
    thread_id = "01a2108d-2bfa-70a1-b41d-ba8bd7ea2913"
    turn_id = "01a2108d-2c25-7412-b121-8af4fd428182"
    assert steers == [
        Request(
            1,
            4,
            TurnSteerRequest(
                thread_id, "not-the-active-turn", (TextInput("steer with wrong expectedTurnId"),)
            ),
        ),
        ErrorResponse(
            1,
            4,
            JsonRpcError(
                -32600, f"expected active turn id `not-the-active-turn` but found `{turn_id}`"
            ),
            "expected_turn_mismatch",
        ),
        Request(
            1, 5, TurnSteerRequest(thread_id, turn_id, (TextInput("steer: please also say hi"),))
        ),
        Response(1, 5, TurnSteerResponse(turn_id)),
        Request(
            1, 6, TurnSteerRequest(thread_id, turn_id, (TextInput("steer after the turn ended"),))
        ),
        ErrorResponse(1, 6, JsonRpcError(-32600, "no active turn to steer"), "no_active_turn"),
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (JsonRpcError(-32600, "no active turn to steer"), "no_active_turn"),
        (
            JsonRpcError(-32600, "expected active turn id `a` but found `b`"),
            "expected_turn_mismatch",
        ),
        (
            JsonRpcError(
                -32600,
                "cannot steer a review turn",
                {"codex_error_info": {"activeTurnNotSteerable": {"turnKind": "review"}}},
            ),
            "non_steerable_review",
        ),
        (
            JsonRpcError(
                -32600,
                "cannot steer a compact turn",
                {"codexErrorInfo": {"activeTurnNotSteerable": {"turnKind": "compact"}}},
            ),
            "non_steerable_compact",
        ),
        (JsonRpcError(-32602, "empty", {"input_error_code": "empty"}), "empty_input"),
        (
            JsonRpcError(-32602, "too large", {"input_error_code": "input_too_large"}),
            "input_too_large",
        ),
        (JsonRpcError(-32600, "too large", {"input_error_code": "input_too_large"}), None),
        (JsonRpcError(-32603, "internal error"), None),
    ],
)
def test_rejection_reasons(error: JsonRpcError, reason: str | None) -> None:
    assert classify_rejection(error) == reason


# --- what is ignored, and what never breaks the client -------------------------------


def test_everything_else_is_ignored() -> None:
    recorder = Recorder()
    started_thread(recorder)
    ignored: list[dict[str, Any]] = [
        {"method": "initialized"},
        {"id": 5, "method": "thread/archive", "params": {"threadId": "thr-1"}},
        {"id": 0, "result": {"decision": "accept"}},
    ]
    for message in ignored:
        assert recorder.sent(message) == []
    received: list[dict[str, Any]] = [
        {"id": 5, "result": {}},
        {"id": 99, "result": {}},
        {"id": 0, "method": "item/tool/call", "params": {"threadId": "thr-1"}},
        {"method": "item/agentMessage/delta", "params": {"delta": "hi"}},
        {
            "method": "turn/started",
            "params": {"threadId": "thr-1", "turn": {"id": "other", "status": "inProgress"}},
        },
    ]
    for message in received:
        assert recorder.received(message) == []
    assert recorder.observer.stats() == ObserverStats(
        messages=10, facts=1, malformed=0, unrecognized=0, evicted=0, track_errors=0
    )


def test_raw_json_lines_are_accepted() -> None:
    recorder = Recorder()
    recorder.sent('{"id": 1, "method": "thread/start", "params": {}}\n')
    (fact,) = recorder.received(json.dumps({"id": 1, "result": thread_result()}).encode())
    assert isinstance(fact, Response)


def test_malformed_messages_are_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    started_thread(recorder)
    caplog.set_level(logging.DEBUG, logger="codex_telemetry")
    broken: list[tuple[Any, Direction]] = [
        ("not json", "received"),
        (b"[1, 2]", "received"),
        ({"id": 2, "method": "turn/start", "params": {"threadId": "thr-1", "input": "hi"}}, "sent"),
        ({"id": 3, "method": "turn/start", "params": None}, "sent"),
        ({"id": [1], "method": "thread/start", "params": {}}, "sent"),
        ({"method": "turn/started", "params": {"threadId": "thr-1"}}, "received"),
    ]
    for message, direction in broken:
        recorder.observer.observe(message, direction)
    recorder.sent({"id": 4, "method": "thread/start", "params": {}})
    assert recorder.received({"id": 4, "result": {"thread": {"id": "t"}}}) == []
    stats = recorder.observer.stats()
    assert stats.malformed == len(broken) + 1
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "your code is unaffected" in warnings[0].getMessage()


def test_a_failing_track_never_reaches_the_client() -> None:
    def track(fact: Fact) -> None:
        raise RuntimeError("sink broken")

    observer = AppServerObserver(track=track)
    observer.observe_sent({"id": 1, "method": "thread/start", "params": {}})
    observer.observe_received({"id": 1, "result": thread_result()})
    assert observer.stats().track_errors == 1


def test_pending_requests_are_bounded() -> None:
    recorder = Recorder(max_pending=2)
    for request_id in (1, 2, 3):
        recorder.sent({"id": request_id, "method": "thread/start", "params": {}})
    assert recorder.observer.stats().evicted == 1
    assert recorder.received({"id": 1, "result": thread_result("a")}) == []
    assert len(recorder.received({"id": 3, "result": thread_result("c")})) == 1


def test_each_observer_has_its_own_connection_id() -> None:
    first, second = AppServerObserver(track=print), AppServerObserver(track=print)
    assert first.connection_id != second.connection_id
    assert AppServerObserver(track=print, connection_id=42).connection_id == 42


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AppServerObserver(track=print, max_turns=0)


def test_a_turn_started_that_overtakes_its_response_is_kept() -> None:
    recorder = Recorder()
    started_thread(recorder)
    recorder.sent({"id": 2, "method": "turn/start", "params": {"threadId": "thr-1", "input": []}})
    early = {
        "method": "turn/started",
        "params": {
            "threadId": "thr-1",
            "turn": {"id": "turn-1", "status": "inProgress", "startedAt": 5},
        },
    }
    assert recorder.received(early) == [
        Notification(TurnStartedNotification("thr-1", Turn("turn-1", "in_progress", started_at=5)))
    ]
    # Another thread's turn (a sub-agent's) is not followed.
    other = {
        "method": "turn/started",
        "params": {"threadId": "thr-9", "turn": {"id": "turn-9", "status": "inProgress"}},
    }
    assert recorder.received(other) == []


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "type", "turn", "threadId", "x"]), children, max_size=3
        )
    ),
    max_leaves=10,
)
_methods = st.sampled_from(
    [
        "initialize",
        "thread/start",
        "thread/resume",
        "thread/fork",
        "turn/start",
        "turn/steer",
        "turn/started",
        "turn/completed",
        "thread/tokenUsage/updated",
        "item/agentMessage/delta",
    ]
)
_messages = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(0, 3) | st.text(max_size=2) | _json_values,
        "method": _methods | _json_values,
        "params": _json_values,
        "result": _json_values,
        "error": _json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_messages, st.sampled_from(["sent", "received"])), max_size=20))
def test_no_message_sequence_makes_the_observer_raise(
    sequence: list[tuple[dict[str, Any], Direction]],
) -> None:
    recorder = Recorder(max_pending=2, max_threads=2, max_turns=2)
    started_thread(recorder)
    for message, direction in sequence:
        recorder.observer.observe(message, direction)
    stats = recorder.observer.stats()
    assert stats.messages == len(sequence) + 2
    assert stats.track_errors == 0
    assert stats.facts == len(recorder.facts)


# --- ids and remembered requests ------------------------------------------------------


def test_a_turn_start_is_remembered_as_it_was_sent() -> None:
    recorder = Recorder()
    started_thread(recorder)
    params: dict[str, Any] = {
        "threadId": "thr-1",
        "input": [{"type": "image", "url": "data:image/png;base64," + "A" * 1000}],
        "effort": "high",
        "collaborationMode": {"mode": "plan", "settings": {"model": "gpt-5-plan"}},
    }
    recorder.sent({"id": 2, "method": "turn/start", "params": params})
    # A client may reuse its request objects once they are sent.
    params["effort"] = "low"
    params["collaborationMode"]["settings"]["model"] = "changed"
    params["input"].clear()
    response = {"id": 2, "result": {"turn": {"id": "turn-1", "status": "inProgress"}}}
    config = resolved(recorder.received(response))
    assert (config.reasoning_effort, config.model, config.num_input_images) == (
        "high",
        "gpt-5-plan",
        1,
    )


def test_a_repeated_request_id_replaces_the_pending_request_and_is_counted() -> None:
    recorder = Recorder(max_pending=2)
    recorder.sent({"id": 1, "method": "thread/start", "params": {}})
    recorder.sent({"id": 2, "method": "thread/start", "params": {}})
    recorder.sent({"id": 2, "method": "thread/fork", "params": {}})
    assert recorder.observer.stats().evicted == 1
    (first,) = recorder.received({"id": 1, "result": thread_result("a")})
    (second,) = recorder.received({"id": 2, "result": thread_result("b")})
    assert isinstance(first, Response) and isinstance(first.response, ThreadStartResponse)
    assert isinstance(second, Response) and isinstance(second.response, ThreadForkResponse)


@pytest.mark.parametrize("bad_id", [True, 1.0, 2.5, {"a": 1}, [1]])
def test_a_response_whose_id_is_no_json_rpc_id_answers_nothing(bad_id: Any) -> None:
    recorder = Recorder()
    recorder.sent({"id": 1, "method": "thread/start", "params": {}})
    assert recorder.received({"id": bad_id, "result": thread_result("a")}) == []
    assert recorder.observer.stats().malformed == 1
    (fact,) = recorder.received({"id": 1, "result": thread_result("a")})
    assert isinstance(fact, Response)


def test_a_response_to_a_request_not_followed_is_not_malformed() -> None:
    recorder = Recorder()
    for message in (
        {"id": 9, "result": {}},
        {"id": "x", "result": {}},
        {"id": None, "error": {"code": -32700, "message": "Parse error"}},
    ):
        assert recorder.received(message) == []
    assert recorder.observer.stats().malformed == 0


def test_a_huge_malformed_value_is_not_copied_into_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    recorder.sent({"id": 1, "method": "thread/start", "params": {}})
    result = thread_result()
    result["thread"]["source"] = {"weird": "x" * 1_000_000}
    # A source this release does not know is reported as unknown, and logged briefly.
    (fact,) = recorder.received({"id": 1, "result": result})
    assert isinstance(fact, Response)
    assert isinstance(fact.response, ThreadStartResponse)
    assert fact.response.thread.source == "unknown"
    assert recorder.observer.stats().unknown_values == {"session_source": 1}
    recorder.sent({"id": 3, "method": "turn/start", "params": {"threadId": "thr-1", "input": 0}})
    assert recorder.observer.stats().malformed == 1
    assert len(caplog.records) == 2
    assert sum(len(record.getMessage()) for record in caplog.records) < 1000
