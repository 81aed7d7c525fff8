"""The durable spool: real files, real locks, and real child processes where one dies."""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import _workload
from codex_telemetry import _spool
from codex_telemetry._spool import (
    Spool,
    SpooledEvent,
    destination_directory_name,
    drain_orphans,
    event_from_wire,
    list_spool,
    purge_spool,
)
from codex_telemetry.events import TurnEvent

_ROOT = Path(__file__).resolve().parent.parent
_DESTINATION = "otlp http/protobuf http://localhost:4318/v1/logs"
_SKILL = {
    "event_type": "skill_invocation",
    "skill_id": "abc",
    "skill_name": "doc",
    "event_params": {"thread_id": "t", "repo_url": None, "invoke_type": "explicit"},
}
_SKILL_LINE = (
    '{"time_unix_nano":1764000000000000000,"event":{"event_type":"skill_invocation",'
    '"skill_id":"abc","skill_name":"doc","event_params":{"thread_id":"t","repo_url":null,'
    '"invoke_type":"explicit"}}}\n'
)


def _event(index: int) -> dict[str, Any]:
    return {"event_type": "codex_hook_run", "event_params": {"index": index}}


def _indices(events: list[SpooledEvent]) -> list[int]:
    return [event.wire["event_params"]["index"] for event in events]


def _take_all(spool: Spool) -> list[SpooledEvent]:
    taken: list[SpooledEvent] = []
    while batch := spool.take(100):
        taken.extend(batch)
    return taken


def _folder(root: Path, destination: str = _DESTINATION) -> Path:
    return root / destination_directory_name(destination)


def _segments(root: Path, destination: str = _DESTINATION) -> list[Path]:
    return sorted(_folder(root, destination).glob("*.jsonl"))


def _die(spool: Spool) -> None:
    """What the kernel does to a spool whose process dies: close its descriptors (and so
    release its locks), with no clean-up."""
    spool.close_after_fork()


# --- format and acknowledgements -----------------------------------------------------------


