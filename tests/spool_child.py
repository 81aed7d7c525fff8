"""A program that tracks facts to an OTLP endpoint, for the spool's process tests.

``python -m tests.spool_child ENDPOINT COUNT RATE PREFIX [--hang]``: ``init()`` with the
default settings (the spool on) and the endpoint, then ``COUNT`` HookRun facts whose
turn ids are ``PREFIX-<n>``, about ``RATE`` a second (0: as fast as possible), printing
``tracked <n>`` after every 100th. With ``--hang`` it then waits to be killed; otherwise
it exits normally (the exit hook shuts the SDK down).
"""

from __future__ import annotations

import sys
import time

import codex_telemetry
from codex_telemetry.facts import HookRun, TrackingContext


def main(argv: list[str]) -> None:
    endpoint, count, rate, prefix = argv[0], int(argv[1]), float(argv[2]), argv[3]
    codex_telemetry.init(otlp__endpoint=endpoint)
    start = time.monotonic()
    for number in range(count):
        codex_telemetry.track_fact(
            HookRun(
                tracking=TrackingContext(
                    model_slug="gpt-5", thread_id="thread-1", turn_id=f"{prefix}-{number}"
                ),
                hook_name="Stop",
                hook_source="user",
                status="completed",
            )
        )
        if (number + 1) % 100 == 0:
            print(f"tracked {number + 1}", flush=True)
        if rate:
            delay = start + (number + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    print(f"tracked {count}", flush=True)
    if "--hang" in argv:
        print("waiting", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1:])
