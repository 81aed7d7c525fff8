"""The event classes: frozen dataclasses that keep their fields in ``__dict__``, in order,
built by an ``__init__`` of their own (see ``events._fast_init``)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import typing
from typing import Any

import pytest

from codex_telemetry import events
from codex_telemetry.events import (
    AppUsedEvent,
    HookRunEvent,
    SkillInvocationEvent,
    wire_values,
)

HOOK_RUN: dict[str, Any] = {
    "thread_id": "thread-1",
    "turn_id": "turn-1",
    "model_slug": "gpt-5",
    "hook_name": "Stop",
    "hook_source": "user",
    "status": "completed",
}


def test_an_event_takes_its_fields_by_keyword_or_position_and_keeps_them_in_order() -> None:
    by_keyword = HookRunEvent(**HOOK_RUN)
    by_position = HookRunEvent(*HOOK_RUN.values())
    assert by_keyword == by_position
    assert hash(by_keyword) == hash(by_position)
    assert by_keyword.__dict__ == HOOK_RUN
    assert list(by_keyword.__dict__) == [f.name for f in dataclasses.fields(HookRunEvent)]
    assert repr(by_keyword) == (
        "HookRunEvent(thread_id='thread-1', turn_id='turn-1', model_slug='gpt-5', "
        "hook_name='Stop', hook_source='user', status='completed')"
    )


def test_the_signature_is_the_dataclasss() -> None:
    assert str(inspect.signature(HookRunEvent)) == (
        "(thread_id: 'str', turn_id: 'str', model_slug: 'str', hook_name: 'str', "
        "hook_source: 'str', status: 'str') -> None"
    )
    assert typing.get_type_hints(AppUsedEvent.__init__) == {
        "connector_id": str | None,
        "thread_id": str,
        "turn_id": str,
        "app_name": str | None,
        "product_client_id": str,
        "invoke_type": str | None,
        "model_slug": str,
        "return": type(None),
    }


def test_a_missing_or_unknown_field_is_a_type_error() -> None:
    missing = {name: value for name, value in HOOK_RUN.items() if name != "status"}
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'status'"):
        HookRunEvent(**missing)
    with pytest.raises(TypeError, match="unexpected keyword argument 'team'"):
        HookRunEvent(**{**HOOK_RUN, "team": "blue"})


def test_an_event_is_frozen() -> None:
    event = HookRunEvent(**HOOK_RUN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = "failed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del event.status
    assert event.status == "completed"


def test_replace_copy_and_pickle_give_equal_events() -> None:
    event = HookRunEvent(**HOOK_RUN)
    changed = dataclasses.replace(event, status="failed")
    assert changed.__dict__ == {**HOOK_RUN, "status": "failed"}
    assert event.status == "completed"
    for twin in (copy.copy(event), copy.deepcopy(event), pickle.loads(pickle.dumps(event))):
        assert type(twin) is HookRunEvent
        assert twin == event
        assert list(twin.__dict__) == list(HOOK_RUN)


def test_an_event_field_takes_no_default() -> None:
    with pytest.raises(TypeError, match=r"Defaulted\.status: event fields take no default"):

        @events._fast_init
        @dataclasses.dataclass(frozen=True)
        class Defaulted(events.AnalyticsEvent):
            event_type = "defaulted"
            status: str = "completed"


def test_wire_values_are_the_top_level_fields_then_the_event_params() -> None:
    skill = SkillInvocationEvent(
        skill_id="id-1",
        skill_name="doc",
        product_client_id="codex_cli_rs",
        skill_scope="user",
        repo_url=None,
        thread_id="thread-1",
        invoke_type="explicit",
        model_slug="gpt-5",
    )
    assert list(wire_values(SkillInvocationEvent)(skill)) == [
        "id-1",
        "doc",
        "codex_cli_rs",
        "user",
        None,
        "thread-1",
        "explicit",
        "gpt-5",
    ]
    assert list(wire_values(HookRunEvent)(HookRunEvent(**HOOK_RUN))) == list(HOOK_RUN.values())


def test_wire_values_of_a_class_of_the_program_read_its_fields() -> None:
    """A subclass the SDK did not build keeps its fields the dataclass way: its values
    are read by name, in the order the encoders write them."""

    @dataclasses.dataclass(frozen=True)
    class TaggedAppUsed(AppUsedEvent):
        team: str

    event = TaggedAppUsed(
        connector_id=None,
        thread_id="thread-1",
        turn_id="turn-1",
        app_name="Drive",
        product_client_id="codex_cli_rs",
        invoke_type="explicit",
        model_slug="gpt-5",
        team="blue",
    )
    assert not events.own_dict_layout(TaggedAppUsed)
    assert list(wire_values(TaggedAppUsed)(event)) == [
        None,
        "thread-1",
        "turn-1",
        "Drive",
        "codex_cli_rs",
        "explicit",
        "gpt-5",
        "blue",
    ]
