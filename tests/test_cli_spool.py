"""``codex-telemetry spool list|flush|purge``, run as a user would (a child process)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from codex_telemetry._export._factory import spool_plan
from codex_telemetry._settings import load_settings
from codex_telemetry._spool import Spool
from codex_telemetry.events import HookRunEvent
from tests.cli_runner import CLI
from tests.otlp_receiver import HttpReceiver, plain_records

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the spool needs fcntl")

# 2026-01-02T03:04:05Z
TIMESTAMP_NS = 1_767_323_045_000_000_000


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture
def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spool_root(cli: CLI) -> Path:
    return cli.home / ".cache" / "codex-telemetry" / "spool"


def _leave_orphans(cli: CLI, port: int, count: int) -> None:
    """What a process that died before delivering ``count`` events leaves behind."""
    plan = spool_plan(load_settings(otlp__endpoint=f"http://127.0.0.1:{port}/v1/logs"))
    assert plan is not None
    spool = Spool.open(plan.key, root=_spool_root(cli), label=plan.label)
    events = [
        HookRunEvent(
            thread_id="t",
            turn_id=f"turn-{number}",
            model_slug="gpt-5",
            hook_name="Stop",
            hook_source="user",
            status="completed",
        )
        for number in range(count)
    ]
    assert spool.append(events, TIMESTAMP_NS)
    spool.close()  # never acknowledged: orphans for the next process


def _env(port: int) -> dict[str, str]:
    return {"CODEX_TELEMETRY_OTLP__ENDPOINT": f"http://127.0.0.1:{port}/v1/logs"}


def test_list_says_when_nothing_is_spooled(cli: CLI) -> None:
    result = cli.run("spool", "list")
    assert (result.code, result.err) == (0, "")
    assert result.out == f"spool directory: {_spool_root(cli)}\nnothing spooled\n"


def test_list_shows_each_destination(cli: CLI, port: int) -> None:
    _leave_orphans(cli, port, 3)
    result = cli.run("spool", "list", env=_env(port))
    assert (result.code, result.err) == (0, "")
    label = f"otlp http/protobuf http://127.0.0.1:{port}/v1/logs"
    width = len(label)
    assert result.out == (
        f"spool directory: {_spool_root(cli)}\n"
        f"{'destination'.ljust(width)}  events  bytes  orphaned  in use  oldest (UTC)\n"
        f"{label}       3    639         1       0  2026-01-02T03:04:05Z\n"
    )


def test_flush_sends_the_orphans_to_the_configured_collector(cli: CLI, port: int) -> None:
    _leave_orphans(cli, port, 3)
    with HttpReceiver(port=port) as receiver:
        result = cli.run("spool", "flush", env=_env(port))
        turn_ids = sorted(
            str(r.attributes["turn_id"]) for item in receiver.received for r in plain_records(item)
        )
    assert (result.code, result.err) == (0, "")
    assert result.out == f"sent 3 events to otlp http/protobuf http://127.0.0.1:{port}/v1/logs\n"
    assert turn_ids == ["turn-0", "turn-1", "turn-2"]
    listed = cli.run("spool", "list", env=_env(port))
    assert listed.out.splitlines()[-1].split()[-5:] == ["0", "0", "0", "0", "-"]


def test_flush_to_a_collector_that_is_down_keeps_the_events(cli: CLI, port: int) -> None:
    _leave_orphans(cli, port, 3)
    result = cli.run("spool", "flush", "--timeout", "0.5", env=_env(port))
    assert result.code == 1
    assert result.out == f"sent 0 events to otlp http/protobuf http://127.0.0.1:{port}/v1/logs\n"
    assert result.err == (
        "codex-telemetry: a batch was not delivered within 0.5 s; the rest stays spooled "
        "(see 'codex-telemetry check')\n"
    )
    listed = cli.run("spool", "list", env=_env(port))
    assert listed.out.splitlines()[-1].split()[-5:] == [
        "3",
        "639",
        "1",
        "0",
        "2026-01-02T03:04:05Z",
    ]


def test_purge_deletes_the_orphans(cli: CLI, port: int) -> None:
    _leave_orphans(cli, port, 3)
    result = cli.run("spool", "purge", "--yes")
    assert (result.code, result.err) == (0, "")
    assert result.out == "deleted 3 events (639 bytes) in 1 segments\n"
    assert cli.run("spool", "purge", "--yes").out == "deleted 0 events (0 bytes) in 0 segments\n"


def test_purge_asks_first(cli: CLI, port: int) -> None:
    _leave_orphans(cli, port, 1)
    result = cli.run("spool", "purge", stdin="n\n")
    assert result.code == 130  # aborted, as after Ctrl-C
    assert result.out == f"Delete the spooled events under {_spool_root(cli)}? [y/N]: "
    assert cli.run("spool", "purge", "--yes").out == "deleted 1 events (213 bytes) in 1 segments\n"
