"""``codex-telemetry check`` against real loopback collectors: accepting, refusing, absent."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import grpc
import pytest

from tests.cli_runner import CLI, Result
from tests.otlp_receiver import GrpcReceiver, GrpcReply, HttpReceiver, HttpReply, records_of
from tests.test_export_codex_backend import Backend
from tests.test_export_otlp import rebuild_wire_event

CHECK_EVENT = {
    "event_type": "codex_hook_run",
    "event_params": {
        "thread_id": "codex-telemetry-check",
        "turn_id": "codex-telemetry-check",
        "model_slug": "codex-telemetry-check",
        "hook_name": "codex-telemetry-check",
        "hook_source": "codex-telemetry-check",
        "status": "completed",
    },
}


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


def masked(text: str, port: int | None = None) -> str:
    """The output with what changes from run to run (port, milliseconds) replaced."""
    if port is not None:
        text = text.replace(f":{port}", ":PORT")
    return re.sub(r"in \d+ ms", "in N ms", text)


def otlp(endpoint: str, protocol: str, **extra: str) -> dict[str, str]:
    return {
        "CODEX_TELEMETRY_OTLP__ENDPOINT": endpoint,
        "CODEX_TELEMETRY_OTLP__PROTOCOL": protocol,
        **extra,
    }


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_http_collector_accepts(cli: CLI, protocol: str) -> None:
    with HttpReceiver() as receiver:
        result = cli.run("check", env=otlp(receiver.url(), protocol))
        assert receiver.wait_for_records(1)
    assert (result.code, result.err) == (0, "")
    assert masked(result.out, receiver.port) == (
        f"sending 1 test record with otlp ({protocol}) to http://127.0.0.1:PORT/v1/logs, "
        "no TLS\n"
        "ok: connected, the collector accepted it in N ms\n"
    )
    assert [rebuild_wire_event(r) for r in records_of(receiver.received)] == [CHECK_EVENT]


def test_grpc_collector_accepts(cli: CLI) -> None:
    with GrpcReceiver() as receiver:
        result = cli.run("check", env=otlp(receiver.endpoint, "grpc"))
        assert receiver.wait_for_records(1)
    assert (result.code, result.err) == (0, "")
    assert masked(result.out, receiver.port) == (
        "sending 1 test record with otlp (grpc) to 127.0.0.1:PORT, no TLS\n"
        "ok: connected, the collector accepted it in N ms\n"
    )
    assert [rebuild_wire_event(r) for r in records_of(receiver.received)] == [CHECK_EVENT]


def test_json_report(cli: CLI) -> None:
    with GrpcReceiver() as receiver:
        result = cli.run("check", "--json", env=otlp(receiver.endpoint, "grpc"))
    assert (result.code, result.err) == (0, "")
    document = json.loads(result.out)
    assert isinstance(document.pop("latency_ms"), float)
    assert masked(json.dumps(document), receiver.port) == json.dumps(
        {
            "exporter": "otlp",
            "address": "127.0.0.1:PORT",
            "protocol": "grpc",
            "tls": False,
            "collecting": True,
            "delivered": True,
            "connected": True,
            "status": "ok",
            "reason": None,
            "message": "connected, the collector accepted it in N ms",
        }
    )


def test_http_collector_refuses_with_401(cli: CLI) -> None:
    with HttpReceiver([HttpReply(401)]) as receiver:
        result = cli.run("check", env=otlp(receiver.url(), "http/protobuf"))
    assert result.code == 1
    assert masked(result.out, receiver.port) == (
        "sending 1 test record with otlp (http/protobuf) to http://127.0.0.1:PORT/v1/logs, no TLS\n"
    )
    assert result.err == (
        "codex-telemetry: failed: connected, but the collector refused it with HTTP 401; "
        "check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS)\n"
    )
    assert receiver.attempts == 1  # refused for good: not retried


def test_grpc_collector_refuses(cli: CLI) -> None:
    reply = GrpcReply(code=grpc.StatusCode.UNAUTHENTICATED, details="no token")
    with GrpcReceiver([reply]) as receiver:
        result = cli.run("check", env=otlp(receiver.endpoint, "grpc"))
    assert result.code == 1
    assert result.err == (
        "codex-telemetry: failed: connected, but the collector refused it with gRPC status "
        "UNAUTHENTICATED; check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS)\n"
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("protocol", "address"),
    [("http/protobuf", "http://127.0.0.1:{port}/v1/logs"), ("grpc", "127.0.0.1:{port}")],
)
def test_nothing_listening(cli: CLI, protocol: str, address: str) -> None:
    port = closed_port()
    endpoint = address.format(port=port)
    result = cli.run("check", "--timeout", "0.5", env=otlp(endpoint, protocol))
    assert result.code == 1
    assert result.out == f"sending 1 test record with otlp ({protocol}) to {endpoint}, no TLS\n"
    assert result.err == (
        f"codex-telemetry: failed: could not connect to {endpoint} within 0.5 s; "
        "is a collector listening there?\n"
    )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


def test_tls_trusted_and_untrusted(cli: CLI, tls_files: tuple[Path, Path]) -> None:
    certificate, _ = tls_files
    with HttpReceiver(tls=tls_files) as receiver:
        url = receiver.url()
        trusted = cli.run(
            "check",
            env=otlp(url, "http/protobuf", CODEX_TELEMETRY_OTLP__CERTIFICATE=str(certificate)),
        )
        untrusted = cli.run("check", env=otlp(url, "http/protobuf"))
    assert url.startswith("https://")
    assert (trusted.code, trusted.err) == (0, "")
    assert masked(trusted.out, receiver.port) == (
        "sending 1 test record with otlp (http/protobuf) to https://127.0.0.1:PORT/v1/logs, "
        "TLS\n"
        "ok: connected, the collector accepted it in N ms\n"
    )
    assert untrusted.code == 1
    assert untrusted.err == (
        "codex-telemetry: failed: the TLS handshake failed; check the endpoint's scheme "
        "and otlp.certificate\n"
    )


def test_file_exporter_appends_the_record(cli: CLI) -> None:
    result = cli.run(
        "check",
        env={"CODEX_TELEMETRY_EXPORTER": "file", "CODEX_TELEMETRY_FILE__PATH": "events.jsonl"},
    )
    assert (result.code, result.err) == (0, "")
    assert masked(result.out) == (
        "sending 1 test record with file to events.jsonl\nok: delivered in N ms\n"
    )
    [line] = [json.loads(line) for line in (cli.cwd / "events.jsonl").read_text().splitlines()]
    # The wire object, plus when it was produced.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line.pop("timestamp"))
    assert line == CHECK_EVENT


def test_collection_off_is_noted_and_the_sink_still_checked(cli: CLI) -> None:
    result = cli.run(
        "check",
        env={
            "CODEX_TELEMETRY_EXPORTER": "file",
            "CODEX_TELEMETRY_FILE__PATH": "events.jsonl",
            "DO_NOT_TRACK": "1",
        },
    )
    assert (result.code, result.err) == (0, "")
    assert masked(result.out) == (
        "sending 1 test record with file to events.jsonl\n"
        "note: collection is off here (DO_NOT_TRACK=1 opts out): init() would send nothing\n"
        "ok: delivered in N ms\n"
    )


def test_exporter_none_has_nothing_to_check(cli: CLI) -> None:
    result = cli.run("check", env={"CODEX_TELEMETRY_EXPORTER": "none"})
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "codex-telemetry: exporter is 'none': there is no sink to check "
        "(set CODEX_TELEMETRY_EXPORTER)\n"
    )


def test_missing_file_path_is_a_configuration_error(cli: CLI) -> None:
    result: Result = cli.run("check", env={"CODEX_TELEMETRY_EXPORTER": "file"})
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "codex-telemetry: invalid codex_telemetry settings: file.path "
        "(CODEX_TELEMETRY_FILE__PATH): required when exporter is 'file'\n"
    )


def test_a_file_that_cannot_be_opened_is_one_error_line(cli: CLI) -> None:
    result = cli.run(
        "check",
        env={"CODEX_TELEMETRY_EXPORTER": "file", "CODEX_TELEMETRY_FILE__PATH": "no/such/dir.jsonl"},
    )
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "codex-telemetry: cannot open the file sink (no/such/dir.jsonl): "
        "No such file or directory\n"
    )


def backend_env(backend: Backend) -> dict[str, str]:
    return {
        "CODEX_TELEMETRY_EXPORTER": "codex_backend",
        "CODEX_TELEMETRY_CODEX_BACKEND__BASE_URL": backend.base_url,
        "CODEX_TELEMETRY_CODEX_BACKEND__TOKEN": "sekrit-token",
    }


def test_codex_backend_accepts(cli: CLI) -> None:
    backend = Backend()
    try:
        result = cli.run("check", env=backend_env(backend))
    finally:
        backend.close()
    assert (result.code, result.err) == (0, "")
    port = int(backend.base_url.split(":")[2].split("/")[0])
    assert masked(result.out, port) == (
        "sending 1 test record with codex_backend to "
        "http://127.0.0.1:PORT/backend-api/codex/analytics-events/events, no TLS\n"
        "ok: connected, the backend accepted it in N ms\n"
    )
    [(path, headers, body)] = backend.requests
    assert path == "/backend-api/codex/analytics-events/events"
    assert headers["authorization"] == "Bearer sekrit-token"
    assert json.loads(body) == {"events": [CHECK_EVENT]}


def test_codex_backend_refuses_the_token(cli: CLI) -> None:
    backend = Backend(statuses=[401])
    try:
        result = cli.run("check", env=backend_env(backend))
    finally:
        backend.close()
    assert result.code == 1
    assert "sekrit" not in result.out + result.err
    assert result.err == (
        "codex-telemetry: failed: connected, but the backend refused it with HTTP 401; "
        "check codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND__TOKEN)\n"
    )


def test_console_prints_the_record_on_standard_error(cli: CLI) -> None:
    result = cli.run("check", env={"CODEX_TELEMETRY_EXPORTER": "console"})
    assert result.code == 0
    assert masked(result.out) == (
        "sending 1 test record with console to standard error\nok: delivered in N ms\n"
    )
    assert re.match(
        r'codex_hook_run \d{4}-\d\d-\d\dT[\d:.]{15}Z {"thread_id": "codex-telemetry-check", ',
        result.err,
    )


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_collector_that_never_answers(cli: CLI, protocol: str) -> None:
    receiver: HttpReceiver | GrpcReceiver
    if protocol == "grpc":
        receiver = GrpcReceiver(default=GrpcReply(hang=True))
    else:
        receiver = HttpReceiver(default=HttpReply(hang=True))
    with receiver:
        endpoint = receiver.endpoint if isinstance(receiver, GrpcReceiver) else receiver.url()
        result = cli.run("check", "--timeout", "0.5", env=otlp(endpoint, protocol))
    assert result.code == 1
    assert result.err == f"codex-telemetry: failed: no answer from {endpoint} within 0.5 s\n"