def test_append_writes_one_json_line_per_event_in_private_files(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "spool"
    spool = Spool.open(_DESTINATION, root=root, label="otlp http://localhost:4318/v1/logs")
    assert spool.append([_SKILL], 1_764_000_000_000_000_000)

    [segment] = _segments(root)
    assert segment.read_text() == _SKILL_LINE
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    for folder in (root.parent, root, _folder(root)):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    label = _folder(root) / "DESTINATION"
    assert label.read_text() == "otlp http://localhost:4318/v1/logs\n"
    assert stat.S_IMODE(label.stat().st_mode) == 0o600
    assert _DESTINATION not in str(_folder(root))  # the key is hashed, never written
    spool.close()


def test_an_acknowledgement_is_persisted_as_the_settled_byte_offset(tmp_path: Path) -> None:
    spool = Spool.open(_DESTINATION, root=tmp_path)
    spool.append([_SKILL, _SKILL, _SKILL], 1_764_000_000_000_000_000)
    spool.acknowledge(2)

    [segment] = _segments(tmp_path)
    ack = segment.with_suffix(".ack").read_text()
    assert ack == f"{2 * len(_SKILL_LINE):020d}\n"
    assert spool.stats().pending == 1
    spool.close()


def test_a_restart_resends_only_the_unacknowledged_tail_oldest_first(tmp_path: Path) -> None:
    first = Spool.open(_DESTINATION, root=tmp_path)
    first.append([_event(0), _event(1)], 10)
    first.append([_event(2)], 20)
    first.append([_event(3), _event(4)], 30)
    first.acknowledge(3)  # across append batches: 0, 1 and 2
    _die(first)

    second = Spool.open(_DESTINATION, root=tmp_path)
    taken = _take_all(second)
    assert [(event.timestamp_ns, event.wire) for event in taken] == [
        (30, {"event_type": "codex_hook_run", "event_params": {"index": 3}}),
        (30, {"event_type": "codex_hook_run", "event_params": {"index": 4}}),
    ]
    second.acknowledge(2)
    assert _segments(tmp_path) == []  # settled in full: deleted at once
    second.close()


def test_close_deletes_what_is_settled_and_keeps_the_rest(tmp_path: Path) -> None:
    settled = Spool.open(_DESTINATION, root=tmp_path)
    settled.append([_event(0)], 1)
    settled.acknowledge(1)
    settled.close()
    assert _segments(tmp_path) == []

    unsettled = Spool.open(_DESTINATION, root=tmp_path)
    unsettled.append([_event(1), _event(2)], 1)
    unsettled.acknowledge(1)
    unsettled.close()
    unsettled.close()  # idempotent
    unsettled.acknowledge(1)  # too late: no longer its segment to write
    assert unsettled.append([_event(3)], 1)  # nothing written; the caller hands it out
    assert len(_segments(tmp_path)) == 1
    assert _indices(_take_all(Spool.open(_DESTINATION, root=tmp_path))) == [2]


def test_the_segments_of_a_living_spool_are_never_claimed(tmp_path: Path) -> None:
    alive = Spool.open(_DESTINATION, root=tmp_path)
    alive.append([_event(0)], 1)
    other = Spool.open(_DESTINATION, root=tmp_path)
    assert other.take(10) == []
    assert other.claim_orphans() == 0

    _die(alive)
    assert other.claim_orphans() == 1
    assert _indices(other.take(10)) == [0]
    other.close()


def test_events_are_handed_back_only_to_their_own_destination(tmp_path: Path) -> None:
    otlp = Spool.open(_DESTINATION, root=tmp_path)
    otlp.append([_event(1)], 1)
    _die(otlp)
    backend = Spool.open("codex_backend https://chatgpt.com/backend-api account-1", root=tmp_path)
    backend.append([_event(2)], 1)
    _die(backend)

    assert _indices(_take_all(Spool.open(_DESTINATION, root=tmp_path))) == [1]
    other_account = Spool.open(
        "codex_backend https://chatgpt.com/backend-api account-2", root=tmp_path
    )
    assert _take_all(other_account) == []


def test_a_claimed_segment_resumes_where_its_claimer_died(tmp_path: Path) -> None:
    writer = Spool.open(_DESTINATION, root=tmp_path)
    writer.append([_event(index) for index in range(6)], 1)
    _die(writer)

    claimer = Spool.open(_DESTINATION, root=tmp_path)
    assert _indices(claimer.take(4)) == [0, 1, 2, 3]
    claimer.acknowledge(2)  # 2 and 3 were in flight when it died
    _die(claimer)

    assert _indices(_take_all(Spool.open(_DESTINATION, root=tmp_path))) == [2, 3, 4, 5]


def test_events_not_handed_out_wait_in_the_backlog_in_order(tmp_path: Path) -> None:
    spool = Spool.open(_DESTINATION, root=tmp_path)
    assert spool.append([_event(0)], 1)  # the sink has room: hand it out
    assert not spool.append([_event(1), _event(2)], 1, hand_out=False)  # the sink is full
    assert not spool.append([_event(3)], 1)  # older events wait: this one waits too
    assert spool.backlog
    assert spool.stats().backlog_bytes == 3 * len(
        '{"time_unix_nano":1,"event":{"event_type":"codex_hook_run","event_params":{"index":1}}}\n'
    )
    assert _indices(spool.take(2)) == [1, 2]
    assert _indices(spool.take(10)) == [3]
    assert not spool.backlog
    assert spool.take(10) == []
    assert spool.append([_event(4)], 1)  # caught up: handed out at once again
    spool.acknowledge(2)  # 0, then 1 (taken)
    _die(spool)
    # 2 and 3 were taken and 4 handed out, none acknowledged: the next process sends them.
    assert _indices(_take_all(Spool.open(_DESTINATION, root=tmp_path))) == [2, 3, 4]


def test_orphans_go_before_new_events(tmp_path: Path) -> None:
    writer = Spool.open(_DESTINATION, root=tmp_path)
    writer.append([_event(0), _event(1)], 1)
    _die(writer)

    spool = Spool.open(_DESTINATION, root=tmp_path)
    assert spool.backlog
    assert not spool.append([_event(2)], 2)  # behind the orphans
    assert _indices(spool.take(10)) == [0, 1, 2]
    assert spool.append([_event(3)], 3)
    spool.acknowledge(2)  # the orphans: their segment is done
    assert len(_segments(tmp_path)) == 1
    spool.acknowledge(2)
    spool.close()
    assert _segments(tmp_path) == []


def test_orphans_are_claimed_a_few_segments_at_a_time_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spool, "_MAX_CLAIMED", 3)  # each claimed segment holds a descriptor
    for index in range(8):
        writer = Spool.open(_DESTINATION, root=tmp_path)
        writer.append([_event(2 * index), _event(2 * index + 1)], 1)
        _die(writer)

    spool = Spool.open(_DESTINATION, root=tmp_path)
    assert spool.backlog
    assert not spool.append([_event(16)], 1)  # behind every orphan, claimed or not yet
    assert _indices(spool.take(5)) == [0, 1, 2, 3, 4]
    assert _indices(spool.take(100)) == list(range(5, 17))
    assert not spool.backlog
    spool.acknowledge(17)
    spool.close()
    assert _segments(tmp_path) == []


