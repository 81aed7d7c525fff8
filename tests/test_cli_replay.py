"""``codex-telemetry replay``: a recorded transcript in, the wire events out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import CLI
from tests.test_observer import FIXTURES


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


CLIENT = (
    '"app_server_client":{"product_client_id":"oracle-recorder","client_name":"oracle-recorder",'
    '"client_version":"0.0.1","rpc_transport":"stdio","experimental_api_enabled":true},'
    '"runtime":{"codex_rs_version":"0.169.0","runtime_os":"linux","runtime_os_version":"12.0.0",'
    '"runtime_arch":"x86_64"}'
)


def test_thread_starts_as_the_file_exporter_writes_them(cli: CLI) -> None:
    result = cli.run("replay", str(FIXTURES / "a_thread_start.jsonl"))
    assert result.code == 0
    assert result.err == "replay: 14 messages on 1 connection, 4 facts, 3 events\n"
    assert result.out == (
        '{"event_type":"codex_thread_initialized","event_params":{'
        '"thread_id":"01a2108a-3615-7270-8530-081f1f996031",' + CLIENT + ","
        '"model":"mock-model","ephemeral":false,"thread_source":"user",'
        '"initialization_mode":"new","subagent_source":null,"parent_thread_id":null,'
        '"created_at":1795573823}}\n'
        '{"event_type":"codex_thread_initialized","event_params":{'
        '"thread_id":"01a2108a-3a43-7ca3-bdc5-5ccf3d8eb292",' + CLIENT + ","
        '"model":"mock-model","ephemeral":true,"thread_source":"user",'
        '"initialization_mode":"new","subagent_source":null,"parent_thread_id":null,'
        '"created_at":1795573824}}\n'
        '{"event_type":"codex_thread_initialized","event_params":{'
        '"thread_id":"01a2108a-3eb4-7ea0-8e2c-96ce1718d7cc",' + CLIENT + ","
        '"model":"mock-model-2","ephemeral":false,"thread_source":"user",'
        '"initialization_mode":"new","subagent_source":null,"parent_thread_id":null,'
        '"created_at":1795573825}}\n'
    )


def test_the_transcript_timestamps_are_the_clock(cli: CLI) -> None:
    # Read from standard input; steer events are dated by the reducer's clock.
    transcript = (FIXTURES / "e_steer.jsonl").read_text()
    result = cli.run("replay", stdin=transcript)
    assert (result.code, result.err) == (
        0,
        "replay: 31 messages on 1 connection, 14 facts, 5 events\n",
    )
    steers = [
        {key: params[key] for key in ("result", "rejection_reason", "created_at")}
        for params in (json.loads(line)["event_params"] for line in result.out.splitlines())
        if "result" in params
    ]
    assert steers == [
        {
            "result": "rejected",
            "rejection_reason": "expected_turn_mismatch",
            "created_at": 1795574017,
        },
        {"result": "accepted", "rejection_reason": None, "created_at": 1795574017},
        {"result": "rejected", "rejection_reason": "no_active_turn", "created_at": 1795574019},
    ]


def test_two_processes_are_two_connections(cli: CLI) -> None:
    result = cli.run("replay", str(FIXTURES / "b_resume_fork.jsonl"))
    assert (result.code, result.err) == (
        0,
        "replay: 57 messages on 2 connections, 18 facts, 6 events\n",
    )
    modes = [
        json.loads(line)["event_params"].get("initialization_mode")
        for line in result.out.splitlines()
    ]
    assert modes == ["new", "new", "resumed", "forked", "forked", "resumed"]


def test_messages_it_does_not_understand_are_counted(cli: CLI) -> None:
    transcript = (
        '{"seq": 1, "conn": "c", "dir": "server->client", "msg": "{not json"}\n'
        '{"seq": 2, "conn": "c", "dir": "meta", "msg": {"event": "spawn"}}\n'
    )
    result = cli.run("replay", stdin=transcript)
    assert (result.code, result.out) == (0, "")
    assert result.err == (
        "replay: 1 message on 1 connection, 0 facts, 0 events, 1 message not understood\n"
    )


def test_a_line_that_is_not_a_transcript_line_is_one_error_line(cli: CLI) -> None:
    result = cli.run("replay", stdin='{"id": 1, "method": "initialize"}\n')
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "codex-telemetry: <stdin>:1: not a transcript line "
        '(needs "dir": "client->server" or "server->client", and "msg")\n'
    )


def test_verbose_says_why_a_message_was_not_understood(cli: CLI) -> None:
    transcript = '{"seq": 1, "conn": "c", "dir": "server->client", "msg": "{not json"}\n'
    result = cli.run("replay", "--verbose", stdin=transcript)
    assert result.code == 0
    log, summary = result.err.splitlines()
    assert log.startswith("log: ") and "JSONDecodeError" in log
    assert summary == (
        "replay: 1 message on 1 connection, 0 facts, 0 events, 1 message not understood"
    )
