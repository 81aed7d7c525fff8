"""Figure 5, start-up: what a short-lived program pays before and for its first events.

Whole processes, timed from outside: ``python -c "<statement>"`` for each statement of
:data:`STATEMENTS`, from interpreter start to exit, wall and CPU time, every statement
once per round, rounds repeated, medians. codex_telemetry is measured beside the SDKs a
program might use instead: ``sentry_sdk``, ``posthog``, ``logfire`` and the plain
OpenTelemetry SDK (logs SDK + OTLP/HTTP log exporter). A peer that is not installed is
reported as such (``pip install -e '.[bench]'`` installs them).

Each initialisation reads its configuration from the environment and points at a closed
loopback port, so nothing leaves the machine. Every run has a fresh HOME: no run finds
what another left in the durable spool. The first events are timed inside a
process (``python -m benchmarks._startup first SIDE``): after import and init, each fact
type's first fact, built and tracked, and each peer's first event.
"""

from __future__ import annotations

import time

_START = time.perf_counter()

import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

try:
    import resource
except ImportError:  # not on Windows: CPU time is then not reported
    resource = None  # type: ignore[assignment]

__all__ = ["PEERS", "STATEMENTS", "measure", "median"]

_ROOT = Path(__file__).resolve().parent.parent

# Side -> the module whose presence says the side is installed.
PEERS: dict[str, str] = {
    "codex_telemetry": "codex_telemetry",
    "sentry_sdk": "sentry_sdk",
    "posthog": "posthog",
    "logfire": "logfire",
    "opentelemetry": "opentelemetry.sdk",
}

_PLAIN_IMPORT = (
    "from opentelemetry.sdk._logs import LoggerProvider; "
    "from opentelemetry.sdk._logs.export import BatchLogRecordProcessor; "
    "from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter"
)

# (side, step) -> the statement run as ``python -c``. "init" reads the environment only.
STATEMENTS: dict[tuple[str, str], str] = {
    ("python", "interpreter"): "pass",
    ("codex_telemetry", "import"): "import codex_telemetry",
    ("codex_telemetry", "import facts"): "from codex_telemetry import facts",
    ("codex_telemetry", "import + init"): "import codex_telemetry; codex_telemetry.init()",
    ("sentry_sdk", "import"): "import sentry_sdk",
    ("sentry_sdk", "import + init"): "import sentry_sdk; sentry_sdk.init()",
    ("posthog", "import"): "import posthog",
    ("posthog", "import + init"): (
        "import os, posthog; "
        "posthog.Posthog(os.environ['POSTHOG_API_KEY'], host=os.environ['POSTHOG_HOST'])"
    ),
    ("logfire", "import"): "import logfire",
    ("logfire", "import + init"): "import logfire; logfire.configure()",
    ("opentelemetry", "import"): _PLAIN_IMPORT,
    ("opentelemetry", "import + init"): (
        _PLAIN_IMPORT + "; provider = LoggerProvider(); "
        "provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))"
    ),
}

