"""One side of one figure, run in a fresh process: ``python -m benchmarks._child FIGURE SIDE
PARAMS_JSON``. Prints one JSON object (the measurements) as its last line of output.

Sides: ``ours`` (``codex_telemetry.init`` + ``track_fact``) and ``plain`` (the
OpenTelemetry SDK alone: ``LoggerProvider`` + ``BatchLogRecordProcessor`` +
``OTLPLogExporter`` over HTTP/protobuf, emitting precomputed event dicts).
"""

from __future__ import annotations

import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from benchmarks import _workload as w

__all__ = ["main"]

_RECEIVER = [sys.executable, "-m", "benchmarks._receiver"]
_FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "codex-app-server-0.169"
_SERVICE = "codex-telemetry-benchmark"


class Receiver:
    """The counting receiver, in a process of its own so that its CPU is not ours."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            _RECEIVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    def _ask(self, command: str) -> list[str]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._process.stdout.readline().split()

    def wait(self, records: int) -> int:
        """Block (no CPU) until ``records`` arrived in total; the count received."""
        reply = self._ask(f"wait {records}")
        if reply[0] != "ok":
            raise RuntimeError(f"the receiver got only {reply[1]} of {records} records")
        return int(reply[1])

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(10)


def _spool_directory() -> str:
    """A spool directory of the run's own: the user's cache stays untouched."""
    import tempfile  # noqa: PLC0415

    return tempfile.mkdtemp(prefix="codex-telemetry-benchmark-spool-")


def closed_port_url() -> str:
    """An endpoint on a loopback port nobody listens on: a collector that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/logs"


# --- the two pipelines --------------------------------------------------------------------


def init_ours(url: str, compression: Literal["gzip", "none"], **settings: Any) -> Any:
    import codex_telemetry  # noqa: PLC0415

    return codex_telemetry.init(
        exporter="otlp",
        general_analytics=True,
        service_name=_SERVICE,
        otlp={"endpoint": url, "protocol": "http/protobuf", "compression": compression},
        strict=False,
        **settings,
    )


class Plain:
    """What a user of the plain OpenTelemetry SDK would write to send the same events."""

    def __init__(self, url: str, compression: str, max_queue_size: int | None = None) -> None:
        from opentelemetry._logs import SeverityNumber  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
            OTLPLogExporter,
        )
        from opentelemetry.sdk._logs import LoggerProvider  # noqa: PLC0415
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

        exporter = OTLPLogExporter(
            endpoint=url,
            compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
        )
        self.provider = LoggerProvider(resource=Resource.create({"service.name": _SERVICE}))
        self.processor = BatchLogRecordProcessor(exporter, max_queue_size=max_queue_size)
        self.provider.add_log_record_processor(self.processor)
        self.logger = self.provider.get_logger("plain_benchmark", "1.0")
        self.info = SeverityNumber.INFO

    def emitter(self) -> Callable[[w.PlainEvent], None]:
        """A function emitting one event as a log record, as a user would."""
        emit = self.logger.emit
        info = self.info

        def emit_event(event: w.PlainEvent) -> None:
            now = time.time_ns()
            emit(
                timestamp=now,
                observed_timestamp=now,
                severity_number=info,
                severity_text="INFO",
                event_name=event.event_name,
                attributes=event.attributes,
            )

        return emit_event


# --- workload helpers ---------------------------------------------------------------------


def blocks(rounds: int, turns: int) -> tuple[list[w.Fact], list[list[w.Fact]], list[int]]:
    """Setup facts, then ``rounds`` blocks of ``turns`` turns with their event counts."""
    workload = w.Workload()
    setup = w.setup_facts(workload)
    reducer = w.new_reducer()
    for fact in setup:
        reducer.ingest(fact)
    out: list[list[w.Fact]] = []
    counts: list[int] = []
    for _ in range(rounds):
        block = list(w.turn_facts(workload, turns))
        out.append(block)
        counts.append(sum(len(reducer.ingest(fact)) for fact in block))
    return setup, out, counts


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


# --- figure 1: caller cost ----------------------------------------------------------------


