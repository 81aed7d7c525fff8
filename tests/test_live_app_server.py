"""End to end: the real ``codex app-server`` driven by the instrumented ``openai-codex`` SDK.

A program calls ``codex_telemetry.init(instrument=["openai_codex"])`` and runs turns
through the SDK's ``Codex`` client: one plain turn; one the mock model holds active while
it is steered (and steered once more after it ended); one the model fails with HTTP 500.
The SDK starts the real binary (from the ``openai-codex-cli-bin`` wheel) with
``CODEX_HOME`` in a temporary folder whose ``config.toml`` points the model provider, and
every other endpoint it can name, at a loopback mock of the Responses API
(``tests/mock_responses_api.py``). The events are exported over OTLP/HTTP to a loopback
receiver (``tests/otlp_receiver.py``) and rebuilt from the log records there.

The program runs as this file's ``driver`` in a new network namespace that has only the
loopback interface (``unshare -rn``), so nothing can reach another host. The test is
skipped, saying why, where the binary is missing or namespaces are not permitted.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_telemetry._runtime import current_runtime

REPO = Path(__file__).resolve().parent.parent
CLIENT_NAME = "live-test-client"
CLIENT_VERSION = "1.2.3"

_CONFIG = """\
model = "mock-model"
model_provider = "mock_provider"
approval_policy = "never"
sandbox_mode = "read-only"
chatgpt_base_url = "{root}/chatgpt"
check_for_update_on_startup = false

