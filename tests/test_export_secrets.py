"""No header value is ever printed or logged, whatever the configuration and however the
collector answers: each case runs the SDK in a child process with every logger at DEBUG
and searches all it wrote (standard output, standard error, every log record) for the
planted secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from tests.otlp_receiver import GrpcReceiver, GrpcReply, HttpReceiver, HttpReply

BAD_QUOTING = "s3cret-bad-quoting-4711"
STALE = "s3cret-stale-otel-4712"
CURRENT = "s3cret-current-4713"
SECRETS = (BAD_QUOTING, STALE, CURRENT)

_CHILD = """
import logging, sys

records = []


class Keep(logging.Handler):
    def emit(self, record):
        records.append(self.format(record))


logging.basicConfig(level=logging.DEBUG)  # every logger, urllib3 and grpc included
logging.getLogger().addHandler(Keep())
for name in ("codex_telemetry", "opentelemetry"):
    logging.getLogger(name).setLevel(logging.DEBUG)

import codex_telemetry
from codex_telemetry import facts

try:
    telemetry = codex_telemetry.init(
        otlp={"endpoint": sys.argv[1], "protocol": sys.argv[2]}, shutdown_timeout=2.0
    )
except codex_telemetry.ConfigurationError as error:
    print("ConfigurationError:", error, repr(error.__context__), repr(error.__cause__))
else:
    tracking = facts.TrackingContext(model_slug="gpt-5", thread_id="t", turn_id="u")
    invocation = facts.SkillInvocation(
        skill_name="doc", skill_scope="user", skill_path="/x/SKILL.md",
        invocation_type="explicit",
    )
    codex_telemetry.track_fact(facts.SkillInvoked(tracking=tracking, invocations=[invocation]))
    print("flushed:", telemetry.flush(timeout=5.0))
    print("stats:", telemetry.stats())
    print("settings:", telemetry)
    codex_telemetry.shutdown()
print("records:")
print("\\n".join(records))
"""


def run_child(
    receiver: GrpcReceiver | HttpReceiver, protocol: str, env: dict[str, str], home: Path
) -> str:
    """Run the SDK against ``receiver``; everything the child wrote, stdout then stderr."""
    endpoint = receiver.endpoint if isinstance(receiver, GrpcReceiver) else receiver.url()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CODEX_"))}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, endpoint, protocol],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home,
        env={**base, "HOME": str(home), **env},
    )
    assert child.returncode == 0, child.stderr
    return child.stdout + child.stderr


def refusing(protocol: str, status: int) -> GrpcReceiver | HttpReceiver:
    if protocol == "grpc":
        code = (
            grpc.StatusCode.UNAUTHENTICATED if status == 401 else grpc.StatusCode.INVALID_ARGUMENT
        )
        return GrpcReceiver(default=GrpcReply(code=code, details="refused"))
    return HttpReceiver(default=HttpReply(status=status, body=b"refused"))


PROTOCOLS = ["grpc", "http/protobuf", "http/json"]


@pytest.mark.parametrize("status", [401, 400])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_badly_quoted_header_to_a_refusing_collector_is_never_shown(
    protocol: str, status: int, tmp_path: Path
) -> None:
    # A quoting mistake: the quotes become part of the value.
    env = {"OTEL_EXPORTER_OTLP_HEADERS": f'x-api-key="{BAD_QUOTING}"'}
    with refusing(protocol, status) as receiver:
        output = run_child(receiver, protocol, env, tmp_path)
    assert "records:" in output
    assert receiver.attempts >= 1  # the collector was reached, and refused
    for secret in SECRETS:
        assert secret not in output


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stale_otel_header_next_to_ours_is_never_shown_nor_sent(
    protocol: str, tmp_path: Path
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={STALE},x-stale=1",
        "CODEX_TELEMETRY_OTLP__HEADERS": f"x-api-key={CURRENT}",
    }
    receiver: GrpcReceiver | HttpReceiver = GrpcReceiver() if protocol == "grpc" else HttpReceiver()
    with receiver:
        output = run_child(receiver, protocol, env, tmp_path)
    assert "flushed: True" in output
    for secret in SECRETS:
        assert secret not in output
    [received] = receiver.received
    assert received.headers["x-api-key"] == CURRENT
    assert "x-stale" not in received.headers
