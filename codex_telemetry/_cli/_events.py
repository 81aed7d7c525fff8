"""``codex-telemetry show`` and ``tail``: events of a JSON Lines file, one readable line each."""

from __future__ import annotations

import collections
import json
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

import click

from codex_telemetry._cli._common import fail, read_events, wire_line

__all__ = ["format_event", "show", "tail"]

# The parameters that identify each kind of event, shown after its type, in this order.
_SHOWN: dict[str, tuple[str, ...]] = {
    "codex_thread_initialized": ("thread_id", "initialization_mode", "model", "thread_source"),
    "codex_turn_event": (
        "thread_id",
        "turn_id",
        "status",
        "model",
        "total_tokens",
        "duration_ms",
    ),
    "codex_turn_steer_event": ("thread_id", "expected_turn_id", "result", "rejection_reason"),
    "skill_invocation": ("thread_id", "skill_scope", "invoke_type"),
    "codex_app_mentioned": ("thread_id", "turn_id", "connector_id", "app_name"),
    "codex_app_used": ("thread_id", "turn_id", "connector_id", "app_name"),
    "codex_plugin_used": ("thread_id", "turn_id", "plugin_id"),
    "codex_plugin_installed": ("plugin_id",),
    "codex_plugin_uninstalled": ("plugin_id",),
    "codex_plugin_enabled": ("plugin_id",),
    "codex_plugin_disabled": ("plugin_id",),
    "codex_hook_run": ("thread_id", "turn_id", "hook_name", "status"),
    "codex_compaction_event": ("thread_id", "turn_id", "trigger", "status"),
}
_SHORT = {
    "thread_id": "thread",
    "turn_id": "turn",
    "expected_turn_id": "turn",
    "initialization_mode": "mode",
    "skill_name": "skill",
    "skill_scope": "scope",
    "invoke_type": "invoked",
    "connector_id": "connector",
    "app_name": "app",
    "plugin_id": "plugin",
    "hook_name": "hook",
    "total_tokens": "tokens",
    "rejection_reason": "reason",
    "thread_source": "source",
}
_TYPE_WIDTH = 26


def _scalar(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def format_event(wire: dict[str, Any]) -> str:
    """``<event_type> key=value ...``: the parameters that say which event this is."""
    event_type = wire["event_type"]
    params = dict(wire["event_params"])
    if "skill_name" in wire:
        params = {"skill_name": wire["skill_name"], **params}
    names = _SHOWN.get(event_type)
    if names is None:  # a type this version does not know: its plain values
        names = tuple(n for n, v in params.items() if isinstance(v, str | int | float | bool))
    elif "skill_name" in params:
        names = ("skill_name", *names)
    parts = [
        f"{_SHORT.get(name, name)}={_scalar(params[name])}"
        for name in names
        if params.get(name) is not None
    ]
    return f"{event_type:<{_TYPE_WIDTH}} {' '.join(parts)}".rstrip()


def _matches(wire: dict[str, Any], event_types: tuple[str, ...], thread: str | None) -> bool:
    if event_types and wire["event_type"] not in event_types:
        return False
    return thread is None or wire["event_params"].get("thread_id") == thread


def _emit(wire: dict[str, Any], as_json: bool, verbose: bool) -> None:
    if as_json:
        click.echo(wire_line(wire))
        return
    click.echo(format_event(wire))
    if verbose:
        for line in json.dumps(wire, indent=2, ensure_ascii=False).splitlines():
            click.echo(f"    {line}")


def _filters(function: Any) -> Any:
    function = click.option(
        "-v", "--verbose", is_flag=True, help="Also print each event's whole JSON, indented."
    )(function)
    function = click.option(
        "--json", "as_json", is_flag=True, help="Print the matching events as JSON Lines."
    )(function)
    function = click.option(
        "--thread", metavar="ID", help="Only the events of this thread (event_params.thread_id)."
    )(function)
    function = click.option(
        "-t",
        "--event-type",
        "event_types",
        multiple=True,
        metavar="TYPE",
        help="Only events of this type (repeat for several), e.g. codex_turn_event.",
    )(function)
    return function


_FILE = click.argument("file", type=click.File("r", encoding="utf-8"), default="-")


@click.command()
@_FILE
@_filters
def show(
    *, file: IO[str], event_types: tuple[str, ...], thread: str | None, as_json: bool, verbose: bool
) -> None:
    """Print the events of a JSON Lines file, one readable line each.

    FILE is JSON Lines as the file exporter writes it, or standard input ("-", the
    default). Each line is the event type and the parameters
    that identify the event (thread, turn, status, model, tokens, ...); --verbose adds the
    whole event. Filter with --event-type and --thread.
    """
    for wire in read_events(file, file.name):
        if _matches(wire, event_types, thread):
            _emit(wire, as_json, verbose)


@click.command()
@_FILE
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many of the last matching events to print.",
)
@click.option(
    "-f", "--follow", is_flag=True, help="Keep reading as events are appended (Ctrl-C stops)."
)
@_filters
def tail(
    *,
    file: IO[str],
    count: int,
    follow: bool,
    event_types: tuple[str, ...],
    thread: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Print the last events of a JSON Lines file; -f follows it.

    FILE is JSON Lines as the file exporter writes it (CODEX_TELEMETRY_FILE__PATH), or
    standard input ("-", the default). Same output and filters as `codex-telemetry show`.
    """
    last: collections.deque[dict[str, Any]] = collections.deque(maxlen=count)
    for wire in read_events(file, file.name):
        if _matches(wire, event_types, thread):
            last.append(wire)
    for wire in last:
        _emit(wire, as_json, verbose)
    if not follow:
        return
    if file is sys.stdin or file.name == "<stdin>":
        raise fail("--follow needs a file, not standard input")
    sys.stdout.flush()
    for wire in read_events(_follow(file), file.name):
        if _matches(wire, event_types, thread):
            _emit(wire, as_json, verbose)
            sys.stdout.flush()


def _follow(file: IO[str]) -> Iterator[str]:
    """The lines appended to ``file`` from now on, each once it is whole."""
    pending = ""
    while True:
        chunk = file.readline()
        if not chunk:
            time.sleep(0.2)
            continue
        pending += chunk
        if pending.endswith("\n"):
            yield pending
            pending = ""
