"""The SDK's threads leave the host program's signals to the main thread.

Python runs signal handlers only in the main thread, and a main thread blocked in a lock
wakes for them only when the kernel gave the signal to it. A pool worker whose main thread
waited for its task queue while the SIGTERM that ends it landed in the SDK's worker
thread never exited, and its pool's parent hung in ``terminate()``.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import pytest

from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry.facts import HookRun, TrackingContext
from tests.otlp_receiver import HttpReceiver

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the signal masks in /proc"
)

_HOST_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")


def _blocked(thread: threading.Thread) -> set[str]:
    """The names of the host signals ``thread`` blocks, read from the kernel."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    [mask] = [line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")]
    bits = int(mask, 16)
    return {name for name in _HOST_SIGNALS if bits & (1 << (getattr(signal, name) - 1))}


def test_every_sdk_thread_blocks_the_host_signals_and_the_main_thread_none(
    tmp_path: Path,
) -> None:
    with HttpReceiver() as receiver:
        telemetry = Telemetry(
            load_settings(otlp__endpoint=receiver.url(), spool__directory=tmp_path / "spool")
        )
        telemetry.track_fact(
            HookRun(
                tracking=TrackingContext(model_slug="gpt-5", thread_id="t", turn_id="u"),
                hook_name="Stop",
                hook_source="user",
                status="completed",
            )
        )
        assert telemetry.flush(10)
        threads = [t for t in threading.enumerate() if t.name.startswith("codex-telemetry")]
        names = {t.name for t in threads}
        assert {"codex-telemetry-worker", "codex-telemetry-otlp"} <= names, names
        masks = {t.name: _blocked(t) for t in threads}
        main = _blocked(threading.main_thread())
        assert telemetry.shutdown(10)
    assert masks == {name: set(_HOST_SIGNALS) for name in masks}
    assert main == set()
