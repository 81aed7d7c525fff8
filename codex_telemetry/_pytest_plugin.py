"""pytest plugin of codex-telemetry: registers the fixtures of ``codex_telemetry.testing``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from codex_telemetry.testing import EventCapture

__all__ = ["codex_telemetry_events"]


@pytest.fixture
def codex_telemetry_events() -> Iterator[EventCapture]:
    """Capture the analytics events the code under test produces.

    Installs a client with an in-memory sink (GeneralAnalytics on, strict on) as the
    default, so ``codex_telemetry.track_fact`` and the instrumentations report to it;
    yields a :class:`codex_telemetry.testing.EventCapture` (``.events``, ``.dicts()``,
    ``.event_types()``, ``.clear()``); shuts the client down afterwards.
    """
    # Imported here: the plugin is loaded by every pytest run, most of which never use it.
    from codex_telemetry.testing import capture_events  # noqa: PLC0415

    with capture_events() as capture:
        yield capture
