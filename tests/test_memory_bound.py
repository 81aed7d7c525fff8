"""Memory stays bounded in bytes, not only in counts: 5000 facts of 100 KiB strings to a
hung collector.

Documented bound (README, "Runtime promises"): about 64 MiB of waiting facts, 16 MiB of
waiting events and a 4 MiB batch in flight. The test allows 256 MiB of Python memory at
the peak (tracemalloc, in a child process with a fresh HOME) for what the SDK holds on
top of that bound (the request being encoded, the spool's reads, and the facts queued
before the worker measured the first one, which a busy machine can delay); without the
byte bounds the same run holds more than 500 MiB (every fact queued).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
_BOUND = 256 * 1024 * 1024


@pytest.mark.parametrize("spool", ["true", "false"])
def test_big_facts_to_a_hung_collector_stay_within_the_byte_bound(
    tmp_path: Path, spool: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as hung:  # accepts connections (the kernel does), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        endpoint = f"http://127.0.0.1:{hung.getsockname()[1]}/v1/logs"
        done = subprocess.run(
            [sys.executable, "-m", "tests.big_facts_child", endpoint, f"spool__enabled={spool}"],
            cwd=_ROOT,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    values = dict(item.split("=") for item in done.stdout.split())
    assert int(values["accepted"]) + int(values["dropped"]) == 5000
    if spool == "false":  # the worker waits for the hung collector: the fact queue fills
        assert int(values["dropped"]) > 0  # and refuses what does not fit in bytes
    assert int(values["peak"]) < _BOUND, done.stdout
