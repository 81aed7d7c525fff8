"""Enum values a newer app-server may send: strict constructors, a lenient path, the wire.

``TurnResolvedConfig`` and ``Turn`` refuse a string that is not one of a field's values
(a typo fails where it is made) but accept an explicit ``UnknownValue``; their
``from_protocol`` constructors wrap such strings themselves. The reducer writes an
unknown value to the turn event as it was given, following the rules of events.md 4.3.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from codex_telemetry.facts import Turn, TurnResolvedConfig, UnknownValue
from tests.test_reducer import (
    full_turn,
    make_reducer,
    preamble,
    run,
    turn_completed,
    turn_event,
)

CONFIG: dict[str, Any] = {
    "turn_id": "turn-2",
    "thread_id": "thread-2",
    "num_input_images": 0,
    "submission_type": None,
    "ephemeral": False,
    "session_source": "exec",
    "model": "gpt-5",
    "model_provider": "openai",
    "sandbox_policy": "read_only",
    "reasoning_effort": None,
    "reasoning_summary": None,
    "service_tier": None,
    "approval_policy": "never",
    "approvals_reviewer": "user",
    "sandbox_network_access": False,
    "collaboration_mode": "default",
    "personality": None,
    "is_first_turn": True,
}


def test_the_constructor_still_refuses_a_typo() -> None:
    with pytest.raises(pydantic.ValidationError, match="sandbox_policy"):
        TurnResolvedConfig(**{**CONFIG, "sandbox_policy": "readonly"})
    with pytest.raises(pydantic.ValidationError, match="status"):
        Turn("turn-1", "complete")  # type: ignore[arg-type]


def test_the_constructor_accepts_an_explicit_unknown_value() -> None:
    config = TurnResolvedConfig(**{**CONFIG, "sandbox_policy": UnknownValue("microVm")})
    assert config.sandbox_policy == UnknownValue("microVm")
    assert Turn("turn-1", UnknownValue("abandoned")).status == UnknownValue("abandoned")


def test_from_protocol_wraps_every_enum_string_it_does_not_know() -> None:
    config = TurnResolvedConfig.from_protocol(
        **{
            **CONFIG,
            "sandbox_policy": "microVm",
            "reasoning_effort": "extreme",
            "reasoning_summary": "verbose",
            "service_tier": "turbo",
            "approval_policy": "on-anomaly",
            "approvals_reviewer": "council",
            "collaboration_mode": "swarm",
            "personality": "stoic",
        }
    )
    assert config == TurnResolvedConfig(
        **{
            **CONFIG,
            "sandbox_policy": UnknownValue("microVm"),
            "reasoning_effort": UnknownValue("extreme"),
            "reasoning_summary": UnknownValue("verbose"),
            "service_tier": UnknownValue("turbo"),
            "approval_policy": UnknownValue("on-anomaly"),
            "approvals_reviewer": UnknownValue("council"),
            "collaboration_mode": UnknownValue("swarm"),
            "personality": UnknownValue("stoic"),
        }
    )
    assert TurnResolvedConfig.from_protocol(**CONFIG) == TurnResolvedConfig(**CONFIG)
    assert Turn.from_protocol(id="t", status="abandoned") == Turn("t", UnknownValue("abandoned"))
    assert Turn.from_protocol(id="t", status="failed") == Turn("t", "failed")


def test_from_protocol_keeps_every_other_check() -> None:
    with pytest.raises(pydantic.ValidationError, match="num_input_images"):
        TurnResolvedConfig.from_protocol(**{**CONFIG, "num_input_images": "1"})
    with pytest.raises(pydantic.ValidationError, match="sandbox_policy"):
        TurnResolvedConfig.from_protocol(**{**CONFIG, "sandbox_policy": 3})


def test_the_turn_event_carries_unknown_values_as_given() -> None:
    reducer = make_reducer()
    preamble(reducer)
    facts = full_turn(
        sandbox_policy=UnknownValue("microVm"),
        reasoning_effort=UnknownValue("extreme"),
        reasoning_summary=UnknownValue("verbose"),
        service_tier=UnknownValue("turbo"),
        approval_policy=UnknownValue("on-anomaly"),
        approvals_reviewer=UnknownValue("council"),
        collaboration_mode=UnknownValue("swarm"),
        personality=UnknownValue("stoic"),
    )
    facts[-1] = turn_completed(status=UnknownValue("abandoned"))
    assert run(reducer, *facts) == [
        turn_event(
            sandbox_policy="microVm",
            reasoning_effort="extreme",
            reasoning_summary="verbose",
            service_tier="turbo",
            approval_policy="on-anomaly",
            approvals_reviewer="council",
            # events.md 4.3: every mode but plan is reported as "default".
            collaboration_mode="default",
            personality="stoic",
            status="abandoned",
        )
    ]