# Modules whose import is the cost an exporter brings (reported by the first-events run).
_HEAVY_MODULES = (
    "pydantic",
    "pydantic_settings",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.grpc",
    "grpc",
    "requests",
    "opentelemetry.sdk._logs",
    "google.protobuf",
    "codex_telemetry._export._otlp",
)


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def installed(side: str) -> bool:
    """True when ``side`` can be imported here."""
    if side == "python":
        return True
    try:
        return importlib.util.find_spec(PEERS[side]) is not None
    except ModuleNotFoundError:
        return False


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def environment(home: str, port: int, side: str) -> dict[str, str]:
    """The child's environment: this one without any SDK's variables, plus each SDK's
    configuration pointing at a closed loopback port, and a fresh HOME."""
    prefixes = ("CODEX_TELEMETRY_", "OTEL_", "SENTRY_", "POSTHOG_", "LOGFIRE_", "PYDANTIC_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.pop("DO_NOT_TRACK", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # import times with compiled bytecode cached
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    base = f"http://127.0.0.1:{port}"
    env.update(
        HOME=home,
        CODEX_TELEMETRY_EXPORTER="otlp",
        CODEX_TELEMETRY_OTLP__PROTOCOL="http/protobuf",
        CODEX_TELEMETRY_OTLP__ENDPOINT=f"{base}/v1/logs",
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{base}/v1/logs",
        OTEL_EXPORTER_OTLP_ENDPOINT=base,
        SENTRY_DSN=f"http://public@127.0.0.1:{port}/1",
        POSTHOG_API_KEY="phc_benchmark",
        POSTHOG_HOST=base,
        LOGFIRE_SEND_TO_LOGFIRE="false",
        LOGFIRE_CONSOLE="false",
        LOGFIRE_INSPECT_ARGUMENTS="false",
    )
    if side != "logfire":
        # logfire registers a pydantic plugin, which pydantic imports (all of logfire)
        # when any process builds its first model: measure the others as they run where
        # logfire is not installed.
        env["PYDANTIC_DISABLE_PLUGINS"] = "logfire-plugin"
    return env


def _run(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float | None, str]:
    """Run ``command`` to its end: wall ms, CPU ms (user + system), standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN) if resource else None
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    wall = (time.perf_counter() - started) * 1e3
    cpu = None
    if resource is not None and before is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3
    if done.returncode != 0:
        raise RuntimeError(f"{command[-1]!r} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, cpu, done.stdout


def _run_at_home(command: list[str], side: str, port: int) -> tuple[float, float | None, str]:
    """:func:`_run` in a HOME of its own: a run that leaves events in the durable spool
    (a first-events run ends with ``os._exit``) must not hand the next one a backlog to
    deliver, which would then measure that delivery instead of its statement."""
    with tempfile.TemporaryDirectory(prefix="codex-telemetry-startup-") as home:
        return _run(command, environment(home, port, side), home)


def measure(samples: int, say: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Every statement and every side's first events, ``samples`` rounds, interleaved;
    every run in a fresh HOME."""
    sides = ["python", *PEERS]
    present = {side: installed(side) for side in sides}
    statements = {key: code for key, code in STATEMENTS.items() if present[key[0]]}
    timings: dict[str, dict[str, dict[str, list[float]]]] = {}
    first: dict[str, list[dict[str, Any]]] = {side: [] for side in PEERS if present[side]}
    port = _closed_port()
    python = [sys.executable, "-c"]
    first_command = [sys.executable, "-m", "benchmarks._startup", "first"]
    # Warm-up: bytecode compiled, files in the page cache.
    for (side, _), code in statements.items():
        _run_at_home([*python, code], side, port)
    for round_number in range(samples):
        say(f"start-up round {round_number + 1}/{samples}")
        for (side, step), code in statements.items():
            wall, cpu, _ = _run_at_home([*python, code], side, port)
            figures = timings.setdefault(side, {}).setdefault(step, {"wall": [], "cpu": []})
            figures["wall"].append(wall)
            if cpu is not None:
                figures["cpu"].append(cpu)
        for side, runs in first.items():
            _, _, out = _run_at_home([*first_command, side], side, port)
            runs.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "samples": samples,
        "installed": present,
        "statements": {f"{side}: {step}": code for (side, step), code in statements.items()},
        "whole_process_ms": timings,
        "first_events": first,
    }


# --- in a child: the first events ---------------------------------------------------


def _loaded() -> dict[str, bool]:
    return {name: name in sys.modules for name in _HEAVY_MODULES}


def _first_facts() -> list[Callable[[], Any]]:
    """Makers of one fact of each type, in the order a session reports them; each builds
    its nested values too, as a program does."""
    from codex_telemetry import facts as f  # noqa: PLC0415

    def tracking() -> f.TrackingContext:
        return f.TrackingContext("gpt-5.1-codex", "thread-1", "turn-1")

    def plugin() -> f.PluginMetadata:
        return f.PluginMetadata(
            "figma", "openai-curated", f.PluginCapabilitySummary(True, ("figma-mcp",), ())
        )

    return [
        lambda: f.Initialize(
            1,
            f.InitializeParams(f.ClientInfo("my-app", "1.0"), f.Capabilities(True)),
            "my-app",
            "stdio",
        ),
        lambda: f.Response(
            1,
            1,
            f.ThreadStartResponse(f.Thread("thread-1", False, 1_795_580_000, "vscode"), "gpt-5"),
        ),
        lambda: f.Request(1, 2, f.TurnStartRequest("thread-1", (f.TextInput("Fix the tests"),))),
        lambda: f.TurnResolvedConfig(
            "turn-1",
            "thread-1",
            0,
            None,
            False,
            "vscode",
            "gpt-5",
            "openai",
            "workspace_write",
            "medium",
            None,
            None,
            "on-request",
            "user",
            False,
            "default",
            None,
            True,
        ),
        lambda: f.Notification(
            f.TurnStartedNotification("thread-1", f.Turn("turn-1", "in_progress"))
        ),
        lambda: f.SkillInvoked(
            tracking(), (f.SkillInvocation("pdf", "user", "/skills/pdf/SKILL.md", "explicit"),)
        ),
        lambda: f.AppMentioned(
            tracking(), (f.AppInvocation("connector_github", "GitHub", "explicit"),)
        ),
        lambda: f.AppUsed(tracking(), f.AppInvocation("connector_github", "GitHub", "explicit")),
        lambda: f.PluginUsed(tracking(), plugin()),
        lambda: f.HookRun(tracking(), "PreToolUse", "user", "completed"),
        lambda: f.TurnTokenUsage("turn-1", "thread-1", f.TokenUsage(1200, 800, 64, 16, 1264)),
        lambda: f.ErrorResponse(1, 3, f.JsonRpcError(-32600, "no active turn"), "no_active_turn"),
        lambda: f.SubAgentThreadStarted(
            "thread-2",
            "thread-1",
            "my-app",
            None,
            None,
            "gpt-5",
            True,
            f.ThreadSpawn("thread-1", 1),
            1_795_580_001,
        ),
        lambda: f.Compaction(
            "thread-1",
            "turn-1",
            "auto",
            "context_limit",
            "responses",
            "mid_turn",
            "memento",
            "completed",
            None,
            180_000,
            40_000,
            1_795_580_002,
            1_795_580_003,
            900,
        ),
        lambda: f.PluginStateChanged(plugin(), "installed"),
    ]


