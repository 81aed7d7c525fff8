"""The Codex backend sink: batches of wire events POSTed to the analytics endpoint."""

from __future__ import annotations

import json
from collections.abc import Sequence

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._batching import BatchingSink, InFlight
from codex_telemetry._export._http import HttpTransport
from codex_telemetry._export._retry import RetryPolicy, StopSignal
from codex_telemetry._export._transport import TransportSender
from codex_telemetry._version import __version__
from codex_telemetry.events import AnalyticsEvent, wire_object

__all__ = ["EVENTS_PATH", "CodexBackendSink", "encode_events"]

EVENTS_PATH = "/codex/analytics-events/events"
"""Path of the analytics endpoint under the backend's base URL."""


def encode_events(events: Sequence[AnalyticsEvent]) -> bytes:
    """The request body: ``{"events": [<wire event>, ...]}``."""
    return json.dumps(
        {"events": [wire_object(event) for event in events]},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


class CodexBackendSink(BatchingSink[AnalyticsEvent]):
    """POST events, in background batches, to ``{base_url}/codex/analytics-events/events``.

    Sends ``Authorization: Bearer <token>`` and, when given, ``chatgpt-account-id``;
    retries, splits and counts by the same rules as the OTLP sink. The token is never
    logged.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        delivery: DeliveryCounters,
        *,
        account_id: str | None = None,
        timeout: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        max_queue_size: int = 2048,
        batch_size: int = 512,
        interval: float = 1.0,
    ) -> None:
        self._url = base_url.rstrip("/") + EVENTS_PATH
        headers = {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "user-agent": f"codex-telemetry/{__version__}",
        }
        if account_id:
            headers["chatgpt-account-id"] = account_id
        self._sender: TransportSender[AnalyticsEvent] = TransportSender(
            HttpTransport(self._url, headers),
            encode_events,
            policy=retry_policy,
            request_timeout=timeout,
        )
        super().__init__(
            delivery,
            name="codex-telemetry-backend",
            max_queue_size=max_queue_size,
            batch_size=batch_size,
            interval=interval,
        )

    def __repr__(self) -> str:
        return f"CodexBackendSink(url={self._url!r})"

    def _items(
        self, events: Sequence[AnalyticsEvent], timestamp_ns: int
    ) -> Sequence[AnalyticsEvent]:
        return events  # the request holds the wire objects alone

    def _deliver_batch(
        self, events: Sequence[AnalyticsEvent], in_flight: InFlight, stop: StopSignal
    ) -> None:
        self._sender.send_batch(events, in_flight, stop)

    def shutdown(self, timeout: float) -> bool:
        """Send what was queued within ``timeout`` seconds, then stop."""
        delivered = super().shutdown(timeout)
        self._sender.close()
        return delivered
