"""Tracks 5000 facts that each carry a distinct 100 KiB string, to a hung collector, and
prints how much memory Python held at most meanwhile (tracemalloc, in bytes).

``python -m tests.big_facts_child ENDPOINT [SETTING=VALUE ...]``: prints
``accepted=<n> dropped=<n> peak=<bytes> base=<bytes>``.
"""

from __future__ import annotations

import sys
import time
import tracemalloc

import codex_telemetry
from codex_telemetry.facts import HookRun, TrackingContext

FACTS = 5000
SIZE = 100 * 1024


def main(argv: list[str]) -> None:
    overrides = dict(argument.split("=", 1) for argument in argv[1:])
    client = codex_telemetry.init(otlp__endpoint=argv[0], **overrides)  # type: ignore[arg-type]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for number in range(FACTS):
        turn_id = f"{number:08d}" + "x" * (SIZE - 8)  # a new string each time
        codex_telemetry.track_fact(
            HookRun(
                tracking=TrackingContext(model_slug="gpt-5", thread_id="t", turn_id=turn_id),
                hook_name="Stop",
                hook_source="user",
                status="completed",
            )
        )
        del turn_id
    # Wait (bounded) until the worker took every fact, or is held by the hung collector
    # (no progress for a second): then the queues are as full as they get.
    deadline = time.monotonic() + 120
    last, still = -1, 0
    while time.monotonic() < deadline and still < 20:
        processed = client._worker.processed.value
        if processed >= client.stats().facts_accepted:
            break
        still = still + 1 if processed == last else 0
        last = processed
        time.sleep(0.05)
    peak = tracemalloc.get_traced_memory()[1]
    stats = client.stats()
    print(
        f"accepted={stats.facts_accepted} dropped={stats.facts_dropped_total} "
        f"peak={peak} base={base}",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
