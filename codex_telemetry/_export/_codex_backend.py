"""The Codex backend sink: batches of wire events POSTed to the analytics endpoint."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import requests

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._batching import BatchingSink, InFlight
from codex_telemetry._export._http import post_with_rules
from codex_telemetry._export._retry import Attempt, RetryPolicy, StopSignal, deliver
from codex_telemetry._version import __version__
from codex_telemetry.events import AnalyticsEvent

__all__ = ["EVENTS_PATH", "CodexBackendSink", "encode_events"]

_logger = logging.getLogger(__name__)

EVENTS_PATH = "/codex/analytics-events/events"
"""Path of the analytics endpoint under the backend's base URL."""


def encode_events(events: Sequence[AnalyticsEvent]) -> bytes:
    """The request body: ``{"events": [<wire event>, ...]}``."""
    return json.dumps(
        {"events": [event.to_dict() for event in events]},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def _encodable(event: AnalyticsEvent) -> bool:
    try:
        encode_events([event])
    except UnicodeEncodeError:
        return False
    return True


class CodexBackendSink(BatchingSink):
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
        self._headers = headers
        self._timeout = timeout
        self._policy = retry_policy or RetryPolicy()
        self._session = requests.Session()
        super().__init__(
            delivery,
            name="codex-telemetry-backend",
            max_queue_size=max_queue_size,
            batch_size=batch_size,
            interval=interval,
        )

    def __repr__(self) -> str:
        return f"CodexBackendSink(url={self._url!r})"

    def _attempt(self, events: Sequence[AnalyticsEvent], timeout: float) -> Attempt:
        attempt, _ = post_with_rules(
            self._session, self._url, encode_events(events), self._headers, timeout
        )
        return attempt

    def _deliver_batch(
        self, events: Sequence[AnalyticsEvent], in_flight: InFlight, stop: StopSignal
    ) -> None:
        try:
            encode_events(events)
        except UnicodeEncodeError:
            # A lone surrogate (a file name decoded with surrogateescape) cannot be sent:
            # drop that event alone, not the batch.
            kept = [event for event in events if _encodable(event)]
            lost = len(events) - len(kept)
            _logger.warning(
                "codex_telemetry: %d events hold text that is not valid UTF-8; dropped", lost
            )
            in_flight.dropped(lost, "encoding_error")
            events = kept
            if not events:
                return
        deliver(
            events,
            self._attempt,
            in_flight,
            policy=self._policy,
            request_timeout=self._timeout,
            stop=stop,
        )

    def shutdown(self, timeout: float) -> bool:
        """Send what was queued within ``timeout`` seconds, then stop."""
        delivered = super().shutdown(timeout)
        self._session.close()
        return delivered
