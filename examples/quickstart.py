"""Report a short Codex session and watch the analytics events it produces.

Run it with ``python examples/quickstart.py``: no collector is needed. The console
exporter prints one line per event on standard error (``<event_type> <timestamp>
<attributes>``); the counters follow on standard output. Set ``CODEX_TELEMETRY_EXPORTER=otlp`` (and
``OTEL_EXPORTER_OTLP_ENDPOINT``) to send the same events to a collector instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import codex_telemetry
from codex_telemetry import facts


def report_session() -> None:
    """The facts a program embedding the Codex app-server reports for one short session."""
    track = codex_telemetry.track_fact
    now = int(time.time())
    connection = 1

    # A client connects (runtime=None: the SDK fills in this process's runtime).
    track(
        facts.Initialize(
            connection_id=connection,
            params=facts.InitializeParams(
                client_info=facts.ClientInfo(name="quickstart", version="1.0.0"),
                capabilities=facts.Capabilities(experimental_api=False),
            ),
            product_client_id="quickstart",
            rpc_transport="stdio",
        )
    )
    # It starts a thread...
    track(
        facts.Response(
            connection_id=connection,
            request_id=1,
            response=facts.ThreadStartResponse(
                thread=facts.Thread(id="thread-1", ephemeral=False, created_at=now, source="cli"),
                model="gpt-5",
            ),
        )
    )
    # ...and a turn with some text and one image.
    track(
        facts.Request(
            connection_id=connection,
            request_id=2,
            request=facts.TurnStartRequest(
                thread_id="thread-1",
                input=(
                    facts.TextInput(text="Summarise the design document"),
                    facts.ImageInput(url="https://example.com/diagram.png"),
                ),
            ),
        )
    )
    track(
        facts.Response(
            connection_id=connection,
            request_id=2,
            response=facts.TurnStartResponse(turn=facts.Turn(id="turn-1", status="in_progress")),
        )
    )
    track(
        facts.TurnResolvedConfig(
            turn_id="turn-1",
            thread_id="thread-1",
            num_input_images=1,
            submission_type="default",
            ephemeral=False,
            session_source="cli",
            model="gpt-5",
            model_provider="openai",
            sandbox_policy="workspace_write",
            reasoning_effort="medium",
            reasoning_summary="auto",
            service_tier=None,
            approval_policy="on-request",
            approvals_reviewer="user",
            sandbox_network_access=False,
            collaboration_mode="default",
            personality=None,
            is_first_turn=True,
        )
    )
    track(
        facts.Notification(
            notification=facts.TurnStartedNotification(
                thread_id="thread-1",
                turn=facts.Turn(id="turn-1", status="in_progress", started_at=now),
            )
        )
    )
    # The user steers the running turn.
    track(
        facts.Request(
            connection_id=connection,
            request_id=3,
            request=facts.TurnSteerRequest(
                thread_id="thread-1",
                expected_turn_id="turn-1",
                input=(facts.TextInput(text="Focus on the storage layer"),),
            ),
        )
    )
    track(
        facts.Response(
            connection_id=connection,
            request_id=3,
            response=facts.TurnSteerResponse(turn_id="turn-1"),
        )
    )
    # During the turn the model uses a skill, an app and a plugin.
    tracking = facts.TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id="turn-1")
    skill_path = Path.home() / ".codex" / "skills" / "summarise" / "SKILL.md"
    track(
        facts.SkillInvoked(
            tracking=tracking,
            invocations=(
                facts.SkillInvocation(
                    skill_name="summarise",
                    skill_scope="user",
                    skill_path=str(skill_path),
                    invocation_type="explicit",
                ),
            ),
        )
    )
    gdrive = facts.AppInvocation(
        connector_id="connector_gdrive", app_name="Google Drive", invocation_type="implicit"
    )
    track(facts.AppUsed(tracking=tracking, app=gdrive))
    track(facts.AppUsed(tracking=tracking, app=gdrive))  # same turn and app: sent once
    track(
        facts.PluginUsed(
            tracking=tracking,
            plugin=facts.PluginMetadata(plugin_name="docs-toolkit", marketplace_name="openai"),
        )
    )
    # Token usage first, then completion: the turn event is emitted on completion.
    track(
        facts.TurnTokenUsage(
            turn_id="turn-1",
            thread_id="thread-1",
            token_usage=facts.TokenUsage(
                input_tokens=1200,
                cached_input_tokens=800,
                output_tokens=350,
                reasoning_output_tokens=120,
                total_tokens=1550,
            ),
        )
    )
    track(
        facts.Notification(
            notification=facts.TurnCompletedNotification(
                thread_id="thread-1",
                turn=facts.Turn(
                    id="turn-1", status="completed", completed_at=now + 9, duration_ms=9150
                ),
            )
        )
    )


def main() -> None:
    """Initialise, report, flush, and print what happened."""
    # The console exporter prints one readable line per event on standard error, unless
    # CODEX_TELEMETRY_EXPORTER chooses another (an argument of None counts as not given).
    chosen_by_environment = "CODEX_TELEMETRY_EXPORTER" in os.environ
    telemetry = codex_telemetry.init(
        exporter=None if chosen_by_environment else "console",
        general_analytics=True,  # thread, turn and steer events are behind this flag
        originator="quickstart",
    )
    report_session()
    delivered = telemetry.shutdown(timeout=5)  # flush, then stop
    stats = telemetry.stats()
    print(f"delivered everything: {delivered}")
    print(
        f"facts accepted {stats.facts_accepted}, deduplicated {stats.facts_deduplicated}; "
        f"events produced {stats.events_produced}, exported {stats.events_exported}",
        flush=True,
    )


if __name__ == "__main__":
    main()
