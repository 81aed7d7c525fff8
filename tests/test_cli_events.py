"""``codex-telemetry show`` and ``tail``: readable lines, filters, following a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import CLI

EVENTS = [
    {
        "event_type": "codex_thread_initialized",
        "event_params": {
            "thread_id": "t1",
            "app_server_client": {"product_client_id": "my-ide"},
            "model": "gpt-5",
            "ephemeral": False,
            "thread_source": "user",
            "initialization_mode": "new",
            "created_at": 1795573823,
        },
    },
    {
        "event_type": "skill_invocation",
        "skill_id": "1f0a",
        "skill_name": "doc",
        "event_params": {
            "product_client_id": "codex_cli_rs",
            "skill_scope": "user",
            "repo_url": None,
            "thread_id": "t1",
            "invoke_type": "explicit",
            "model_slug": "gpt-5",
        },
    },
    {
        "event_type": "codex_turn_steer_event",
        "event_params": {
            "thread_id": "t2",
            "expected_turn_id": "u9",
            "accepted_turn_id": None,
            "result": "rejected",
            "rejection_reason": "no_active_turn",
        },
    },
    {
        "event_type": "codex_app_used",
        "event_params": {
            "connector_id": "gdrive",
            "thread_id": "t1",
            "turn_id": "u1",
            "app_name": "Google Drive",
            "product_client_id": "codex_cli_rs",
            "invoke_type": "explicit",
            "model_slug": "gpt-5",
        },
    },
    {
        "event_type": "codex_turn_event",
        "event_params": {
            "thread_id": "t1",
            "turn_id": "u1",
            "status": "completed",
            "model": "gpt-5",
            "total_tokens": 1550,
            "duration_ms": 9150,
        },
    },
    {"event_type": "codex_future_event", "event_params": {"thread_id": "t1", "size": 3}},
]
JSONL = "".join(json.dumps(event) + "\n" for event in EVENTS)


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    runner = CLI(tmp_path)
    (runner.cwd / "events.jsonl").write_text(JSONL)
    return runner


def test_show_prints_one_readable_line_per_event(cli: CLI) -> None:
    result = cli.run("show", "events.jsonl")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "codex_thread_initialized   thread=t1 mode=new model=gpt-5 source=user\n"
        "skill_invocation           skill=doc thread=t1 scope=user invoked=explicit\n"
        "codex_turn_steer_event     thread=t2 turn=u9 result=rejected reason=no_active_turn\n"
        'codex_app_used             thread=t1 turn=u1 connector=gdrive app="Google Drive"\n'
        "codex_turn_event           thread=t1 turn=u1 status=completed model=gpt-5 "
        "tokens=1550 duration_ms=9150\n"
        "codex_future_event         thread=t1 size=3\n"
    )


def test_show_filters_by_type_and_thread_from_standard_input(cli: CLI) -> None:
    result = cli.run("show", "-t", "codex_turn_event", "-t", "codex_turn_steer_event", stdin=JSONL)
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "codex_turn_steer_event     thread=t2 turn=u9 result=rejected reason=no_active_turn\n"
        "codex_turn_event           thread=t1 turn=u1 status=completed model=gpt-5 "
        "tokens=1550 duration_ms=9150\n"
    )
    result = cli.run("show", "--thread", "t2", "--json", "events.jsonl")
    assert result.out == (
        '{"event_type":"codex_turn_steer_event","event_params":{"thread_id":"t2",'
        '"expected_turn_id":"u9","accepted_turn_id":null,"result":"rejected",'
        '"rejection_reason":"no_active_turn"}}\n'
    )


def test_show_verbose_adds_the_whole_event(cli: CLI) -> None:
    result = cli.run("show", "--verbose", "--thread", "t2", "events.jsonl")
    assert result.out == (
        "codex_turn_steer_event     thread=t2 turn=u9 result=rejected reason=no_active_turn\n"
        "    {\n"
        '      "event_type": "codex_turn_steer_event",\n'
        '      "event_params": {\n'
        '        "thread_id": "t2",\n'
        '        "expected_turn_id": "u9",\n'
        '        "accepted_turn_id": null,\n'
        '        "result": "rejected",\n'
        '        "rejection_reason": "no_active_turn"\n'
        "      }\n"
        "    }\n"
    )


def test_tail_prints_the_last_matching_events(cli: CLI) -> None:
    result = cli.run("tail", "-n", "2", "--thread", "t1", "events.jsonl")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "codex_turn_event           thread=t1 turn=u1 status=completed model=gpt-5 "
        "tokens=1550 duration_ms=9150\n"
        "codex_future_event         thread=t1 size=3\n"
    )


def test_tail_follow_needs_a_file(cli: CLI) -> None:
    result = cli.run("tail", "-f", stdin=JSONL)
    assert result.code == 1
    assert result.err == "codex-telemetry: --follow needs a file, not standard input\n"


def test_tail_follow_prints_events_as_they_are_appended(cli: CLI) -> None:
    path = cli.cwd / "events.jsonl"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cli.home)}
    with subprocess.Popen(
        [sys.executable, "-m", "codex_telemetry", "tail", "-f", "-n", "1", "-t",
         "codex_turn_event", str(path)],
        cwd=cli.cwd, env=env, stdout=subprocess.PIPE, text=True,
    ) as follower:  # fmt: skip
        try:
            assert follower.stdout is not None
            first = follower.stdout.readline()
            with path.open("a") as file:
                # Half a line first: nothing is printed until the line is whole.
                line = json.dumps(EVENTS[4]).replace('"u1"', '"u2"')
                file.write(json.dumps(EVENTS[1]) + "\n" + line[:20])
                file.flush()
                file.write(line[20:] + "\n")
            second = follower.stdout.readline()
        finally:
            follower.terminate()
    assert first == (
        "codex_turn_event           thread=t1 turn=u1 status=completed model=gpt-5 "
        "tokens=1550 duration_ms=9150\n"
    )
    assert second == (
        "codex_turn_event           thread=t1 turn=u2 status=completed model=gpt-5 "
        "tokens=1550 duration_ms=9150\n"
    )


def test_a_line_that_is_not_an_event_is_one_error_line(cli: CLI) -> None:
    result = cli.run("show", stdin=JSONL + "[1, 2]\n")
    assert result.code == 1
    assert result.err == "codex-telemetry: <stdin>:7: not a JSON object\n"


def test_old_lines_and_lines_with_a_timestamp_read_alike(cli: CLI) -> None:
    # What the file exporter writes now: the wire object plus "timestamp".
    from codex_telemetry._export._base import DeliveryCounters  # noqa: PLC0415
    from codex_telemetry._export._file import FileSink  # noqa: PLC0415
    from codex_telemetry.events import HookRunEvent  # noqa: PLC0415

    sink = FileSink(cli.cwd / "events.jsonl", DeliveryCounters())
    hook = HookRunEvent("t1", "u1", "gpt-5", "Stop", "user", "completed")
    sink.export([hook], 1_796_292_000_123_456_789)
    assert sink.shutdown(5.0)
    [*_, new_line] = (cli.cwd / "events.jsonl").read_text().splitlines()
    assert new_line.startswith('{"timestamp":"2026-12-03T10:00:00.123456Z","event_type":')

    result = cli.run("tail", "-n", "2", "events.jsonl")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "codex_future_event         thread=t1 size=3\n"
        "codex_hook_run             thread=t1 turn=u1 hook=Stop status=completed\n"
    )
    result = cli.run("show", "-t", "codex_hook_run", "--json", "events.jsonl")
    assert result.out == new_line + "\n"  # the line as written, timestamp included
    result = cli.run("report", "--json", "events.jsonl")
    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out)["events"] == 7
