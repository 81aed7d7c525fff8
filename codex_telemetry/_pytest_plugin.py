"""pytest plugin of codex-telemetry: registers the fixtures of ``codex_telemetry.testing``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from codex_telemetry.testing import EventCapture

__all__ = ["codex_telemetry_events", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``codex_telemetry`` marker (so that ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "codex_telemetry(instrument=[...], **settings): options of the codex_telemetry_events "
        "capture, e.g. instrument=['openai_codex'] or general_analytics=False",
    )


@pytest.fixture
def codex_telemetry_events(request: pytest.FixtureRequest) -> Iterator[EventCapture]:
    """Capture the analytics events the code under test produces.

    Installs a client with an in-memory sink (GeneralAnalytics on, strict on) as the
    default, so ``codex_telemetry.track_fact`` and the instrumentations report to it; a
    call to ``codex_telemetry.init()`` by the code under test reports to it too, and opens
    no file or network connection. Yields a :class:`codex_telemetry.testing.EventCapture`
    (``.events``, ``.dicts()``, ``.event_types()``, ``.clear()``); shuts its clients down
    afterwards. ``@pytest.mark.codex_telemetry(instrument=["openai_codex"], ...)`` passes
    its arguments to :func:`codex_telemetry.testing.capture_events`.
    """
    # Imported here: the plugin is loaded by every pytest run, most of which never use it.
    from codex_telemetry.testing import capture_events  # noqa: PLC0415

    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("codex_telemetry"))):
        options.update(marker.kwargs)  # the closest marker wins
    with capture_events(**options) as capture:
        yield capture
