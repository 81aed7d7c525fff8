"""Every kind of worker process delivers its events, and what children inherit of init().

Each test runs a program as a user would (a child process with a fresh HOME and a working
directory of its own) that calls ``init()`` once, then starts workers that track facts
with the module-level ``codex_telemetry.track_fact``. The events are counted where they
arrive: a real loopback OTLP receiver or the JSON Lines file. Waits are bounded; a hang
shows as the program's timeout.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from codex_telemetry import _lifecycle
from codex_telemetry._settings import OTLPSettings
from codex_telemetry._spool import Spool
from tests.otlp_receiver import HttpReceiver, HttpReply, plain_records

_REPOSITORY = Path(__file__).resolve().parent.parent
_PROGRAM_TIMEOUT = 110

_METHODS = [
    method
    for method in ("fork", "spawn", "forkserver")
    if method in multiprocessing.get_all_start_methods()
]

# The workers: each tracks ``count`` hook runs (one event each) under its own thread id.
_PROGRAM_HEAD = textwrap.dedent(
    """
    import faulthandler, multiprocessing, os, signal, sys
    from concurrent.futures import ProcessPoolExecutor

    # A program that hangs prints where each of its threads is, before the test's timeout.
    faulthandler.dump_traceback_later(DUMP_AFTER, exit=True)

    import codex_telemetry
    from codex_telemetry.facts import HookRun, TrackingContext


    def work(tag, count=100):
        for index in range(count):
            codex_telemetry.track_fact(
                HookRun(
                    tracking=TrackingContext(
                        model_slug="gpt-5", thread_id=tag, turn_id=f"{tag}-{index}"
                    ),
                    hook_name="Stop",
                    hook_source="user",
                    status="completed",
                )
            )
        return count
    """
).replace("DUMP_AFTER", str(_PROGRAM_TIMEOUT - 10))


def _run(tmp_path: Path, body: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "program.py"
    script.write_text(_PROGRAM_HEAD + textwrap.dedent(body), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(_REPOSITORY),
    }
    try:
        result = subprocess.run(
            [sys.executable, str(script), *arguments],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=_PROGRAM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the program hung; its standard error:\n{hung.stderr!s}")
    assert result.returncode == 0, result.stderr
    return result


def _threads_received(receiver: HttpReceiver) -> Counter[str]:
    return Counter(
        record.attributes["thread_id"]
        for received in receiver.received
        for record in plain_records(received)
    )


def _threads_in_file(path: Path) -> Counter[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return Counter(json.loads(line)["event_params"]["thread_id"] for line in lines)


@pytest.mark.parametrize("method", _METHODS)
def test_a_process_and_a_pool_deliver_every_event_to_a_collector(
    tmp_path: Path, method: str
) -> None:
    # ``with Pool(...)`` ends its workers with SIGTERM as soon as the results are in.
    body = """
    def main():
        codex_telemetry.init(exporter="otlp", otlp={"endpoint": sys.argv[1]})
        context = multiprocessing.get_context(sys.argv[2])
        process = context.Process(target=work, args=("process",))
        process.start()
        process.join()
        with context.Pool(2) as pool:
            assert pool.starmap(work, [("pool-a",), ("pool-b",)]) == [100, 100]
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    with HttpReceiver() as receiver:
        _run(tmp_path, body, receiver.url(), method)
        assert receiver.wait_for_records(300, timeout=30)
        assert _threads_received(receiver) == {"process": 100, "pool-a": 100, "pool-b": 100}


@pytest.mark.parametrize("method", _METHODS)
def test_executors_closed_pools_and_os_fork_deliver_every_event_to_a_file(
    tmp_path: Path, method: str
) -> None:
    body = """
    def main():
        codex_telemetry.init(exporter="file", file={"path": "events.jsonl"})
        context = multiprocessing.get_context(sys.argv[1])
        with ProcessPoolExecutor(2, mp_context=context) as executor:
            assert list(executor.map(work, ["executor-a", "executor-b"])) == [100, 100]
        pool = context.Pool(2)
        assert pool.starmap(work, [("closed-pool-a",), ("closed-pool-b",)]) == [100, 100]
        pool.close()
        pool.join()
        child = os.fork()
        if child == 0:
            work("os-fork")
            codex_telemetry.shutdown(timeout=30)
            os._exit(0)
        os.waitpid(child, 0)
        work("parent")
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    _run(tmp_path, body, method)
    assert _threads_in_file(tmp_path / "events.jsonl") == {
        "executor-a": 100,
        "executor-b": 100,
        "closed-pool-a": 100,
        "closed-pool-b": 100,
        "os-fork": 100,
        "parent": 100,
    }


@pytest.mark.parametrize("method", _METHODS)
def test_a_terminated_process_delivers_then_ends_by_sigterm(tmp_path: Path, method: str) -> None:
    body = """
    import time


    def work_then_wait(ready):
        work("terminated")
        ready.set()
        time.sleep(600)


    def main():
        codex_telemetry.init(exporter="file", file={"path": "events.jsonl"})
        context = multiprocessing.get_context(sys.argv[1])
        ready = context.Event()
        process = context.Process(target=work_then_wait, args=(ready,))
        process.start()
        assert ready.wait(60)
        process.terminate()
        process.join(60)
        assert process.exitcode == -signal.SIGTERM, process.exitcode
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    _run(tmp_path, body, method)
    assert _threads_in_file(tmp_path / "events.jsonl") == {"terminated": 100}