# --- torn and foreign lines ----------------------------------------------------------------


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    folder.mkdir(mode=0o700)
    whole = [f'{{"time_unix_nano":5,"event":{json.dumps(_event(i))}}}\n' for i in range(2)]
    torn = '{"time_unix_nano":5,"event":{"event_type":"codex_ho'
    (folder / "00000000000000000001-1-0000aaaa.jsonl").write_text("".join(whole) + torn)
    [summary] = list_spool(tmp_path)
    [listed] = summary.segments
    assert (listed.events, listed.truncated_lines, listed.owner) == (2, 1, "orphaned")

    spool = Spool.open(_DESTINATION, root=tmp_path)
    assert _indices(_take_all(spool)) == [0, 1]
    assert spool.stats().truncated_lines == 1
    spool.append([_event(2)], 6)  # a segment of its own: never glued onto the torn line
    spool.acknowledge(3)
    [segment] = _segments(tmp_path)
    assert segment.read_text() == (
        '{"time_unix_nano":6,"event":{"event_type":"codex_hook_run","event_params":{"index":2}}}\n'
    )
    spool.close()


def test_an_event_longer_than_a_read_is_read_whole(tmp_path: Path) -> None:
    big = {"event_type": "e", "event_params": {"index": 1, "text": "x" * (3 * 1024 * 1024)}}
    spool = Spool.open(_DESTINATION, root=tmp_path)
    spool.append([_event(0), big, _event(2)], 1)
    _die(spool)
    replayed = Spool.open(_DESTINATION, root=tmp_path)
    assert [event.wire for event in _take_all(replayed)] == [_event(0), big, _event(2)]
    replayed.close()


def test_lines_that_are_not_spooled_events_are_skipped_and_counted(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    folder.mkdir(mode=0o700)
    good = f'{{"time_unix_nano":5,"event":{json.dumps(_event(7))}}}\n'
    (folder / "00000000000000000001-1-0000aaaa.jsonl").write_text(
        'not json\n[1,2]\n{"time_unix_nano":"5","event":{}}\n' + good
    )
    spool = Spool.open(_DESTINATION, root=tmp_path)
    assert _indices(_take_all(spool)) == [7]
    assert spool.stats().corrupt_lines == 3
    spool.acknowledge(1)
    assert _segments(tmp_path) == []


def test_an_event_that_cannot_be_encoded_is_counted_and_still_acknowledged(
    tmp_path: Path,
) -> None:
    spool = Spool.open(_DESTINATION, root=tmp_path)
    spool.append([_event(0), {"event_type": "x", "event_params": {"bad": {1, 2}}}, _event(2)], 1)
    assert spool.stats().not_spooled == 1
    spool.acknowledge(2)  # 0 and the unencodable one
    _die(spool)
    assert _indices(_take_all(Spool.open(_DESTINATION, root=tmp_path))) == [2]


def test_a_lone_surrogate_round_trips_exactly(tmp_path: Path) -> None:
    wire = {"event_type": "e", "event_params": {"path": "caf\udce9", "text": "naïve ✓"}}
    spool = Spool.open(_DESTINATION, root=tmp_path)
    spool.append([wire], 1)
    _die(spool)
    [event] = _take_all(Spool.open(_DESTINATION, root=tmp_path))
    assert event.wire == wire


# --- the byte bound ------------------------------------------------------------------------


def _disk_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in _segments(root))


