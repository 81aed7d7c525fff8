"""``python -m benchmarks._instructions``: what a ``before_send`` costs, in instructions.

Timings on a shared machine move by a quarter from one hour to the next; the number of
instructions a piece of work takes does not. This runs the worker's path of the
``before_send`` figure (:func:`benchmarks._child._worker_path`: the hook stage, the
spool's encoding, one SDK log record per event, the OTLP/protobuf requests) under
``valgrind --tool=cachegrind``, without a hook, with one returning its argument, and
with :func:`benchmarks._child.fresh_dict_floor` (the fresh wire dict and the call,
nothing checked: the least a stage can cost), once for one round and once for five; the
difference, per event of the four extra rounds, leaves out start-up and the one-time
work. Needs ``valgrind`` on the ``PATH``; takes about a minute.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from typing import Any

_ROUNDS = (1, 5)
_TURNS = 200


def _child(mode: str, rounds: int) -> None:
    """Run the worker path ``rounds`` times (after one warm-up), without a hook (``none``),
    with one returning its argument (``identity``), or with the fresh-dict floor
    (``floor``)."""
    from benchmarks import _child as child  # noqa: PLC0415
    from codex_telemetry._hooks import EventHooks  # noqa: PLC0415
    from codex_telemetry._internal_errors import InternalErrors  # noqa: PLC0415

    batches = child.reduced_batches(_TURNS)
    stage = EventHooks(
        before_send=lambda event: event, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    # The full collection the timed figure makes before each round, outside its timing,
    # is left out of the count too; collections the path itself causes stay in.
    run, close = child._worker_path(batches, collect_first=False)
    modes = {"none": None, "identity": stage.apply, "floor": child.fresh_dict_floor(lambda e: e)}
    apply = modes[mode]
    for _ in range(rounds + 1):
        run(apply)
    close()
    print(sum(len(batch) for batch in batches))


def _count(mode: str, rounds: int) -> tuple[int, int]:
    """The instructions of one child run, and the events of a round."""
    completed = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks._instructions",
            "--child",
            mode,
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"I\s+refs:\s+([\d,]+)", completed.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{completed.stderr}")
    return int(match.group(1).replace(",", "")), int(completed.stdout.split()[-1])


def main() -> None:
    """Print the instructions per event of the path without a hook and with one."""
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("benchmarks._instructions: valgrind is not installed")
    per_event: dict[str, Any] = {}
    for mode in ("none", "identity", "floor"):
        (few, events), (many, _) = (_count(mode, rounds) for rounds in _ROUNDS)
        per_event[mode] = (many - few) / (_ROUNDS[1] - _ROUNDS[0]) / events
        print(f"{mode}: {per_event[mode]:,.0f} instructions an event", flush=True)
    added = per_event["identity"] - per_event["none"]
    floor = per_event["floor"] - per_event["none"]
    print(
        f"before_send returning its argument adds {added:,.0f} instructions an event "
        f"({added / per_event['none']:.1%} of the path without a hook); building the fresh "
        f"wire dict and calling the hook, nothing checked, adds {floor:,.0f}"
    )


if __name__ == "__main__":
    main()
