"""A program as a user writes it: ``main()`` configures the SDK itself, then reports.

The tests of ``codex_telemetry.testing`` run it inside a capture, as a user's own test
suite would run their program.
"""

from __future__ import annotations

import codex_telemetry
from codex_telemetry import facts

TRACKING = facts.TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id="turn-1")


def main(endpoint: str = "http://localhost:4318/v1/logs") -> None:
    """Configure the SDK to send to ``endpoint`` over OTLP, then report one turn's
    skill, app and hook."""
    codex_telemetry.init(
        exporter="otlp",
        otlp__endpoint=endpoint,
        originator="sample_app",
        event_types__exclude=["codex_app_used"],
    )
    codex_telemetry.track_fact(
        facts.SkillInvoked(
            tracking=TRACKING,
            invocations=[
                facts.SkillInvocation(
                    skill_name="doc",
                    skill_scope="user",
                    skill_path="/home/me/.codex/skills/doc/SKILL.md",
                    invocation_type="explicit",
                )
            ],
        )
    )
    codex_telemetry.track_fact(
        facts.AppUsed(
            tracking=TRACKING,
            app=facts.AppInvocation(
                connector_id="connector_gdrive", app_name="Google Drive", invocation_type="explicit"
            ),
        )
    )
    codex_telemetry.track_fact(
        facts.HookRun(tracking=TRACKING, hook_name="Stop", hook_source="user", status="completed")
    )


if __name__ == "__main__":
    main()