def test_the_byte_bound_drops_the_oldest_events_and_counts_them(tmp_path: Path) -> None:
    line = len(f'{{"time_unix_nano":1,"event":{json.dumps(_event(10), separators=(",", ":"))}}}\n')
    drops: list[int] = []
    spool = Spool.open(_DESTINATION, root=tmp_path, max_bytes=40 * line, on_drop=drops.append)
    for index in range(10, 100):  # segments of 5 lines; none handed out
        assert not spool.append([_event(index)], 1, hand_out=False)
        assert _disk_bytes(tmp_path) <= 40 * line
    stats = spool.stats()
    assert drops == [5] * 10
    assert stats.dropped == 50
    assert stats.bytes_on_disk == _disk_bytes(tmp_path) == 40 * line
    _die(spool)
    assert _indices(_take_all(Spool.open(_DESTINATION, root=tmp_path))) == list(range(60, 100))


def test_claimed_orphans_beyond_the_bound_drop_the_oldest(tmp_path: Path) -> None:
    for index in range(4):
        writer = Spool.open(_DESTINATION, root=tmp_path)
        writer.append([_event(index * 10 + offset) for offset in range(10)], 1)
        _die(writer)
    sizes = [path.stat().st_size for path in _segments(tmp_path)]
    spool = Spool.open(_DESTINATION, root=tmp_path, max_bytes=sizes[2] + sizes[3])
    assert spool.stats().dropped == 20
    assert _indices(_take_all(spool)) == list(range(20, 40))


