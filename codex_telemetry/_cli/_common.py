"""What the commands share: reading JSON Lines of events, plain text tables, errors."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import click

__all__ = [
    "fail",
    "iter_json_lines",
    "library_logs",
    "read_events",
    "table",
    "wire_line",
]


def fail(message: str) -> click.ClickException:
    """An error to raise: shown as one line on stderr, exit code 1."""
    return click.ClickException(message)


def wire_line(wire: dict[str, Any]) -> str:
    """One JSON Lines line, in the file sink's own format (compact, UTF-8)."""
    return json.dumps(wire, ensure_ascii=False, separators=(",", ":"))


def iter_json_lines(stream: Iterable[str], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not an object fails."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise fail(f"{name}:{number}: not JSON") from None
        if not isinstance(value, dict):
            raise fail(f"{name}:{number}: not a JSON object")
        yield number, value


def _is_event(value: dict[str, Any]) -> bool:
    return isinstance(value.get("event_type"), str) and isinstance(value.get("event_params"), dict)


def read_events(stream: Iterable[str], name: str) -> Iterator[dict[str, Any]]:
    """The wire events of a JSON Lines stream (the file sink's format).

    Keys other than the wire object's are ignored, so an envelope written around the
    event's own keys still reads. A line that is not an event fails with its number.
    """
    for number, value in iter_json_lines(stream, name):
        if not _is_event(value):
            raise fail(f"{name}:{number}: not an event (no event_type and event_params)")
        yield value


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """Lines of a plain text table: first column left-aligned, numbers right-aligned."""
    cells = [list(headers)] + [[_cell(value) for value in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int) for row in cells[1:]) and len(cells) > 1
        for i in range(len(headers))
    ]
    text = [[str(value) for value in row] for row in cells]
    widths = [max(len(row[i]) for row in text) for i in range(len(headers))]
    lines = []
    for row in text:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines


def _cell(value: object) -> object:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def library_logs() -> Iterator[list[str]]:
    """Collect what the SDK logs instead of printing it: its lines speak to a host
    program ("your code is unaffected"), and a command says what happened itself."""
    logger = logging.getLogger("codex_telemetry")
    collected = _Collect()
    logger.addHandler(collected)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield collected.messages
    finally:
        logger.removeHandler(collected)
        logger.propagate = propagate
