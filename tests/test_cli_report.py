"""``codex-telemetry replay`` and ``report`` on the recorded app-server sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import CLI
from tests.test_observer import FIXTURES

SESSIONS = sorted(path.name for path in FIXTURES.glob("*.jsonl"))


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture(scope="module")
def recorded_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every recorded session replayed by the tool, one after the other, in one file."""
    runner = CLI(tmp_path_factory.mktemp("replayed"))
    lines = []
    for name in SESSIONS:
        result = runner.run("replay", str(FIXTURES / name))
        assert result.code == 0, result.err
        lines.append(result.out)
    path = runner.cwd / "recorded.jsonl"
    path.write_text("".join(lines))
    return path


def test_every_session_is_replayed(recorded_events: Path) -> None:
    assert SESSIONS == [
        "a_thread_start.jsonl",
        "b_resume_fork.jsonl",
        "c_full_turn.jsonl",
        "d_turn_failed.jsonl",
        "e_steer.jsonl",
        "f_compact_archive_interrupt.jsonl",
        "g_tools.jsonl",
        "h_skill_review_goal.jsonl",
    ]
    assert len(recorded_events.read_text().splitlines()) == 36


def test_report_of_the_recorded_sessions(cli: CLI, recorded_events: Path) -> None:
    result = cli.run("report", str(recorded_events))
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "events: 36\n"
        "\n"
        "events by type\n"
        "event type                events\n"
        "codex_turn_event              20\n"
        "codex_thread_initialized      13\n"
        "codex_turn_steer_event         3\n"
        "\n"
        "turns by status\n"
        "status       turns\n"
        "completed       15\n"
        "failed           4\n"
        "interrupted      1\n"
        "\n"
        "tokens by model\n"
        "model       turns  input  cached  output  reasoning  total\n"
        "mock-model     20  27148    4400    1232        154  28380\n"
        "\n"
        "steers: 1 accepted, 2 rejected\n"
        "rejection reason        steers\n"
        "expected_turn_mismatch       1\n"
        "no_active_turn               1\n"
        "\n"
        "top skills: none\n"
        "\n"
        "top apps: none\n"
        "\n"
        "top plugins: none\n"
        "\n"
        "events by client\n"
        "client           events\n"
        "oracle-recorder      36\n"
    )


def test_report_json_of_the_recorded_sessions(cli: CLI, recorded_events: Path) -> None:
    result = cli.run("report", "--json", stdin=recorded_events.read_text())
    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == {
        "events": 36,
        "events_by_type": {
            "codex_turn_event": 20,
            "codex_thread_initialized": 13,
            "codex_turn_steer_event": 3,
        },
        "turns_by_status": {"completed": 15, "failed": 4, "interrupted": 1},
        "tokens_by_model": {
            "mock-model": {
                "turns": 20,
                "input_tokens": 27148,
                "cached_input_tokens": 4400,
                "output_tokens": 1232,
                "reasoning_output_tokens": 154,
                "total_tokens": 28380,
            }
        },
        "steers": {
            "accepted": 1,
            "rejected": 2,
            "rejection_reasons": {"expected_turn_mismatch": 1, "no_active_turn": 1},
        },
        "top_skills": [],
        "top_apps": [],
        "top_plugins": [],
        "events_by_client": {"oracle-recorder": 36},
    }


def event(event_type: str, **params: object) -> str:
    return json.dumps({"event_type": event_type, "event_params": params})


SKILL = (
    '{"event_type":"skill_invocation","skill_id":"1f0a","skill_name":"doc",'
    '"event_params":{"product_client_id":"codex_cli_rs","skill_scope":"user",'
    '"repo_url":null,"thread_id":"t1","invoke_type":"explicit","model_slug":"gpt-5"}}'
)
MIXED = "\n".join(
    [
        SKILL,
        SKILL,
        SKILL.replace('"doc"', '"lint"'),
        event("codex_app_used", connector_id="gmail", thread_id="t1", turn_id="u1",
              product_client_id="codex_cli_rs"),
        event("codex_app_mentioned", connector_id="gmail", thread_id="t1", turn_id="u1",
              product_client_id="codex_cli_rs"),
        event("codex_app_mentioned", connector_id=None, app_name="Drive", thread_id="t1",
              turn_id="u1", product_client_id="codex_cli_rs"),
        event("codex_plugin_used", plugin_id="docs@openai", thread_id="t1", turn_id="u1",
              product_client_id="codex_cli_rs"),
        event("codex_turn_event", thread_id="t1", turn_id="u1", status=None, model="gpt-5",
              input_tokens=10, cached_input_tokens=None, output_tokens=5,
              reasoning_output_tokens=None, total_tokens=15,
              app_server_client={"product_client_id": "my-ide"}),
        event("codex_hook_run", thread_id="t1", turn_id="u1", hook_name="fmt", status="completed"),
    ]
) + "\n"  # fmt: skip