# --- unusable directories ------------------------------------------------------------------


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Any]:
    """Mount a small tmpfs (needs root and a kernel that lets us); skip when we cannot."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _assert_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    warnings = [r for r in caplog.records if r.name == "codex_telemetry._spool"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "events are kept in memory only" in warnings[0].getMessage()
    assert "your program is unaffected" in warnings[0].getMessage()


def _exercise(spool: Spool) -> None:
    for index in range(5):
        spool.append([_event(index)], 1)
    spool.acknowledge(5)
    spool.take(10)
    spool.claim_orphans()
    spool.close()


def test_a_read_only_directory_falls_back_to_memory_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mount_tmpfs: Any
) -> None:
    if os.geteuid() == 0:  # root writes through permissions: use a read-only mount
        root = mount_tmpfs("read-only", "ro,size=64k")
    else:
        root = tmp_path / "read-only"
        root.mkdir(mode=0o500)
    spool = Spool.open(_DESTINATION, root=root)
    assert spool.in_memory
    _exercise(spool)
    stats = spool.stats()
    assert (stats.in_memory, stats.not_spooled, stats.pending) == (True, 5, 0)
    assert list(root.iterdir()) == []
    _assert_one_warning(caplog)


@pytest.mark.parametrize("kind", ["a file", "writable by others", "another user's"])
def test_a_directory_that_is_not_ours_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    root = tmp_path / "spool"
    if kind == "a file":
        root.write_text("")
    elif kind == "writable by others":
        _folder(root).mkdir(parents=True)
        _folder(root).chmod(0o777)
    else:
        if os.geteuid() != 0:
            pytest.skip("only root can give a directory to another user")
        _folder(root).mkdir(parents=True)
        os.chown(_folder(root), 65534, 65534)
    spool = Spool.open(_DESTINATION, root=root)
    assert spool.in_memory
    _exercise(spool)
    _assert_one_warning(caplog)


def test_a_full_disk_keeps_whole_lines_and_falls_back_to_memory(
    caplog: pytest.LogCaptureFixture, mount_tmpfs: Any
) -> None:
    root = mount_tmpfs("full", "size=64k,mode=0700")
    spool = Spool.open(_DESTINATION, root=root)
    written = 0
    while not spool.in_memory:
        spool.append([{**_event(written), "pad": "x" * 1000}], 1)
        written += 1
    for index in range(written, written + 5):
        spool.append([_event(index)], 1)  # no exception, no more warnings
    _assert_one_warning(caplog)
    stats = spool.stats()
    assert stats.not_spooled == 6  # the batch that failed, then five
    _die(spool)

    replayed = Spool.open(_DESTINATION, root=root)
    events = _take_all(replayed)
    assert _indices(events) == list(range(written - 1))
    assert replayed.stats().truncated_lines == 0


class _FullDiskFile:
    """A segment file object whose disk fills up after ``room`` bytes: the write that
    crosses it stores what fits, then raises ENOSPC, as write(2) does."""

    def __init__(self, real: BinaryIO, room: int) -> None:
        self._real = real
        self._room = room

    def write(self, data: bytes | memoryview) -> int:
        if not self._room:
            raise OSError(errno.ENOSPC, "No space left on device")
        part = bytes(data[: self._room])
        self._room -= len(part)
        return self._real.write(part) or 0

    def close(self) -> None:
        self._real.close()


def test_a_write_cut_short_by_enospc_leaves_no_torn_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated at the file-object level, for machines where no tmpfs can be mounted."""
    real_open = _spool._open_append
    monkeypatch.setattr(_spool, "_open_append", lambda fd: _FullDiskFile(real_open(fd), 150))
    spool = Spool.open(_DESTINATION, root=tmp_path)
    spool.append([_event(0)], 1)
    spool.append([_event(1), _event(2)], 1)  # crosses the 150 bytes
    spool.append([_event(3)], 1)
    assert spool.in_memory
    _assert_one_warning(caplog)
    [segment] = _segments(tmp_path)
    assert segment.read_text() == (
        '{"time_unix_nano":1,"event":{"event_type":"codex_hook_run","event_params":{"index":0}}}\n'
    )
    spool.acknowledge(4)  # the first from disk, the rest from memory
    spool.close()
    assert _segments(tmp_path) == []


# --- diagnostics ---------------------------------------------------------------------------


def test_list_spool_tells_what_is_waiting_and_who_holds_it(tmp_path: Path) -> None:
    dead = Spool.open(_DESTINATION, root=tmp_path, label="otlp http://localhost:4318/v1/logs")
    dead.append([_SKILL, _SKILL], 1_764_000_000_000_000_000)
    dead.acknowledge(1)
    _die(dead)
    alive = Spool.open(_DESTINATION, root=tmp_path)
    alive.append([_SKILL], 1_764_000_000_000_000_001)
    alive.take(0)

    [summary] = list_spool(tmp_path)
    assert summary.label == "otlp http://localhost:4318/v1/logs"
    assert [(s.events, s.bytes, s.oldest_timestamp_ns, s.owner) for s in summary.segments] == [
        (1, len(_SKILL_LINE), 1_764_000_000_000_000_000, "alive"),  # claimed by the live one
        (1, len(_SKILL_LINE), 1_764_000_000_000_000_001, "alive"),
    ]
    _die(alive)
    [summary] = list_spool(tmp_path, destination=_DESTINATION)
    assert [s.owner for s in summary.segments] == ["orphaned", "orphaned"]
    assert (summary.events, summary.bytes) == (2, 2 * len(_SKILL_LINE))
    assert summary.oldest_timestamp_ns == 1_764_000_000_000_000_000
    assert list_spool(tmp_path, destination="elsewhere") == []
    assert list_spool(tmp_path / "missing") == []


