"""The reducer against events.md sections 3, 4 and 6: expected wire JSON written out in full."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import codex_telemetry
from codex_telemetry import AnalyticsReducer, ReducerLimits
from codex_telemetry._runtime import current_runtime
from codex_telemetry._skills import GitRepoLookup, RepoInfo
from codex_telemetry.facts import (
    AppInvocation,
    AppMentioned,
    AppUsed,
    Capabilities,
    ClientInfo,
    Compaction,
    CustomSource,
    ErrorResponse,
    Fact,
    HookRun,
    ImageInput,
    Initialize,
    InitializeParams,
    JsonRpcError,
    LocalImageInput,
    Notification,
    Other,
    OtherInput,
    PluginCapabilitySummary,
    PluginMetadata,
    PluginStateChanged,
    PluginUsed,
    Request,
    Response,
    RuntimeMetadata,
    SessionSource,
    SkillInvocation,
    SkillInvoked,
    SubAgent,
    SubAgentSource,
    SubAgentThreadStarted,
    TextInput,
    Thread,
    ThreadForkResponse,
    ThreadResumeResponse,
    ThreadSpawn,
    ThreadStartResponse,
    TokenUsage,
    TrackingContext,
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
    UserInput,
)

# --- shared values ------------------------------------------------------------------------

RUNTIME = RuntimeMetadata("0.1.0", "macos", "15.3.1", "aarch64")
# The reducer's own runtime: used for Initialize without runtime and for sub-agent threads.
PROCESS_RUNTIME = RuntimeMetadata("9.9.9", "linux", "12.0.0", "x86_64")

RUNTIME_JSON = {
    "codex_rs_version": "0.1.0",
    "runtime_os": "macos",
    "runtime_os_version": "15.3.1",
    "runtime_arch": "aarch64",
}
PROCESS_RUNTIME_JSON = {
    "codex_rs_version": "9.9.9",
    "runtime_os": "linux",
    "runtime_os_version": "12.0.0",
    "runtime_arch": "x86_64",
}
CLIENT_JSON = {
    "product_client_id": "codex-tui",
    "client_name": "codex-tui",
    "client_version": "1.0.0",
    "rpc_transport": "stdio",
    "experimental_api_enabled": None,
}
OTHER_CLIENT_JSON = {
    "product_client_id": "codex_vscode",
    "client_name": "vscode-ext",
    "client_version": "2.0.0",
    "rpc_transport": "websocket",
    "experimental_api_enabled": True,
}
TRACKING = TrackingContext(model_slug="gpt-5", thread_id="thread-2", turn_id="turn-2")
START_TIME = 1_700_000_000.0


class Clock:
    """A settable clock."""

    def __init__(self, now: float = START_TIME) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeRepoLookup:
    """Answers from a fixed table, and records what it was asked."""

    def __init__(self, repos: dict[str, RepoInfo] | None = None) -> None:
        self.repos = repos or {}
        self.calls: list[str] = []

    def __call__(self, skill_path: str) -> RepoInfo | None:
        self.calls.append(skill_path)
        return self.repos.get(skill_path)


def make_reducer(
    *,
    clock: Clock | None = None,
    repo_lookup: FakeRepoLookup | GitRepoLookup | None = None,
    limits: ReducerLimits | None = None,
    originator: str = "codex_cli_rs",
) -> AnalyticsReducer:
    return AnalyticsReducer(
        originator=originator,
        runtime=PROCESS_RUNTIME,
        clock=clock or Clock(),
        repo_lookup=repo_lookup or FakeRepoLookup(),
        limits=limits,
    )


def run(reducer: AnalyticsReducer, *facts: Fact) -> list[dict[str, Any]]:
    """Ingest ``facts`` in order; the wire JSON of every event they produced."""
    return [event.to_dict() for fact in facts for event in reducer.ingest(fact)]


# --- fact builders ------------------------------------------------------------------------


def initialize(connection_id: int = 7, *, runtime: RuntimeMetadata | None = RUNTIME) -> Initialize:
    return Initialize(
        connection_id=connection_id,
        params=InitializeParams(client_info=ClientInfo("codex-tui", "1.0.0"), capabilities=None),
        product_client_id="codex-tui",
        rpc_transport="stdio",
        runtime=runtime,
    )


def initialize_other(connection_id: int = 8) -> Initialize:
    """A second kind of client: websocket, experimental API on, the default runtime."""
    return Initialize(
        connection_id=connection_id,
        params=InitializeParams(
            client_info=ClientInfo("vscode-ext", "2.0.0", title="VS Code"),
            capabilities=Capabilities(experimental_api=True),
        ),
        product_client_id="codex_vscode",
        rpc_transport="websocket",
        runtime=None,
    )


def thread_response(
    connection_id: int = 7,
    *,
    thread_id: str = "thread-2",
    source: SessionSource = "exec",
    created_at: int = 1,
    ephemeral: bool = False,
    kind: type[ThreadStartResponse | ThreadResumeResponse | ThreadForkResponse] = (
        ThreadStartResponse
    ),
    request_id: int | str = 1,
) -> Response:
    thread = Thread(id=thread_id, ephemeral=ephemeral, created_at=created_at, source=source)
    return Response(connection_id, request_id, kind(thread=thread, model="gpt-5"))


def turn_start_request(
    connection_id: int = 7,
    request_id: int | str = 3,
    *,
    thread_id: str = "thread-2",
    items: Sequence[UserInput] = (TextInput("hello"), ImageInput("https://example.com/a.png")),
) -> Request:
    return Request(connection_id, request_id, TurnStartRequest(thread_id, tuple(items)))


def turn_start_response(
    connection_id: int = 7, request_id: int | str = 3, *, turn_id: str = "turn-2"
) -> Response:
    return Response(connection_id, request_id, TurnStartResponse(Turn(turn_id, "in_progress")))


def resolved_config(
    turn_id: str = "turn-2", thread_id: str = "thread-2", **overrides: Any
) -> TurnResolvedConfig:
    values: dict[str, Any] = {
        "num_input_images": 1,
        "submission_type": None,
        "ephemeral": False,
        "session_source": "exec",
        "model": "gpt-5",
        "model_provider": "openai",
        "sandbox_policy": "read_only",
        "reasoning_effort": None,
        "reasoning_summary": None,
        "service_tier": None,
        "approval_policy": "on-request",
        "approvals_reviewer": "guardian_subagent",
        "sandbox_network_access": True,
        "collaboration_mode": "plan",
        "personality": None,
        "is_first_turn": True,
    }
    values.update(overrides)
    return TurnResolvedConfig(turn_id=turn_id, thread_id=thread_id, **values)


def turn_started(turn_id: str = "turn-2", started_at: int | None = 455) -> Notification:
    turn = Turn(turn_id, "in_progress", started_at=started_at)
    return Notification(TurnStartedNotification("thread-2", turn))


def turn_completed(
    turn_id: str = "turn-2",
    *,
    status: Any = "completed",
    error: TurnError | None = None,
    completed_at: int | None = 456,
    duration_ms: int | None = 1234,
) -> Notification:
    turn = Turn(turn_id, status, error=error, completed_at=completed_at, duration_ms=duration_ms)
    return Notification(TurnCompletedNotification("thread-2", turn))


def token_usage(turn_id: str = "turn-2") -> TurnTokenUsage:
    return TurnTokenUsage(turn_id, "thread-2", TokenUsage(123, 45, 140, 13, 321))


def steer_request(
    connection_id: int = 7,
    request_id: int | str = 4,
    *,
    thread_id: str = "thread-2",
    items: Sequence[UserInput] = (TextInput("more"),),
) -> Request:
    return Request(connection_id, request_id, TurnSteerRequest(thread_id, "turn-2", tuple(items)))


def steer_response(
    connection_id: int = 7, request_id: int | str = 4, *, turn_id: str = "turn-2"
) -> Response:
    return Response(connection_id, request_id, TurnSteerResponse(turn_id))


def error_response(
    connection_id: int = 7, request_id: int | str = 4, reason: Any = None
) -> ErrorResponse:
    error = JsonRpcError(code=-32600, message="refused")
    return ErrorResponse(connection_id, request_id, error, rejection_reason=reason)


def preamble(reducer: AnalyticsReducer) -> None:
    """Initialize connection 7 and start thread-2 on it (its event is dropped)."""
    assert len(run(reducer, initialize(), thread_response())) == 1


def full_turn(**config_overrides: Any) -> list[Fact]:
    """The turn of section 6, after the preamble: request, response, config, usage, done."""
    return [
        turn_start_request(),
        turn_start_response(),
        resolved_config(**config_overrides),
        turn_started(),
        token_usage(),
        turn_completed(),
    ]


# The turn event of section 6.
TURN_PARAMS: dict[str, Any] = {
    "thread_id": "thread-2",
    "turn_id": "turn-2",
    "submission_type": None,
    "app_server_client": CLIENT_JSON,
    "runtime": RUNTIME_JSON,
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
    "status": "completed",
    "turn_error": None,
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
}


def turn_event(**overrides: Any) -> dict[str, Any]:
    """The section 6 turn event with some ``event_params`` replaced."""
    unknown = set(overrides) - set(TURN_PARAMS)
    assert not unknown, unknown
    return {"event_type": "codex_turn_event", "event_params": {**TURN_PARAMS, **overrides}}


# --- section 6: the worked example ---------------------------------------------------------


def test_worked_example_thread_and_turn() -> None:
    reducer = make_reducer()

    assert run(reducer, initialize()) == []
    assert run(reducer, thread_response()) == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": "thread-2",
                "app_server_client": {
                    "product_client_id": "codex-tui",
                    "client_name": "codex-tui",
                    "client_version": "1.0.0",
                    "rpc_transport": "stdio",
                    "experimental_api_enabled": None,
                },
                "runtime": {
                    "codex_rs_version": "0.1.0",
                    "runtime_os": "macos",
                    "runtime_os_version": "15.3.1",
                    "runtime_arch": "aarch64",
                },
                "model": "gpt-5",
                "ephemeral": False,
                "thread_source": "user",
                "initialization_mode": "new",
                "subagent_source": None,
                "parent_thread_id": None,
                "created_at": 1,
            },
        }
    ]
    facts = full_turn()
    assert run(reducer, *facts[:-1]) == []
    assert run(reducer, facts[-1]) == [
        {
            "event_type": "codex_turn_event",
            "event_params": {
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "submission_type": None,
                "app_server_client": {
                    "product_client_id": "codex-tui",
                    "client_name": "codex-tui",
                    "client_version": "1.0.0",
                    "rpc_transport": "stdio",
                    "experimental_api_enabled": None,
                },
                "runtime": {
                    "codex_rs_version": "0.1.0",
                    "runtime_os": "macos",
                    "runtime_os_version": "15.3.1",
                    "runtime_arch": "aarch64",
                },
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
                "status": "completed",
                "turn_error": None,
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
        }
    ]
    # The turn state is deleted on emission; connection and thread stay.
    assert reducer.state_sizes() == {
        "connections": 1,
        "threads": 1,
        "pending_requests": 0,
        "turns": 0,
    }


# --- connections ---------------------------------------------------------------------------


def test_initialize_emits_nothing_and_capabilities_and_default_runtime_are_used() -> None:
    reducer = make_reducer()
    assert run(reducer, initialize_other()) == []
    assert run(reducer, thread_response(8, source="vscode", created_at=1_700_000_000)) == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": "thread-2",
                "app_server_client": {
                    "product_client_id": "codex_vscode",
                    "client_name": "vscode-ext",
                    "client_version": "2.0.0",
                    "rpc_transport": "websocket",
                    "experimental_api_enabled": True,
                },
                "runtime": {
                    "codex_rs_version": "9.9.9",
                    "runtime_os": "linux",
                    "runtime_os_version": "12.0.0",
                    "runtime_arch": "x86_64",
                },
                "model": "gpt-5",
                "ephemeral": False,
                "thread_source": "user",
                "initialization_mode": "new",
                "subagent_source": None,
                "parent_thread_id": None,
                "created_at": 1_700_000_000,
            },
        }
    ]


def test_experimental_api_false_is_false_not_null() -> None:
    reducer = make_reducer()
    fact = Initialize(
        connection_id=7,
        params=InitializeParams(
            client_info=ClientInfo("codex-tui", "1.0.0"),
            capabilities=Capabilities(experimental_api=False),
        ),
        product_client_id="codex-tui",
        rpc_transport="in_process",
        runtime=RUNTIME,
    )
    [event] = run(reducer, fact, thread_response())
    assert event["event_params"]["app_server_client"] == {
        "product_client_id": "codex-tui",
        "client_name": "codex-tui",
        "client_version": "1.0.0",
        "rpc_transport": "in_process",
        "experimental_api_enabled": False,
    }


def test_second_initialize_replaces_the_first() -> None:
    reducer = make_reducer()
    replacement = Initialize(
        connection_id=7,
        params=InitializeParams(client_info=ClientInfo("codex-tui", "1.1.0"), capabilities=None),
        product_client_id="codex-tui",
        rpc_transport="websocket",
        runtime=RuntimeMetadata("0.2.0", "linux", "22.4.0", "x86_64"),
    )
    assert run(reducer, initialize(), replacement, thread_response(thread_id="t-9")) == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": "t-9",
                "app_server_client": {
                    "product_client_id": "codex-tui",
                    "client_name": "codex-tui",
                    "client_version": "1.1.0",
                    "rpc_transport": "websocket",
                    "experimental_api_enabled": None,
                },
                "runtime": {
                    "codex_rs_version": "0.2.0",
                    "runtime_os": "linux",
                    "runtime_os_version": "22.4.0",
                    "runtime_arch": "x86_64",
                },
                "model": "gpt-5",
                "ephemeral": False,
                "thread_source": "user",
                "initialization_mode": "new",
                "subagent_source": None,
                "parent_thread_id": None,
                "created_at": 1,
            },
        }
    ]
    assert reducer.state_sizes()["connections"] == 1


def test_events_of_a_connection_share_one_client_and_runtime_object() -> None:
    reducer = make_reducer()
    reducer.ingest(initialize())
    [first] = reducer.ingest(thread_response())
    [second] = reducer.ingest(thread_response(thread_id="thread-3"))
    for fact in full_turn():
        events = reducer.ingest(fact)
    [turn] = events
    clients = {id(event.app_server_client) for event in (first, second, turn)}  # type: ignore[attr-defined]
    runtimes = {id(event.runtime) for event in (first, second, turn)}  # type: ignore[attr-defined]
    assert len(clients) == 1
    assert len(runtimes) == 1


# --- threads ---------------------------------------------------------------------------------


def test_thread_response_on_unknown_connection_emits_and_stores_nothing() -> None:
    reducer = make_reducer()
    assert run(reducer, thread_response(99)) == []
    assert reducer.state_sizes()["threads"] == 0
    # Nothing stored: a later Initialize of that connection does not revive the thread.
    reducer.ingest(initialize(99))
    assert run(reducer, *full_turn()) == []


@pytest.mark.parametrize(
    ("kind", "mode"),
    [
        (ThreadStartResponse, "new"),
        (ThreadResumeResponse, "resumed"),
        (ThreadForkResponse, "forked"),
    ],
)
def test_thread_initialization_modes(
    kind: type[ThreadStartResponse | ThreadResumeResponse | ThreadForkResponse], mode: str
) -> None:
    reducer = make_reducer()
    assert run(reducer, initialize(), thread_response(kind=kind, ephemeral=True)) == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": "thread-2",
                "app_server_client": CLIENT_JSON,
                "runtime": RUNTIME_JSON,
                "model": "gpt-5",
                "ephemeral": True,
                "thread_source": "user",
                "initialization_mode": mode,
                "subagent_source": None,
                "parent_thread_id": None,
                "created_at": 1,
            },
        }
    ]
    # The mode is thread metadata: the thread's turns report it too.
    assert run(reducer, *full_turn()) == [turn_event(initialization_mode=mode)]


SOURCES: list[tuple[SessionSource, str | None, str | None, str | None]] = [
    ("cli", "user", None, None),
    ("vscode", "user", None, None),
    ("exec", "user", None, None),
    ("app_server", None, None, None),
    ("unknown", None, None, None),
    (CustomSource("my-tool"), None, None, None),
    (SubAgent("review"), "subagent", "review", None),
    (SubAgent("compact"), "subagent", "compact", None),
    (SubAgent("memory_consolidation"), "subagent", "memory_consolidation", None),
    (SubAgent(ThreadSpawn("thread-1", depth=1)), "subagent", "thread_spawn", "thread-1"),
    (SubAgent(Other("guardian")), "subagent", "guardian", None),
]


@pytest.mark.parametrize(("source", "thread_source", "subagent", "parent"), SOURCES)
def test_thread_source_names(
    source: SessionSource, thread_source: str | None, subagent: str | None, parent: str | None
) -> None:
    reducer = make_reducer()
    assert run(reducer, initialize(), thread_response(source=source)) == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": "thread-2",
                "app_server_client": CLIENT_JSON,
                "runtime": RUNTIME_JSON,
                "model": "gpt-5",
                "ephemeral": False,
                "thread_source": thread_source,
                "initialization_mode": "new",
                "subagent_source": subagent,
                "parent_thread_id": parent,
                "created_at": 1,
            },
        }
    ]
    assert run(reducer, *full_turn()) == [
        turn_event(thread_source=thread_source, subagent_source=subagent, parent_thread_id=parent)
    ]


def test_negative_thread_created_at_is_zero() -> None:
    reducer = make_reducer()
    [event] = run(reducer, initialize(), thread_response(created_at=-5))
    assert event == {
        "event_type": "codex_thread_initialized",
        "event_params": {
            "thread_id": "thread-2",
            "app_server_client": CLIENT_JSON,
            "runtime": RUNTIME_JSON,
            "model": "gpt-5",
            "ephemeral": False,
            "thread_source": "user",
            "initialization_mode": "new",
            "subagent_source": None,
            "parent_thread_id": None,
            "created_at": 0,
        },
    }


def test_resuming_a_thread_replaces_its_metadata() -> None:
    reducer = make_reducer()
    preamble(reducer)
    run(reducer, thread_response(kind=ThreadResumeResponse, source=SubAgent("review")))
    assert run(reducer, *full_turn()) == [
        turn_event(
            initialization_mode="resumed", thread_source="subagent", subagent_source="review"
        )
    ]


# --- sub-agent threads (4.2) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "explicit_parent", "subagent", "parent"),
    [
        ("review", None, "review", None),
        ("compact", None, "compact", None),
        ("memory_consolidation", None, "memory_consolidation", None),
        (ThreadSpawn("thread-1", depth=2, agent_nickname="bob"), None, "thread_spawn", "thread-1"),
        (ThreadSpawn("thread-1", depth=2), "thread-0", "thread_spawn", "thread-0"),
        (Other("explorer"), None, "explorer", None),
        ("review", "thread-0", "review", "thread-0"),
    ],
)
def test_subagent_thread_started(
    source: SubAgentSource, explicit_parent: str | None, subagent: str, parent: str | None
) -> None:
    # Needs no connection and stores nothing.
    reducer = make_reducer()
    fact = SubAgentThreadStarted(
        thread_id="thread-5",
        parent_thread_id=explicit_parent,
        product_client_id="codex_cli_rs",
        client_name="codex-tui",
        client_version="1.0.0",
        model="gpt-5-mini",
        ephemeral=True,
        subagent_source=source,
        created_at=1_700_000_123,
    )
    assert run(reducer, fact) == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": "thread-5",
                "app_server_client": {
                    "product_client_id": "codex_cli_rs",
                    "client_name": "codex-tui",
                    "client_version": "1.0.0",
                    "rpc_transport": "in_process",
                    "experimental_api_enabled": None,
                },
                "runtime": PROCESS_RUNTIME_JSON,
                "model": "gpt-5-mini",
                "ephemeral": True,
                "thread_source": "subagent",
                "initialization_mode": "new",
                "subagent_source": subagent,
                "parent_thread_id": parent,
                "created_at": 1_700_000_123,
            },
        }
    ]
    assert reducer.state_sizes() == {
        "connections": 0,
        "threads": 0,
        "pending_requests": 0,
        "turns": 0,
    }


def test_subagent_thread_started_without_client_name_and_version() -> None:
    fact = SubAgentThreadStarted(
        thread_id="thread-5",
        parent_thread_id=None,
        product_client_id="codex_exec",
        client_name=None,
        client_version=None,
        model="gpt-5",
        ephemeral=False,
        subagent_source="compact",
        created_at=7,
    )
    assert run(make_reducer(), fact) == [
        {
            "event_type": "codex_thread_initialized",
            "event_params": {
                "thread_id": "thread-5",
                "app_server_client": {
                    "product_client_id": "codex_exec",
                    "client_name": None,
                    "client_version": None,
                    "rpc_transport": "in_process",
                    "experimental_api_enabled": None,
                },
                "runtime": PROCESS_RUNTIME_JSON,
                "model": "gpt-5",
                "ephemeral": False,
                "thread_source": "subagent",
                "initialization_mode": "new",
                "subagent_source": "compact",
                "parent_thread_id": None,
                "created_at": 7,
            },
        }
    ]


# --- turns: mappings of 4.3 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"sandbox_policy": "danger_full_access"}, {"sandbox_policy": "full_access"}),
        ({"sandbox_policy": "read_only"}, {"sandbox_policy": "read_only"}),
        ({"sandbox_policy": "workspace_write"}, {"sandbox_policy": "workspace_write"}),
        ({"sandbox_policy": "external_sandbox"}, {"sandbox_policy": "external_sandbox"}),
        ({"reasoning_effort": None}, {"reasoning_effort": None}),
        ({"reasoning_effort": "none"}, {"reasoning_effort": "none"}),
        ({"reasoning_effort": "minimal"}, {"reasoning_effort": "minimal"}),
        ({"reasoning_effort": "low"}, {"reasoning_effort": "low"}),
        ({"reasoning_effort": "medium"}, {"reasoning_effort": "medium"}),
        ({"reasoning_effort": "high"}, {"reasoning_effort": "high"}),
        ({"reasoning_effort": "xhigh"}, {"reasoning_effort": "xhigh"}),
        ({"reasoning_summary": None}, {"reasoning_summary": None}),
        ({"reasoning_summary": "none"}, {"reasoning_summary": None}),
        ({"reasoning_summary": "auto"}, {"reasoning_summary": "auto"}),
        ({"reasoning_summary": "concise"}, {"reasoning_summary": "concise"}),
        ({"reasoning_summary": "detailed"}, {"reasoning_summary": "detailed"}),
        ({"service_tier": None}, {"service_tier": "default"}),
        ({"service_tier": "fast"}, {"service_tier": "fast"}),
        ({"service_tier": "flex"}, {"service_tier": "flex"}),
        ({"approval_policy": "untrusted"}, {"approval_policy": "untrusted"}),
        ({"approval_policy": "on-failure"}, {"approval_policy": "on-failure"}),
        ({"approval_policy": "on-request"}, {"approval_policy": "on-request"}),
        ({"approval_policy": "never"}, {"approval_policy": "never"}),
        ({"approvals_reviewer": "user"}, {"approvals_reviewer": "user"}),
        ({"approvals_reviewer": "guardian_subagent"}, {"approvals_reviewer": "guardian_subagent"}),
        ({"collaboration_mode": "plan"}, {"collaboration_mode": "plan"}),
        ({"collaboration_mode": "default"}, {"collaboration_mode": "default"}),
        ({"collaboration_mode": "pair_programming"}, {"collaboration_mode": "default"}),
        ({"collaboration_mode": "execute"}, {"collaboration_mode": "default"}),
        ({"personality": None}, {"personality": None}),
        ({"personality": "none"}, {"personality": None}),
        ({"personality": "friendly"}, {"personality": "friendly"}),
        ({"personality": "pragmatic"}, {"personality": "pragmatic"}),
        ({"submission_type": "default"}, {"submission_type": "default"}),
        ({"submission_type": "queued"}, {"submission_type": "queued"}),
        ({"sandbox_network_access": False}, {"sandbox_network_access": False}),
        ({"is_first_turn": False}, {"is_first_turn": False}),
        ({"ephemeral": True}, {"ephemeral": True}),
        (
            {"model": "o3", "model_provider": "azure"},
            {"model": "o3", "model_provider": "azure"},
        ),
    ],
)
def test_resolved_config_mapping(config: dict[str, Any], expected: dict[str, Any]) -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert run(reducer, *full_turn(**config)) == [turn_event(**expected)]


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ({"status": "completed"}, {"status": "completed"}),
        ({"status": "interrupted"}, {"status": "interrupted"}),
        ({"status": "in_progress"}, {"status": None}),
        (
            {"status": "failed", "error": TurnError("boom", "usageLimitExceeded")},
            {"status": "failed", "turn_error": "usageLimitExceeded"},
        ),
        (
            {
                "status": "failed",
                "error": TurnError(
                    "bad gateway", {"httpConnectionFailed": {"httpStatusCode": 502}}
                ),
            },
            {"status": "failed", "turn_error": {"httpConnectionFailed": {"httpStatusCode": 502}}},
        ),
        ({"status": "failed", "error": TurnError("stream")}, {"status": "failed"}),
        ({"completed_at": -1}, {"completed_at": 0}),
        ({"completed_at": None}, {"completed_at": 0}),
        ({"duration_ms": -3}, {"duration_ms": None}),
        ({"duration_ms": None}, {"duration_ms": None}),
    ],
)
def test_completion_mapping(completion: dict[str, Any], expected: dict[str, Any]) -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts = full_turn()
    assert run(reducer, *facts[:-1], turn_completed(**completion)) == [turn_event(**expected)]


@pytest.mark.parametrize("started_at", [-1, None])
def test_started_at_negative_or_missing_is_null(started_at: int | None) -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts: list[Fact] = [fact for fact in full_turn() if fact != turn_started()]
    assert len(facts) == 5
    assert run(reducer, turn_started(started_at=started_at), *facts) == [
        turn_event(started_at=None)
    ]


def test_no_turn_started_means_null_started_at() -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts: list[Fact] = [fact for fact in full_turn() if fact != turn_started()]
    assert run(reducer, *facts) == [turn_event(started_at=None)]


def test_all_negative_timestamps_at_once() -> None:
    reducer = make_reducer()
    run(reducer, initialize(), thread_response(created_at=-100))
    events = run(
        reducer,
        turn_start_request(),
        turn_start_response(),
        resolved_config(),
        turn_started(started_at=-2),
        turn_completed(completed_at=-3, duration_ms=-4),
    )
    assert events == [
        turn_event(
            started_at=None,
            completed_at=0,
            duration_ms=None,
            input_tokens=None,
            cached_input_tokens=None,
            output_tokens=None,
            reasoning_output_tokens=None,
            total_tokens=None,
        )
    ]


# --- turns: joining --------------------------------------------------------------------------


def test_token_usage_after_completion_is_not_included_and_leaves_dead_state() -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts: list[Fact] = [fact for fact in full_turn() if fact != token_usage()]
    assert run(reducer, *facts) == [
        turn_event(
            input_tokens=None,
            cached_input_tokens=None,
            output_tokens=None,
            reasoning_output_tokens=None,
            total_tokens=None,
        )
    ]
    assert run(reducer, token_usage()) == []
    assert reducer.state_sizes()["turns"] == 1


def test_token_usage_is_replaced_by_a_later_report() -> None:
    reducer = make_reducer()
    preamble(reducer)
    first = TurnTokenUsage("turn-2", "thread-2", TokenUsage(1, 1, 1, 1, 1))
    facts = full_turn()
    assert run(reducer, first, *facts) == [turn_event()]


def test_facts_in_any_order_emit_once_everything_is_known() -> None:
    reducer = make_reducer()
    preamble(reducer)
    # Completion, config, usage and turn/started before the turn-start response.
    assert run(reducer, turn_start_request(), turn_completed(), resolved_config()) == []
    assert run(reducer, turn_started(), token_usage()) == []
    assert run(reducer, turn_start_response()) == [turn_event()]


def test_image_count_from_the_request_counts_image_urls_and_local_images() -> None:
    reducer = make_reducer()
    preamble(reducer)
    items: list[UserInput] = [
        TextInput("look"),
        ImageInput("data:image/png;base64,AAAA"),
        LocalImageInput("/tmp/a.png"),
        OtherInput("skill"),
        ImageInput("https://example.com/b.png"),
    ]
    # Without a resolved config the request's count stands until the config arrives...
    assert run(reducer, turn_start_request(items=items), turn_start_response()) == []
    assert reducer.state_sizes()["turns"] == 1
    # ...and the config's count wins (last writer).
    assert run(reducer, resolved_config(num_input_images=7), turn_completed()) == [
        turn_event(
            num_input_images=7,
            started_at=None,
            input_tokens=None,
            cached_input_tokens=None,
            output_tokens=None,
            reasoning_output_tokens=None,
            total_tokens=None,
        )
    ]


def test_turn_start_response_after_the_config_sets_the_request_image_count() -> None:
    reducer = make_reducer()
    preamble(reducer)
    items: list[UserInput] = [
        LocalImageInput("/tmp/a.png"),
        LocalImageInput("/tmp/b.png"),
        ImageInput("u"),
    ]
    facts: list[Fact] = [
        turn_start_request(items=items),
        resolved_config(num_input_images=1),
        turn_start_response(),
        turn_started(),
        token_usage(),
        turn_completed(),
    ]
    assert run(reducer, *facts) == [turn_event(num_input_images=3)]


def test_turn_without_a_tracked_turn_start_response_never_emits() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert run(reducer, resolved_config(), turn_started(), token_usage(), turn_completed()) == []
    assert reducer.state_sizes()["turns"] == 1


def test_turn_start_response_without_request_is_ignored() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert run(reducer, turn_start_response(), resolved_config(), turn_completed()) == []


@pytest.mark.parametrize("missing", ["config", "completion"])
def test_turn_waits_for_config_and_completion(missing: str) -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts: list[Fact] = [turn_start_request(), turn_start_response()]
    facts.append(turn_completed() if missing == "config" else resolved_config())
    assert run(reducer, *facts) == []
    assert reducer.state_sizes()["turns"] == 1


def test_turn_on_unknown_connection_never_emits() -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts: list[Fact] = [
        turn_start_request(connection_id=5),
        turn_start_response(connection_id=5),
        resolved_config(),
        turn_completed(),
    ]
    assert run(reducer, *facts) == []


def test_turn_on_unknown_thread_never_emits() -> None:
    reducer = make_reducer()
    reducer.ingest(initialize())
    assert run(reducer, *full_turn()) == []


def test_turn_client_comes_from_the_connection_of_the_turn_start_response() -> None:
    reducer = make_reducer()
    preamble(reducer)
    reducer.ingest(initialize_other(8))
    facts: list[Fact] = [
        turn_start_request(connection_id=8),
        turn_start_response(connection_id=8),
        resolved_config(),
        turn_started(),
        token_usage(),
        turn_completed(),
    ]
    assert run(reducer, *facts) == [
        turn_event(app_server_client=OTHER_CLIENT_JSON, runtime=PROCESS_RUNTIME_JSON)
    ]


def test_late_response_after_an_error_response_finds_nothing() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert run(reducer, turn_start_request(request_id=3), error_response(request_id=3)) == []
    assert reducer.state_sizes()["pending_requests"] == 0
    facts: list[Fact] = [turn_start_response(request_id=3), resolved_config(), turn_completed()]
    assert run(reducer, *facts) == []


def test_error_response_without_a_pending_request_is_ignored() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert run(reducer, error_response(request_id=42, reason="no_active_turn")) == []


def test_request_ids_are_per_connection() -> None:
    reducer = make_reducer()
    preamble(reducer)
    reducer.ingest(initialize_other(8))
    # The same request id on connection 8 does not answer connection 7's request.
    assert run(reducer, turn_start_request(7, 3), turn_start_response(8, 3)) == []
    facts: list[Fact] = [
        turn_start_response(7, 3),
        resolved_config(),
        turn_started(),
        token_usage(),
    ]
    assert run(reducer, *facts, turn_completed()) == [turn_event()]


def test_string_request_ids() -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts: list[Fact] = [
        turn_start_request(request_id="req-1"),
        turn_start_response(request_id="req-1"),
        resolved_config(),
        turn_started(),
        token_usage(),
        turn_completed(),
    ]
    assert run(reducer, *facts) == [turn_event()]


def test_turn_start_response_answering_a_steer_request_is_ignored() -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts: list[Fact] = [
        steer_request(request_id=3),
        turn_start_response(request_id=3),
        resolved_config(),
    ]
    assert run(reducer, *facts, turn_completed()) == []
    # The pending steer was consumed: its own response finds nothing now.
    assert run(reducer, steer_response(request_id=3)) == []


def test_a_second_completion_after_emission_does_not_emit_again() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert len(run(reducer, *full_turn())) == 1
    assert run(reducer, turn_completed(), turn_started()) == []


# --- steers (3.5, 4.4) ---------------------------------------------------------------------


def steer_event(**overrides: Any) -> dict[str, Any]:
    params = {
        "thread_id": "thread-2",
        "expected_turn_id": "turn-2",
        "accepted_turn_id": "turn-2",
        "app_server_client": CLIENT_JSON,
        "runtime": RUNTIME_JSON,
        "thread_source": "user",
        "subagent_source": None,
        "parent_thread_id": None,
        "num_input_images": 0,
        "result": "accepted",
        "rejection_reason": None,
        "created_at": 1_700_000_000,
    }
    assert not set(overrides) - set(params)
    return {"event_type": "codex_turn_steer_event", "event_params": {**params, **overrides}}


def test_accepted_steer_is_reported_and_counted_on_the_turn() -> None:
    clock = Clock()
    reducer = make_reducer(clock=clock)
    preamble(reducer)
    run(reducer, turn_start_request(), turn_start_response())
    clock.now = START_TIME + 10.7
    items: list[UserInput] = [
        TextInput("also"),
        ImageInput("https://example.com/c.png"),
        LocalImageInput("/x"),
    ]
    assert run(reducer, steer_request(items=items)) == []
    clock.now = START_TIME + 30
    assert run(reducer, steer_response()) == [
        {
            "event_type": "codex_turn_steer_event",
            "event_params": {
                "thread_id": "thread-2",
                "expected_turn_id": "turn-2",
                "accepted_turn_id": "turn-2",
                "app_server_client": {
                    "product_client_id": "codex-tui",
                    "client_name": "codex-tui",
                    "client_version": "1.0.0",
                    "rpc_transport": "stdio",
                    "experimental_api_enabled": None,
                },
                "runtime": {
                    "codex_rs_version": "0.1.0",
                    "runtime_os": "macos",
                    "runtime_os_version": "15.3.1",
                    "runtime_arch": "aarch64",
                },
                "thread_source": "user",
                "subagent_source": None,
                "parent_thread_id": None,
                "num_input_images": 2,
                "result": "accepted",
                "rejection_reason": None,
                "created_at": 1_700_000_010,
            },
        }
    ]
    run(reducer, steer_request(request_id=5), steer_response(request_id=5))
    facts: list[Fact] = [resolved_config(), turn_started(), token_usage(), turn_completed()]
    assert run(reducer, *facts) == [turn_event(steer_count=2)]


def test_steer_accepted_for_another_turn_id_reports_that_id() -> None:
    reducer = make_reducer()
    preamble(reducer)
    events = run(reducer, steer_request(), steer_response(turn_id="turn-9"))
    assert events == [steer_event(accepted_turn_id="turn-9")]


def test_steer_for_a_turn_without_state_is_not_counted() -> None:
    reducer = make_reducer()
    preamble(reducer)
    # Accepted before anything about turn-2 is known: reported, but counted nowhere.
    assert run(reducer, steer_request(), steer_response()) == [steer_event()]
    assert reducer.state_sizes()["turns"] == 0
    assert run(reducer, *full_turn()) == [turn_event(steer_count=0)]


@pytest.mark.parametrize(
    "reason",
    [
        "no_active_turn",
        "expected_turn_mismatch",
        "non_steerable_review",
        "non_steerable_compact",
        "empty_input",
        "input_too_large",
        None,
    ],
)
def test_rejected_steer(reason: str | None) -> None:
    reducer = make_reducer()
    preamble(reducer)
    run(reducer, turn_start_request(), turn_start_response())
    assert run(reducer, steer_request(), error_response(reason=reason)) == [
        {
            "event_type": "codex_turn_steer_event",
            "event_params": {
                "thread_id": "thread-2",
                "expected_turn_id": "turn-2",
                "accepted_turn_id": None,
                "app_server_client": CLIENT_JSON,
                "runtime": RUNTIME_JSON,
                "thread_source": "user",
                "subagent_source": None,
                "parent_thread_id": None,
                "num_input_images": 0,
                "result": "rejected",
                "rejection_reason": reason,
                "created_at": 1_700_000_000,
            },
        }
    ]
    # A rejected steer is not counted.
    facts: list[Fact] = [resolved_config(), turn_started(), token_usage(), turn_completed()]
    assert run(reducer, *facts) == [turn_event()]


@pytest.mark.parametrize("accepted", [True, False])
def test_steer_needs_a_known_connection(accepted: bool) -> None:
    reducer = make_reducer()
    preamble(reducer)
    answer = steer_response(5) if accepted else error_response(5, reason="no_active_turn")
    assert run(reducer, steer_request(5), answer) == []


@pytest.mark.parametrize("accepted", [True, False])
def test_steer_needs_a_known_thread(accepted: bool) -> None:
    reducer = make_reducer()
    preamble(reducer)
    answer = steer_response() if accepted else error_response(reason="no_active_turn")
    assert run(reducer, steer_request(thread_id="thread-unknown"), answer) == []


def test_steer_client_comes_from_the_connection_that_sent_the_steer() -> None:
    reducer = make_reducer()
    preamble(reducer)  # thread-2 lives on connection 7
    reducer.ingest(initialize_other(8))
    assert run(reducer, steer_request(8), steer_response(8)) == [
        steer_event(app_server_client=OTHER_CLIENT_JSON, runtime=PROCESS_RUNTIME_JSON)
    ]


def test_steer_reports_the_thread_lineage() -> None:
    reducer = make_reducer()
    run(reducer, initialize(), thread_response(source=SubAgent(ThreadSpawn("thread-1", 1))))
    assert run(reducer, steer_request(), error_response(reason="non_steerable_review")) == [
        steer_event(
            accepted_turn_id=None,
            result="rejected",
            rejection_reason="non_steerable_review",
            thread_source="subagent",
            subagent_source="thread_spawn",
            parent_thread_id="thread-1",
        )
    ]


def test_steer_response_without_pending_steer_is_ignored() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert run(reducer, steer_response()) == []
    # A pending turn start under that id is consumed and not treated as a steer.
    assert run(reducer, turn_start_request(request_id=4), steer_response()) == []
    assert reducer.state_sizes()["pending_requests"] == 0


def test_late_steer_response_after_its_error_response_finds_nothing() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert len(run(reducer, steer_request(), error_response(reason="empty_input"))) == 1
    assert run(reducer, steer_response()) == []


# --- compaction ------------------------------------------------------------------------------


def compaction(thread_id: str = "thread-2", **overrides: Any) -> Compaction:
    values: dict[str, Any] = {
        "turn_id": "turn-2",
        "trigger": "auto",
        "reason": "context_limit",
        "implementation": "responses_compact",
        "phase": "mid_turn",
        "strategy": "memento",
        "status": "completed",
        "error": None,
        "active_context_tokens_before": 180_000,
        "active_context_tokens_after": 20_000,
        "started_at": 1_700_000_100,
        "completed_at": 1_700_000_104,
        "duration_ms": 4_200,
    }
    values.update(overrides)
    return Compaction(thread_id=thread_id, **values)


def test_compaction_on_a_known_thread() -> None:
    reducer = make_reducer()
    run(reducer, initialize(), thread_response(source=SubAgent("compact")))
    assert run(reducer, compaction()) == [
        {
            "event_type": "codex_compaction_event",
            "event_params": {
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "app_server_client": CLIENT_JSON,
                "runtime": RUNTIME_JSON,
                "thread_source": "subagent",
                "subagent_source": "compact",
                "parent_thread_id": None,
                "trigger": "auto",
                "reason": "context_limit",
                "implementation": "responses_compact",
                "phase": "mid_turn",
                "strategy": "memento",
                "status": "completed",
                "error": None,
                "active_context_tokens_before": 180_000,
                "active_context_tokens_after": 20_000,
                "started_at": 1_700_000_100,
                "completed_at": 1_700_000_104,
                "duration_ms": 4_200,
            },
        }
    ]


def test_failed_manual_compaction() -> None:
    reducer = make_reducer()
    preamble(reducer)
    fact = compaction(
        trigger="manual",
        reason="user_requested",
        implementation="responses",
        phase="standalone_turn",
        strategy="prefix_compaction",
        status="failed",
        error="stream closed",
        duration_ms=None,
    )
    assert run(reducer, fact) == [
        {
            "event_type": "codex_compaction_event",
            "event_params": {
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "app_server_client": CLIENT_JSON,
                "runtime": RUNTIME_JSON,
                "thread_source": "user",
                "subagent_source": None,
                "parent_thread_id": None,
                "trigger": "manual",
                "reason": "user_requested",
                "implementation": "responses",
                "phase": "standalone_turn",
                "strategy": "prefix_compaction",
                "status": "failed",
                "error": "stream closed",
                "active_context_tokens_before": 180_000,
                "active_context_tokens_after": 20_000,
                "started_at": 1_700_000_100,
                "completed_at": 1_700_000_104,
                "duration_ms": None,
            },
        }
    ]


def test_compaction_without_the_thread_emits_nothing() -> None:
    reducer = make_reducer()
    preamble(reducer)
    assert run(reducer, compaction(thread_id="thread-unknown")) == []


def test_compaction_needs_the_threads_connection() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_connections=1))
    preamble(reducer)
    reducer.ingest(initialize_other(8))  # evicts connection 7: nothing needs it
    assert reducer.evictions["connections"] == 1
    assert run(reducer, compaction()) == []


# --- skills ----------------------------------------------------------------------------------


def skill_invoked(*invocations: SkillInvocation) -> SkillInvoked:
    return SkillInvoked(tracking=TRACKING, invocations=invocations)


def test_skill_in_a_repository() -> None:
    lookup = FakeRepoLookup(
        {
            "/repo/root/.codex/skills/doc/SKILL.md": RepoInfo(
                root="/repo/root", origin_url="https://example.com/repo.git"
            )
        }
    )
    reducer = make_reducer(repo_lookup=lookup, originator="codex_vscode")
    invocation = SkillInvocation("doc", "repo", "/repo/root/.codex/skills/doc/SKILL.md", "explicit")
    assert run(reducer, skill_invoked(invocation)) == [
        {
            "event_type": "skill_invocation",
            # sha1("repo_https://example.com/repo.git_.codex/skills/doc/SKILL.md_doc")
            "skill_id": "e5e54e96f1513b6a4a97096fc574ac2c22d5dcb2",
            "skill_name": "doc",
            "event_params": {
                "product_client_id": "codex_vscode",
                "skill_scope": "repo",
                "repo_url": "https://example.com/repo.git",
                "thread_id": "thread-2",
                "invoke_type": "explicit",
                "model_slug": "gpt-5",
            },
        }
    ]
    assert lookup.calls == ["/repo/root/.codex/skills/doc/SKILL.md"]


def test_skills_without_a_repository_one_event_each() -> None:
    reducer = make_reducer()
    invocations = [
        SkillInvocation("doc", "user", "/Users/abc/.codex/skills/doc/SKILL.md", "implicit"),
        SkillInvocation("lint", "system", "/home/user/.codex/skills/lint/SKILL.md", "explicit"),
    ]
    assert run(reducer, skill_invoked(*invocations)) == [
        {
            "event_type": "skill_invocation",
            "skill_id": "037cfe53fd881d2ea36aec8302ccde76376a0f7a",
            "skill_name": "doc",
            "event_params": {
                "product_client_id": "codex_cli_rs",
                "skill_scope": "user",
                "repo_url": None,
                "thread_id": "thread-2",
                "invoke_type": "implicit",
                "model_slug": "gpt-5",
            },
        },
        {
            "event_type": "skill_invocation",
            # sha1("personal_/home/user/.codex/skills/lint/SKILL.md_lint")
            "skill_id": "35816b51a2d1f6b85aab8609406ca58213654eb2",
            "skill_name": "lint",
            "event_params": {
                "product_client_id": "codex_cli_rs",
                "skill_scope": "system",
                "repo_url": None,
                "thread_id": "thread-2",
                "invoke_type": "explicit",
                "model_slug": "gpt-5",
            },
        },
    ]


def test_skill_in_a_repository_without_origin_uses_the_absolute_path() -> None:
    path = "/repo/root/.codex/skills/doc/SKILL.md"
    lookup = FakeRepoLookup({path: RepoInfo(root="/repo/root", origin_url=None)})
    reducer = make_reducer(repo_lookup=lookup)
    assert run(reducer, skill_invoked(SkillInvocation("doc", "admin", path, "explicit"))) == [
        {
            "event_type": "skill_invocation",
            # sha1("personal_/repo/root/.codex/skills/doc/SKILL.md_doc")
            "skill_id": "6594f2785dac546eadf089ea7f12d910da0c61e1",
            "skill_name": "doc",
            "event_params": {
                "product_client_id": "codex_cli_rs",
                "skill_scope": "admin",
                "repo_url": None,
                "thread_id": "thread-2",
                "invoke_type": "explicit",
                "model_slug": "gpt-5",
            },
        }
    ]


def test_skill_repo_url_from_a_custom_lookup_is_stripped_of_credentials() -> None:
    path = "/repo/root/.codex/skills/doc/SKILL.md"
    url = "https://bot:s3cret@example.com/repo.git"
    lookup = FakeRepoLookup({path: RepoInfo(root="/repo/root", origin_url=url)})
    [event] = run(
        make_reducer(repo_lookup=lookup),
        skill_invoked(SkillInvocation("doc", "repo", path, "explicit")),
    )
    assert event == {
        "event_type": "skill_invocation",
        "skill_id": "e5e54e96f1513b6a4a97096fc574ac2c22d5dcb2",
        "skill_name": "doc",
        "event_params": {
            "product_client_id": "codex_cli_rs",
            "skill_scope": "repo",
            "repo_url": "https://example.com/repo.git",
            "thread_id": "thread-2",
            "invoke_type": "explicit",
            "model_slug": "gpt-5",
        },
    }


def test_skill_lookup_that_raises_means_no_repository() -> None:
    def broken(skill_path: str) -> RepoInfo | None:
        raise RuntimeError("no git here")

    reducer = AnalyticsReducer(runtime=PROCESS_RUNTIME, clock=Clock(), repo_lookup=broken)
    invocation = SkillInvocation("doc", "user", "/Users/abc/.codex/skills/doc/SKILL.md", "explicit")
    [event] = run(reducer, skill_invoked(invocation))
    assert event["skill_id"] == "037cfe53fd881d2ea36aec8302ccde76376a0f7a"
    assert event["event_params"]["repo_url"] is None


def test_skill_in_a_real_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    skill = repo / ".codex" / "skills" / "doc" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("# doc\n")
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text(
        "[core]\n\tbare = false\n"
        '[remote "origin"]\n'
        "\turl = https://alice:ghp_token123@github.com/acme/project.git\n"
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    )
    reducer = make_reducer(repo_lookup=GitRepoLookup())
    [event] = run(reducer, skill_invoked(SkillInvocation("doc", "repo", str(skill), "explicit")))
    raw_id = "repo_https://github.com/acme/project.git_.codex/skills/doc/SKILL.md_doc"
    assert event == {
        "event_type": "skill_invocation",
        "skill_id": hashlib.sha1(raw_id.encode()).hexdigest(),
        "skill_name": "doc",
        "event_params": {
            "product_client_id": "codex_cli_rs",
            "skill_scope": "repo",
            "repo_url": "https://github.com/acme/project.git",
            "thread_id": "thread-2",
            "invoke_type": "explicit",
            "model_slug": "gpt-5",
        },
    }
    assert "ghp_token123" not in repr(event)


def test_skill_in_a_repository_made_by_git(tmp_path: Path) -> None:
    git = subprocess.run(["git", "--version"], capture_output=True, check=False)
    if git.returncode != 0:  # pragma: no cover - git is on every CI image we use
        pytest.skip("git is not installed")
    repo = tmp_path / "made-by-git"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "remote", "add", "origin", "https://u:p@git.example/r.git"],
        check=True,
    )
    skill = repo / "skills" / "x" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("x")
    [event] = run(
        make_reducer(repo_lookup=GitRepoLookup()),
        skill_invoked(SkillInvocation("x", "repo", str(skill), "implicit")),
    )
    raw_id = "repo_https://git.example/r.git_skills/x/SKILL.md_x"
    assert event == {
        "event_type": "skill_invocation",
        "skill_id": hashlib.sha1(raw_id.encode()).hexdigest(),
        "skill_name": "x",
        "event_params": {
            "product_client_id": "codex_cli_rs",
            "skill_scope": "repo",
            "repo_url": "https://git.example/r.git",
            "thread_id": "thread-2",
            "invoke_type": "implicit",
            "model_slug": "gpt-5",
        },
    }


def test_empty_skill_list_emits_nothing() -> None:
    assert run(make_reducer(), skill_invoked()) == []


# --- apps ------------------------------------------------------------------------------------


def test_each_app_mention_is_one_event() -> None:
    reducer = make_reducer(originator="codex_exec")
    mentions = [
        AppInvocation(
            connector_id="connector_github", app_name="GitHub", invocation_type="explicit"
        ),
        AppInvocation(connector_id=None, app_name=None, invocation_type=None),
    ]
    assert run(reducer, AppMentioned(tracking=TRACKING, mentions=tuple(mentions))) == [
        {
            "event_type": "codex_app_mentioned",
            "event_params": {
                "connector_id": "connector_github",
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "app_name": "GitHub",
                "product_client_id": "codex_exec",
                "invoke_type": "explicit",
                "model_slug": "gpt-5",
            },
        },
        {
            "event_type": "codex_app_mentioned",
            "event_params": {
                "connector_id": None,
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "app_name": None,
                "product_client_id": "codex_exec",
                "invoke_type": None,
                "model_slug": "gpt-5",
            },
        },
    ]


def test_empty_app_mentions_emit_nothing() -> None:
    assert run(make_reducer(), AppMentioned(tracking=TRACKING, mentions=())) == []


def test_app_used() -> None:
    app = AppInvocation(
        connector_id="connector_drive", app_name="Drive", invocation_type="implicit"
    )
    assert run(make_reducer(), AppUsed(tracking=TRACKING, app=app)) == [
        {
            "event_type": "codex_app_used",
            "event_params": {
                "connector_id": "connector_drive",
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "app_name": "Drive",
                "product_client_id": "codex_cli_rs",
                "invoke_type": "implicit",
                "model_slug": "gpt-5",
            },
        }
    ]


def test_app_used_twice_is_reported_twice() -> None:
    # Deduplication is the SDK's job (events.md 5), not the reducer's.
    app = AppInvocation(connector_id="c", app_name="C", invocation_type="explicit")
    fact = AppUsed(tracking=TRACKING, app=app)
    assert len(run(make_reducer(), fact, fact)) == 2


# --- plugins ---------------------------------------------------------------------------------

PLUGIN = PluginMetadata(
    plugin_name="figma",
    marketplace_name="openai-curated",
    capability_summary=PluginCapabilitySummary(
        has_skills=True,
        mcp_server_names=("figma-mcp", "figma-dev"),
        app_connector_ids=("connector_figma",),
    ),
)
BARE_PLUGIN = PluginMetadata(plugin_name="notes", marketplace_name="local")


def test_plugin_used_with_capability_summary() -> None:
    assert run(make_reducer(), PluginUsed(tracking=TRACKING, plugin=PLUGIN)) == [
        {
            "event_type": "codex_plugin_used",
            "event_params": {
                "plugin_id": "figma@openai-curated",
                "plugin_name": "figma",
                "marketplace_name": "openai-curated",
                "has_skills": True,
                "mcp_server_count": 2,
                "connector_ids": ["connector_figma"],
                "product_client_id": "codex_cli_rs",
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "model_slug": "gpt-5",
            },
        }
    ]


def test_plugin_used_without_capability_summary() -> None:
    assert run(make_reducer(), PluginUsed(tracking=TRACKING, plugin=BARE_PLUGIN)) == [
        {
            "event_type": "codex_plugin_used",
            "event_params": {
                "plugin_id": "notes@local",
                "plugin_name": "notes",
                "marketplace_name": "local",
                "has_skills": None,
                "mcp_server_count": None,
                "connector_ids": None,
                "product_client_id": "codex_cli_rs",
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "model_slug": "gpt-5",
            },
        }
    ]


@pytest.mark.parametrize("state", ["installed", "uninstalled", "enabled", "disabled"])
def test_plugin_state_changes(state: Any) -> None:
    reducer = make_reducer(originator="codex_vscode")
    empty = PluginMetadata(
        plugin_name="empty",
        marketplace_name="m",
        capability_summary=PluginCapabilitySummary(
            has_skills=False, mcp_server_names=(), app_connector_ids=()
        ),
    )
    facts: list[Fact] = [
        PluginStateChanged(plugin=PLUGIN, state=state),
        PluginStateChanged(plugin=BARE_PLUGIN, state=state),
        PluginStateChanged(plugin=empty, state=state),
    ]
    assert run(reducer, *facts) == [
        {
            "event_type": f"codex_plugin_{state}",
            "event_params": {
                "plugin_id": "figma@openai-curated",
                "plugin_name": "figma",
                "marketplace_name": "openai-curated",
                "has_skills": True,
                "mcp_server_count": 2,
                "connector_ids": ["connector_figma"],
                "product_client_id": "codex_vscode",
            },
        },
        {
            "event_type": f"codex_plugin_{state}",
            "event_params": {
                "plugin_id": "notes@local",
                "plugin_name": "notes",
                "marketplace_name": "local",
                "has_skills": None,
                "mcp_server_count": None,
                "connector_ids": None,
                "product_client_id": "codex_vscode",
            },
        },
        {
            "event_type": f"codex_plugin_{state}",
            "event_params": {
                "plugin_id": "empty@m",
                "plugin_name": "empty",
                "marketplace_name": "m",
                "has_skills": False,
                "mcp_server_count": 0,
                "connector_ids": [],
                "product_client_id": "codex_vscode",
            },
        },
    ]


# --- hooks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reported"),
    [
        ("running", "failed"),
        ("completed", "completed"),
        ("blocked", "blocked"),
        ("failed", "failed"),
        ("stopped", "stopped"),
    ],
)
def test_hook_run(status: Any, reported: str) -> None:
    fact = HookRun(tracking=TRACKING, hook_name="PreToolUse", hook_source="project", status=status)
    assert run(make_reducer(), fact) == [
        {
            "event_type": "codex_hook_run",
            "event_params": {
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "model_slug": "gpt-5",
                "hook_name": "PreToolUse",
                "hook_source": "project",
                "status": reported,
            },
        }
    ]


@pytest.mark.parametrize(
    ("hook_name", "hook_source"),
    [
        ("PermissionRequest", "system"),
        ("PostToolUse", "user"),
        ("SessionStart", "mdm"),
        ("UserPromptSubmit", "session_flags"),
        ("Stop", "legacy_managed_config_file"),
        ("Stop", "legacy_managed_config_mdm"),
        ("PreToolUse", "unknown"),
    ],
)
def test_hook_names_and_sources_pass_through(hook_name: Any, hook_source: Any) -> None:
    fact = HookRun(
        tracking=TRACKING, hook_name=hook_name, hook_source=hook_source, status="blocked"
    )
    assert run(make_reducer(), fact) == [
        {
            "event_type": "codex_hook_run",
            "event_params": {
                "thread_id": "thread-2",
                "turn_id": "turn-2",
                "model_slug": "gpt-5",
                "hook_name": hook_name,
                "hook_source": hook_source,
                "status": "blocked",
            },
        }
    ]


# --- robustness --------------------------------------------------------------------------------


def test_a_value_that_is_not_a_fact_yields_nothing() -> None:
    reducer = make_reducer()
    assert reducer.ingest("not a fact") == []  # type: ignore[arg-type]


def test_default_runtime_is_the_current_process_runtime() -> None:
    reducer = AnalyticsReducer(clock=Clock(), repo_lookup=FakeRepoLookup())
    [event] = reducer.ingest(initialize(runtime=None)) + reducer.ingest(thread_response())
    assert event.runtime is current_runtime(codex_telemetry.__version__)  # type: ignore[attr-defined]


# --- bounded state -----------------------------------------------------------------------------


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_turns"):
        ReducerLimits(max_turns=0)
    with pytest.raises(ValueError, match="idle_seconds"):
        ReducerLimits(idle_seconds=0)
    with pytest.raises(ValueError, match="max_threads"):
        ReducerLimits(max_threads=True)


def test_evictions_start_at_zero_for_every_kind() -> None:
    reducer = make_reducer()
    assert dict(reducer.evictions) == {
        "connections": 0,
        "threads": 0,
        "pending_requests": 0,
        "turns": 0,
    }
    assert reducer.state_sizes() == {
        "connections": 0,
        "threads": 0,
        "pending_requests": 0,
        "turns": 0,
    }


def test_idle_state_is_evicted() -> None:
    clock = Clock()
    reducer = make_reducer(clock=clock, limits=ReducerLimits(idle_seconds=100))
    preamble(reducer)
    run(reducer, turn_start_request(), steer_request(), resolved_config(turn_id="turn-x"))
    assert reducer.state_sizes() == {
        "connections": 1,
        "threads": 1,
        "pending_requests": 2,
        "turns": 1,
    }
    clock.now += 99
    reducer.ingest(token_usage("turn-y"))
    assert reducer.state_sizes()["pending_requests"] == 2
    clock.now += 101
    reducer.ingest(AppUsed(tracking=TRACKING, app=AppInvocation(None, None, None)))
    # Pending requests and turn-x were idle; then nothing needed the thread and connection.
    # turn-y was touched 101 s ago too; it goes as well.
    assert reducer.state_sizes() == {
        "connections": 0,
        "threads": 0,
        "pending_requests": 0,
        "turns": 0,
    }
    assert dict(reducer.evictions) == {
        "connections": 1,
        "threads": 1,
        "pending_requests": 2,
        "turns": 2,
    }


def test_idle_connection_and_thread_needed_by_a_recent_turn_are_kept() -> None:
    clock = Clock()
    reducer = make_reducer(clock=clock, limits=ReducerLimits(idle_seconds=100))
    preamble(reducer)
    run(reducer, turn_start_request(), turn_start_response())
    clock.now += 60
    reducer.ingest(resolved_config())  # touches the turn (and its thread)
    clock.now += 60
    reducer.ingest(turn_started())  # 120 s after the connection was last touched
    clock.now += 30
    # The turn is 90 s idle: kept, and with it the connection it needs.
    facts: list[Fact] = [token_usage(), turn_completed()]
    assert run(reducer, *facts) == [turn_event()]
    assert reducer.evictions["connections"] == 0
    assert reducer.evictions["threads"] == 0


def test_touching_keeps_state_alive() -> None:
    clock = Clock()
    reducer = make_reducer(clock=clock, limits=ReducerLimits(idle_seconds=100))
    preamble(reducer)
    for _ in range(10):
        clock.now += 60
        run(reducer, compaction())  # uses the thread and its connection
    assert reducer.state_sizes()["threads"] == 1
    assert reducer.state_sizes()["connections"] == 1
    assert sum(reducer.evictions.values()) == 0


def test_full_turns_evict_dead_end_states_first() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_turns=2))
    preamble(reducer)
    assert len(run(reducer, *full_turn())) == 1
    # A late token usage after emission: a dead-end state.
    run(reducer, token_usage())
    run(reducer, turn_start_request(request_id=10), turn_start_response(request_id=10, turn_id="a"))
    assert reducer.state_sizes()["turns"] == 2
    # Room for a third turn: the dead-end state goes, not the live turn "a".
    run(reducer, resolved_config(turn_id="b"))
    assert reducer.evictions["turns"] == 1
    facts: list[Fact] = [resolved_config(turn_id="a"), turn_completed(turn_id="a")]
    [event] = run(reducer, *facts)
    assert event["event_params"]["turn_id"] == "a"


def test_full_turns_evict_the_least_recently_touched() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_turns=2))
    preamble(reducer)
    run(reducer, resolved_config(turn_id="a"), resolved_config(turn_id="b"))
    run(reducer, turn_started(turn_id="a"))  # "a" is now the most recently touched
    run(reducer, resolved_config(turn_id="c"))
    assert reducer.evictions["turns"] == 1
    assert reducer.state_sizes()["turns"] == 2
    # "b" was evicted: its completion alone recreates a state that cannot emit.
    run(reducer, turn_start_request(request_id=11), turn_start_response(request_id=11, turn_id="b"))
    assert run(reducer, turn_completed(turn_id="b")) == []


def test_full_pending_requests_evict_the_oldest() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_pending_requests=2))
    preamble(reducer)
    run(reducer, turn_start_request(request_id=1), turn_start_request(request_id=2))
    run(reducer, turn_start_request(request_id=3))
    assert reducer.state_sizes()["pending_requests"] == 2
    assert reducer.evictions["pending_requests"] == 1
    # Request 1 is gone; request 3 still answers.
    run(reducer, turn_start_response(request_id=1, turn_id="t1"))
    assert reducer.state_sizes()["turns"] == 0
    assert run(reducer, turn_start_response(request_id=3), resolved_config(), turn_completed()) == [
        turn_event(
            started_at=None,
            input_tokens=None,
            cached_input_tokens=None,
            output_tokens=None,
            reasoning_output_tokens=None,
            total_tokens=None,
        )
    ]


def test_a_repeated_request_id_replaces_the_pending_request_without_eviction() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_pending_requests=1))
    preamble(reducer)
    run(reducer, turn_start_request(request_id=1), steer_request(request_id=1))
    assert reducer.state_sizes()["pending_requests"] == 1
    assert reducer.evictions["pending_requests"] == 0
    assert run(reducer, steer_response(request_id=1)) == [steer_event()]


def test_full_threads_keep_a_thread_that_a_turn_needs() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_threads=2))
    preamble(reducer)
    run(reducer, turn_start_request(), turn_start_response())  # turn-2 needs thread-2
    run(reducer, thread_response(thread_id="thread-3"))
    run(reducer, thread_response(thread_id="thread-4"))  # evicts thread-3, not thread-2
    assert reducer.evictions["threads"] == 1
    assert run(reducer, compaction(thread_id="thread-3")) == []
    facts: list[Fact] = [resolved_config(), turn_started(), token_usage(), turn_completed()]
    assert run(reducer, *facts) == [turn_event()]


def test_full_connections_keep_a_connection_that_a_request_needs() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_connections=2))
    preamble(reducer)
    run(reducer, turn_start_request())  # the pending request needs connection 7
    run(reducer, initialize_other(8), initialize_other(9))  # evicts 8, not 7
    assert reducer.evictions["connections"] == 1
    assert run(reducer, thread_response(8, thread_id="t8")) == []
    assert len(run(reducer, thread_response(9, thread_id="t9"))) == 1
    facts: list[Fact] = [turn_start_response(), resolved_config(), turn_started(), token_usage()]
    assert run(reducer, *facts, turn_completed()) == [turn_event()]


def test_when_everything_is_needed_the_oldest_goes_anyway() -> None:
    reducer = make_reducer(limits=ReducerLimits(max_threads=1))
    preamble(reducer)
    run(reducer, turn_start_request())  # needs thread-2
    run(reducer, thread_response(thread_id="thread-3"))
    assert reducer.state_sizes()["threads"] == 1
    assert reducer.evictions["threads"] == 1
    facts: list[Fact] = [turn_start_response(), resolved_config(), turn_completed()]
    assert run(reducer, *facts) == []


def test_evictions_is_a_read_only_view() -> None:
    reducer = make_reducer()
    with pytest.raises(TypeError):
        reducer.evictions["turns"] = 5  # type: ignore[index]
