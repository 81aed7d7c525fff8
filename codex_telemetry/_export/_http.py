"""The HTTP transport (OTLP/HTTP and the Codex backend): one POST per attempt, classified.

A plain ``requests`` session with the headers, TLS files and timeout our settings
resolved: nothing here reads the environment, so no ``OTEL_*`` variable can add a header
or print one.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

from codex_telemetry._export._retry import Attempt, StopSignal, parse_retry_after
from codex_telemetry._internal_errors import log_internal_error
from codex_telemetry._threads import start_thread

__all__ = ["HttpTransport", "classify_http_status"]

_logger = logging.getLogger(__name__)

_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})


def classify_http_status(status: int, retry_after: str | None) -> Attempt:
    """Map an HTTP response status to what the delivery loop does next."""
    if 200 <= status < 300:
        return Attempt.ok()
    reason = f"http_{status}"
    if status in _RETRYABLE_HTTP:
        return Attempt.retry(reason, parse_retry_after(retry_after))
    if status == 413:
        return Attempt.too_large(reason)
    return Attempt.fail(reason)


class HttpTransport:
    """POST each request body to ``url``.

    ``gzip`` compresses the body (and says so in ``content-encoding``). ``certificate``
    is the CA bundle that verifies the server; ``client_certificate`` and ``client_key``
    are sent for mutual TLS. ``rejected`` reads how many items a 2xx response refused
    (OTLP partial success) from its content type and body.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        gzip: bool = False,
        certificate: Path | None = None,
        client_certificate: Path | None = None,
        client_key: Path | None = None,
        rejected: Callable[[str, bytes], int] | None = None,
    ) -> None:
        self._url = url
        request_headers = {key.lower(): value for key, value in headers.items()}
        if gzip:
            request_headers["content-encoding"] = "gzip"
        self._headers = request_headers
        self._gzip = gzip
        # TLS settings go with each request: requests does not reliably apply a
        # session's ``verify`` to new connections.
        self._verify: bool | str = str(certificate) if certificate is not None else True
        self._cert: str | tuple[str, str] | None = None
        if client_certificate is not None:
            self._cert = (
                (str(client_certificate), str(client_key))
                if client_key is not None
                else str(client_certificate)
            )
        self._rejected = rejected
        self._session = requests.Session()
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"HttpTransport(url={self._url!r})"

    def send(self, body: bytes, timeout: float, stop: StopSignal) -> Attempt:
        """POST ``body`` once and classify the outcome; never raises.

        ``requests`` cannot abandon a request, so it runs on a helper thread: a request
        still waiting at ``stop.deadline`` is left to end by its own timeout, and exit
        does not wait for a hung collector.
        """
        if self._closed:
            return Attempt.fail("shutdown")
        if self._gzip:
            body = gzip.compress(body, compresslevel=6)
        outcome: list[Attempt] = []

        def post() -> None:
            outcome.append(self._post(body, timeout))
            stop.wake()

        start_thread(post, "codex-telemetry-http")
        if not stop.wait_for(lambda: bool(outcome)):
            return Attempt.unanswered()  # it may still arrive: not counted lost
        return outcome[0]

    def _post(self, body: bytes, timeout: float) -> Attempt:
        try:
            response = self._session.post(
                self._url,
                data=body,
                headers=self._headers,
                timeout=timeout,
                allow_redirects=False,
                verify=self._verify,
                cert=self._cert,
            )
        except requests.exceptions.SSLError:
            return Attempt.fail("tls_error")
        except requests.exceptions.Timeout:
            return Attempt.retry("timeout")
        except requests.exceptions.ConnectionError:
            return Attempt.retry("unreachable")
        except requests.exceptions.RequestException:
            return Attempt.fail("request_error")
        except Exception:
            log_internal_error("http_send", "sending a request")
            return Attempt.fail("internal_error")
        attempt = classify_http_status(response.status_code, response.headers.get("Retry-After"))
        if attempt.outcome.value == "ok" and self._rejected is not None and response.content:
            content_type = response.headers.get("Content-Type", "")
            return Attempt.ok(self._rejected(content_type, response.content))
        return attempt

    def close(self) -> None:
        """Close the session's connections; later sends fail with ``shutdown``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._session.close()