def test_purge_deletes_orphans_and_leaves_living_segments(tmp_path: Path) -> None:
    dead = Spool.open(_DESTINATION, root=tmp_path)
    dead.append([_event(0), _event(1)], 1)
    _die(dead)
    alive = Spool.open("another destination", root=tmp_path)
    alive.append([_event(2)], 1)

    result = purge_spool(tmp_path)
    assert (result.segments, result.events) == (1, 2)
    assert _segments(tmp_path) == []
    assert len(_segments(tmp_path, "another destination")) == 1
    alive.close()


def test_drain_delivers_orphans_through_a_callable_until_it_refuses(tmp_path: Path) -> None:
    writer = Spool.open(_DESTINATION, root=tmp_path)
    writer.append([_event(index) for index in range(5)], 1)
    _die(writer)
    sent: list[list[int]] = []

    def send(batch: Any) -> bool:
        sent.append(_indices(list(batch)))
        return len(sent) < 3

    result = drain_orphans(send, destination=_DESTINATION, root=tmp_path, batch_size=2)
    assert sent == [[0, 1], [2, 3], [4]]
    assert (result.delivered, result.stopped_early) == (4, True)
    result = drain_orphans(lambda batch: True, destination=_DESTINATION, root=tmp_path)
    assert (result.delivered, result.stopped_early) == (1, False)
    assert _segments(tmp_path) == []
    result = drain_orphans(lambda batch: True, destination="unknown", root=tmp_path)
    assert (result.delivered, result.stopped_early) == (0, False)
    assert not _folder(tmp_path, "unknown").exists()


def test_typed_events_are_spooled_as_their_exact_wire_objects(tmp_path: Path) -> None:
    workload = _workload.Workload()
    facts = [*_workload.setup_facts(workload), *_workload.turn_facts(workload, 40)]
    reducer = _workload.new_reducer()
    events = [event for fact in facts for event in reducer.ingest(fact)]
    turn = next(event for event in events if isinstance(event, TurnEvent))
    events.append(
        dataclasses.replace(
            turn,
            model='caf\udce9 ✓ "quoted"\n',
            turn_error={"codex_error_info": {"nested": [1, 2.5, None, True, "naïve"]}},
        )
    )
    assert len({event.event_type for event in events}) >= 7
    spool = Spool.open(_DESTINATION, root=tmp_path)
    spool.append(events, 1)
    [segment] = _segments(tmp_path)
    assert segment.read_text().splitlines() == [
        f'{{"time_unix_nano":1,"event":{json.dumps(event.to_dict(), separators=(",", ":"))}}}'
        for event in events
    ]
    _die(spool)

    replayed = _take_all(Spool.open(_DESTINATION, root=tmp_path))
    assert [event.wire for event in replayed] == [event.to_dict() for event in events]
    for original, event in zip(events, replayed, strict=True):
        rebuilt = event.to_event()
        assert type(rebuilt) is type(original)
        assert rebuilt == original


@functools.cache
def _a_turn_event() -> TurnEvent:
    workload = _workload.Workload()
    facts = [*_workload.setup_facts(workload), *_workload.turn_facts(workload, 1)]
    reducer = _workload.new_reducer()
    events = [event for fact in facts for event in reducer.ingest(fact)]
    return next(event for event in events if isinstance(event, TurnEvent))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(text=st.text(), number=st.integers(min_value=-(2**70), max_value=2**70), error=_JSON_VALUES)
def test_the_direct_encoding_is_the_wire_objects_json(text: str, number: int, error: Any) -> None:
    event = dataclasses.replace(_a_turn_event(), model=text, input_tokens=number, turn_error=error)
    assert _spool._encode_event(event) == json.dumps(event.to_dict(), separators=(",", ":"))


def test_a_wire_object_that_is_no_event_is_refused() -> None:
    with pytest.raises(ValueError, match="not an analytics event"):
        event_from_wire({"event_type": "nope", "event_params": {}})
    with pytest.raises(ValueError, match="not a codex_hook_run event"):
        event_from_wire({"event_type": "codex_hook_run", "event_params": {}})


# --- processes that die --------------------------------------------------------------------