def test_a_terminated_child_whose_exit_work_hangs_is_still_ended(tmp_path: Path) -> None:
    """The SIGTERM handler's exit work is bounded by shutdown_timeout; past it and a
    margin, a backstop ends the child with SIGKILL, so terminate() never hangs a pool."""
    body = """
    import threading, time

    from codex_telemetry import _lifecycle


    def work_then_hang_at_exit(ready):
        work("hung")
        stuck = threading.Event()
        # Exit work that never ends (a lock the interrupted thread held, say).
        _lifecycle.register_exit_hook(lambda: stuck.wait(), timeout=0.5)
        ready.set()
        time.sleep(600)


    def main():
        codex_telemetry.init(exporter="file", file={"path": "events.jsonl"})
        context = multiprocessing.get_context("fork")
        ready = context.Event()
        process = context.Process(target=work_then_hang_at_exit, args=(ready,))
        process.start()
        assert ready.wait(60)
        process.terminate()
        process.join(60)  # the failure detector: the backstop ends it long before
        assert process.exitcode == -signal.SIGKILL, process.exitcode
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    _run(tmp_path, body)


def test_a_spawned_child_that_tracks_while_importing_the_main_module_still_inherits(
    tmp_path: Path,
) -> None:
    # A spawned child imports the parent's main module before it knows its parent: a fact
    # tracked at import time there is too early, not a reason to give up.
    body = """
    work("import-time", 1)


    def main():
        codex_telemetry.init(exporter="file", file={"path": "events.jsonl"})
        process = multiprocessing.get_context("spawn").Process(target=work, args=("child",))
        process.start()
        process.join()
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    _run(tmp_path, body)
    assert _threads_in_file(tmp_path / "events.jsonl") == {"child": 100}


def test_a_pool_workers_own_sigterm_handler_is_kept(tmp_path: Path) -> None:
    # The SDK handles SIGTERM in a child of multiprocessing only where nobody else does.
    body = """
    def on_term(signum, frame):
        raise SystemExit(0)


    def initializer():
        signal.signal(signal.SIGTERM, on_term)


    def track_and_report(tag):
        work(tag)
        return signal.getsignal(signal.SIGTERM) is on_term


    def track_and_report_default(tag):
        work(tag)
        return signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL


    def main():
        codex_telemetry.init(exporter="file", file={"path": "events.jsonl"})
        context = multiprocessing.get_context("spawn")
        with context.Pool(1, initializer=initializer) as pool:
            assert pool.map(track_and_report, ["own-handler"]) == [True]
        with context.Pool(1) as pool:
            assert pool.map(track_and_report_default, ["sdk-handler"]) == [True]
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    _run(tmp_path, body)
    # The worker's own handler raised SystemExit: the stdlib's exit path flushed it.
    assert _threads_in_file(tmp_path / "events.jsonl") == {"own-handler": 100, "sdk-handler": 100}


def test_a_sigterm_during_the_exit_hooks_waits_for_them_then_reaches_the_own_handler(
    tmp_path: Path,
) -> None:
    # A pool terminates a worker that may be delivering its events already: the
    # program's own handler, which raises SystemExit, must not cut that delivery short.
    # The collector refuses the first request and asks for a retry in 3 s; the SIGTERM
    # comes in that wait, and the handler still runs once the events are delivered.
    body = """
    import pathlib
    import time


    def on_term(signum, frame):
        pathlib.Path("handled").write_text(repr(time.monotonic()))
        raise SystemExit(0)


    def child():
        signal.signal(signal.SIGTERM, on_term)
        work("own-handler")
        pathlib.Path("worked").write_text("yes")


    def main():
        codex_telemetry.init(
            otlp={"endpoint": sys.argv[1]}, spool={"enabled": False}, shutdown_timeout=30
        )
        process = multiprocessing.get_context("spawn").Process(target=child)
        process.start()
        while not pathlib.Path("worked").exists():
            time.sleep(0.05)
        time.sleep(1.0)  # the child's exit hooks: the first request, then the wait
        process.terminate()
        process.join()
        assert process.exitcode == 0, process.exitcode
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    retry_later = HttpReply(status=503, headers={"Retry-After": "3"})
    with HttpReceiver([retry_later]) as receiver:
        _run(tmp_path, body, receiver.url())
        assert receiver.wait_for_records(100, timeout=30)
        assert _threads_received(receiver) == {"own-handler": 100}
    assert receiver.attempts == 2
    # The handler ran, after the retry that delivered the events (one monotonic clock
    # for every process of the machine).
    assert float((tmp_path / "handled").read_text()) > receiver.attempt_times[1]


