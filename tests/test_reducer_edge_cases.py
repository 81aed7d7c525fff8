"""Edge cases of facts and the reducer that the rule-by-rule tests do not reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import ValidationError

from codex_telemetry.facts import (
    CODEX_ERROR_INFO_MAX_BYTES,
    CODEX_ERROR_INFO_MAX_DEPTH,
    HookRun,
    Request,
    TextInput,
    Thread,
    TokenUsage,
    TurnError,
    TurnStartRequest,
)
from tests.test_reducer import TRACKING, full_turn, make_reducer, preamble, run, turn_completed

# The section 6 turn event, failed with ``turn_error`` as given.
FAILED_TURN_EVENT: dict[str, Any] = {
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
        "status": "failed",
        "turn_error": {"httpConnectionFailed": {"httpStatusCode": 502, "hops": [1, 2]}},
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


def failed_turn_events(error: TurnError) -> list[dict[str, Any]]:
    reducer = make_reducer()
    preamble(reducer)
    return run(reducer, *full_turn()[:-1], turn_completed(status="failed", error=error))


# --- codex_error_info: JSON, passed through unchanged ------------------------------------


def test_error_info_held_in_other_mappings_becomes_plain_json() -> None:
    info = MappingProxyType(
        {"httpConnectionFailed": MappingProxyType({"httpStatusCode": 502, "hops": (1, 2)})}
    )
    events = failed_turn_events(TurnError("bad gateway", info))
    assert events == [FAILED_TURN_EVENT]
    assert json.loads(json.dumps(events)) == [FAILED_TURN_EVENT]


def test_error_info_is_copied_when_the_fact_is_built() -> None:
    inner: dict[str, Any] = {"httpStatusCode": 502, "hops": [1, 2]}
    info: dict[str, Any] = {"httpConnectionFailed": inner}
    error = TurnError("bad gateway", info)
    inner["httpStatusCode"] = 999
    info["later"] = True
    assert failed_turn_events(error) == [FAILED_TURN_EVENT]


@pytest.mark.parametrize(
    "info",
    [
        {"httpConnectionFailed": {"httpStatusCode": {1, 2}}},
        {"httpConnectionFailed": {3: "not a string key"}},
        {"httpConnectionFailed": b"bytes"},
        {"httpConnectionFailed": object()},
        {"httpConnectionFailed": float("nan")},
    ],
)
def test_error_info_that_is_not_json_fails_at_construction(info: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="codex_error_info"):
        TurnError("boom", info)


def nested_info(depth: int, leaf: Any = 502) -> Any:
    """``{"level": {"level": ... leaf}}``, ``depth`` objects deep."""
    value = leaf
    for _ in range(depth):
        value = {"level": value}
    return value


def test_error_info_as_deep_as_the_limit_is_accepted() -> None:
    info = nested_info(CODEX_ERROR_INFO_MAX_DEPTH)
    assert TurnError("boom", info).codex_error_info == info
    listed = nested_info(CODEX_ERROR_INFO_MAX_DEPTH - 1, leaf=[1, 2])
    assert TurnError("boom", listed).codex_error_info == listed


@pytest.mark.parametrize("depth", [CODEX_ERROR_INFO_MAX_DEPTH + 1, 1_000, 100_000])
def test_error_info_nested_deeper_than_the_limit_is_refused_at_construction(depth: int) -> None:
    # 1,000 levels raised RecursionError out of the constructor; about 600 crashed the
    # file, console and backend sinks at export.
    with pytest.raises(ValidationError) as caught:
        TurnError("boom", nested_info(depth))
    [error] = caught.value.errors(include_url=False)
    assert error["loc"] == ("codex_error_info",)
    assert error["msg"] == (
        "Value error, codex_error_info is nested deeper than the 32 levels a fact accepts"
    )


def test_error_info_in_lists_counts_each_list_as_a_level() -> None:
    with pytest.raises(ValidationError, match="deeper than the 32 levels"):
        TurnError("boom", {"list": nested_info(CODEX_ERROR_INFO_MAX_DEPTH - 1, leaf=[[1]])})


def test_error_info_as_large_as_the_limit_is_accepted() -> None:
    # {"x":"..."} is 8 bytes of JSON around the string.
    info = {"x": "é" * ((CODEX_ERROR_INFO_MAX_BYTES - 8) // 2)}
    assert TurnError("boom", info).codex_error_info == info


@pytest.mark.parametrize(
    "info",
    [
        {"x": "a" * CODEX_ERROR_INFO_MAX_BYTES},
        {"x": "é" * (CODEX_ERROR_INFO_MAX_BYTES // 2)},
        "a" * (CODEX_ERROR_INFO_MAX_BYTES + 1),
        {"many": list(range(20_000))},
    ],
    ids=["ascii", "two_byte_characters", "string", "many_items"],
)
def test_error_info_larger_than_the_limit_is_refused_at_construction(info: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        TurnError("boom", info)
    [error] = caught.value.errors(include_url=False)
    assert error["msg"] == (
        "Value error, codex_error_info is larger than the 65536 bytes of JSON a fact accepts"
    )


def test_the_limits_are_the_documented_ones() -> None:
    assert (CODEX_ERROR_INFO_MAX_DEPTH, CODEX_ERROR_INFO_MAX_BYTES) == (32, 65_536)


# --- facts name the field that is wrong, however they are built ---------------------------

NOT_AN_INT: Any = "5"
NOT_A_STATUS: Any = "done"
NOT_A_SOURCE: Any = "bogus"
NOT_AN_ID: Any = 3.0


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Thread("t", False, True, "cli"), "created_at"),
        (lambda: Thread("t", False, 1, NOT_A_SOURCE), "source"),
        (lambda: Request(7, NOT_AN_ID, TurnStartRequest("t", ())), "request_id"),
        (lambda: TurnError("boom", {"x": {1, 2}}), "codex_error_info"),
        (lambda: TokenUsage(1, 2, 3, 4, NOT_AN_INT), "total_tokens"),
        (lambda: HookRun(TRACKING, "PreToolUse", "user", NOT_A_STATUS), "status"),
    ],
)
def test_a_wrong_positional_argument_is_named(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build()
    message = str(caught.value)
    assert f"\n{field}\n" in message or f"\n{field}." in message, message


def test_keyword_arguments_and_too_many_arguments_still_report_as_before() -> None:
    with pytest.raises(ValidationError, match=r"\ncreated_at\n"):
        Thread(id="t", ephemeral=False, created_at=True, source="cli")
    with pytest.raises(ValidationError, match="unexpected_positional_argument"):
        TextInput("a", "b")  # type: ignore[call-arg]
    assert Thread("t", False, 1, "cli") == Thread(
        id="t", ephemeral=False, created_at=1, source="cli"
    )