def caller(side: str, params: dict[str, Any]) -> dict[str, Any]:
    rounds, turns, compression = params["rounds"], params["turns"], params["compression"]
    receiver = Receiver()
    setup, fact_blocks, counts = blocks(rounds + 2 + _TYPED_BLOCKS, turns)
    typed_blocks = fact_blocks[-_TYPED_BLOCKS:]
    del fact_blocks[-_TYPED_BLOCKS:], counts[-_TYPED_BLOCKS:]
    per_call: list[float] = []
    per_event: list[float] = []
    by_type: dict[str, float] = {}
    try:
        if side == "ours":
            import codex_telemetry  # noqa: PLC0415

            telemetry = init_ours(receiver.url, compression)
            track = codex_telemetry.track_fact
            for fact in setup:
                track(fact)
            for index, block in enumerate(fact_blocks):
                gc.collect()
                start = time.perf_counter_ns()
                for fact in block:
                    track(fact)
                elapsed = time.perf_counter_ns() - start
                telemetry.flush()  # background work done outside the timing
                if index >= 2:  # the first blocks warm up
                    per_call.append(elapsed / len(block))
                    per_event.append(elapsed / counts[index])
            calls_per_event = sum(map(len, fact_blocks)) / sum(counts)
            by_type = _cost_by_fact_type(track, typed_blocks, telemetry.flush)
            telemetry.shutdown()
        else:
            plain = Plain(receiver.url, compression)
            events = w.plain_events(iter(setup))
            event_blocks = []
            reducer = w.new_reducer()
            for fact in setup:
                reducer.ingest(fact)
            for block in fact_blocks:
                event_blocks.append(
                    [w.plain_event(e) for fact in block for e in reducer.ingest(fact)]
                )
            emit = plain.emitter()
            for event in events:
                emit(event)
            for index, event_block in enumerate(event_blocks):
                gc.collect()
                start = time.perf_counter_ns()
                for event in event_block:
                    emit(event)
                elapsed = time.perf_counter_ns() - start
                plain.provider.force_flush()
                if index >= 2:
                    per_call.append(elapsed / len(event_block))
                    per_event.append(elapsed / len(event_block))
            calls_per_event = 1.0
            plain.provider.shutdown()
    finally:
        receiver.close()
    return {
        "ns_per_call": _median(per_call),
        "ns_per_event": _median(per_event),
        "ns_by_fact_type": by_type,
        "calls_per_event": calls_per_event,
        "rounds": len(per_call),
        "events_per_round": _median([float(c) for c in counts]),
    }


_TYPED_BLOCKS = 2


def _fact_kind(fact: w.Fact) -> str:
    inner = getattr(fact, "request", None) or getattr(fact, "response", None)
    inner = inner or getattr(fact, "notification", None)
    kind = type(fact).__name__
    return f"{kind}({type(inner).__name__})" if inner is not None else kind


def _cost_by_fact_type(
    track: Callable[[w.Fact], None], fact_blocks: list[list[w.Fact]], flush: Callable[[], object]
) -> dict[str, float]:
    """Median ns of single track_fact calls by fact type, less the timer's own cost."""
    clock = time.perf_counter_ns
    timer = [-(clock() - clock()) for _ in range(1000)]
    overhead = _median([float(t) for t in timer])
    samples: dict[str, list[float]] = {}
    for block in fact_blocks:
        gc.collect()
        for fact in block:
            start = clock()
            track(fact)
            elapsed = clock() - start
            samples.setdefault(_fact_kind(fact), []).append(elapsed - overhead)
        flush()
    return {kind: _median(values) for kind, values in sorted(samples.items())}


# --- figure 2: gates ------------------------------------------------------------------------