_CHILD = """
import json, sys, time
from pathlib import Path
from codex_telemetry._spool import Spool

root, destination, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "stream":  # append one event at a time, saying so after each append returned
    spool = Spool.open(destination, root=root, max_bytes=1 << 30)
    index = 0
    while True:
        spool.append([{"event_type": "e", "event_params": {"index": index, "pad": "x" * 300}}], 1)
        print(index, flush=True)
        index += 1
elif mode == "segments":  # one segment per spool, then wait to be killed
    first, count, per = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    spools = [Spool.open(destination, root=root) for _ in range(count)]
    for number, spool in enumerate(spools):
        start = first + number * per
        indices = range(start, start + per)
        events = [{"event_type": "e", "event_params": {"index": i}} for i in indices]
        spool.append(events, 1)
    print("ready", flush=True)
    time.sleep(120)
elif mode == "claim":  # claim, wait for the word, then take everything (acknowledging some)
    acknowledge, then = int(sys.argv[4]), sys.argv[5]
    spool = Spool.open(destination, root=root)
    print("claimed", flush=True)
    sys.stdin.readline()
    taken = []
    while batch := spool.take(7):
        taken.extend(event.wire["event_params"]["index"] for event in batch)
    spool.acknowledge(acknowledge)
    print(json.dumps(taken), flush=True)
    if then == "hang":
        time.sleep(120)
    spool.close()
"""


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    home = tmp_path / f"home-{len(list(tmp_path.glob('home-*')))}"
    home.mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CHILD), str(tmp_path / "spool"), *args],
        cwd=_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(home), "PYTHONPATH": str(_ROOT)},
    )


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, process.communicate(timeout=10)[1]
    return line.strip()


