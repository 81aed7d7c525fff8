"""The one seam for network I/O: a transport sends one encoded request and classifies it.

Every network sink (OTLP over HTTP or gRPC, the Codex backend) is a :class:`Transport`
plus an encoder. :class:`TransportSender` is written once for all of them: it encodes a
batch (dropping alone an item that cannot be encoded), delivers it under the rules of
:mod:`codex_telemetry._export._retry` (retry, back off, split on "too large") and settles
every item as exported or dropped with a reason. Tests and programs can pass any object
with ``send`` and ``close`` as the transport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from codex_telemetry._export._retry import (
    Attempt,
    RetryPolicy,
    Settlement,
    StopSignal,
    deliver,
)

__all__ = ["ENCODING_ERRORS", "ENCODING_HINT", "Transport", "TransportSender"]

_logger = logging.getLogger(__name__)

T = TypeVar("T")

ENCODING_ERRORS = (ValueError, TypeError, UnicodeError, RecursionError, OverflowError)
"""What an encoder raises for an item it cannot write (an integer beyond int64, a lone
surrogate, a value nested past the interpreter's recursion limit)."""

# What an event that cannot be encoded most likely holds, said with its drop: the SDK's own
# events hold only JSON values, and strings from the machine (file names) may not encode.
ENCODING_HINT = (
    "a string with a lone surrogate (a file name), or a value other than JSON values "
    "returned by before_send"
)


class Transport(Protocol):
    """Sends one encoded request and says what the delivery loop should do next.

    ``send`` never raises: every outcome, network errors included, is an
    :class:`~codex_telemetry._export._retry.Attempt`. ``close`` releases connections and
    is idempotent; a ``send`` after ``close`` fails with reason ``shutdown``.
    """

    def send(self, body: bytes, timeout: float, stop: StopSignal) -> Attempt:
        """Send ``body`` once, waiting at most ``timeout`` seconds for the answer.

        A transport that can abandon a request gives up at ``stop.deadline`` even when
        the request started before the deadline was set.
        """
        ...

    def close(self) -> None:
        """Release the transport's connections."""
        ...


class TransportSender(Generic[T]):
    """Encode batches of items with ``encode`` and deliver them through ``transport``."""

    def __init__(
        self,
        transport: Transport,
        encode: Callable[[Sequence[T]], bytes],
        *,
        policy: RetryPolicy | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self.transport = transport
        self._encode = encode
        self._policy = policy or RetryPolicy()
        self._request_timeout = request_timeout

    def send_batch(self, items: Sequence[T], settlement: Settlement, stop: StopSignal) -> None:
        """Deliver ``items`` by ``stop.deadline``, settling each one exactly once."""
        try:
            body = self._encode(items)
        except ENCODING_ERRORS:
            items = self._encodable(items, settlement)
            if not items:
                return
            body = self._encode(items)
        last: list[object] = [items, body]

        def send(batch: Sequence[T], timeout: float) -> Attempt:
            # A retry resends the body already encoded for the same items; a split
            # encodes each half.
            if last[0] is not batch:
                last[0], last[1] = batch, self._encode(batch)
            encoded = last[1]
            assert isinstance(encoded, bytes)
            return self.transport.send(encoded, timeout, stop)

        deliver(
            items,
            send,
            settlement,
            policy=self._policy,
            request_timeout=self._request_timeout,
            stop=stop,
        )

    def _encodable(self, items: Sequence[T], settlement: Settlement) -> list[T]:
        """The items that encode on their own; the others are dropped, not the batch."""
        kept = []
        lost = 0
        for item in items:
            try:
                self._encode([item])
            except ENCODING_ERRORS as error:
                lost += 1
                first_error = error
            else:
                kept.append(item)
        if lost:
            _logger.warning(
                "codex_telemetry: %d events could not be encoded (%s: %s); dropped. Most "
                "likely cause: %s",
                lost,
                type(first_error).__name__,
                first_error,
                ENCODING_HINT,
            )
            settlement.dropped(lost, "encoding_error")
        return kept

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()
