"""The file sink: JSON Lines of wire-format events, appended to a private file."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._batching import BatchingSink, InFlight
from codex_telemetry._export._retry import StopSignal
from codex_telemetry.events import AnalyticsEvent

__all__ = ["TIMESTAMP_KEY", "FileSink", "event_line", "timestamp_text"]

_logger = logging.getLogger(__name__)

# Analytics can name repositories and models: only the owner may read the file.
_FILE_MODE = 0o600


TIMESTAMP_KEY = "timestamp"
"""The one key a line has besides the wire object's: when the event was produced."""

Stamped = tuple[AnalyticsEvent, int]
"""An event and when it was produced (unix nanoseconds)."""


def timestamp_text(timestamp_ns: int) -> str:
    """RFC 3339 in UTC to the microsecond: ``2026-12-03T10:00:00.123456Z``."""
    seconds, nanoseconds = divmod(timestamp_ns, 1_000_000_000)
    day_and_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{day_and_time}.{nanoseconds // 1000:06d}Z"


def event_line(event: AnalyticsEvent, timestamp_ns: int) -> str:
    """One JSON Lines line (without the newline): ``timestamp`` (when the event was
    produced), then the event's exact wire object, whose own keys are left as they are."""
    line = {TIMESTAMP_KEY: timestamp_text(timestamp_ns), **event.to_dict()}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FileSink(BatchingSink[Stamped]):
    """Append each event's wire JSON, with when it was produced, as one line to ``path``.

    The file is created with mode 0600 (an existing file keeps its mode) and opened in
    append mode, so several runs, or processes, add to it. Lines are written and flushed
    per batch by a background thread.
    """

    def __init__(
        self,
        path: Path,
        delivery: DeliveryCounters,
        *,
        max_queue_size: int = 2048,
        batch_size: int = 512,
        interval: float = 1.0,
    ) -> None:
        self._path = path
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
        self._file = os.fdopen(descriptor, "a", encoding="utf-8")
        self._file_lock = threading.Lock()
        super().__init__(
            delivery,
            name="codex-telemetry-file",
            max_queue_size=max_queue_size,
            batch_size=batch_size,
            interval=interval,
        )

    def _items(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> Sequence[Stamped]:
        return [(event, timestamp_ns) for event in events]

    def _deliver_batch(
        self, events: Sequence[Stamped], in_flight: InFlight, stop: StopSignal
    ) -> None:
        text = "".join(event_line(*stamped) + "\n" for stamped in events)
        written = len(events)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (a file name decoded with surrogateescape) cannot be
            # written: drop that event alone, not the batch.
            lines = (event_line(*stamped) + "\n" for stamped in events)
            kept = [line for line in lines if _utf8(line)]
            lost = len(events) - len(kept)
            _logger.warning(
                "codex_telemetry: %d events hold text that is not valid UTF-8; dropped", lost
            )
            in_flight.dropped(lost, "encoding_error")
            text = "".join(kept)
            written = len(kept)
        try:
            with self._file_lock:
                if self._file.closed:
                    in_flight.dropped(written, "shutdown")
                    return
                # One write per batch: with O_APPEND, lines of concurrent writers never mix.
                self._file.write(text)
                self._file.flush()
        except OSError as error:
            _logger.warning("codex_telemetry: writing events to %s failed: %s", self._path, error)
            in_flight.dropped(written, "file_error")
            return
        in_flight.exported(written)

    def shutdown(self, timeout: float) -> bool:
        """Write what was queued within ``timeout`` seconds, then close the file."""
        delivered = super().shutdown(timeout)
        with self._file_lock:
            if not self._file.closed:
                try:
                    self._file.close()
                except OSError as error:
                    _logger.warning("codex_telemetry: closing %s failed: %s", self._path, error)
        return delivered
