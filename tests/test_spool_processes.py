"""The durable spool as a user meets it: real processes, a fresh HOME, a loopback collector.

Each test runs ``tests/spool_child.py`` (default settings: the spool is on for ``otlp``)
once with the collector down, hung or killed mid-stream, and then again with a healthy
collector and the same HOME (so the same per-user spool directory): the second process
sends what the first one left. Every wait is bounded.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.otlp_receiver import HttpReceiver, plain_records

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the spool needs fcntl")

_ROOT = Path(__file__).resolve().parent.parent


def _environment(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), **extra}


def _child(
    home: Path, endpoint: str, count: int, rate: float, prefix: str, *, hang: bool = False
) -> subprocess.Popen[str]:
    arguments = [endpoint, str(count), str(rate), prefix] + (["--hang"] if hang else [])
    return subprocess.Popen(
        [sys.executable, "-m", "tests.spool_child", *arguments],
        cwd=_ROOT,
        env=_environment(home, CODEX_TELEMETRY_SHUTDOWN_TIMEOUT="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(home: Path, endpoint: str, count: int, prefix: str) -> str:
    """Run a child to its normal exit; its stderr (the SDK's log lines)."""
    child = _child(home, endpoint, count, 0, prefix)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.splitlines()[-1] == f"tracked {count}"
    return err


def _run_with_healthy_collector(home: Path, port: int, count: int = 10) -> collections.Counter[str]:
    """A second process on the same spool and endpoint: how often each turn id arrived."""
    with HttpReceiver(port=port) as receiver:
        # A long enough exit for the backlog on a busy machine (a user's setting).
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.spool_child", receiver.url(), str(count), "0", "b"],
            cwd=_ROOT,
            env=_environment(home, CODEX_TELEMETRY_SHUTDOWN_TIMEOUT="30"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        received = list(receiver.received)
    return collections.Counter(
        str(record.attributes["turn_id"]) for item in received for record in plain_records(item)
    )


def _arrivals(counts: collections.Counter[str], prefix: str, count: int) -> tuple[int, int]:
    """(distinct turn ids ``prefix-0`` .. ``prefix-<count-1>`` that arrived, duplicates)."""
    wanted = {f"{prefix}-{number}" for number in range(count)}
    distinct = sum(1 for key in counts if key in wanted)
    twice = sum(counts[key] - 1 for key in counts if key in wanted)
    return distinct, twice


def _spool_files(home: Path) -> list[str]:
    root = home / ".cache" / "codex-telemetry" / "spool"
    return sorted(path.name for path in root.rglob("*.jsonl")) if root.exists() else []


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def port() -> int:
    """A loopback port where nothing listens (until a test starts something there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/logs"


def test_collector_down_for_a_whole_run_then_up_for_the_next_run_delivers_all(
    home: Path, port: int
) -> None:
    err = _run(home, _url(port), 1000, "a")
    assert "1000 analytics events were kept in the spool" in err
    assert "not delivered" not in err
    assert _spool_files(home) != []

    counts = _run_with_healthy_collector(home, port)

    assert _arrivals(counts, "a", 1000) == (1000, 0)
    assert _arrivals(counts, "b", 10) == (10, 0)
    assert _spool_files(home) == []  # everything acknowledged


def test_the_next_process_sends_what_was_left_even_if_it_tracks_nothing(
    home: Path, port: int
) -> None:
    _run(home, _url(port), 300, "a")

    counts = _run_with_healthy_collector(home, port, count=0)

    assert _arrivals(counts, "a", 300) == (300, 0)
    assert _spool_files(home) == []


def test_a_collector_hung_at_exit_keeps_the_events_for_the_next_run(home: Path, port: int) -> None:
    with socket.socket() as hung:  # accepts connections (the kernel does), never answers
        hung.bind(("127.0.0.1", port))
        hung.listen(64)
        err = _run(home, _url(port), 1000, "a")
    assert "1000 analytics events were kept in the spool" in err

    counts = _run_with_healthy_collector(home, port)

    assert _arrivals(counts, "a", 1000) == (1000, 0)


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM])
def test_a_process_killed_mid_stream_loses_at_most_one_percent(
    home: Path, port: int, signal_number: int
) -> None:
    with HttpReceiver(port=port) as receiver:
        child = _child(home, receiver.url(), 20_000, 2000, "a", hang=True)
        assert child.stdout is not None
        tracked = 0
        for line in child.stdout:  # bounded: the child prints at most 201 lines
            tracked = int(line.split()[1]) if line.startswith("tracked") else tracked
            if tracked >= 6000:
                break
        child.send_signal(signal_number)  # Python's default handling for SIGTERM
        child.communicate(timeout=60)
        assert child.returncode == -signal_number
        first = list(receiver.received)
    assert tracked >= 6000

    counts = _run_with_healthy_collector(home, port)
    for item in first:
        counts.update(str(record.attributes["turn_id"]) for record in plain_records(item))

    distinct, twice = _arrivals(counts, "a", tracked)
    assert distinct >= 0.99 * tracked
    assert twice <= 0.01 * tracked
