"""The benchmark command runs end to end at tiny sizes and reports what it measured.

No timing is asserted: only that each figure ran, both sides delivered every event
they were given, and the table has a row per figure.
"""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks import _instructions, _startup, _workload
from benchmarks.__main__ import Sizes, measure, notes, startup_table, summarise, table

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
    hook_rounds=1,
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
    startup = results["startup"]
    [ours] = startup["first_events"]["codex_telemetry"]
    assert not any(ours["loaded_after_import"].values())  # not even pydantic
    # The OTLP sink is made when its first batch is due, not by init().
    assert not ours["loaded_after_init"]["codex_telemetry._export._otlp"]
    assert not ours["loaded_after_init"]["requests"]
    assert not ours["loaded_after_init"]["grpc"]  # an HTTP exporter never imports gRPC
    assert ours["facts_accepted"] == len(ours["first_fact_ms"]) == 15  # one of each type
    for side, present in startup["installed"].items():
        steps = startup["whole_process_ms"].get(side, {})
        assert sorted(steps) == (sorted(_steps(side)) if present else []), side
        for figures in steps.values():
            assert len(figures["wall"]) == TINY.startup_samples
    assert results["observer"]["facts_per_replay"] > 0
    assert results["observer"]["hook_ns_per_message"] is not None  # openai-codex is installed

    assert results["hooks"]["events"] > 0
    assert "codex_turn_event" in results["hooks"]["identity_ns_by_event_type"]
    assert results["hooks"]["floor_path_ns_per_event"] is not None

    rows = summarise(results)
    rendered = table(rows)
    assert len(rows) == 14  # 13, and before_send
    assert "before_send returning its argument (ns/event)" in rendered
    assert "openai-codex hook beyond the observer (ns/message)" in rendered
    assert "import + init() from the environment, OTLP/HTTP, whole process (ms)" in rendered
    assert len(rendered.splitlines()) == 2 + len(rows)
    assert "delivered events per second" in rendered
    assert len(notes(results, TINY)) == 10
    peers = startup_table(startup)
    assert len(peers.splitlines()) == 2 + 5
    assert "not installed" not in peers or not all(startup["installed"].values())

    # A peer that is absent is said to be, and its targets are not judged.
    absent = {
        **startup,
        "installed": {**startup["installed"], "sentry_sdk": False, "logfire": False},
        "whole_process_ms": {
            side: steps
            for side, steps in startup["whole_process_ms"].items()
            if side not in {"sentry_sdk", "logfire"}
        },
        "first_events": {
            side: runs
            for side, runs in startup["first_events"].items()
            if side not in {"sentry_sdk", "logfire"}
        },
    }
    rows = summarise({**results, "startup": absent})
    import_row, init_row = rows[7], rows[8]
    assert (import_row[3], import_row[5], init_row[3], init_row[5]) == ("n/a",) * 4
    header, _, *lines = startup_table(absent).splitlines()
    sentry = header.split(" | ").index("sentry_sdk")
    assert {line.split(" | ")[sentry] for line in lines} == {"not installed"}


def _steps(side: str) -> list[str]:
    return [step for (name, step) in _startup.STATEMENTS if name == side]


def test_the_instruction_count_runs_the_hook_figures_worker_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Under valgrind it counts; here only that the path it counts runs, without a hook,
    # with one, and with the fresh-dict floor, over the workload's 388 events.
    for mode in ("none", "identity", "floor"):
        _instructions._child(mode, 0)
        assert capsys.readouterr().out == "388\n"
