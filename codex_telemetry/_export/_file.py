"""The file sink: JSON Lines of wire-format events, appended to a private file.

What is counted exported is on disk whole. A write that fails part-way (a full disk, a
file size limit) counts the lines it wrote whole as exported and the rest as dropped,
and takes the torn line back (or, when another writer appended since, starts the next
write on a new line), so a line is never glued onto a partial one. A file rotated or
deleted while the sink runs is noticed before the next batch (one ``stat`` per batch)
and opened again at its path, so no event is counted written into a file that is gone.
"""

from __future__ import annotations

import errno
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
from codex_telemetry._export._transport import ENCODING_ERRORS, ENCODING_HINT
from codex_telemetry._settings import file_kind
from codex_telemetry.events import AnalyticsEvent, wire_object

__all__ = ["TIMESTAMP_KEY", "FileSink", "event_line", "timestamp_text"]

_logger = logging.getLogger(__name__)

# Analytics can name repositories and models: only the owner may read the file.
_FILE_MODE = 0o600

# Non-blocking: opening a named pipe with no reader fails at once instead of waiting.
_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_APPEND
    | os.O_CREAT
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


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
    line = {TIMESTAMP_KEY: timestamp_text(timestamp_ns), **wire_object(event)}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _open(path: Path) -> tuple[int, tuple[int, int]]:
    """Open ``path`` for appending: its descriptor and its identity (device, inode).

    Opened without waiting: a named pipe with no reader (which a blocking open would wait
    on forever) is refused at once; one with a reader (``/dev/stdout`` piped into
    another program) is fine, as is a character device such as ``/dev/null``.
    """
    try:
        descriptor = os.open(path, _OPEN_FLAGS, _FILE_MODE)
    except OSError as error:
        if error.errno == errno.ENXIO:  # a named pipe with no reader, opened non-blocking
            raise OSError(
                error.errno,
                f"{path} is a named pipe with no reader, which would block the program: "
                "give a regular file",
            ) from None
        raise
    try:
        status = os.fstat(descriptor)
        kind = file_kind(status.st_mode)
        if kind is not None and kind not in ("a character device", "a named pipe"):
            raise OSError(f"{path} is {kind}, not a file events can be appended to")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor, (status.st_dev, status.st_ino)


class FileSink(BatchingSink[Stamped]):
    """Append each event's wire JSON, with when it was produced, as one line to ``path``.

    The file is created with mode 0600 (an existing file keeps its mode) and opened in
    append mode, so several runs, or processes, add to it. Lines are written per batch
    by a background thread. A file rotated or deleted while running is opened again.
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
        self._descriptor: int | None
        self._descriptor, self._identity = _open(path)
        # The last write left a partial line that could not be taken back: the next one
        # starts with a newline, so that its first line is not glued onto it.
        self._torn = False
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
        lines = []
        lost = 0
        first_error: Exception | None = None
        for stamped in events:
            try:
                lines.append((event_line(*stamped) + "\n").encode("utf-8"))
            except ENCODING_ERRORS as error:
                # A lone surrogate (a file name decoded with surrogateescape) cannot be
                # written: drop that event alone, not the batch.
                lost += 1
                first_error = first_error or error
        if lost:
            _logger.warning(
                "codex_telemetry: %d events could not be written as UTF-8 JSON (%s); dropped. "
                "Most likely cause: %s",
                lost,
                type(first_error).__name__,
                ENCODING_HINT,
            )
            in_flight.dropped(lost, "encoding_error")
        if not lines:
            return
        with self._file_lock:
            if self._descriptor is None:
                in_flight.dropped(len(lines), "shutdown")
                return
            try:
                self._follow_path()
                whole = self._append(lines)
            except OSError as error:
                _logger.warning(
                    "codex_telemetry: writing events to %s failed: %s", self._path, error
                )
                in_flight.dropped(len(lines), "file_error")
                return
        in_flight.exported(whole)
        if whole < len(lines):
            in_flight.dropped(len(lines) - whole, "file_error")

    def _follow_path(self) -> None:
        """Open the path again when the file there is no longer the one open (rotated or
        deleted); raises OSError when it cannot be opened."""
        assert self._descriptor is not None
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            pass
        else:
            if (status.st_dev, status.st_ino) == self._identity:
                return
        descriptor, identity = _open(self._path)
        old, self._descriptor, self._identity = self._descriptor, descriptor, identity
        self._torn = False
        try:
            os.close(old)
        except OSError as error:
            _logger.warning("codex_telemetry: closing the old %s failed: %s", self._path, error)

    def _append(self, lines: list[bytes]) -> int:
        """Write ``lines`` in one append; how many of them are on disk whole.

        One ``write`` per batch: with ``O_APPEND``, lines of concurrent writers never mix.
        A failure part-way is logged, and the torn line is taken back when no one
        appended since (else the next write starts on a new line).
        """
        assert self._descriptor is not None
        prefix = b"\n" if self._torn else b""
        data = prefix + b"".join(lines)
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._descriptor, view[written:])
        except OSError as error:
            failure: OSError | None = error
        else:
            failure = None
        if written >= len(prefix):
            self._torn = False
        whole = 0
        end_of_whole = len(prefix) if written >= len(prefix) else 0
        for line in lines:
            if end_of_whole + len(line) > written:
                break
            end_of_whole += len(line)
            whole += 1
        if failure is None:
            return whole
        _logger.warning(
            "codex_telemetry: writing events to %s failed after %d of %d bytes: %s",
            self._path,
            written,
            len(data),
            failure,
        )
        if written > end_of_whole:
            self._take_back(written - end_of_whole)
        return whole

    def _take_back(self, torn: int) -> None:
        """Remove the last ``torn`` bytes this sink wrote, if they are still the file's end."""
        assert self._descriptor is not None
        try:
            end = os.lseek(self._descriptor, 0, os.SEEK_CUR)
            if os.fstat(self._descriptor).st_size == end and end >= torn:
                os.ftruncate(self._descriptor, end - torn)
                return
        except OSError:
            pass
        self._torn = True

    def shutdown(self, timeout: float) -> bool:
        """Write what was queued within ``timeout`` seconds, then close the file."""
        delivered = super().shutdown(timeout)
        with self._file_lock:
            descriptor, self._descriptor = self._descriptor, None
            if descriptor is not None:
                try:
                    os.close(descriptor)
                except OSError as error:
                    _logger.warning("codex_telemetry: closing %s failed: %s", self._path, error)
        return delivered