def gates(side: str, params: dict[str, Any]) -> dict[str, Any]:
    import codex_telemetry  # noqa: PLC0415

    rounds, calls = params["rounds"], params["calls"]
    workload = w.Workload()
    protocol = [fact for fact in w.turn_facts(workload, 40) if type(fact) in _GATED_TYPES][:100]
    if side == "disabled":
        codex_telemetry.init(enabled=False)
    else:
        codex_telemetry.init(general_analytics=False, otlp={"endpoint": closed_port_url()})
    track = codex_telemetry.track_fact
    facts = (protocol * (calls // len(protocol) + 1))[:calls]

    def noop(_: object) -> None:
        pass

    results: dict[str, list[float]] = {"track_fact": [], "loop_and_call_overhead": []}
    for _ in range(rounds):
        for name, function in (("track_fact", track), ("loop_and_call_overhead", noop)):
            start = time.perf_counter_ns()
            for fact in facts:
                function(fact)
            results[name].append((time.perf_counter_ns() - start) / len(facts))
    stats = codex_telemetry.Telemetry.stats
    client = codex_telemetry._client._default
    assert client is not None
    counted = stats(client)
    return {
        "ns_per_call": _median(results["track_fact"]),
        "loop_and_call_overhead_ns": _median(results["loop_and_call_overhead"]),
        "facts_filtered": counted.facts_filtered,
        "facts_disabled": counted.facts_dropped.get("disabled", 0),
    }


_GATED_TYPES = (
    w.f.Request,
    w.f.Response,
    w.f.Notification,
    w.f.TurnResolvedConfig,
    w.f.TurnTokenUsage,
)


# --- figure 3: end to end -----------------------------------------------------------------


def end_to_end(side: str, params: dict[str, Any]) -> dict[str, Any]:
    turns, compression = params["turns"], params["compression"]
    receiver = Receiver()
    workload = w.Workload()
    facts = w.setup_facts(workload) + list(w.turn_facts(workload, turns))
    try:
        if side == "ours":
            import codex_telemetry  # noqa: PLC0415

            expected = len(w.plain_events(iter(facts)))
            # Default settings: the durable spool on (in a directory of its own), queues
            # of the default sizes.
            telemetry = init_ours(receiver.url, compression, spool__directory=_spool_directory())
            track = codex_telemetry.track_fact
            # The producer keeps the SDK's pace, as a program would whose facts arrive no
            # faster than they can be sent: it pauses (no CPU) while the fact queue is more
            # than half full. Unpaced, a burst larger than max_queue_size is dropped at the
            # caller's queue, counted (queue_full).
            queue = telemetry._queue
            half = telemetry.settings.max_queue_size // 2
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()
            for index, fact in enumerate(facts):
                if not index % 1000:
                    while queue.qsize() > half:
                        time.sleep(0.001)
                track(fact)
            # Send the last, partial batch now rather than at the next export interval.
            telemetry.flush()
            stats = telemetry.stats()
            received = receiver.wait(stats.events_produced)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            exported = stats.events_exported
            telemetry.shutdown()
            return {
                "events": expected,
                "facts": len(facts),
                "facts_dropped": dict(stats.facts_dropped),
                "produced": stats.events_produced,
                "received": received,
                "exported": exported,
                "events_dropped": dict(stats.events_dropped),
                "events_spooled": stats.events_spooled,
                "cpu_us_per_event": cpu / received * 1e6,
                "events_per_second": received / wall,
                "wall_seconds": wall,
                "cpu_seconds": cpu,
            }
        else:
            events = w.plain_events(iter(facts))
            expected = len(events)
            plain = Plain(receiver.url, compression, max_queue_size=max(expected + 1, 2048))
            emit = plain.emitter()
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()
            for event in events:
                emit(event)
            plain.provider.force_flush()
            received = receiver.wait(expected)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            exported = received
            plain.provider.shutdown()
    finally:
        receiver.close()
    return {
        "events": expected,
        "facts": len(facts),
        "produced": expected,
        "received": received,
        "exported": exported,
        "cpu_us_per_event": cpu / expected * 1e6,
        "events_per_second": expected / wall,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
    }


# --- figure 4: memory with the collector down ---------------------------------------------


def _rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _fact_stream(count: int) -> Iterator[w.Fact]:
    workload = w.Workload()
    produced = 0
    for fact in w.setup_facts(workload):
        produced += 1
        yield fact
    while produced < count:
        for fact in w.turn_facts(workload, 100):
            if produced >= count:
                return
            produced += 1
            yield fact


_WARM_UP_FACTS = 2000


def memory(side: str, params: dict[str, Any]) -> dict[str, Any]:
    url = closed_port_url()
    if side == "ours":
        count = params["facts"]
        import codex_telemetry  # noqa: PLC0415

        telemetry = init_ours(
            url, "gzip", shutdown_timeout=0.2, spool__directory=_spool_directory()
        )
        for fact in _fact_stream(_WARM_UP_FACTS):
            codex_telemetry.track_fact(fact)
        time.sleep(0.5)
        gc.collect()
        idle = _rss_kib()
        track = codex_telemetry.track_fact
        start = time.perf_counter()
        for fact in _fact_stream(count):
            track(fact)
        elapsed = time.perf_counter() - start
        telemetry.flush(0.5)
        peak = _rss_kib("VmHWM")
        stats = telemetry.stats()
        result = {
            "facts": count,
            "idle_rss_mib": idle / 1024,
            "peak_above_idle_mib": (peak - idle) / 1024,
            "seconds": elapsed,
            "warm_up_facts": _WARM_UP_FACTS,
            "facts_accepted": stats.facts_accepted,
            "facts_deduplicated": stats.facts_deduplicated,
            "facts_dropped": dict(stats.facts_dropped),
            "events_produced": stats.events_produced,
            "events_exported": stats.events_exported,
            "events_dropped": dict(stats.events_dropped),
            "reducer_evicted": dict(stats.reducer_evicted),
        }
    else:
        # The same number of events, cycling through precomputed ones (generous to it).
        events = w.plain_events(_fact_stream(20_000))
        total = params["events"]
        plain = Plain(url, "gzip")
        emit = plain.emitter()
        for event in events[:500]:
            emit(event)
        time.sleep(0.5)
        gc.collect()
        idle = _rss_kib()
        start = time.perf_counter()
        for index in range(total):
            emit(events[index % len(events)])
        elapsed = time.perf_counter() - start
        peak = _rss_kib("VmHWM")
        result = {
            "events": total,
            "idle_rss_mib": idle / 1024,
            "peak_above_idle_mib": (peak - idle) / 1024,
            "seconds": elapsed,
        }
    # The plain exporter retries for its whole timeout; nothing more to learn here.
    print(json.dumps(result), flush=True)
    os._exit(0)


# --- figure 6: the observer hook ----------------------------------------------------------


def _recorded() -> list[tuple[str, str, dict[str, Any]]]:
    messages: list[tuple[str, str, dict[str, Any]]] = []
    for path in sorted(_FIXTURES.glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for line in sorted(lines, key=lambda item: item["seq"]):
            if line["dir"] == "meta":
                continue
            direction = "sent" if line["dir"] == "client->server" else "received"
            messages.append((f"{path.stem}/{line['conn']}", direction, line["msg"]))
    return messages


_IGNORED = {
    "jsonrpc": "2.0",
    "method": "item/agentMessage/delta",
    "params": {
        "threadId": "0199a1b2-c3d4-7e5f-8a9b-000100000000",
        "turnId": "turn-1",
        "itemId": "msg_1",
        "delta": "Hello",
    },
}


def observer(side: str, params: dict[str, Any]) -> dict[str, Any]:
    from codex_telemetry import AppServerObserver  # noqa: PLC0415

    rounds = params["rounds"]
    messages = _recorded()
    lines = [(conn, direction, json.dumps(message)) for conn, direction, message in messages]
    facts = 0

    def track(_: object) -> None:
        nonlocal facts
        facts += 1

    timings: dict[str, list[float]] = {"dict": [], "json_line": [], "ignored": []}
    for _ in range(rounds):
        for kind, replay in (("dict", messages), ("json_line", lines)):
            observers = {conn: AppServerObserver(track=track) for conn, _, _ in replay}
            gc.collect()
            start = time.perf_counter_ns()
            for conn, direction, message in replay:
                observers[conn].observe(message, direction)  # type: ignore[arg-type]
            timings[kind].append((time.perf_counter_ns() - start) / len(replay))
        one = AppServerObserver(track=track)
        received = one.observe_received
        start = time.perf_counter_ns()
        for _ in range(1000):
            received(_IGNORED)
        timings["ignored"].append((time.perf_counter_ns() - start) / 1000)
    hook = _hook_overhead(rounds, track)
    return {
        "hook_ns_per_message": hook,
        "messages": len(messages),
        "facts_per_replay": facts // (2 * rounds),
        "ns_per_message": _median(timings["dict"]),
        "ns_per_json_line": _median(timings["json_line"]),
        "ns_per_ignored_notification": _median(timings["ignored"]),
    }


class _Process:
    """Stands for an app-server process: the hook keys its observers by this object."""


def _hook_overhead(rounds: int, track: Callable[[Any], None]) -> float | None:
    """What the openai-codex hook adds per message beyond the observer's own work (ns).

    The real read wrapper is put around a read that returns at once, so the figure is
    the wrapper and its observer lookup; the same observer's own work on the same message
    is timed alone and subtracted. None when openai-codex is not installed.
    """
    try:
        from codex_telemetry import _instrument_openai_codex as hook  # noqa: PLC0415
    except ImportError:
        return None

    class _Tracker:
        def track_fact(self, fact: Any) -> None:
            track(fact)

    try:
        hook.instrument(_Tracker())
    except ValueError:  # openai-codex is not installed
        return None
    try:
        client = type("Client", (), {})()
        client._proc = _Process()
        hooked_read = hook._wrap_read(lambda _self: _IGNORED)
        hooked_read(client)  # the first read creates the process's observer
        observer = hook._observers[id(client._proc)]
        calls = 2000
        differences: list[float] = []
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(calls):
                hooked_read(client)
            hooked = time.perf_counter_ns() - start
            received = observer.observe_received
            start = time.perf_counter_ns()
            for _ in range(calls):
                received(_IGNORED)
            alone = time.perf_counter_ns() - start
            differences.append((hooked - alone) / calls)
        return _median(differences)
    finally:
        hook.uninstrument()


# --- figure 7: before_send --------------------------------------------------------------


def _worker_path(
    batches: list[list[Any]], *, collect_first: bool = True
) -> tuple[Callable[[Callable[..., Any] | None], float], Callable[[], None]]:
    """The worker's path of an event after the reducer, on the real code, in this thread:
    the hook stage (when there is one), the durable spool's encoding of each batch, one
    OpenTelemetry SDK log record per event (with the size estimate the export queue
    takes of one record in eight), and the OTLP/protobuf request the exporter writes,
    512 records a request.
    Left out, the same with a hook or without: the spool's ``write(2)``, gzip, HTTP.

    Returns ``run(apply)``, which passes ``batches`` along that path and returns the
    CPU nanoseconds (this thread's) it took per event handed to the stage, and ``close()``.
    ``run`` first makes a full garbage collection, outside the timing, unless
    ``collect_first`` is False."""
    import tempfile  # noqa: PLC0415

    from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor  # noqa: PLC0415

    from codex_telemetry._export._batching import _SAMPLE_EVERY  # noqa: PLC0415
    from codex_telemetry._export._otlp import (  # noqa: PLC0415
        INSTRUMENTATION_SCOPE,
        _EventLogRecord,
        _record_size,
        _RecordEncoder,
    )
    from codex_telemetry._export._sdk import build_resource  # noqa: PLC0415
    from codex_telemetry._spool import Spool  # noqa: PLC0415

    records: list[Any] = []

    class Keep(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            # What the export queue estimates: the size of one record in _SAMPLE_EVERY.
            if len(records) % _SAMPLE_EVERY == 0:
                _record_size(log_record)
            records.append(log_record)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    directory = tempfile.TemporaryDirectory(prefix="codex-telemetry-benchmark-spool-")
    spool = Spool.open("benchmark", root=Path(directory.name))
    provider = LoggerProvider(resource=build_resource(_SERVICE, None), shutdown_on_exit=False)
    provider.add_log_record_processor(Keep())
    logger = provider.get_logger(INSTRUMENTATION_SCOPE, "1")
    encode = _RecordEncoder(json_body=False).encode
    count = sum(len(batch) for batch in batches)
    timestamp = time.time_ns()

    def run(apply: Callable[..., Any] | None) -> float:
        records.clear()
        if collect_first:
            gc.collect()
        # This thread's CPU time: the other processes of a shared machine add no noise.
        start = time.thread_time_ns()
        for batch in batches:
            events = batch if apply is None else apply(batch)
            spool._encode(events, timestamp)
            for event in events:
                logger.emit(_EventLogRecord(event, timestamp))
        for first in range(0, len(records), 512):
            encode(records[first : first + 512])
        return (time.thread_time_ns() - start) / count

    def close() -> None:
        spool.close()
        provider.shutdown()
        directory.cleanup()

    return run, close


def reduced_batches(turns: int) -> list[list[Any]]:
    """The events the reducer makes of the workload's setup and ``turns`` turns, one
    batch per fact that made any, as the worker hands them on."""
    setup, rounds_of_facts, _ = blocks(1, turns)
    reducer = w.new_reducer()
    return [
        events
        for fact in [*setup, *(fact for block in rounds_of_facts for fact in block)]
        if (events := reducer.ingest(fact))
    ]


def fresh_dict_floor(hook: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """A stand-in for the hook stage that does only what its contract cannot do without:
    build each event's fresh wire dict and call ``hook`` with it. What the hook returns
    is not looked at; the events go on as they were. Not a correct stage: a lower bound
    for one."""
    from codex_telemetry._hooks import wire_dict  # noqa: PLC0415

    def apply(batch: list[Any]) -> list[Any]:
        for event in batch:
            hook(wire_dict(event))
        return batch

    return apply


def hooks(side: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a ``before_send`` costs on the worker, per event of the workload's mix.

    The workload's events go, batch by batch as the worker hands them on, along the
    worker's whole path after the reducer (:func:`_worker_path`): without hooks, with
    ``before_send`` returning its argument (``identity``), with one that redacts a field
    (``redact``), and through :func:`fresh_dict_floor` (``floor``: the fresh wire dict
    and the call only, the least a ``before_send`` can cost while it receives a fresh
    dict), the four interleaved in every round. What each costs is the difference with
    the path without hooks, round by round (median). The hook stage alone is timed too,
    and by event type.
    """
    from codex_telemetry._hooks import EventHooks  # noqa: PLC0415
    from codex_telemetry._internal_errors import InternalErrors  # noqa: PLC0415

    batches = reduced_batches(params["turns"])
    count = sum(len(batch) for batch in batches)

    def redact(event: dict[str, Any]) -> dict[str, Any]:
        params = event["event_params"]
        if "model" in params:
            params["model"] = "redacted"
        return event

    stages = {
        name: EventHooks(
            before_send=before_send, include=None, exclude=frozenset(), errors=InternalErrors()
        )
        for name, before_send in (("identity", lambda event: event), ("redact", redact))
    }
    results: dict[str, Any] = {"events": count}
    run, close = _worker_path(batches)
    floor = fresh_dict_floor(lambda event: event)
    try:
        path: dict[str, list[float]] = {"none": [], "identity": [], "redact": [], "floor": []}
        for _ in range(params["rounds"]):
            path["none"].append(run(None))
            for name, stage in stages.items():
                path[name].append(run(stage.apply))
            path["floor"].append(run(floor))
    finally:
        close()
    for name in ("identity", "redact", "floor"):
        differences = [
            hooked - alone for hooked, alone in zip(path[name], path["none"], strict=True)
        ]
        results[f"{name}_path_ns_per_event"] = _median(differences)
    for stage in stages.values():
        assert stage.failed.value == 0
    results["path_ns_per_event"] = {name: _median(times) for name, times in path.items()}
    from codex_telemetry._hooks import wire_dict  # noqa: PLC0415

    events = [event for batch in batches for event in batch]
    timings = []
    for _ in range(params["rounds"]):
        gc.collect()
        start = time.thread_time_ns()
        for event in events:
            wire_dict(event)
        timings.append((time.thread_time_ns() - start) / count)
    results["wire_dict_ns_per_event"] = _median(timings)
    for name, stage in stages.items():
        apply = stage.apply
        timings = []
        for _ in range(params["rounds"]):
            gc.collect()
            start = time.perf_counter_ns()
            for batch in batches:
                apply(batch)
            timings.append((time.perf_counter_ns() - start) / count)
        results[f"{name}_ns_per_event"] = _median(timings)
    by_type: dict[str, list[Any]] = {}
    for batch in batches:
        for event in batch:
            by_type.setdefault(event.event_type, []).append(event)
    identity = stages["identity"]
    results["identity_ns_by_event_type"] = {}
    for event_type, events in sorted(by_type.items()):
        timings = []
        for _ in range(params["rounds"]):
            start = time.perf_counter_ns()
            for event in events:
                identity.apply((event,))
            timings.append((time.perf_counter_ns() - start) / len(events))
        results["identity_ns_by_event_type"][event_type] = _median(timings)
    return results


_FIGURES: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "caller": caller,
    "gates": gates,
    "end_to_end": end_to_end,
    "memory": memory,
    "observer": observer,
    "hooks": hooks,
}


def main() -> None:
    """Run one figure for one side and print its JSON result."""
    figure, side, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result = _FIGURES[figure](side, params)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