[model_providers.mock_provider]
name = "Mock provider"
base_url = "{base_url}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false
"""


def _codex_version() -> str | None:
    try:
        # The wheel that ships the binary is optional and untyped.
        binary = importlib.import_module("codex_cli_bin").bundled_codex_path()
    except (ImportError, OSError):
        return None
    try:
        output = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return output.split()[-1]


def _namespaces_permitted() -> str | None:
    """None when ``unshare -rn`` works here, else why not."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    probe = subprocess.run(
        ["unshare", "-rn", "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return f"network namespaces are not permitted here: {probe.stderr.strip()}"
    return None


def test_real_app_server_turns_reach_the_collector(tmp_path: Path) -> None:
    pytest.importorskip("openai_codex")
    version = _codex_version()
    if version is None:
        pytest.skip("the codex binary (openai-codex-cli-bin) is not installed or does not run")
    reason = _namespaces_permitted()
    if reason is not None:
        pytest.skip(reason)

    completed = subprocess.run(
        ["unshare", "-rn", sys.executable, __file__, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=REPO,
        env={key: value for key, value in os.environ.items() if not key.startswith("OTEL_")},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(completed.stdout.splitlines()[-1])

    assert report["interfaces"] == ["lo"]
    # Every request the binary made went to the loopback mock; the model was asked once
    # for the first turn, twice for the steered one (before and after the steer), and
    # once for the turn it failed with HTTP 500.
    assert [path for _, path in report["mock_requests"] if path.endswith("/responses")] == [
        "/v1/responses",
        "/v1/responses",
        "/v1/responses",
        "/v1/responses",
    ]

    events = report["events"]
    assert [event["event_type"] for event in events] == [
        "codex_thread_initialized",
        "codex_turn_event",
        "codex_turn_steer_event",
        "codex_turn_event",
        "codex_turn_steer_event",
        "codex_turn_event",
    ]
    thread, first, steer, second, late_steer, failed = (event["event_params"] for event in events)
    runtime = thread["runtime"]
    # The app-server runs on this machine: its user agent must name what Python finds.
    assert runtime == dataclasses.asdict(current_runtime(version))
    client = {
        "product_client_id": CLIENT_NAME,
        "client_name": CLIENT_NAME,
        "client_version": CLIENT_VERSION,
        "rpc_transport": "stdio",
        "experimental_api_enabled": True,
    }
    thread_id = thread["thread_id"]
    assert isinstance(thread_id, str)
    assert isinstance(thread["created_at"], int)
    assert thread == {
        "thread_id": thread_id,
        "app_server_client": client,
        "runtime": runtime,
        "model": "mock-model",
        "ephemeral": False,
        "thread_source": "user",
        "initialization_mode": "new",
        "subagent_source": None,
        "parent_thread_id": None,
        "created_at": thread["created_at"],
    }
    # The steered turn asked the model twice, but the app-server's running total grew by
    # one request's usage (one usage update, as in e_steer.jsonl): that is the turn's.
    one_request = (1234, 200, 56, 7, 1290)
    # A turn that failed before the model answered used nothing: zeros, as the app-server
    # reports it.
    no_usage = (0, 0, 0, 0, 0)
    for turn, is_first_turn, steers, tokens, status, error in (
        (first, True, 0, one_request, "completed", None),
        (second, False, 1, one_request, "completed", None),
        (failed, False, 0, no_usage, "failed", "internalServerError"),
    ):
        assert isinstance(turn["turn_id"], str)
        for key in ("duration_ms", "started_at", "completed_at"):
            assert isinstance(turn[key], int)
        assert turn == {
            "thread_id": thread_id,
            "turn_id": turn["turn_id"],
            "submission_type": None,
            "app_server_client": client,
            "runtime": runtime,
            "ephemeral": False,
            "thread_source": "user",
            "initialization_mode": "new",
            "subagent_source": None,
            "parent_thread_id": None,
            "model": "mock-model",
            "model_provider": "mock_provider",
            "sandbox_policy": "read_only",
            "reasoning_effort": None,
            "reasoning_summary": None,
            "service_tier": "default",
            "approval_policy": "on-request",
            "approvals_reviewer": "guardian_subagent",
            "sandbox_network_access": False,
            "collaboration_mode": "default",
            "personality": None,
            "num_input_images": 0,
            "is_first_turn": is_first_turn,
            "status": status,
            "turn_error": error,
            "steer_count": steers,
            "total_tool_call_count": None,
            "shell_command_count": None,
            "file_change_count": None,
            "mcp_tool_call_count": None,
            "dynamic_tool_call_count": None,
            "subagent_tool_call_count": None,
            "web_search_count": None,
            "image_generation_count": None,
            "input_tokens": tokens[0],
            "cached_input_tokens": tokens[1],
            "output_tokens": tokens[2],
            "reasoning_output_tokens": tokens[3],
            "total_tokens": tokens[4],
            "duration_ms": turn["duration_ms"],
            "started_at": turn["started_at"],
            "completed_at": turn["completed_at"],
        }
    assert len({first["turn_id"], second["turn_id"], failed["turn_id"]}) == 3
    for event, accepted in ((steer, True), (late_steer, False)):
        assert isinstance(event["created_at"], int)
        assert event == {
            "thread_id": thread_id,
            "expected_turn_id": second["turn_id"],
            "accepted_turn_id": second["turn_id"] if accepted else None,
            "app_server_client": client,
            "runtime": runtime,
            "thread_source": "user",
            "subagent_source": None,
            "parent_thread_id": None,
            "num_input_images": 0,
            "result": "accepted" if accepted else "rejected",
            "rejection_reason": None if accepted else "no_active_turn",
            "created_at": event["created_at"],
        }
    assert report["stats"] == {"malformed": 0, "unrecognized": 0}


# --- the program, run inside the network namespace -----------------------------------


def _python_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as the JSON value it encodes."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {item.key: _python_value(item.value) for item in value.kvlist_value.values}
    if kind == "array_value":
        return [_python_value(item) for item in value.array_value.values]
    return getattr(value, kind)


def driver(workdir: Path) -> dict[str, Any]:
    """Run the instrumented program; return what the collector and the mock received."""
    sys.path.insert(0, str(REPO))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    from openai_codex import Codex, CodexConfig  # noqa: PLC0415 - after the namespace is set
    from openai_codex.errors import InvalidRequestError  # noqa: PLC0415

    import codex_telemetry  # noqa: PLC0415
    from codex_telemetry import _instrument_openai_codex  # noqa: PLC0415
    from tests.mock_responses_api import MockResponsesAPI  # noqa: PLC0415
    from tests.otlp_receiver import HttpReceiver, records_of  # noqa: PLC0415

    codex_home = workdir / "codex-home"
    codex_home.mkdir()
    with MockResponsesAPI() as mock, HttpReceiver() as receiver:
        root = mock.base_url.removesuffix("/v1")
        (codex_home / "config.toml").write_text(_CONFIG.format(root=root, base_url=mock.base_url))
        codex_telemetry.init(
            instrument=["openai_codex"],
            general_analytics=True,
            exporter="otlp",
            otlp={"endpoint": receiver.url(), "protocol": "http/protobuf"},
        )
        config = CodexConfig(
            cwd=str(workdir),
            env={"CODEX_HOME": str(codex_home), "HOME": str(workdir)},
            client_name=CLIENT_NAME,
            client_version=CLIENT_VERSION,
        )
        with Codex(config) as codex:
            thread = codex.thread_start()
            thread.run("hello")
            # A turn held active by the model, steered, then steered once too often.
            mock.hold_next_turn()
            turn = thread.turn("take your time")
            assert mock.wait_until_held()
            turn.steer("and say hi")
            mock.release()
            turn.run()
            try:
                turn.steer("too late")
            except InvalidRequestError:
                pass
            else:
                raise AssertionError("a steer after the turn ended was accepted")
            mock.fail_next_turn(500)
            try:
                thread.run("this one fails")
            except RuntimeError:
                pass  # how the SDK reports a failed turn
            else:
                raise AssertionError("the turn did not fail")
            observer = _instrument_openai_codex.observer_for(codex)
            assert observer is not None
            stats = observer.stats()
        codex_telemetry.shutdown(timeout=10.0)
        receiver.wait_for_records(6)
        events = [
            {
                "event_type": record.event_name,
                "event_params": {item.key: _python_value(item.value) for item in record.attributes},
            }
            for record in records_of(receiver.received)
        ]
        requests = [(request.method, request.path) for request in mock.requests]
    return {
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "mock_requests": requests,
        "events": events,
        "stats": {"malformed": stats.malformed, "unrecognized": stats.unrecognized},
    }


if __name__ == "__main__":
    print(json.dumps(driver(Path(sys.argv[1]))))
