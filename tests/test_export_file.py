"""The file sink: JSON Lines of wire events, appended to a file only its owner can read."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._factory import create_sink
from codex_telemetry._export._file import FileSink, event_line, timestamp_text
from codex_telemetry._settings import TelemetrySettings
from codex_telemetry.events import AppServerClient, SkillInvocationEvent, ThreadInitializedEvent
from codex_telemetry.facts import RuntimeMetadata

SKILL = SkillInvocationEvent(
    skill_id="037cfe53fd881d2ea36aec8302ccde76376a0f7a",
    skill_name="doc",
    product_client_id="codex_cli_rs",
    skill_scope="user",
    repo_url=None,
    thread_id="thread-2",
    invoke_type="explicit",
    model_slug="gpt-5",
)
THREAD = ThreadInitializedEvent(
    thread_id="thread-2",
    app_server_client=AppServerClient("codex-tui", "codex-tui", "1.0.0", "stdio", None),
    runtime=RuntimeMetadata("0.1.0", "macos", "15.3.1", "aarch64"),
    model="gpt-5",
    ephemeral=False,
    thread_source="user",
    initialization_mode="new",
    subagent_source=None,
    parent_thread_id=None,
    created_at=1,
)

# When the events were produced; a line starts with it, to the microsecond, in UTC.
PRODUCED = 1_796_292_000_123_456_789
STAMP = '{"timestamp":"2026-12-03T10:00:00.123456Z",'
LATER = PRODUCED + 1_500_000_000
LATER_STAMP = '{"timestamp":"2026-12-03T10:00:01.623456Z",'

SKILL_LINE = (
    '"event_type":"skill_invocation","skill_id":"037cfe53fd881d2ea36aec8302ccde76376a0f7a",'
    '"skill_name":"doc","event_params":{"product_client_id":"codex_cli_rs","skill_scope":"user",'
    '"repo_url":null,"thread_id":"thread-2","invoke_type":"explicit","model_slug":"gpt-5"}}\n'
)
THREAD_LINE = (
    '"event_type":"codex_thread_initialized","event_params":{"thread_id":"thread-2",'
    '"app_server_client":{"product_client_id":"codex-tui","client_name":"codex-tui",'
    '"client_version":"1.0.0","rpc_transport":"stdio","experimental_api_enabled":null},'
    '"runtime":{"codex_rs_version":"0.1.0","runtime_os":"macos","runtime_os_version":"15.3.1",'
    '"runtime_arch":"aarch64"},"model":"gpt-5","ephemeral":false,"thread_source":"user",'
    '"initialization_mode":"new","subagent_source":null,"parent_thread_id":null,'
    '"created_at":1}}\n'
)


def test_events_are_written_as_literal_json_lines_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery)

    sink.export([THREAD, SKILL], PRODUCED)
    assert sink.force_flush(5.0) is True

    assert path.read_text(encoding="utf-8") == STAMP + THREAD_LINE + STAMP + SKILL_LINE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sink.shutdown(1.0) is True
    assert delivery.exported.value == 2
    # Each line is the wire object plus the one "timestamp" key.
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"timestamp": "2026-12-03T10:00:00.123456Z", **THREAD.to_dict()},
        {"timestamp": "2026-12-03T10:00:00.123456Z", **SKILL.to_dict()},
    ]


def test_a_second_sink_appends(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    first = FileSink(path, DeliveryCounters())
    first.export([SKILL], PRODUCED)
    assert first.shutdown(5.0) is True

    second = FileSink(path, DeliveryCounters())
    second.export([THREAD], LATER)
    assert second.shutdown(5.0) is True

    assert path.read_text(encoding="utf-8") == STAMP + SKILL_LINE + LATER_STAMP + THREAD_LINE


def test_shutdown_writes_what_was_queued(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = FileSink(path, DeliveryCounters(), interval=60.0)
    sink.export([SKILL] * 3, PRODUCED)
    assert sink.shutdown(5.0) is True
    assert path.read_text(encoding="utf-8") == (STAMP + SKILL_LINE) * 3


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("")
    path.chmod(0o640)
    sink = FileSink(path, DeliveryCounters())
    sink.shutdown(1.0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_factory_builds_a_file_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "from-settings.jsonl"
    settings = TelemetrySettings(exporter="file", file={"path": path})
    sink = create_sink(settings, DeliveryCounters())
    sink.export([SKILL], PRODUCED)
    assert sink.shutdown(5.0) is True
    assert path.read_text(encoding="utf-8") == STAMP + SKILL_LINE


# --- a full disk, a rotated or deleted file, a named pipe ---------------------------------


def skills(first: int, count: int) -> list[SkillInvocationEvent]:
    return [
        dataclasses.replace(SKILL, skill_name=f"skill-{n:05d}") for n in range(first, first + count)
    ]


def check_whole_lines(path: Path, delivery: DeliveryCounters) -> list[str]:
    """Every line on disk is whole, and exactly the lines counted exported are there."""
    data = path.read_bytes()
    assert data.endswith(b"\n") or not data
    names = [json.loads(line)["skill_name"] for line in data.decode("utf-8").splitlines()]
    assert len(names) == delivery.exported.value
    return names


_FILL_BATCH = 400  # events of about 250 bytes: 100 KB, more than the small file system holds


def _fill_then_free(directory: Path) -> tuple[list[str], DeliveryCounters]:
    """Write a batch into a file system that fills up in the middle of it, free the space,
    write another batch: the names on disk and the counters."""
    ballast = directory / "ballast"
    path = directory / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery, interval=60.0, batch_size=_FILL_BATCH)
    sink.export(skills(0, _FILL_BATCH), 1)
    assert sink.force_flush(10.0) is False  # the disk filled up mid-batch
    dropped = delivery.dropped.snapshot()
    assert set(dropped) == {"file_error"}
    assert 0 < dropped["file_error"] < _FILL_BATCH
    check_whole_lines(path, delivery)  # nothing half-written is left, nor counted
    ballast.unlink(missing_ok=True)
    sink.export(skills(_FILL_BATCH, 3), 1)
    assert sink.force_flush(10.0) is True
    sink.shutdown(1.0)
    return check_whole_lines(path, delivery), delivery


def _mount_tmpfs(directory: Path, size: str) -> bool:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_a_full_disk_leaves_only_whole_lines_counted_as_written(tmp_path: Path) -> None:
    # A real full file system: a 64 KiB tmpfs (needs root to mount).
    directory = tmp_path / "small"
    directory.mkdir()
    if not _mount_tmpfs(directory, "64k"):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    try:
        (directory / "ballast").write_bytes(b"x" * 16_384)
        names, delivery = _fill_then_free(directory)
        written = delivery.exported.value - 3
        assert names == [f"skill-{n:05d}" for n in range(written)] + [
            f"skill-{n:05d}" for n in range(_FILL_BATCH, _FILL_BATCH + 3)
        ]
        assert delivery.exported.value + delivery.dropped.total == _FILL_BATCH + 3
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


_FILE_SIZE_LIMIT_CHILD = """
import json, resource, signal, sys
from pathlib import Path
from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._file import FileSink
from tests.test_export_file import _FILL_BATCH, skills

