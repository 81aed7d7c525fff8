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
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Clear every variable the SDK reads, so that the developer's shell cannot leak in,
    and give each test a cache directory of its own: the durable spool's default folder
    is in the per-user cache, which a test must never touch."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES) or name in _NAMES:
            monkeypatch.delenv(name)
    # A pydantic plugin installed beside the package (logfire's, which the benchmarks'
    # 'bench' extra brings) is imported with the first model a process builds, with all
    # of its package: the tests, and the processes they start, run the SDK alone.
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "__all__")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv(_WRITTEN, "")
    monkeypatch.delenv(_WRITTEN)
    yield
