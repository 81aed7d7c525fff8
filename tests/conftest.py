"""Shared test setup: every test starts from a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_PREFIXES = ("CODEX_TELEMETRY_", "OTEL_")
_NAMES = ("DO_NOT_TRACK",)
# Written by init() for the children of multiprocessing: removed after every test too.
_WRITTEN = "_CODEX_TELEMETRY_INIT"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear every variable the SDK reads, so that the developer's shell cannot leak in."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES) or name in _NAMES:
            monkeypatch.delenv(name)
    monkeypatch.setenv(_WRITTEN, "")
    monkeypatch.delenv(_WRITTEN)
    yield