def test_a_spawned_child_does_not_get_secrets_passed_as_arguments(tmp_path: Path) -> None:
    body = """
    def main():
        codex_telemetry.init(
            exporter="file", file={"path": "events.jsonl"}, otlp={"headers": "x-key=s3cr3t"}
        )
        with open("inherited.json", "w") as out:
            out.write(os.environ["_CODEX_TELEMETRY_INIT"])
        process = multiprocessing.get_context("spawn").Process(target=work, args=("child",))
        process.start()
        process.join()
        work("parent", 1)
        assert codex_telemetry.shutdown(timeout=30)


    if __name__ == "__main__":
        main()
    """
    result = _run(tmp_path, body)
    assert "s3cr3t" not in (tmp_path / "inherited.json").read_text(encoding="utf-8")
    assert "s3cr3t" not in result.stderr
    assert (
        "whose init() cannot be repeated here (otlp.headers not passed to child processes); "
        "call codex_telemetry.init() in this process (for a pool, in its initializer)"
    ) in result.stderr
    assert _threads_in_file(tmp_path / "events.jsonl") == {"parent": 1}


# --- what init() leaves for children ---------------------------------------------------------


def _recorded(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Any:
    monkeypatch.delenv(_lifecycle.INHERITED_INIT_VARIABLE, raising=False)
    _lifecycle.record_init_for_children(overrides, ("openai_codex",), logger_provider_given=False)
    return json.loads(os.environ[_lifecycle.INHERITED_INIT_VARIABLE])


def test_init_records_its_arguments_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = _recorded(
        monkeypatch,
        exporter="otlp",
        general_analytics=True,
        shutdown_timeout=None,
        otlp=OTLPSettings(protocol="http/json", headers="x-key=abc"),
        codex_backend__base_url="https://user:pa55@backend.example/api",
        otlp__timeout=3.5,
        file__path=Path("events.jsonl"),
        codex_backend={"token": "t0ken", "account_id": "acct"},
    )
    assert recorded == {
        "pid": os.getpid(),
        "arguments": {
            "exporter": "otlp",
            "general_analytics": True,
            "otlp": {"protocol": "http/json", "timeout": 3.5},
            "file": {"path": "events.jsonl"},
            "codex_backend": {"account_id": "acct"},
        },
        "instrument": ["openai_codex"],
        "withheld": ["codex_backend.base_url", "codex_backend.token", "otlp.headers"],
    }


def test_a_process_not_started_by_multiprocessing_inherits_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _recorded(monkeypatch, exporter="console")
    assert _lifecycle.inherited_init() is None  # this process is nobody's pool worker


# --- what processes that died left in the spool ----------------------------------------------


class _WorkerWithSpool:
    def __init__(self, spool: Spool | None) -> None:
        self.spool = spool


def test_flush_and_shutdown_claim_what_a_dead_process_left_in_the_spool(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    ours = Spool.open("otlp\nhttp://collector", root=root, max_bytes=1 << 20)
    try:
        assert not ours.backlog
        # Another process spools two events and dies without closing (a pool worker
        # killed): its segment's lock goes with it, so the segment is an orphan.
        program = textwrap.dedent(
            """
            import os, sys
            from pathlib import Path
            from codex_telemetry._spool import Spool

            destination = "otlp\\nhttp://collector"
            spool = Spool.open(destination, root=Path(sys.argv[1]), max_bytes=1 << 20)
            events = [
                {"event_type": "codex_hook_run", "event_params": {"index": i}} for i in (0, 1)
            ]
            assert spool.append(events, 10)
            os._exit(0)
            """
        )
        environment = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(_REPOSITORY)}
        subprocess.run(
            [sys.executable, "-c", program, str(root)],
            env=environment,
            timeout=_PROGRAM_TIMEOUT,
            check=True,
        )
        assert not ours.backlog  # claimed only when asked
        _lifecycle.claim_orphaned_events(_WorkerWithSpool(ours))
        assert ours.backlog
        assert [event.wire for event in ours.take(10)] == [
            {"event_type": "codex_hook_run", "event_params": {"index": 0}},
            {"event_type": "codex_hook_run", "event_params": {"index": 1}},
        ]
    finally:
        ours.close()


def test_claiming_without_a_spool_does_nothing() -> None:
    _lifecycle.claim_orphaned_events(object())
    _lifecycle.claim_orphaned_events(_WorkerWithSpool(None))