# A write past RLIMIT_FSIZE stops where the limit is, then fails with EFBIG: the same
# partial write a full disk makes, without root.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
path = Path(sys.argv[1])
delivery = DeliveryCounters()
sink = FileSink(path, delivery, interval=60.0, batch_size=_FILL_BATCH)
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))
sink.export(skills(0, _FILL_BATCH), 1)
first = sink.force_flush(10.0)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
sink.export(skills(_FILL_BATCH, 3), 1)
second = sink.force_flush(10.0)
sink.shutdown(1.0)
print(json.dumps([first, second, delivery.exported.value, delivery.dropped.snapshot()]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_write_cut_short_leaves_only_whole_lines_and_the_next_line_starts_clean(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    environment = {**os.environ, "HOME": str(tmp_path)}
    child = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT_CHILD, str(path)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=Path(__file__).parent.parent,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    first, second, exported, dropped = json.loads(child.stdout)
    assert (first, second) == (False, True)
    assert set(dropped) == {"file_error"}
    assert exported + dropped["file_error"] == _FILL_BATCH + 3
    data = path.read_bytes()
    assert data.endswith(b"\n")
    names = [json.loads(line)["skill_name"] for line in data.decode("utf-8").splitlines()]
    assert len(names) == exported
    assert names == [f"skill-{n:05d}" for n in range(exported - 3)] + [
        f"skill-{n:05d}" for n in range(_FILL_BATCH, _FILL_BATCH + 3)
    ]


def test_a_file_rotated_away_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery, interval=60.0)
    sink.export(skills(0, 2), 1)
    assert sink.force_flush(10.0) is True
    path.rename(tmp_path / "events.jsonl.1")  # what logrotate does
    sink.export(skills(2, 2), 1)
    assert sink.force_flush(10.0) is True
    sink.shutdown(1.0)
    rotated = (tmp_path / "events.jsonl.1").read_text("utf-8").splitlines()
    assert [json.loads(line)["skill_name"] for line in rotated] == ["skill-00000", "skill-00001"]
    current = path.read_text("utf-8").splitlines()
    assert [json.loads(line)["skill_name"] for line in current] == ["skill-00002", "skill-00003"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert delivery.exported.value == 4


def test_a_file_deleted_while_running_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery, interval=60.0)
    sink.export(skills(0, 2), 1)
    assert sink.force_flush(10.0) is True
    path.unlink()
    sink.export(skills(2, 3), 1)
    assert sink.force_flush(10.0) is True
    sink.shutdown(1.0)
    current = path.read_text("utf-8").splitlines()
    assert [json.loads(line)["skill_name"] for line in current] == [
        "skill-00002",
        "skill-00003",
        "skill-00004",
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert delivery.exported.value == 5


def test_events_are_not_counted_written_into_a_file_that_cannot_be_created_again(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    path = directory / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery, interval=60.0)
    path.unlink()
    directory.rmdir()
    sink.export(skills(0, 2), 1)
    assert sink.force_flush(10.0) is False
    sink.shutdown(1.0)
    assert delivery.exported.value == 0
    assert delivery.dropped.snapshot() == {"file_error": 2}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_opening_a_named_pipe_with_no_reader_fails_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "events.jsonl"
    os.mkfifo(pipe)
    outcome: list[BaseException | None] = []

    def open_sink() -> None:
        try:
            FileSink(pipe, DeliveryCounters()).shutdown(0.1)
        except OSError as error:
            outcome.append(error)
        else:
            outcome.append(None)

    opener = threading.Thread(target=open_sink, daemon=True)
    opener.start()
    opener.join(10.0)
    if opener.is_alive():  # blocked in open(): release it before failing
        os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
        pytest.fail("opening a named pipe with no reader blocked")
    [error] = outcome
    assert isinstance(error, OSError)
    assert "named pipe" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_with_a_reader_receives_the_lines(tmp_path: Path) -> None:
    # /dev/stdout piped into another program: a named pipe, whose reader is there.
    pipe = tmp_path / "events.jsonl"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        delivery = DeliveryCounters()
        sink = FileSink(pipe, delivery, interval=60.0)
        sink.export([SKILL], PRODUCED)
        assert sink.force_flush(10.0) is True
        sink.shutdown(1.0)
        assert os.read(reader, 65_536).decode("utf-8") == STAMP + SKILL_LINE
    finally:
        os.close(reader)
    assert delivery.exported.value == 1


def test_the_timestamp_is_utc_to_the_microsecond() -> None:
    assert timestamp_text(0) == "1970-01-01T00:00:00.000000Z"
    assert timestamp_text(PRODUCED) == "2026-12-03T10:00:00.123456Z"
    assert timestamp_text(1_796_292_000_999_999_999) == "2026-12-03T10:00:00.999999Z"


def test_a_line_is_the_timestamp_then_the_wire_object() -> None:
    line = json.loads(event_line(SKILL, PRODUCED))
    assert list(line) == ["timestamp", "event_type", "skill_id", "skill_name", "event_params"]
