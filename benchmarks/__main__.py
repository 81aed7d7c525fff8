"""``python -m benchmarks [--quick] [--compression gzip|none]``: run every figure, print
the table of medians and ratios, write the results as JSON to ``benchmarks/results/``."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import _startup

_ROOT = Path(__file__).resolve().parent.parent
_RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sizes:
    """How much each figure measures."""

    caller_rounds: int
    caller_turns: int
    gate_rounds: int
    gate_calls: int
    e2e_turns: int
    e2e_repeats: int
    memory_facts: int
    startup_samples: int
    observer_rounds: int
    hook_rounds: int = 30


FULL = Sizes(100, 200, 41, 100_000, 20_000, 5, 1_000_000, 9, 60)
QUICK = Sizes(15, 200, 11, 100_000, 5_000, 2, 300_000, 5, 20)


def run_child(figure: str, side: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one side of one figure in a fresh process; its JSON result."""
    command = [sys.executable, "-m", "benchmarks._child", figure, side, json.dumps(params)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    for name in [key for key in env if key.startswith(("CODEX_TELEMETRY_", "OTEL_"))]:
        del env[name]
    env.pop("DO_NOT_TRACK", None)
    # Import times as an installed package has them: with compiled bytecode cached.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        command, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{figure}/{side} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def machine() -> dict[str, Any]:
    """The machine and software the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from google.protobuf.internal import api_implementation  # noqa: PLC0415

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "opentelemetry_sdk": metadata.version("opentelemetry-sdk"),
        "opentelemetry_exporter_otlp": metadata.version("opentelemetry-exporter-otlp"),
        "protobuf": f"{metadata.version('protobuf')} ({api_implementation.Type()})",
        "codex_telemetry": metadata.version("codex-telemetry"),
        "commit": commit,
    }


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def measure(sizes: Sizes, compression: str, say: Any) -> dict[str, Any]:
    """Every figure, both sides, each in its own process."""
    results: dict[str, Any] = {}

    say("1/7 caller cost of track_fact and Logger.emit")
    caller = {"turns": sizes.caller_turns, "rounds": sizes.caller_rounds}
    caller["compression"] = compression  # type: ignore[assignment]
    results["caller"] = {side: run_child("caller", side, caller) for side in ("plain", "ours")}

    say("2/7 disabled and flag-filtered track_fact")
    gates = {"rounds": sizes.gate_rounds, "calls": sizes.gate_calls}
    results["gates"] = {side: run_child("gates", side, gates) for side in ("disabled", "filtered")}

    say("3/7 end to end over OTLP/HTTP to a loopback receiver")
    e2e: dict[str, list[dict[str, Any]]] = {"plain": [], "ours": []}
    for _ in range(sizes.e2e_repeats):
        for side in ("plain", "ours"):
            params = {"turns": sizes.e2e_turns, "compression": compression}
            e2e[side].append(run_child("end_to_end", side, params))
    results["end_to_end"] = e2e

    say("4/7 memory with the collector down")
    ours = run_child("memory", "ours", {"facts": sizes.memory_facts})
    plain = run_child("memory", "plain", {"events": ours["events_produced"]})
    results["memory"] = {"ours": ours, "plain": plain}

    say("5/7 start-up, whole processes, beside sentry_sdk, posthog, logfire, plain OTel")
    results["startup"] = _startup.measure(sizes.startup_samples, say)

    say("6/7 the observer hook")
    results["observer"] = run_child("observer", "ours", {"rounds": sizes.observer_rounds})

    say("7/7 before_send on the worker")
    results["hooks"] = run_child("hooks", "ours", {"rounds": sizes.hook_rounds, "turns": 200})
    return results


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def summarise(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """Rows: figure, ours, plain OTel, ratio, target, met."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    caller = results["caller"]
    emit = caller["plain"]["ns_per_call"]
    per_call = caller["ours"]["ns_per_call"]
    per_event = caller["ours"]["ns_per_event"]
    facts_per_event = caller["ours"]["calls_per_event"]
    rows.append(
        (
            "caller cost, one call (ns)",
            f"{per_call:,.0f} track_fact",
            f"{emit:,.0f} Logger.emit",
            f"1/{_ratio(emit, per_call):.1f}",
            "<= 1/10",
            "yes" if per_call * 10 <= emit else "no",
        )
    )
    rows.append(
        (
            f"caller cost per event ({facts_per_event:.2f} facts, ns)",
            f"{per_event:,.0f}",
            f"{emit:,.0f}",
            f"1/{_ratio(emit, per_event):.1f}",
            "<= 1/10",
            "yes" if per_event * 10 <= emit else "no",
        )
    )
    for side, label in (("disabled", "disabled"), ("filtered", "flag-filtered")):
        gate = results["gates"][side]
        rows.append(
            (
                f"{label} track_fact (ns/call)",
                f"{gate['ns_per_call']:.0f}",
                "",
                "",
                "<= 150",
                "yes" if gate["ns_per_call"] <= 150 else "no",
            )
        )
    e2e = results["end_to_end"]
    cpu = {side: _median([r["cpu_us_per_event"] for r in runs]) for side, runs in e2e.items()}
    rate = {side: _median([r["events_per_second"] for r in runs]) for side, runs in e2e.items()}
    rows.append(
        (
            "CPU per delivered event (us)",
            f"{cpu['ours']:.1f}",
            f"{cpu['plain']:.1f}",
            f"{_ratio(cpu['ours'], cpu['plain']):.2f}x",
            "<= 0.5x",
            "yes" if cpu["ours"] * 2 <= cpu["plain"] else "no",
        )
    )
    rows.append(
        (
            "delivered events per second",
            f"{rate['ours']:,.0f}",
            f"{rate['plain']:,.0f}",
            f"{_ratio(rate['ours'], rate['plain']):.2f}x",
            ">= 2x",
            "yes" if rate["ours"] >= 2 * rate["plain"] else "no",
        )
    )
    memory = results["memory"]
    ours_mib = memory["ours"]["peak_above_idle_mib"]
    rows.append(
        (
            f"peak RSS above idle, {memory['ours']['facts']:,} facts, collector down (MiB)",
            f"{ours_mib:.1f}",
            f"{memory['plain']['peak_above_idle_mib']:.1f}",
            "",
            "<= 50",
            "yes" if ours_mib <= 50 else "no",
        )
    )
    rows += startup_rows(results["startup"])
    observer = results["observer"]
    rows.append(
        (
            "observer, per recorded message (ns)",
            f"{observer['ns_per_message']:,.0f} dict / {observer['ns_per_json_line']:,.0f} line",
            "",
            "",
            "",
            "",
        )
    )
    rows.append(
        (
            "observer, ignored notification (ns)",
            f"{observer['ns_per_ignored_notification']:,.0f}",
            "",
            "",
            "",
            "",
        )
    )
    hook = observer.get("hook_ns_per_message")
    rows.append(
        (
            "openai-codex hook beyond the observer (ns/message)",
            "openai-codex not installed" if hook is None else f"{hook:,.0f}",
            "",
            "",
            "",
            "",
        )
    )
    hooks = results["hooks"]
    identity = hooks["identity_path_ns_per_event"]
    rows.append(
        (
            "before_send returning its argument (ns/event)",
            f"{identity:,.0f} on the worker's whole path "
            f"({hooks['redact_path_ns_per_event']:,.0f} redacting; the fresh dict and the "
            f"call alone {hooks['floor_path_ns_per_event']:,.0f})",
            "",
            "",
            "< 1,000",
            "yes" if identity < 1000 else "no",
        )
    )
    return rows


def _nonzero(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {count:,}" for reason, count in counts.items() if count) or "none"


def _spread(values: list[float], unit: str, digits: int = 1) -> str:
    return f"{min(values):,.{digits}f}-{max(values):,.{digits}f} {unit} over {len(values)} runs"


def notes(results: dict[str, Any], sizes: Sizes) -> list[str]:
    """How each figure was measured, and the spread behind its median."""
    caller = results["caller"]
    e2e = results["end_to_end"]
    memory = results["memory"]["ours"]
    startup = results["startup"]
    out = [
        f"caller: median over {caller['ours']['rounds']} rounds of {sizes.caller_turns} turns "
        f"(~{caller['ours']['events_per_round']:.0f} events) per side, the pipeline flushed "
        "between rounds outside the timing; 'per event' = all track_fact calls of a round / "
        "its events.",
    ]
    by_type = caller["ours"]["ns_by_fact_type"]
    out.append(
        "track_fact by fact type, single calls timed one by one (ns): "
        + ", ".join(f"{kind} {ns:,.0f}" for kind, ns in by_type.items())
        + "."
    )
    for side in ("ours", "plain"):
        runs = e2e[side]
        given = f"from {runs[0]['facts']:,} facts" if side == "ours" else "precomputed"
        delivered = ", ".join(f"{r['received']:,}/{r['produced']:,}" for r in runs)
        settings = (
            "default settings, durable spool on, the producer pausing while the fact queue "
            "is more than half full"
            if side == "ours"
            else "BatchLogRecordProcessor queue enlarged to hold every record"
        )
        out.append(
            f"end to end, {side} ({settings}): {runs[0]['events']:,} events {given}; "
            f"delivered/produced {delivered}; "
            f"CPU per delivered event {_spread([r['cpu_us_per_event'] for r in runs], 'us')}; "
            f"{_spread([r['events_per_second'] for r in runs], 'events/s', 0)}."
        )
        if side == "ours":
            dropped = [_nonzero(r.get("facts_dropped", {})) for r in runs]
            out.append(f"end to end, ours: facts dropped at the caller's queue: {dropped}.")
    out.append(
        f"memory: {memory['facts']:,} facts in {memory['seconds']:.1f} s, collector down; "
        f"idle RSS {memory['idle_rss_mib']:.0f} MiB; facts dropped "
        f"{_nonzero(memory['facts_dropped'])}, events produced {memory['events_produced']:,}, "
        f"exported {memory['events_exported']:,}, dropped {_nonzero(memory['events_dropped'])}."
    )
    out += startup_notes(startup)
    hooks = results["hooks"]
    path = hooks["path_ns_per_event"]
    out.append(
        f"before_send: median over {sizes.hook_rounds} rounds of the workload's "
        f"{hooks['events']:,} events along the worker's path after the reducer, batch by "
        "batch as the worker hands them on (the hook stage, the spool's encoding, an SDK "
        "log record per event with its queue size estimate, the OTLP/protobuf requests; "
        "not the spool's write, gzip or HTTP), this thread's CPU time, without a hook, "
        "with one returning its argument, with one redacting a field, and with only the "
        "fresh wire dict built and the hook called (nothing checked: the least any stage "
        "giving the hook a fresh dict costs), interleaved; the figure is the difference "
        "with the path without a hook, round by round. "
        f"Whole path (ns/event): without {path['none']:,.0f}, identity "
        f"{path['identity']:,.0f}, redacting {path['redact']:,.0f}, fresh dict and call "
        f"only {path['floor']:,.0f}. The hook stage alone: "
        f"{hooks['identity_ns_per_event']:,.0f} identity, {hooks['redact_ns_per_event']:,.0f} "
        f"redacting, of which building the wire dicts {hooks['wire_dict_ns_per_event']:,.0f}. "
        "By event type, identity stage (ns): "
        + ", ".join(f"{kind} {ns:,.0f}" for kind, ns in hooks["identity_ns_by_event_type"].items())
        + "."
    )
    return out


_PEER_LABELS = {
    "codex_telemetry": "codex_telemetry",
    "sentry_sdk": "sentry_sdk",
    "posthog": "posthog",
    "logfire": "logfire",
    "opentelemetry": "plain OTel SDK",
}
_FIRST_EVENT = {
    "sentry_sdk": "capture_message",
    "posthog": "capture",
    "logfire": "info",
    "opentelemetry": "Logger.emit",
}


def _whole(startup: dict[str, Any], side: str, step: str, kind: str = "wall") -> float | None:
    """The median of one statement's runs, None when its side is not installed."""
    runs = startup["whole_process_ms"].get(side, {}).get(step, {}).get(kind)
    return _median(runs) if runs else None


def first_fact_ms(startup: dict[str, Any]) -> dict[str, float]:
    """Fact type -> median ms of its first fact, built and tracked."""
    runs = startup["first_events"]["codex_telemetry"]
    return {
        kind: _median(
            [
                r["first_fact_ms"][kind]["build_ms"] + r["first_fact_ms"][kind]["track_ms"]
                for r in runs
            ]
        )
        for kind in runs[0]["first_fact_ms"]
    }


def first_fact_cpu_ms(startup: dict[str, Any]) -> dict[str, float]:
    """Fact type -> median CPU ms its first fact took on the caller's thread."""
    runs = startup["first_events"]["codex_telemetry"]
    return {
        kind: _median([r["first_fact_ms"][kind]["thread_cpu_ms"] for r in runs])
        for kind in runs[0]["first_fact_ms"]
    }


def first_fact_gc_ms(startup: dict[str, Any]) -> dict[str, float]:
    """Fact type -> median ms of garbage collection during its first fact."""
    runs = startup["first_events"]["codex_telemetry"]
    return {
        kind: _median([r["first_fact_ms"][kind]["gc_ms"] for r in runs])
        for kind in runs[0]["first_fact_ms"]
    }


def _first_event_ms(startup: dict[str, Any], side: str) -> float | None:
    runs = startup["first_events"].get(side)
    return _median([r["first_event_ms"] for r in runs]) if runs else None


def _ms(value: float | None, digits: int = 0) -> str:
    return "not installed" if value is None else f"{value:,.{digits}f}"


def startup_rows(startup: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """The start-up rows of the main table, each against its target."""
    ours_import = _whole(startup, "codex_telemetry", "import")
    ours_init = _whole(startup, "codex_telemetry", "import + init")
    sentry = _whole(startup, "sentry_sdk", "import")
    logfire = _whole(startup, "logfire", "import")
    assert ours_import is not None and ours_init is not None
    first = first_fact_ms(startup)
    slowest = max(first, key=first.__getitem__)
    plain_first = _first_event_ms(startup, "opentelemetry")
    return [
        (
            "import, whole process (ms)",
            _ms(ours_import),
            _ms(_whole(startup, "opentelemetry", "import")),
            "n/a" if sentry is None else f"{_ratio(ours_import, sentry):.2f}x sentry_sdk",
            "<= 0.5x import sentry_sdk",
            "n/a" if sentry is None else ("yes" if ours_import * 2 <= sentry else "no"),
        ),
        (
            "import + init() from the environment, OTLP/HTTP, whole process (ms)",
            _ms(ours_init),
            _ms(_whole(startup, "opentelemetry", "import + init")),
            "n/a" if logfire is None else f"{_ratio(ours_init, logfire):.2f}x import logfire",
            "<= import logfire",
            "n/a" if logfire is None else ("yes" if ours_init <= logfire else "no"),
        ),
        (
            f"first fact of a type, built + tracked, slowest of {len(first)} (ms)",
            f"{first[slowest]:.1f} ({slowest}; caller CPU "
            f"{first_fact_cpu_ms(startup)[slowest]:.1f}, of which garbage collection "
            f"{first_fact_gc_ms(startup)[slowest]:.1f})",
            _ms(plain_first, 2),
            "",
            "< 5",
            "yes" if first[slowest] < 5 else "no",
        ),
    ]


def startup_table(startup: dict[str, Any]) -> str:
    """Every side's start-up, whole processes (medians), as a Markdown table."""
    sides = list(_PEER_LABELS)
    lines = [
        "| statement | " + " | ".join(_PEER_LABELS[side] for side in sides) + " |",
        "|" + "---|" * (len(sides) + 1),
    ]
    present = startup["installed"]
    for step, label in (("import", "import"), ("import + init", "import + init()")):
        for kind, unit in (("wall", "ms"), ("cpu", "CPU ms")):
            cells = [
                ("n/a" if value is None else f"{value:,.0f}") if present[side] else "not installed"
                for side in sides
                for value in [_whole(startup, side, step, kind)]
            ]
            lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    first = first_fact_ms(startup)
    slowest = max(first.values())
    cells = [f"{slowest:.1f} (slowest fact type)"]
    for side in sides[1:]:
        value = _first_event_ms(startup, side)
        cells.append(_ms(value, 2) + ("" if value is None else f" ({_FIRST_EVENT[side]})"))
    lines.append("| first event after init, in process (ms) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def startup_notes(startup: dict[str, Any]) -> list[str]:
    """How the start-up figures were taken, and what the package loaded when."""
    python = _whole(startup, "python", "interpreter")
    facts = _whole(startup, "codex_telemetry", "import facts")
    first = first_fact_ms(startup)
    cpu = first_fact_cpu_ms(startup)
    collected = first_fact_gc_ms(startup)
    probe = startup["first_events"]["codex_telemetry"][0]
    after_import = sorted(name for name, on in probe["loaded_after_import"].items() if on)
    after_init = sorted(name for name, on in probe["loaded_after_init"].items() if on)
    missing = [name for name, present in startup["installed"].items() if not present]
    return [
        f"start-up: each statement run as 'python -c' {startup['samples']} times, interleaved, "
        f"after a warm-up; wall from process start to exit, medians; the interpreter alone "
        f"{_ms(python)} ms; 'from codex_telemetry import facts' {_ms(facts)} ms; init() reads "
        "the environment (OTLP/HTTP to a closed loopback port); codex_telemetry's runs disable "
        "logfire's pydantic plugin (PYDANTIC_DISABLE_PLUGINS=logfire-plugin), which pydantic "
        "would otherwise import with the first model built; "
        + (f"not installed: {', '.join(missing)}." if missing else "every peer installed."),
        "first fact of each type after init(), built (nested values included) and tracked, "
        "median ms, wall / CPU of the calling thread / garbage collection meanwhile, in "
        "session order (the first starts the worker): "
        + ", ".join(
            f"{kind} {ms:.1f} / {cpu[kind]:.1f} / {collected[kind]:.1f}"
            for kind, ms in first.items()
        )
        + ".",
        f"after 'import codex_telemetry' loaded: {after_import or 'none of them'}; "
        f"after init(): {after_init}.",
    ]


def table(rows: list[tuple[str, str, str, str, str, str]]) -> str:
    """The rows as a Markdown table."""
    header = ("figure", "codex_telemetry", "plain OTel SDK", "ratio", "target", "met")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, measure, print, save."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about a minute")
    parser.add_argument(
        "--compression",
        choices=("gzip", "none"),
        default="gzip",
        help="OTLP/HTTP compression on both sides (default gzip, codex_telemetry's default)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    command = "python -m benchmarks" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {message}", file=sys.stderr, flush=True)

    about = machine()
    results = measure(sizes, args.compression, say)
    rows = summarise(results)
    elapsed = time.perf_counter() - started
    print()
    print(f"command: {command}   (took {elapsed:.0f} s)")
    print(
        f"machine: {about['cpu']}, {about['cores']} cores, {about['os']}; "
        f"Python {about['python']}; opentelemetry-sdk {about['opentelemetry_sdk']}, "
        f"exporter-otlp {about['opentelemetry_exporter_otlp']}, protobuf {about['protobuf']}; "
        f"codex_telemetry {about['codex_telemetry']} ({about['commit']})"
    )
    print(
        "OTLP/HTTP protobuf to a loopback receiver in its own process, "
        f"compression {args.compression}"
    )
    print()
    print(table(rows))
    print()
    print(startup_table(results["startup"]))
    print()
    for line in notes(results, sizes):
        print(f"- {line}")
    _RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "command": command,
        "seconds": elapsed,
        "sizes": sizes.__dict__,
        "compression": args.compression,
        "machine": about,
        "results": results,
        "table": [
            dict(zip(("figure", "ours", "plain", "ratio", "target", "met"), r, strict=True))
            for r in rows
        ],
    }
    for name in (f"{stamp}.json", "latest.json"):
        (_RESULTS / name).write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: benchmarks/results/{stamp}.json")


if __name__ == "__main__":
    main()
