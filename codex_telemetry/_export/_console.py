"""The console sink: one readable line per event, for development."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._batching import BatchingSink, InFlight
from codex_telemetry._export._encoding import event_attributes
from codex_telemetry._export._file import Stamped, timestamp_text
from codex_telemetry._export._retry import StopSignal
from codex_telemetry._export._transport import ENCODING_ERRORS, ENCODING_HINT
from codex_telemetry.events import AnalyticsEvent

__all__ = ["ConsoleSink", "format_event"]

_logger = logging.getLogger(__name__)


def format_event(event: AnalyticsEvent, timestamp_ns: int) -> str:
    """``<event_type> <timestamp> <JSON object>``: when the event was produced (RFC 3339,
    UTC), and what an OTLP record's attributes hold."""
    attributes = json.dumps(event_attributes(event), ensure_ascii=False)
    return f"{event.event_type} {timestamp_text(timestamp_ns)} {attributes}"


class ConsoleSink(BatchingSink[Stamped]):
    """Write each event as one line to ``stream`` (standard error when None).

    Lines are written by a background thread, so a slow terminal never stalls the worker.
    """

    def __init__(
        self,
        delivery: DeliveryCounters,
        *,
        stream: TextIO | None = None,
        max_queue_size: int = 2048,
        interval: float = 0.1,
    ) -> None:
        self._stream = stream
        super().__init__(
            delivery,
            name="codex-telemetry-console",
            max_queue_size=max_queue_size,
            batch_size=max_queue_size,
            interval=interval,
        )

    def _items(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> Sequence[Stamped]:
        return [(event, timestamp_ns) for event in events]

    def _deliver_batch(
        self, events: Sequence[Stamped], in_flight: InFlight, stop: StopSignal
    ) -> None:
        lines = []
        first_error: Exception | None = None
        for stamped in events:
            try:
                lines.append(format_event(*stamped) + "\n")
            except ENCODING_ERRORS as error:
                # A value Python's JSON encoder cannot write: dropped alone, not the batch.
                first_error = first_error or error
        if first_error is not None:
            lost = len(events) - len(lines)
            _logger.warning(
                "codex_telemetry: %d events could not be written as JSON (%s); dropped. Most "
                "likely cause: %s",
                lost,
                type(first_error).__name__,
                ENCODING_HINT,
            )
            in_flight.dropped(lost, "encoding_error")
        if not lines:
            return
        # Looked up per batch so that a replaced sys.stderr (pytest's capture) is honoured.
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write("".join(lines))
            stream.flush()
        except Exception as error:
            _logger.warning("codex_telemetry: writing events to the console failed: %s", error)
            in_flight.dropped(len(lines), "console_error")
            return
        in_flight.exported(len(lines))
