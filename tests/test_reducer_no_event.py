"""Why a fact made no event: the reducer's counters, what a turn waits for, the debug log."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from codex_telemetry import ReducerLimits
from codex_telemetry._explain import DebugReducer, describe_fact
from codex_telemetry._reducer import AnalyticsReducer
from codex_telemetry.facts import Compaction, Fact
from tests.test_reducer import (
    PROCESS_RUNTIME,
    Clock,
    FakeRepoLookup,
    error_response,
    initialize,
    make_reducer,
    resolved_config,
    run,
    steer_request,
    steer_response,
    thread_response,
    token_usage,
    turn_completed,
    turn_start_request,
    turn_start_response,
    turn_started,
)

NOTHING_LOST = {
    "unknown_connection": 0,
    "unknown_thread": 0,
    "no_pending_request": 0,
    "after_emission": 0,
    "turn_evicted": 0,
}
NOTHING_WAITING = {
    "turn_start_response": 0,
    "resolved_config": 0,
    "completion": 0,
    "initialize": 0,
    "thread_response": 0,
}


def lost(**counts: int) -> dict[str, int]:
    return {**NOTHING_LOST, **counts}


def waiting(**counts: int) -> dict[str, int]:
    return {**NOTHING_WAITING, **counts}


def compaction(thread_id: str = "thread-2") -> Compaction:
    return Compaction(
        thread_id=thread_id,
        turn_id="turn-2",
        trigger="auto",
        reason="context_limit",
        implementation="responses",
        phase="mid_turn",
        strategy="memento",
        status="completed",
        error=None,
        active_context_tokens_before=10,
        active_context_tokens_after=5,
        started_at=1,
        completed_at=2,
        duration_ms=1000,
    )


def test_a_complete_session_loses_nothing() -> None:
    reducer = make_reducer()
    events = run(
        reducer,
        initialize(),
        thread_response(),
        turn_start_request(),
        turn_start_response(),
        turn_started(),
        resolved_config(),
        token_usage(),
        turn_completed(),
    )
    assert [event["event_type"] for event in events] == [
        "codex_thread_initialized",
        "codex_turn_event",
    ]
    assert reducer.no_event == NOTHING_LOST
    assert reducer.turns_waiting() == NOTHING_WAITING


def test_a_thread_response_on_a_connection_never_initialized() -> None:
    reducer = make_reducer()
    assert run(reducer, thread_response(connection_id=9)) == []
    assert reducer.no_event == lost(unknown_connection=1)


def test_a_turn_without_its_resolved_config_waits_for_it() -> None:
    reducer = make_reducer()
    assert (
        run(
            reducer,
            initialize(),
            thread_response(),
            turn_start_request(),
            turn_start_response(),
            token_usage(),
            turn_completed(),
        )
        != []
    )  # the thread event only
    assert reducer.no_event == NOTHING_LOST
    assert reducer.turns_waiting() == waiting(resolved_config=1)
    assert reducer.waiting_for("turn-2") == ["resolved_config"]
    assert reducer.waiting_for("unknown-turn") == []


def test_turns_waiting_counts_each_turn_under_each_missing_fact() -> None:
    reducer = make_reducer()
    run(
        reducer,
        resolved_config(turn_id="a"),  # waits for the start response and completion
        turn_completed(turn_id="b"),  # waits for the start response and the config
        turn_started(turn_id="c"),  # waits for all three
    )
    assert reducer.turns_waiting() == waiting(
        turn_start_response=3, resolved_config=2, completion=2
    )


def test_a_turn_with_every_fact_waits_for_its_connection_and_thread() -> None:
    reducer = make_reducer()
    # The request and its response are tracked; the connection and thread never were.
    assert (
        run(
            reducer,
            turn_start_request(),
            turn_start_response(),
            resolved_config(),
            turn_completed(),
        )
        == []
    )
    # The completion, the last fact the turn needed, found no connection to emit with.
    assert reducer.no_event == lost(unknown_connection=1)
    assert reducer.turns_waiting() == waiting(initialize=1, thread_response=1)


def test_a_turn_whose_thread_is_unknown() -> None:
    reducer = make_reducer()
    run(
        reducer,
        initialize(),
        turn_start_request(),
        turn_start_response(),
        resolved_config(),
        turn_completed(),
    )
    assert reducer.no_event == lost(unknown_thread=1)
    assert reducer.turns_waiting() == waiting(thread_response=1)


def test_responses_whose_request_was_not_tracked() -> None:
    reducer = make_reducer()
    run(reducer, initialize(), thread_response())
    assert run(reducer, turn_start_response(request_id=41)) == []
    assert run(reducer, steer_response(request_id=42)) == []
    assert run(reducer, error_response(request_id=43)) == []
    assert reducer.no_event == lost(no_pending_request=3)


def test_a_rejected_turn_start_is_not_a_loss() -> None:
    reducer = make_reducer()
    run(reducer, initialize(), thread_response(), turn_start_request(request_id=3))
    assert run(reducer, error_response(request_id=3)) == []
    assert reducer.no_event == NOTHING_LOST


def test_a_steer_on_an_unknown_thread() -> None:
    reducer = make_reducer()
    run(reducer, initialize(), steer_request(thread_id="elsewhere"))
    assert run(reducer, steer_response()) == []
    assert reducer.no_event == lost(unknown_thread=1)


def test_a_steer_on_an_unknown_connection() -> None:
    reducer = make_reducer()
    run(reducer, initialize(), thread_response(), steer_request(connection_id=5))
    assert run(reducer, steer_response(connection_id=5)) == []
    assert reducer.no_event == lost(unknown_connection=1)


def test_a_compaction_on_an_unknown_thread() -> None:
    reducer = make_reducer()
    assert run(reducer, compaction("nowhere")) == []
    assert reducer.no_event == lost(unknown_thread=1)


def test_facts_about_a_turn_already_emitted_are_late() -> None:
    reducer = make_reducer()
    run(
        reducer,
        initialize(),
        thread_response(),
        turn_start_request(),
        turn_start_response(),
        resolved_config(),
        turn_completed(),
    )
    assert run(reducer, token_usage(), turn_started()) == []
    assert reducer.no_event == lost(after_emission=2)
    # A late fact's state can never emit: it is not waiting for anything.
    assert reducer.turns_waiting() == NOTHING_WAITING


def test_a_turn_evicted_while_waiting_is_counted_once() -> None:
    clock = Clock()
    reducer = AnalyticsReducer(
        runtime=PROCESS_RUNTIME,
        clock=clock,
        repo_lookup=FakeRepoLookup(),
        limits=ReducerLimits(max_turns=2),
    )
    run(
        reducer,
        resolved_config(turn_id="a"),
        turn_started(turn_id="a"),
        resolved_config(turn_id="b"),
        resolved_config(turn_id="c"),  # the table is full: "a" goes
    )
    assert reducer.no_event == lost(turn_evicted=1)
    assert reducer.turns_waiting() == waiting(turn_start_response=2, completion=2)


def test_an_evicted_late_turn_is_not_counted_twice() -> None:
    reducer = AnalyticsReducer(
        runtime=PROCESS_RUNTIME,
        clock=Clock(),
        repo_lookup=FakeRepoLookup(),
        limits=ReducerLimits(max_turns=1),
    )
    run(
        reducer,
        initialize(),
        thread_response(),
        turn_start_request(),
        turn_start_response(),
        resolved_config(),
        turn_completed(),
        token_usage(),  # late: a dead end
        resolved_config(turn_id="next"),  # evicts the dead end
    )
    assert reducer.no_event == lost(after_emission=1)


# --- describing facts, and the debug reducer ---------------------------------------------


def test_describe_fact_names_types_and_ids_only() -> None:
    assert describe_fact(initialize()) == "Initialize(connection_id=7)"
    assert describe_fact(turn_start_request()) == (
        "Request(TurnStartRequest connection_id=7 request_id=3 thread_id='thread-2')"
    )
    assert describe_fact(turn_start_response()) == (
        "Response(TurnStartResponse connection_id=7 request_id=3 turn_id='turn-2')"
    )
    assert describe_fact(turn_completed()) == (
        "Notification(TurnCompletedNotification thread_id='thread-2' turn_id='turn-2')"
    )
    assert describe_fact(resolved_config()) == (
        "TurnResolvedConfig(thread_id='thread-2' turn_id='turn-2')"
    )


def debug_reducer() -> DebugReducer:
    return DebugReducer(runtime=PROCESS_RUNTIME, clock=Clock(), repo_lookup=FakeRepoLookup())


def test_the_debug_reducer_says_what_each_fact_did(caplog: pytest.LogCaptureFixture) -> None:
    reducer = debug_reducer()
    facts: list[Any] = [
        initialize(),
        thread_response(connection_id=9),
        thread_response(),
        turn_start_request(),
        turn_start_response(),
        turn_completed(),
        resolved_config(),
        token_usage(),
    ]
    with caplog.at_level(logging.DEBUG, logger="codex_telemetry"):
        events = run(reducer, *facts)
    assert len(events) == 2
    assert [(record.name, record.levelname) for record in caplog.records] == [
        ("codex_telemetry._explain", "DEBUG")
    ] * len(facts)
    assert [record.getMessage() for record in caplog.records] == [
        "codex_telemetry: Initialize(connection_id=7): recorded, no event yet",
        "codex_telemetry: Response(ThreadStartResponse connection_id=9 request_id=1): "
        "no event: its connection is unknown (no Initialize was tracked for it, or it was "
        "evicted)",
        "codex_telemetry: Response(ThreadStartResponse connection_id=7 request_id=1): "
        "made codex_thread_initialized",
        "codex_telemetry: Request(TurnStartRequest connection_id=7 request_id=3 "
        "thread_id='thread-2'): recorded, no event yet",
        "codex_telemetry: Response(TurnStartResponse connection_id=7 request_id=3 "
        "turn_id='turn-2'): turn 'turn-2' waits for: resolved_config, completion",
        "codex_telemetry: Notification(TurnCompletedNotification thread_id='thread-2' "
        "turn_id='turn-2'): turn 'turn-2' waits for: resolved_config",
        "codex_telemetry: TurnResolvedConfig(thread_id='thread-2' turn_id='turn-2'): "
        "made codex_turn_event",
        "codex_telemetry: TurnTokenUsage(thread_id='thread-2' turn_id='turn-2'): "
        "no event: the turn's event was already sent; this fact came too late",
    ]


def test_the_debug_reducer_makes_the_same_events_and_logs_nothing_when_debug_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    facts: list[Fact] = [initialize(), thread_response(), turn_start_request()]
    facts += [turn_start_response(), resolved_config(), turn_completed()]
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        assert run(debug_reducer(), *facts) == run(make_reducer(), *facts)
    assert caplog.records == []
