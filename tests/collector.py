"""A real OpenTelemetry collector for the tests: ``rotel-agent`` (PyPI ``rotel``).

The agent receives OTLP on free loopback ports (gRPC and HTTP) and forwards every log
record over OTLP/gRPC to a loopback :class:`~tests.otlp_receiver.GrpcReceiver`, where the
tests decode what a real collector passed on.

What Rotel cannot do, so that no test relies on it:

- it has no file exporter: what it forwards is seen only through another OTLP endpoint;
- it takes one exporter per signal (``--exporters-logs a,b`` is refused);
- it answers the sender before it exports: a successful export from the SDK means Rotel
  accepted the records, not that they reached the far side, so tests wait on the
  receiver, never on the SDK's flush result alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.otlp_receiver import GrpcReceiver

__all__ = ["RotelCollector", "rotel_agent", "run_rotel"]

_READY_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
_START_ATTEMPTS = 3
# Platforms the pinned rotel release ships a rotel-agent binary for.
_PLATFORMS = ("linux", "darwin")


@dataclass(frozen=True)
class RotelCollector:
    """A running ``rotel-agent`` and the receiver it forwards to."""

    pid: int
    grpc_port: int
    http_port: int
    receiver: GrpcReceiver
    log_path: Path

    @property
    def grpc_endpoint(self) -> str:
        """Where the SDK sends OTLP/gRPC (``host:port``)."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Where the SDK sends OTLP/HTTP (protobuf or JSON)."""
        return f"http://127.0.0.1:{self.http_port}/v1/logs"

    def endpoint(self, protocol: str) -> str:
        """The endpoint for an ``otlp.protocol`` value."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def log(self) -> str:
        """What the agent printed so far, for failure messages."""
        return self.log_path.read_text(errors="replace")


def rotel_agent() -> Path:
    """The ``rotel-agent`` binary, or skip where it cannot run on this platform."""
    if sys.platform not in _PLATFORMS:
        pytest.skip(f"rotel ships no rotel-agent binary for {sys.platform}")
    try:
        import rotel  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:
        pytest.fail("rotel is not installed: pip install -e '.[test]'")
    binary = Path(rotel.__file__).parent / "rotel-agent"
    try:
        probe = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as error:  # wrong architecture, no execute permission, ...
        pytest.skip(f"rotel-agent cannot run on this platform: {error}")
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip()
        if "GLIBC" in reason or "cannot open shared object" in reason:
            pytest.skip(f"rotel-agent cannot run on this platform: {reason}")
        pytest.fail(f"rotel-agent --version failed: {reason}")
    return binary


def _free_ports(count: int) -> list[int]:
    # Bound together so that they differ; released just before the agent binds them.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def _start(
    binary: Path, directory: Path, receiver: GrpcReceiver, environment: dict[str, str]
) -> tuple[subprocess.Popen[bytes], RotelCollector] | None:
    """Start the agent on free ports and wait until it listens; None if a port was taken."""
    log_path = directory / "rotel-agent.log"
    grpc_port, http_port = _free_ports(2)
    command = [
        str(binary),
        "start",
        "--otlp-grpc-endpoint",
        f"127.0.0.1:{grpc_port}",
        "--otlp-http-endpoint",
        f"127.0.0.1:{http_port}",
        "--pid-file",
        str(directory / "rotel-agent.pid"),
        "--log-file",
        str(directory / "rotel-agent.file.log"),
        "--exporter",
        "otlp",
        "--otlp-exporter-protocol",
        "grpc",
        "--otlp-exporter-endpoint",
        f"http://{receiver.endpoint}",
        # Forward at once rather than after the default 200 ms.
        "--logs-batch-timeout",
        "50ms",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    collector = RotelCollector(process.pid, grpc_port, http_port, receiver, log_path)
    try:
        deadline = time.monotonic() + _READY_TIMEOUT
        while process.poll() is None and not (_accepts(grpc_port) and _accepts(http_port)):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"rotel-agent not listening after {_READY_TIMEOUT} s:\n{collector.log()}"
                )
            time.sleep(0.05)
        if process.poll() is not None:
            # Another process took a port between _free_ports() and the agent's bind.
            if "Address already in use" in collector.log():
                return None
            pytest.fail(f"rotel-agent exited with {process.returncode}:\n{collector.log()}")
    except BaseException:
        _stop(process)
        raise
    return process, collector


@contextlib.contextmanager
def run_rotel(directory: Path, receiver: GrpcReceiver) -> Iterator[RotelCollector]:
    """Run ``rotel-agent`` forwarding to ``receiver`` until the block ends.

    The agent gets a fresh HOME under ``directory``, no ``ROTEL_*`` variable from the
    caller's environment, and its own pid and log files; it is stopped by its pid
    (SIGTERM, then SIGKILL) however the block ends.
    """
    binary = rotel_agent()
    home = directory / "home"
    home.mkdir(parents=True, exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
    environment.update(HOME=str(home), NO_COLOR="1")
    for _ in range(_START_ATTEMPTS):
        started = _start(binary, directory, receiver, environment)
        if started is not None:
            break
    else:
        pytest.fail(f"rotel-agent found its ports taken {_START_ATTEMPTS} times")
    process, collector = started
    try:
        yield collector
    finally:
        _stop(process)
