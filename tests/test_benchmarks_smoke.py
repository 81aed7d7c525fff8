"""The benchmark command runs end to end at tiny sizes and reports what it measured.

No timing is asserted: only that each figure ran, both sides delivered every event
they were given, and the table has a row per figure.
"""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks import _workload
from benchmarks.__main__ import Sizes, measure, notes, summarise, table

TINY = Sizes(
    caller_rounds=3,
    caller_turns=5,
    gate_rounds=2,
    gate_calls=1000,
    e2e_turns=40,
    e2e_repeats=1,
    memory_facts=3000,
    startup_samples=1,
    observer_rounds=1,
)


def test_the_workload_mixes_every_event_family() -> None:
    workload = _workload.Workload()
    facts = _workload.setup_facts(workload) + list(_workload.turn_facts(workload, 200))
    events = Counter(event.event_name for event in _workload.plain_events(facts))
    assert events["codex_turn_event"] == 200
    assert set(events) == {
        "codex_thread_initialized",
        "codex_turn_event",
        "codex_turn_steer_event",
        "skill_invocation",
        "codex_app_mentioned",
        "codex_app_used",
        "codex_plugin_used",
    }


@pytest.mark.timeout(300)
def test_every_figure_runs_and_both_sides_deliver_everything() -> None:
    results = measure(TINY, "gzip", lambda message: None)

    for side in ("ours", "plain"):
        [run] = results["end_to_end"][side]
        assert run["received"] == run["events"] > 0
    assert results["end_to_end"]["ours"][0]["events"] == results["end_to_end"]["plain"][0]["events"]
    assert results["gates"]["disabled"]["facts_disabled"] > 0
    assert results["gates"]["filtered"]["facts_filtered"] > 0
    memory = results["memory"]["ours"]
    tracked = memory["warm_up_facts"] + TINY.memory_facts
    counted = memory["facts_accepted"] + memory["facts_deduplicated"]
    assert counted + sum(memory["facts_dropped"].values()) == tracked
    assert memory["events_exported"] == 0  # the collector is down
    startup = results["startup"]["ours"][0]
    assert not startup["loaded_after_import"]["codex_telemetry._export._otlp"]
    assert startup["loaded_after_init"]["codex_telemetry._export._otlp"]
    assert not startup["loaded_after_init"]["grpc"]  # an HTTP exporter never imports gRPC
    assert results["observer"]["facts_per_replay"] > 0
    assert results["observer"]["hook_ns_per_message"] is not None  # openai-codex is installed

    rows = summarise(results)
    rendered = table(rows)
    assert len(rows) == 12
    assert "openai-codex hook beyond the observer (ns/message)" in rendered
    assert len(rendered.splitlines()) == 2 + len(rows)
    assert "delivered events per second" in rendered
    assert len(notes(results, TINY)) == 7
