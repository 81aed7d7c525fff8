"""How the client uses the durable spool: settings, defaults, stats, an unusable folder."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import pytest

import codex_telemetry
from codex_telemetry._client import Telemetry
from codex_telemetry._export._factory import spool_plan
from codex_telemetry._settings import ConfigurationError, load_settings
from codex_telemetry.testing import InMemorySink
from tests.otlp_receiver import HttpReceiver, HttpReply, records_of
from tests.test_client import hook_run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the spool needs fcntl")


def test_a_spool_bound_under_one_mebibyte_is_refused_at_init() -> None:
    with pytest.raises(ConfigurationError) as raised:
        codex_telemetry.init(spool__max_bytes=1000)
    assert str(raised.value) == (
        "invalid codex_telemetry settings: spool.max_bytes (CODEX_TELEMETRY_SPOOL__MAX_BYTES): "
        "1000 is invalid: input should be greater than or equal to 1048576"
    )


@pytest.mark.parametrize(
    ("settings", "spooled"),
    [
        ({"exporter": "otlp"}, True),
        ({"exporter": "codex_backend", "codex_backend__token": "t"}, True),
        ({"exporter": "file", "file__path": "events.jsonl"}, False),
        ({"exporter": "console"}, False),
        ({"exporter": "console", "spool__enabled": True}, True),
        ({"exporter": "otlp", "spool__enabled": False}, False),
        ({"exporter": "otlp", "enabled": False}, False),
    ],
)
def test_the_spool_is_on_for_the_network_sinks_only(
    settings: dict[str, object], spooled: bool
) -> None:
    assert (spool_plan(load_settings(**settings)) is not None) is spooled


def test_the_destination_label_holds_no_credentials() -> None:
    plan = spool_plan(
        load_settings(otlp__endpoint="https://user:secret@collector.example/v1/logs?token=x")
    )
    assert plan is not None
    assert plan.label == "otlp http/protobuf https://collector.example/v1/logs"
    assert "secret" not in plan.label and "token" not in plan.label


def test_disabled_collection_writes_nothing(tmp_path: Path) -> None:
    client = Telemetry(load_settings(enabled=False, spool__directory=tmp_path / "spool"))
    client.track_fact(hook_run())
    assert client.shutdown(5)
    assert not (tmp_path / "spool").exists()


def test_a_given_sink_never_uses_the_spool(tmp_path: Path) -> None:
    client = Telemetry(load_settings(spool__directory=tmp_path / "spool"), sink=InMemorySink())
    client.track_fact(hook_run())
    assert client.shutdown(5)
    assert not (tmp_path / "spool").exists()


def test_delivered_events_are_spooled_then_removed(tmp_path: Path) -> None:
    with HttpReceiver() as receiver:
        client = Telemetry(
            load_settings(otlp__endpoint=receiver.url(), spool__directory=tmp_path / "spool")
        )
        for number in range(20):
            client.track_fact(hook_run(f"turn-{number}"))
        assert client.flush(30)
        assert client.shutdown(5)
    stats = client.stats()
    assert (stats.events_produced, stats.events_spooled, stats.events_exported) == (20, 20, 20)
    assert (stats.events_replayed, stats.events_kept) == (0, 0)
    assert sorted(path.name for path in (tmp_path / "spool").rglob("*.jsonl")) == []


def test_a_sink_slower_than_the_facts_gets_them_from_memory_not_from_disk(
    tmp_path: Path,
) -> None:
    # Each request takes 20 ms and the sink holds 50 events: the worker runs ahead of the
    # sink at once. While facts wait behind it, the worker waits for room instead of
    # leaving events in the spool's backlog to be read back: at most the last append (the
    # events made when no fact was waiting any more) goes through the backlog.
    with HttpReceiver(default=HttpReply(delay=0.02)) as receiver:
        client = Telemetry(
            load_settings(
                otlp__endpoint=receiver.url(),
                spool__directory=tmp_path / "spool",
                max_export_queue_size=50,
                export_batch_size=25,
            )
        )
        for number in range(1000):
            client.track_fact(hook_run(f"turn-{number}"))
        assert client.flush(60)
        assert client.shutdown(5)
    stats = client.stats()
    assert (stats.events_produced, stats.events_spooled, stats.events_exported) == (
        1000,
        1000,
        1000,
    )
    assert stats.events_replayed <= 256
    assert dict(stats.events_dropped) == {}


def test_a_backlog_reaches_a_sink_whose_queue_is_smaller_than_a_read_back(
    tmp_path: Path,
) -> None:
    # The first process's collector refuses for now (503): its 300 events stay in the
    # spool. The next one's export queue holds 50 events, fewer than the spool reads back
    # at a time by default: it is fed in pieces that fit.
    settings = {"spool__directory": tmp_path / "spool", "max_export_queue_size": 50}
    with HttpReceiver(default=HttpReply(status=503)) as refusing:
        endpoint, port = refusing.url(), refusing.port
        first = Telemetry(load_settings(otlp__endpoint=endpoint, **settings))
        for number in range(300):
            first.track_fact(hook_run(f"turn-{number}"))
        first.shutdown(1)
    assert first.stats().events_kept == 300
    with HttpReceiver(port=port) as receiver:  # the same destination: the same spool
        second = Telemetry(load_settings(otlp__endpoint=endpoint, **settings))
        second.track_fact(hook_run("turn-300"))
        assert second.flush(30)
        assert second.shutdown(5)
        assert sum(1 for _ in records_of(receiver.received)) == 301
    stats = second.stats()
    # The new event waited behind the old ones in the backlog, so it was read back too.
    assert (stats.events_replayed, stats.events_exported, stats.events_kept) == (301, 301, 0)


def test_an_unusable_spool_directory_warns_once_and_delivers_anyway(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool folder should be")
    with HttpReceiver() as receiver, caplog.at_level(logging.WARNING, "codex_telemetry"):
        client = Telemetry(load_settings(otlp__endpoint=receiver.url(), spool__directory=blocker))
        for number in range(5):
            client.track_fact(hook_run(f"turn-{number}"))
        assert client.flush(30)
        assert client.shutdown(5)
    stats = client.stats()
    assert (stats.events_exported, stats.events_spooled) == (5, 0)
    warnings = [
        r.getMessage() for r in caplog.records if "spool directory is unusable" in r.getMessage()
    ]
    assert len(warnings) == 1


def test_a_full_spool_drops_its_oldest_events_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as holder:  # a port nothing listens on: the collector is down
        holder.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{holder.getsockname()[1]}/v1/logs"
        with caplog.at_level(logging.WARNING, "codex_telemetry"):
            client = Telemetry(
                load_settings(
                    otlp__endpoint=endpoint,
                    spool__directory=tmp_path / "spool",
                    spool__max_bytes=1024 * 1024,
                )
            )
            for number in range(12_000):  # about 2.6 MB of spooled lines
                client.track_fact(hook_run(f"turn-{number}"))
            client.shutdown(0.5)
    stats = client.stats()
    assert stats.events_dropped["spool_full"] > 0
    assert stats.events_exported == 0
    full = [r.getMessage() for r in caplog.records if "the spool is full" in r.getMessage()]
    assert full == [
        "codex_telemetry: the spool is full (spool.max_bytes); its oldest undelivered "
        "analytics events are dropped (counted spool_full); your program is unaffected"
    ]
    on_disk = sum(path.stat().st_size for path in (tmp_path / "spool").rglob("*.jsonl"))
    assert on_disk <= 1024 * 1024
