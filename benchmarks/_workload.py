"""The benchmark workload: a realistic mix of facts, and the events they produce.

A few app-server connections, each with its own client and runtime, run threads whose
turns are interleaved across connections. Per turn: ``Request(turn/start)``,
``Response(TurnStartResponse)``, ``TurnResolvedConfig``, ``Notification(TurnStarted)``,
``TurnTokenUsage``, ``Notification(TurnCompleted)`` (one ``codex_turn_event``). Mixed in:
thread starts, accepted steers, skill invocations, app mentions and uses, plugin uses.

Facts are generated on the fly, so a long run never holds them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from codex_telemetry import facts as f
from codex_telemetry._reducer import AnalyticsReducer
from codex_telemetry.events import AnalyticsEvent
from codex_telemetry.facts import Fact

__all__ = [
    "CONNECTIONS",
    "Fact",
    "PlainEvent",
    "Workload",
    "f",
    "new_reducer",
    "plain_event",
    "plain_events",
    "setup_facts",
    "turn_facts",
]

CONNECTIONS = 4
THREADS_PER_CONNECTION = 3
# Every how many turns (per connection) the extra facts come.
_STEER_EVERY = 4
_SKILL_EVERY = 5
_APP_EVERY = 7
_PLUGIN_EVERY = 9
_NEW_THREAD_EVERY = 25

_RUNTIMES = (
    f.RuntimeMetadata("0.169.0", "linux", "12.0.0", "x86_64"),
    f.RuntimeMetadata("0.169.0", "macos", "15.3.1", "aarch64"),
)
_CLIENTS = ("codex-tui", "codex_vscode", "codex-exec", "my-python-app")
_CLOCK = 1_795_580_000


def _initialize(connection: int) -> f.Initialize:
    name = _CLIENTS[connection % len(_CLIENTS)]
    return f.Initialize(
        connection_id=connection,
        params=f.InitializeParams(
            client_info=f.ClientInfo(name, "1.4.2"),
            capabilities=f.Capabilities(experimental_api=connection % 2 == 0),
        ),
        product_client_id=name,
        rpc_transport="stdio" if connection % 2 else "websocket",
        runtime=_RUNTIMES[connection % len(_RUNTIMES)],
    )


def _thread_start(connection: int, request_id: int, thread_id: str) -> f.Response:
    return f.Response(
        connection_id=connection,
        request_id=request_id,
        response=f.ThreadStartResponse(
            thread=f.Thread(id=thread_id, ephemeral=False, created_at=_CLOCK, source="vscode"),
            model="gpt-5.1-codex",
        ),
    )


@dataclass(slots=True)
class Workload:
    """Which thread each connection is on, and the next request id: the generator's state."""

    turns_done: int = 0
    next_request_id: int = 1000
    thread_serial: int = 0

    def request_id(self) -> int:
        self.next_request_id += 1
        return self.next_request_id


def setup_facts(workload: Workload) -> list[f.Fact]:
    """``Initialize`` of every connection and its first threads (thread events)."""
    out: list[f.Fact] = []
    for connection in range(1, CONNECTIONS + 1):
        out.append(_initialize(connection))
        for thread in range(THREADS_PER_CONNECTION):
            out.append(
                _thread_start(connection, workload.request_id(), _thread_id(connection, thread))
            )
    return out


def _thread_id(connection: int, thread: int) -> str:
    return f"0199a1b2-c3d4-7e5f-8a9b-{connection:04d}{thread:08d}"


