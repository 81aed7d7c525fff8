"""Tracking from a signal handler never blocks: refused and counted at worst, never hung.

Python runs a signal handler on the main thread between two bytecodes of whatever that
thread was doing, ``track_fact`` included. Each test runs in a child process (with a fresh
HOME) whose timer interrupts the main thread while it tracks facts itself; a hang would
show as the child's timeout, which is generous on purpose: it detects a deadlock, it does
not measure speed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from codex_telemetry._internal_errors import RateLimitedLog

_NEEDS_SETITIMER = pytest.mark.skipif(
    not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)"
)

_REPOSITORY = Path(__file__).resolve().parent.parent
_HANG_DETECTOR_SECONDS = 120

# Each round builds a fresh client, so that the first facts race with the worker's start
# (the gate's lock) as well as with dedupe. The timer fires every 0.5 ms, and the handler
# tracks a few facts only, so that handlers do not interrupt each other without end.
_CHILD = textwrap.dedent(
    """
    import json, signal, sys
    import codex_telemetry
    from codex_telemetry.facts import (
        AppInvocation, AppUsed, HookRun, PluginMetadata, PluginUsed, TrackingContext,
    )
    from codex_telemetry.testing import InMemorySink

    ROUNDS, SIGNALS_PER_ROUND = int(sys.argv[1]), int(sys.argv[2])

    def tracking(turn):
        return TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id=turn)

    def app(turn, connector):
        invocation = AppInvocation(
            connector_id=connector, app_name="Gmail", invocation_type="explicit"
        )
        return AppUsed(tracking=tracking(turn), app=invocation)

    def plugin(turn):
        metadata = PluginMetadata(plugin_name="lint", marketplace_name="m")
        return PluginUsed(tracking=tracking(turn), plugin=metadata)

    def hook(turn):
        return HookRun(
            tracking=tracking(turn), hook_name="Stop", hook_source="user", status="completed"
        )

    # Built up front: the handler and the loop only track.
    FACTS = [f(f"turn-{i}") for i in range(64) for f in (hook, plugin)]
    FACTS += [app(f"turn-{i}", c) for i in range(64) for c in ("gmail", "gmail", "drive")]

    totals = {"tracked": 0, "signals": 0, "rounds": 0}
    sums = {}
    client = None
    handled = 0

    def on_alarm(signum, frame):
        global handled
        handled += 1
        for fact in FACTS[handled % 97 :: 97]:
            client.track_fact(fact)
            totals["tracked"] += 1
            codex_telemetry.track_fact(fact)  # the module-level face too
            totals["tracked"] += 1

    signal.signal(signal.SIGALRM, on_alarm)
    for round_ in range(ROUNDS):
        client = codex_telemetry.Telemetry(sink=InMemorySink())
        codex_telemetry._client._swap_default(client)
        handled = 0
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        index = 0
        while handled < SIGNALS_PER_ROUND:
            fact = FACTS[index % len(FACTS)]
            client.track_fact(fact)
            codex_telemetry.track_fact(fact)
            totals["tracked"] += 2
            index += 1
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        totals["signals"] += handled
        totals["rounds"] += 1
        client.flush(timeout=60)
        stats = client.stats()
        for key, value in stats.facts_dropped.items():
            sums[f"dropped_{key}"] = sums.get(f"dropped_{key}", 0) + value
        for key in ("facts_accepted", "facts_deduplicated", "facts_filtered"):
            sums[key] = sums.get(key, 0) + getattr(stats, key)
        sums["events_produced"] = sums.get("events_produced", 0) + stats.events_produced
        sums["events_exported"] = sums.get("events_exported", 0) + stats.events_exported
        client.shutdown(timeout=60)
    codex_telemetry._client._swap_default(None)
    print(json.dumps({**totals, **sums}))
    """
)


def _run_child(tmp_path: Path, rounds: int, signals_per_round: int) -> dict[str, Any]:
    home = tmp_path / "home"
    home.mkdir()
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(_REPOSITORY),
        "CODEX_TELEMETRY_STRICT": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(rounds), str(signals_per_round)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=_HANG_DETECTOR_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


@_NEEDS_SETITIMER
def test_a_timer_handler_tracking_facts_while_the_main_thread_does_never_hangs(
    tmp_path: Path,
) -> None:
    summary = _run_child(tmp_path, rounds=40, signals_per_round=50)
    assert summary["rounds"] == 40
    assert summary["signals"] >= 40 * 50
    # Every fact ends in exactly one counter: accepted, deduplicated, or dropped for a
    # reason (``reentrant`` at worst); none is lost or counted twice.
    dropped = {key: value for key, value in summary.items() if key.startswith("dropped_")}
    assert set(dropped) <= {f"dropped_{reason}" for reason in _REASONS}
    assert (
        summary["facts_accepted"]
        + summary["facts_deduplicated"]
        + summary["facts_filtered"]
        + sum(dropped.values())
        == summary["tracked"]
    )
    assert dropped.get("dropped_queue_full", 0) == 0
    assert dropped.get("dropped_invalid", 0) == 0
    # Accepted facts were reduced and delivered: a hook run or a plugin use makes one event,
    # and so does an app use for a connector (once per turn).
    assert summary["events_produced"] == summary["facts_accepted"]
    assert summary["events_exported"] == summary["events_produced"]


_REASONS = (
    "queue_full",
    "invalid",
    "after_shutdown",
    "empty",
    "reentrant",
    "no_worker",
    "disabled",
)


def test_the_rate_limited_log_never_waits_for_its_own_thread() -> None:
    # What a signal handler meets when it interrupts a log line of the same thread (an
    # invalid value refused from the handler): the lock is already held below it.
    log = RateLimitedLog(logging.getLogger("codex_telemetry.test_signals"))
    with log._lock:
        assert log.log(logging.WARNING, "invalid", "first") is True
        assert log.log(logging.WARNING, "invalid", "again") is False
    assert log.suppressed("invalid") == 1