def test_report_of_skills_apps_and_plugins(cli: CLI) -> None:
    (cli.cwd / "events.jsonl").write_text(MIXED)
    result = cli.run("report", "--top", "1", "events.jsonl")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "events: 9\n"
        "\n"
        "events by type\n"
        "event type           events\n"
        "skill_invocation          3\n"
        "codex_app_mentioned       2\n"
        "codex_app_used            1\n"
        "codex_hook_run            1\n"
        "codex_plugin_used         1\n"
        "codex_turn_event          1\n"
        "\n"
        "turns by status\n"
        "status  turns\n"
        "(none)      1\n"
        "\n"
        "tokens by model\n"
        "model  turns  input  cached  output  reasoning  total\n"
        "gpt-5      1     10       0       5          0     15\n"
        "\n"
        "steers: 0 accepted, 0 rejected\n"
        "\n"
        "top skills\n"
        "skill  invocations\n"
        "doc              2\n"
        "\n"
        "top apps\n"
        "app    used  mentioned\n"
        "gmail     1          1\n"
        "\n"
        "top plugins\n"
        "plugin       used\n"
        "docs@openai     1\n"
        "\n"
        "events by client\n"
        "client        events\n"
        "codex_cli_rs       7\n"
        "(none)             1\n"
        "my-ide             1\n"
    )


def test_report_of_nothing(cli: CLI) -> None:
    result = cli.run("report", stdin="")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "events: 0\n"
        "\n"
        "events by type: none\n"
        "\n"
        "turns by status: none\n"
        "\n"
        "tokens by model: none\n"
        "\n"
        "steers: 0 accepted, 0 rejected\n"
        "\n"
        "top skills: none\n"
        "\n"
        "top apps: none\n"
        "\n"
        "top plugins: none\n"
        "\n"
        "events by client: none\n"
    )


def test_a_line_that_is_not_an_event_is_one_error_line(cli: CLI) -> None:
    (cli.cwd / "events.jsonl").write_text(SKILL + '\n{"hello": 1}\n')
    result = cli.run("report", "events.jsonl")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "codex-telemetry: events.jsonl:2: not an event (no event_type and event_params)\n"
    )
    (cli.cwd / "broken.jsonl").write_text("{not json\n")
    result = cli.run("report", "broken.jsonl")
    assert (result.code, result.err) == (1, "codex-telemetry: broken.jsonl:1: not JSON\n")


def test_values_of_unexpected_types_are_counted_under_their_json(cli: CLI) -> None:
    """A file written by another tool may hold a list where a status is expected."""
    (cli.cwd / "odd.jsonl").write_text(
        '{"event_type":"codex_turn_event","event_params":'
        '{"status":["x"],"model":{"a":1},"input_tokens":true,"output_tokens":7}}\n'
        '{"event_type":"codex_turn_steer_event","event_params":'
        '{"result":"rejected","rejection_reason":{"x":1}}}\n'
        '{"event_type":"skill_invocation","skill_name":3,"event_params":{}}\n'
    )
    result = cli.run("report", "odd.jsonl")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "events: 3\n"
        "\n"
        "events by type\n"
        "event type              events\n"
        "codex_turn_event             1\n"
        "codex_turn_steer_event       1\n"
        "skill_invocation             1\n"
        "\n"
        "turns by status\n"
        "status  turns\n"
        '["x"]       1\n'
        "\n"
        "tokens by model\n"
        "model     turns  input  cached  output  reasoning  total\n"
        '{"a": 1}      1      0       0       7          0      0\n'
        "\n"
        "steers: 0 accepted, 1 rejected\n"
        "rejection reason  steers\n"
        '{"x": 1}               1\n'
        "\n"
        "top skills\n"
        "skill  invocations\n"
        "3                1\n"
        "\n"
        "top apps: none\n"
        "\n"
        "top plugins: none\n"
        "\n"
        "events by client\n"
        "client  events\n"
        "(none)       3\n"
    )