class _GarbageCollections:
    """Milliseconds spent in the interpreter's garbage collections since creation."""

    def __init__(self) -> None:
        self.ms = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.ms += (time.perf_counter() - self._started) * 1e3

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


def _first_ours() -> dict[str, Any]:
    clock = time.perf_counter
    start = clock()
    import codex_telemetry  # noqa: PLC0415

    imported = clock()
    after_import = _loaded()
    # The rest from the environment; the flag on, so that every fact type is accepted.
    telemetry = codex_telemetry.init(general_analytics=True)
    ready = clock()
    after_init = _loaded()
    track = codex_telemetry.track_fact
    by_type: dict[str, dict[str, float]] = {}
    cpu = time.thread_time
    collections = _GarbageCollections()
    for make in _first_facts():
        began, began_cpu, collected = clock(), cpu(), collections.ms
        fact = make()
        built = clock()
        track(fact)
        tracked, tracked_cpu = clock(), cpu()
        by_type[type(fact).__name__] = {
            "build_ms": (built - began) * 1e3,
            "track_ms": (tracked - built) * 1e3,
            # The caller's own CPU: the wall time less waiting for the GIL and the CPU.
            "thread_cpu_ms": (tracked_cpu - began_cpu) * 1e3,
            # Collections the interpreter ran meanwhile: the objects start-up allocated
            # make a full one due soon after init(), wherever the program then is.
            "gc_ms": collections.ms - collected,
        }
    collections.close()
    return {
        "interpreter_ms": (start - _START) * 1e3,
        "import_ms": (imported - start) * 1e3,
        "init_ms": (ready - imported) * 1e3,
        "loaded_after_import": after_import,
        "loaded_after_init": after_init,
        "first_fact_ms": by_type,
        "facts_accepted": telemetry.stats().facts_accepted,
    }


def _first_peer(side: str) -> dict[str, Any]:
    clock = time.perf_counter
    start = clock()
    event: Callable[[], Any]
    if side == "sentry_sdk":
        import sentry_sdk  # noqa: PLC0415

        imported = clock()
        sentry_sdk.init()
        event = lambda: sentry_sdk.capture_message("benchmark")  # noqa: E731
    elif side == "posthog":
        import posthog  # noqa: PLC0415

        imported = clock()
        client = posthog.Posthog(os.environ["POSTHOG_API_KEY"], host=os.environ["POSTHOG_HOST"])
        event = lambda: client.capture("benchmark", distinct_id="user-1")  # noqa: E731
    elif side == "logfire":
        import logfire  # noqa: PLC0415

        imported = clock()
        logfire.configure()
        event = lambda: logfire.info("benchmark")  # noqa: E731
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
            OTLPLogExporter,
        )
        from opentelemetry.sdk._logs import LoggerProvider  # noqa: PLC0415
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: PLC0415

        imported = clock()
        provider = LoggerProvider()
        provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        event = lambda: provider.get_logger("benchmark").emit(  # noqa: E731
            event_name="benchmark", attributes={"thread_id": "thread-1"}
        )
    ready = clock()
    event()
    done = clock()
    return {
        "interpreter_ms": (start - _START) * 1e3,
        "import_ms": (imported - start) * 1e3,
        "init_ms": (ready - imported) * 1e3,
        "first_event_ms": (done - ready) * 1e3,
    }


def main() -> None:
    """``first SIDE``: print the JSON result, then leave at once (nothing is delivered:
    the collector port is closed, and exit-time retries are not what is measured)."""
    side = sys.argv[2]
    result = _first_ours() if side == "codex_telemetry" else _first_peer(side)
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # os._exit as the platform module provides it: logfire replaces os._exit with a flush.
    __import__(os.name)._exit(0)


if __name__ == "__main__":
    main()
