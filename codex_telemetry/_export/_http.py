"""One HTTP POST, classified by the delivery rules (shared by OTLP/HTTP and the backend)."""

from __future__ import annotations

from collections.abc import Mapping

import requests

from codex_telemetry._export._retry import Attempt, parse_retry_after

__all__ = ["classify_http_status", "post_with_rules"]

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


def post_with_rules(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    *,
    verify: bool | str = True,
    cert: str | tuple[str, str] | None = None,
) -> tuple[Attempt, requests.Response | None]:
    """POST once and classify the outcome (shared by the OTLP/HTTP and backend sinks).

    TLS settings go with each request: requests does not reliably apply a session's
    ``verify`` to new connections.
    """
    try:
        response = session.post(
            url,
            data=body,
            headers=dict(headers),
            timeout=timeout,
            allow_redirects=False,
            verify=verify,
            cert=cert,
        )
    except requests.exceptions.SSLError:
        return Attempt.fail("tls_error"), None
    except requests.exceptions.Timeout:
        return Attempt.retry("timeout"), None
    except requests.exceptions.ConnectionError:
        return Attempt.retry("unreachable"), None
    except requests.exceptions.RequestException:
        return Attempt.fail("request_error"), None
    return classify_http_status(response.status_code, response.headers.get("Retry-After")), response
