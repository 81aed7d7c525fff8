"""``codex-telemetry report``: totals of a JSON Lines file of events, as tables or JSON."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import click

from codex_telemetry._cli._common import read_events, table

__all__ = ["Summary", "report", "summarize"]

_TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
)
_NONE = "(none)"


@dataclass
class Summary:
    """What ``report`` counts."""

    events: Counter[str] = field(default_factory=Counter)
    turns_by_status: Counter[str] = field(default_factory=Counter)
    tokens_by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    steers: Counter[str] = field(default_factory=Counter)
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    skills: Counter[str] = field(default_factory=Counter)
    apps_used: Counter[str] = field(default_factory=Counter)
    apps_mentioned: Counter[str] = field(default_factory=Counter)
    plugins_used: Counter[str] = field(default_factory=Counter)
    clients: Counter[str] = field(default_factory=Counter)

    def add(self, wire: dict[str, Any]) -> None:
        """Count one wire event."""
        kind = wire["event_type"]
        params = wire["event_params"]
        self.events[kind] += 1
        self.clients[_client(params)] += 1
        if kind == "codex_turn_event":
            self.turns_by_status[_label(params.get("status"))] += 1
            model = self.tokens_by_model.setdefault(
                _label(params.get("model")), dict.fromkeys(("turns", *_TOKENS), 0)
            )
            model["turns"] += 1
            for name in _TOKENS:
                value = params.get(name)
                model[name] += value if type(value) is int else 0
        elif kind == "codex_turn_steer_event":
            self.steers[_label(params.get("result"))] += 1
            if params.get("result") == "rejected":
                self.rejection_reasons[_label(params.get("rejection_reason"))] += 1
        elif kind == "skill_invocation":
            self.skills[_label(wire.get("skill_name"))] += 1
        elif kind in ("codex_app_used", "codex_app_mentioned"):
            app = _label(params.get("connector_id") or params.get("app_name"))
            (self.apps_used if kind == "codex_app_used" else self.apps_mentioned)[app] += 1
        elif kind == "codex_plugin_used":
            self.plugins_used[_label(params.get("plugin_id"))] += 1

    def to_dict(self, top: int) -> dict[str, Any]:
        """The summary as plain JSON values."""
        apps = _top(self.apps_used + self.apps_mentioned, top)
        return {
            "events": self.events.total(),
            "events_by_type": dict(_ranked(self.events)),
            "turns_by_status": dict(_ranked(self.turns_by_status)),
            "tokens_by_model": {
                model: self.tokens_by_model[model] for model in sorted(self.tokens_by_model)
            },
            "steers": {
                "accepted": self.steers["accepted"],
                "rejected": self.steers["rejected"],
                "rejection_reasons": dict(_ranked(self.rejection_reasons)),
            },
            "top_skills": [{"skill": name, "invocations": n} for name, n in _top(self.skills, top)],
            "top_apps": [
                {"app": name, "used": self.apps_used[name], "mentioned": self.apps_mentioned[name]}
                for name, _ in apps
            ],
            "top_plugins": [
                {"plugin": name, "used": n} for name, n in _top(self.plugins_used, top)
            ],
            "events_by_client": dict(_ranked(self.clients)),
        }

    def lines(self, top: int) -> list[str]:
        """The summary as plain text tables."""
        data = self.to_dict(top)
        out = [f"events: {data['events']}"]
        out += _section("events by type", ("event type", "events"), data["events_by_type"].items())
        out += _section("turns by status", ("status", "turns"), data["turns_by_status"].items())
        out += _section(
            "tokens by model",
            ("model", "turns", "input", "cached", "output", "reasoning", "total"),
            (
                (model, counts["turns"], *(counts[name] for name in _TOKENS))
                for model, counts in data["tokens_by_model"].items()
            ),
        )
        steers = data["steers"]
        out += ["", f"steers: {steers['accepted']} accepted, {steers['rejected']} rejected"]
        if steers["rejection_reasons"]:
            out += table(("rejection reason", "steers"), steers["rejection_reasons"].items())
        out += _section(
            "top skills",
            ("skill", "invocations"),
            ((row["skill"], row["invocations"]) for row in data["top_skills"]),
        )
        out += _section(
            "top apps",
            ("app", "used", "mentioned"),
            ((row["app"], row["used"], row["mentioned"]) for row in data["top_apps"]),
        )
        out += _section(
            "top plugins",
            ("plugin", "used"),
            ((row["plugin"], row["used"]) for row in data["top_plugins"]),
        )
        out += _section("events by client", ("client", "events"), data["events_by_client"].items())
        return out


def _client(params: dict[str, Any]) -> str:
    client = params.get("app_server_client")
    if isinstance(client, dict) and client.get("product_client_id"):
        return _label(client["product_client_id"])
    return _label(params.get("product_client_id"))


def _label(value: object) -> str:
    """A value as a row's name: a string as it is, nothing as "(none)", anything else
    (a file written by another tool may hold a number or a list there) as its JSON."""
    if isinstance(value, str):
        return value or _NONE
    if value is None:
        return _NONE
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """Most first; ties in name order, so the output is stable."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _top(counts: Counter[str], top: int) -> list[tuple[str, int]]:
    return _ranked(counts)[:top]


def _section(title: str, headers: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return ["", f"{title}: none"]
    return ["", title, *table(headers, rows)]


def summarize(wires: Iterable[dict[str, Any]]) -> Summary:
    """Count every event."""
    summary = Summary()
    for wire in wires:
        summary.add(wire)
    return summary


@click.command()
@click.argument("files", nargs=-1, type=click.File("r", encoding="utf-8"))
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many skills, apps and plugins to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def report(files: tuple[IO[str], ...], top: int, as_json: bool) -> None:
    """Totals of JSON Lines files of events: turns, tokens, steers, ...

    Reads standard input when no FILE is given. Counts turns by status, tokens by
    model (input, cached input, output, reasoning, total), steers accepted and
    rejected with the rejection reasons, the most used skills, apps (used and
    mentioned) and plugins, and events per client (product_client_id). Reads the file
    exporter's format (CODEX_TELEMETRY_FILE__PATH) and the output of
    `codex-telemetry replay`.
    """
    streams = files or (sys.stdin,)
    summary = Summary()
    for stream in streams:
        for wire in read_events(stream, stream.name):
            summary.add(wire)
    if as_json:
        click.echo(json.dumps(summary.to_dict(top), indent=2, ensure_ascii=False))
        return
    for line in summary.lines(top):
        click.echo(line)
