"""``codex-telemetry config``: the effective settings, where each came from, and why."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, SecretStr

from codex_telemetry._cli._common import fail, table
from codex_telemetry._settings import (
    ConfigurationError,
    SettingSource,
    TelemetrySettings,
    load_settings,
    setting_sources,
)

__all__ = ["collection_status", "config", "load_or_fail"]

_MASK = "***"


def load_or_fail() -> TelemetrySettings:
    """The settings ``init()`` would build here, or one line that says what is wrong."""
    try:
        return load_settings()
    except ConfigurationError as error:
        raise fail(str(error)) from None


def describe_source(source: SettingSource) -> str:
    """``default``, ``argument``, ``.env CODEX_TELEMETRY_X`` or the variable's name."""
    if source.kind == "dotenv":
        return f".env {source.variable}"
    return source.variable or source.kind


def collection_status(
    settings: TelemetrySettings, sources: dict[str, SettingSource]
) -> tuple[bool, str | None]:
    """Whether the SDK would collect, and if not the reason, as ``init()`` decides it."""
    if not settings.enabled:
        source = sources["enabled"]
        if source.kind == "opt_out" and source.variable is not None:
            return False, f"{source.variable}={os.environ.get(source.variable, '')} opts out"
        return False, f"enabled is false ({describe_source(source)})"
    if settings.exporter == "none":
        return False, f"exporter is 'none' ({describe_source(sources['exporter'])})"
    return True, None


def _value(settings: TelemetrySettings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    if value is None:
        return _automatic(settings, path)
    return value


def _automatic(settings: TelemetrySettings, path: str) -> Any:
    """What a setting left at None means in effect, where the SDK decides it: the spool's
    switch and folder, strict mode, the reducer's bounds. None where None is the value
    (no service version, no file path)."""
    if path == "spool.enabled":
        return settings.spool.active_for(settings.exporter)
    if path == "spool.directory":
        from codex_telemetry._spool import default_spool_directory  # noqa: PLC0415

        return default_spool_directory()
    if path == "strict":
        return settings.effective_strict()
    if path.startswith("reducer."):
        from codex_telemetry._reducer import ReducerLimits  # noqa: PLC0415

        return getattr(ReducerLimits(), path.removeprefix("reducer."))
    return None


def _plain(settings: TelemetrySettings, path: str) -> Any:
    """The value as JSON, with secrets masked (header names are kept: they are not secret)."""
    value = _value(settings, path)
    if path == "otlp.headers":
        return {name: _MASK for name in settings.otlp.headers_dict()} if value else None
    if isinstance(value, SecretStr):
        return _MASK
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(value)
    if callable(value):  # before_send, which only code sets
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}"
    if isinstance(value, BaseModel):  # pragma: no cover - every group is flattened
        return value.model_dump(mode="json")
    return value


def _shown(value: Any) -> Any:
    """A path under the home directory as ``~/...``, the way a person reads it."""
    if isinstance(value, str) and os.path.isabs(value):
        home = os.path.expanduser("~")
        if home not in ("~", os.sep) and Path(value).is_relative_to(home):
            return str(Path("~") / Path(value).relative_to(home))
    return value


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{name}={masked}" for name, masked in value.items())
    if isinstance(value, list):
        return ",".join(value) or "-"
    return str(value)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def config(as_json: bool) -> None:
    """Show the effective settings and where each value came from.

    Reads the settings exactly as codex_telemetry.init() does in this directory:
    CODEX_TELEMETRY_* variables, then a .env file, then the standard OTEL_* variables,
    then the defaults. Says whether collection is on, and if not why (DO_NOT_TRACK,
    OTEL_SDK_DISABLED, enabled=false, exporter=none). Secrets (header values, the backend
    token) are shown as ***. A bad value fails with the setting and its variable.
    """
    settings = load_or_fail()
    sources = setting_sources()
    on, reason = collection_status(settings, sources)
    if as_json:
        document = {
            "collecting": on,
            "reason": reason,
            "settings": {
                path: {
                    "value": _plain(settings, path),
                    "source": source.kind,
                    "variable": source.variable,
                }
                for path, source in sources.items()
            },
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(
        f"collection: on ({_destination(settings)})" if on else f"collection: off ({reason})"
    )
    click.echo("")
    rows = [
        (path, _text(_shown(_plain(settings, path))), describe_source(source))
        for path, source in sources.items()
    ]
    for line in table(("setting", "value", "source"), rows):
        click.echo(line)


def _destination(settings: TelemetrySettings) -> str:
    exporter = settings.exporter
    if exporter == "otlp":
        return f"otlp {settings.otlp.protocol} to {settings.otlp.endpoint}"
    if exporter == "file":
        return f"file {settings.file.path}"
    if exporter == "codex_backend":
        return f"codex_backend {settings.codex_backend.base_url}"
    return f"{exporter} (standard error)"