def turn_facts(workload: Workload, turns: int) -> Iterator[f.Fact]:
    """The facts of the next ``turns`` turns, interleaved across connections."""
    for _ in range(turns):
        serial = workload.turns_done
        workload.turns_done += 1
        connection = serial % CONNECTIONS + 1
        per_connection = serial // CONNECTIONS
        thread_index = per_connection % THREADS_PER_CONNECTION
        if per_connection and per_connection % _NEW_THREAD_EVERY == 0:
            # A fresh thread now and then: a codex_thread_initialized event.
            workload.thread_serial += 1
            thread_index = THREADS_PER_CONNECTION + workload.thread_serial
            yield _thread_start(
                connection, workload.request_id(), _thread_id(connection, thread_index)
            )
        thread_id = _thread_id(connection, thread_index)
        turn_id = f"turn-{serial:010d}"
        request_id = workload.request_id()
        images = 1 if serial % 3 == 0 else 0
        inputs: tuple[f.UserInput, ...] = (f.TextInput("Refactor the parser and add tests"),)
        if images:
            inputs += (f.ImageInput("https://example.com/screenshot.png"),)
        yield f.Request(connection, request_id, f.TurnStartRequest(thread_id, inputs))
        yield f.Response(
            connection,
            request_id,
            f.TurnStartResponse(f.Turn(id=turn_id, status="in_progress")),
        )
        yield f.TurnResolvedConfig(
            turn_id=turn_id,
            thread_id=thread_id,
            num_input_images=images,
            submission_type="default",
            ephemeral=False,
            session_source="vscode",
            model="gpt-5.1-codex",
            model_provider="openai",
            sandbox_policy="workspace_write",
            reasoning_effort="medium",
            reasoning_summary="auto",
            service_tier=None,
            approval_policy="on-request",
            approvals_reviewer="user",
            sandbox_network_access=False,
            collaboration_mode="default",
            personality="pragmatic",
            is_first_turn=per_connection < THREADS_PER_CONNECTION,
        )
        started = _CLOCK + serial
        yield f.Notification(
            f.TurnStartedNotification(
                thread_id, f.Turn(id=turn_id, status="in_progress", started_at=started)
            )
        )
        tracking = f.TrackingContext("gpt-5.1-codex", thread_id, turn_id)
        if per_connection % _STEER_EVERY == 1:
            steer_id = workload.request_id()
            yield f.Request(
                connection,
                steer_id,
                f.TurnSteerRequest(thread_id, turn_id, (f.TextInput("also update the docs"),)),
            )
            yield f.Response(connection, steer_id, f.TurnSteerResponse(turn_id))
        if per_connection % _SKILL_EVERY == 2:
            yield f.SkillInvoked(
                tracking,
                (
                    f.SkillInvocation(
                        "pdf", "user", "/nonexistent/.codex/skills/pdf/SKILL.md", "explicit"
                    ),
                ),
            )
        if per_connection % _APP_EVERY == 3:
            app = f.AppInvocation("connector_github", "GitHub", "explicit")
            yield f.AppMentioned(tracking, (app,))
            yield f.AppUsed(tracking, app)
        if per_connection % _PLUGIN_EVERY == 4:
            yield f.PluginUsed(
                tracking,
                f.PluginMetadata(
                    "figma",
                    "openai-curated",
                    f.PluginCapabilitySummary(True, ("figma-mcp",), ("connector_figma",)),
                ),
            )
        yield f.TurnTokenUsage(
            turn_id,
            thread_id,
            f.TokenUsage(
                input_tokens=12_000 + serial % 997,
                cached_input_tokens=8_192,
                output_tokens=640 + serial % 89,
                reasoning_output_tokens=128,
                total_tokens=12_768 + serial % 997 + serial % 89,
            ),
        )
        yield f.Notification(
            f.TurnCompletedNotification(
                thread_id,
                f.Turn(
                    id=turn_id,
                    status="completed",
                    started_at=started,
                    completed_at=started + 42,
                    duration_ms=41_250,
                ),
            )
        )


@dataclass(frozen=True, slots=True)
class PlainEvent:
    """An event as a plain OpenTelemetry user would emit it: name and nested attributes."""

    event_name: str
    attributes: dict[str, Any]


def plain_event(event: AnalyticsEvent) -> PlainEvent:
    wire = event.to_dict()
    attributes: dict[str, Any] = {name: wire[name] for name in event.top_level_fields}
    attributes.update(wire["event_params"])
    return PlainEvent(event.event_type, attributes)


def new_reducer() -> AnalyticsReducer:
    """A reducer like the SDK's (general analytics on), with a fixed clock."""
    return AnalyticsReducer(clock=lambda: float(_CLOCK))


def plain_events(fact_stream: Iterator[f.Fact] | list[f.Fact]) -> list[PlainEvent]:
    """The events ``fact_stream`` produces, reduced once, as plain attribute dicts."""
    reducer = new_reducer()
    return [plain_event(event) for fact in fact_stream for event in reducer.ingest(fact)]
