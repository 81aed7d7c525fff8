"""``codex-telemetry replay``: a recorded JSON-RPC transcript in, the events it makes out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

import click

from codex_telemetry import AnalyticsReducer, AppServerObserver
from codex_telemetry._cli._common import fail, iter_json_lines, library_logs, wire_line
from codex_telemetry.facts import Fact

__all__ = ["replay"]

_DIRECTIONS = {
    "client->server": "sent",
    "server->client": "received",
    "sent": "sent",
    "received": "received",
}


@click.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("-v", "--verbose", is_flag=True, help="Also print why messages were not understood.")
def replay(file: IO[str], verbose: bool) -> None:
    """Turn a recorded app-server session into its events, as JSON Lines.

    FILE (default: standard input) holds one message per line, as a recorder writes:

    \b
      {"seq": 2, "ts": 1795573855.49, "conn": "conn1", "dir": "client->server",
       "msg": {"id": 1, "method": "initialize", ...}}

    "dir" is client->server or server->client ("meta" lines are skipped); "seq"
    orders the lines, "conn" tells app-server connections apart and "ts" (unix
    seconds) is the clock. Each connection gets its own AppServerObserver, and every
    fact goes into one AnalyticsReducer, as with general_analytics on. The output has
    the file exporter's format, so `codex-telemetry report` and `show` read it. A
    summary line goes to standard error.
    """
    lines: list[tuple[float, int, dict[str, Any]]] = []
    for number, line in iter_json_lines(file, file.name):
        direction = line.get("dir")
        if direction == "meta":
            continue
        if direction not in _DIRECTIONS or not isinstance(line.get("msg"), dict | str):
            raise fail(
                f"{file.name}:{number}: not a transcript line "
                '(needs "dir": "client->server" or "server->client", and "msg")'
            )
        seq = line.get("seq")
        lines.append((seq if isinstance(seq, int | float) else number, number, line))
    lines.sort(key=lambda item: (item[0], item[1]))

    now = [time.time()]
    reducer = AnalyticsReducer(clock=lambda: now[0])
    produced = 0

    def track(fact: Fact) -> None:
        nonlocal produced
        for event in reducer.ingest(fact):
            produced += 1
            click.echo(wire_line(event.to_dict()))

    observers: dict[str, AppServerObserver] = {}
    with library_logs() as logged:
        _observe(lines, observers, track, now)
    if verbose:
        for message in logged:
            click.echo(f"log: {message}", err=True)

    totals = [observer.stats() for observer in observers.values()]
    facts = sum(stats.facts for stats in totals)
    skipped = sum(stats.malformed + stats.unrecognized for stats in totals)
    summary = (
        f"replay: {_count(len(lines), 'message')} on {_count(len(observers), 'connection')}, "
        f"{_count(facts, 'fact')}, {_count(produced, 'event')}"
    )
    if skipped:
        summary += f", {_count(skipped, 'message')} not understood"
    click.echo(summary, err=True)


def _observe(
    lines: list[tuple[float, int, dict[str, Any]]],
    observers: dict[str, AppServerObserver],
    track: Callable[[Fact], None],
    now: list[float],
) -> None:
    for _, _, line in lines:
        conn = str(line.get("conn", "default"))
        observer = observers.get(conn)
        if observer is None:
            observer = observers[conn] = AppServerObserver(
                track=track, connection_id=len(observers) + 1
            )
        ts = line.get("ts")
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            now[0] = float(ts)
        observer.observe(line["msg"], _DIRECTIONS[line["dir"]])  # type: ignore[arg-type]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