def _kill(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    process.send_signal(sig)
    process.communicate(timeout=30)
    assert process.returncode == -sig


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_process_killed_mid_stream_loses_nothing_that_append_returned(
    tmp_path: Path, sig: signal.Signals
) -> None:
    writer = _start(tmp_path, _DESTINATION, "stream")
    while (last := int(_line(writer))) < 300:
        pass
    _kill(writer, sig)  # SIGTERM with Python's default handling: no atexit, no clean-up

    spool = Spool.open(_DESTINATION, root=tmp_path / "spool")
    recovered = _indices(_take_all(spool))
    assert len(recovered) > last  # every append that returned, and maybe one more
    assert recovered == list(range(len(recovered)))  # in order, no gap, no duplicate
    # The kernel may cut the write in flight short when a fatal signal comes (it stops
    # copying once one is pending): that append never returned, and its partial line is
    # counted and skipped, never read as an event.
    assert spool.stats().truncated_lines <= 1
    spool.close()


def test_processes_claiming_at_once_get_disjoint_events(tmp_path: Path) -> None:
    writer = _start(tmp_path, _DESTINATION, "segments", "0", "8", "25")
    assert _line(writer) == "ready"
    _kill(writer, signal.SIGKILL)

    claimers = [_start(tmp_path, _DESTINATION, "claim", "0", "exit") for _ in range(2)]
    for claimer in claimers:
        assert _line(claimer) == "claimed"  # both alive, both holding what they claimed
    results: list[list[int]] = []
    for claimer in claimers:
        assert claimer.stdin is not None
        claimer.stdin.write("go\n")
        claimer.stdin.flush()
    for claimer in claimers:
        results.append(json.loads(_line(claimer)))
        claimer.communicate(timeout=30)
    first, second = (set(result) for result in results)
    assert not first & second
    assert sorted(first | second) == list(range(200))


def test_a_claimer_that_dies_mid_replay_leaves_the_rest_to_the_next(tmp_path: Path) -> None:
    writer = _start(tmp_path, _DESTINATION, "segments", "0", "2", "30")
    assert _line(writer) == "ready"
    _kill(writer, signal.SIGKILL)

    claimer = _start(tmp_path, _DESTINATION, "claim", "40", "hang")
    assert _line(claimer) == "claimed"
    assert claimer.stdin is not None
    claimer.stdin.write("go\n")
    claimer.stdin.flush()
    assert json.loads(_line(claimer)) == list(range(60))
    _kill(claimer, signal.SIGKILL)  # 40 acknowledged, 20 taken and in flight

    spool = Spool.open(_DESTINATION, root=tmp_path / "spool")
    assert _indices(_take_all(spool)) == list(range(40, 60))
    spool.close()


# --- housekeeping, threads and forks -------------------------------------------------------


def test_the_default_directory_is_the_users_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    spool = Spool.open(_DESTINATION)
    spool.append([_event(0)], 1)
    expected = tmp_path / "home" / ".cache" / "codex-telemetry" / "spool"
    assert spool.stats().directory == _folder(expected)
    assert len(_segments(expected)) == 1
    spool.close()


def test_leftovers_of_interrupted_steps_are_cleaned_up(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    folder.mkdir(mode=0o700)
    stale = folder / ".00000000000000000001-1-0000aaaa.new"  # created, never renamed
    fresh = folder / ".00000000000000000002-1-0000bbbb.new"  # being created right now
    stray = folder / "00000000000000000003-1-0000cccc.ack"  # its segment was deleted
    for path in (stale, fresh, stray):
        path.write_text("")
    os.utime(stale, (1, 1))
    target = tmp_path / "elsewhere.jsonl"
    target.write_text(f'{{"time_unix_nano":5,"event":{json.dumps(_event(0))}}}\n')
    (folder / "00000000000000000004-1-0000dddd.jsonl").symlink_to(target)

    spool = Spool.open(_DESTINATION, root=tmp_path)
    assert sorted(path.name for path in folder.iterdir()) == [
        ".00000000000000000002-1-0000bbbb.new",
        "00000000000000000004-1-0000dddd.jsonl",  # a link is never claimed nor deleted
        "DESTINATION",
    ]
    assert _take_all(spool) == []
    assert target.exists()
    spool.close()


def test_appends_and_acknowledgements_from_two_threads(tmp_path: Path) -> None:
    spool = Spool.open(_DESTINATION, root=tmp_path, max_bytes=1 << 30)
    appended = threading.Semaphore(0)

    def acknowledge() -> None:
        for _ in range(2000):
            appended.acquire()
            spool.acknowledge(1)

    acknowledger = threading.Thread(target=acknowledge)
    acknowledger.start()
    for index in range(2000):
        spool.append([_event(index)], 1)
        appended.release()
    acknowledger.join(30)
    assert spool.stats().pending == 0
    spool.close()
    assert _segments(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_leaves_its_parents_segment_alone(tmp_path: Path) -> None:
    parent = Spool.open(_DESTINATION, root=tmp_path)
    parent.append([_event(0)], 1)
    pid = os.fork()
    if pid == 0:  # the child: forget the parent's segment, spool on its own
        status = 1
        try:
            parent.close_after_fork()
            child = Spool.open(_DESTINATION, root=tmp_path)
            child.append([_event(1)], 1)
            status = 0 if child.take(10) == [] else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    assert len(_segments(tmp_path)) == 2
    claimer = Spool.open(_DESTINATION, root=tmp_path)
    assert _indices(_take_all(claimer)) == [1]  # the child's, orphaned; the parent's is alive
    claimer.close()
    parent.acknowledge(1)
    parent.close()


def test_one_append_can_carry_a_timestamp_for_each_event(tmp_path: Path) -> None:
    spool = Spool.open(_DESTINATION, root=tmp_path)
    events = [_event(0), _event(1), _event(2)]
    assert spool.append(events, 5, hand_out=False, timestamps=[5, 5, 7]) is False
    taken = spool.take(10)
    assert [(item.timestamp_ns, item.wire) for item in taken] == [
        (5, {"event_type": "codex_hook_run", "event_params": {"index": 0}}),
        (5, {"event_type": "codex_hook_run", "event_params": {"index": 1}}),
        (7, {"event_type": "codex_hook_run", "event_params": {"index": 2}}),
    ]
    spool.close()
