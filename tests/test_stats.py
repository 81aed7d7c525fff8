"""``stats()`` returns plain values: copyable, serialisable, readable."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from types import MappingProxyType

import codex_telemetry
from codex_telemetry import TelemetryStats
from codex_telemetry.facts import AppUsed, TrackingContext
from codex_telemetry.testing import capture_events


def app_used(connector_id: str) -> AppUsed:
    return AppUsed(
        tracking=TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id="turn-1"),
        app=codex_telemetry.facts.AppInvocation(
            connector_id=connector_id, app_name=None, invocation_type=None
        ),
    )


def test_a_live_snapshot_is_plain_values() -> None:
    with capture_events() as capture:
        codex_telemetry.track_fact(app_used("gmail"))
        codex_telemetry.track_fact(app_used("gmail"))  # deduplicated
        assert capture.telemetry.flush(timeout=10)
        stats = capture.telemetry.stats()

    assert type(stats.facts_dropped) is dict
    assert type(stats.events_dropped) is dict
    assert type(stats.reducer_evicted) is dict
    assert dataclasses.asdict(stats) == {
        "facts_accepted": 1,
        "facts_filtered": 0,
        "facts_deduplicated": 1,
        "facts_dropped": {
            "queue_full": 0,
            "invalid": 0,
            "after_shutdown": 0,
            "empty": 0,
            "reentrant": 0,
            "no_worker": 0,
            "disabled": 0,
        },
        "facts_without_event": {
            "unknown_connection": 0,
            "unknown_thread": 0,
            "no_pending_request": 0,
            "after_emission": 0,
            "turn_evicted": 0,
        },
        "turns_waiting": {
            "turn_start_response": 0,
            "resolved_config": 0,
            "completion": 0,
            "initialize": 0,
            "thread_response": 0,
        },
        "events_produced": 1,
        "events_exported": 1,
        "events_dropped": {},
        "reducer_evicted": {"connections": 0, "threads": 0, "pending_requests": 0, "turns": 0},
        "internal_errors": 0,
        "notices": {},
    }
    assert stats.to_dict() == dataclasses.asdict(stats)
    assert repr(stats) == (
        "TelemetryStats(facts_accepted=1, facts_deduplicated=1, events_produced=1, "
        "events_exported=1)"
    )


def test_by_reason_counts_are_copied_when_the_snapshot_is_taken() -> None:
    source = {"queue_full": 2}
    stats = TelemetryStats(facts_dropped=MappingProxyType(source))
    source["queue_full"] = 5
    assert stats.facts_dropped == {"queue_full": 2}
    assert type(stats.facts_dropped) is dict


def test_to_dict_is_json_and_a_copy() -> None:
    stats = TelemetryStats(
        facts_accepted=4,
        facts_dropped={"queue_full": 2, "invalid": 1},
        events_dropped={"http_401": 3},
        reducer_evicted={"turns": 1},
        internal_errors=1,
    )
    plain = stats.to_dict()
    assert json.loads(json.dumps(plain)) == {
        "facts_accepted": 4,
        "facts_filtered": 0,
        "facts_deduplicated": 0,
        "facts_dropped": {"queue_full": 2, "invalid": 1},
        "facts_without_event": {},
        "turns_waiting": {},
        "events_produced": 0,
        "events_exported": 0,
        "events_dropped": {"http_401": 3},
        "reducer_evicted": {"turns": 1},
        "internal_errors": 1,
        "notices": {},
    }
    plain["facts_dropped"]["queue_full"] = 99
    assert stats.facts_dropped == {"queue_full": 2, "invalid": 1}
    assert (stats.facts_dropped_total, stats.events_dropped_total) == (3, 3)


def test_repr_is_one_line_of_what_is_not_zero() -> None:
    assert repr(TelemetryStats()) == "TelemetryStats()"
    stats = TelemetryStats(
        facts_accepted=4,
        facts_dropped={"queue_full": 2, "invalid": 0},
        events_dropped={"http_401": 3},
        reducer_evicted={"turns": 0},
    )
    assert repr(stats) == (
        "TelemetryStats(facts_accepted=4, facts_dropped={'queue_full': 2}, "
        "events_dropped={'http_401': 3})"
    )


def test_snapshots_copy_pickle_and_compare() -> None:
    stats = TelemetryStats(facts_accepted=1, events_dropped={"timeout": 2})
    assert copy.deepcopy(stats) == stats
    assert pickle.loads(pickle.dumps(stats)) == stats
    assert dataclasses.replace(stats, facts_accepted=2).events_dropped == {"timeout": 2}
