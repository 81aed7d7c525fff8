"""``codex-telemetry check``: send one test record through the configured sink."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from codex_telemetry._cli._common import fail, library_logs
from codex_telemetry._cli._config import collection_status, load_or_fail
from codex_telemetry._settings import TelemetrySettings, setting_sources
from codex_telemetry.events import HookRunEvent

__all__ = ["check", "test_event"]

_CHECK = "codex-telemetry-check"

# What to look at when the collector answers with this status.
_HINTS = {
    "http_400": "the server could not read the record",
    "http_401": "check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS)",
    "http_403": "check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS)",
    "http_404": "check the endpoint's path (OTLP/HTTP logs are at /v1/logs)",
    "grpc_unauthenticated": "check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS)",
    "grpc_permission_denied": "check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS)",
    "grpc_unimplemented": "the endpoint is not an OTLP logs service",
    "tls_error": "check the endpoint's scheme and otlp.certificate",
}


def test_event() -> HookRunEvent:
    """The record ``check`` sends: a hook run whose every name says it is a check."""
    return HookRunEvent(
        thread_id=_CHECK,
        turn_id=_CHECK,
        model_slug=_CHECK,
        hook_name=_CHECK,
        hook_source=_CHECK,
        status="completed",
    )


def _target(settings: TelemetrySettings) -> tuple[str, str, bool | None]:
    """(sink, address, TLS): how and where the record goes, and whether the connection
    uses TLS (None: no network)."""
    exporter = settings.exporter
    if exporter == "otlp":
        otlp = settings.otlp
        endpoint = otlp.endpoint
        sink = f"otlp ({otlp.protocol})"
        if otlp.protocol == "grpc":
            # The gRPC exporter's documented rule for insecure=None.
            has_files = any(
                path is not None
                for path in (otlp.certificate, otlp.client_key, otlp.client_certificate)
            )
            insecure = otlp.insecure
            if insecure is None:
                insecure = not endpoint.startswith("https://") and not has_files
            return sink, endpoint, not insecure
        return sink, endpoint, endpoint.startswith("https://")
    if exporter == "codex_backend":
        url = settings.codex_backend.base_url.rstrip("/") + "/codex/analytics-events/events"
        return exporter, url, url.startswith("https://")
    if exporter == "file":
        return exporter, str(settings.file.path), None
    return exporter, "standard error", None


def _explain(
    reason: str | None, exporter: str, address: str, timeout: float
) -> tuple[bool | None, str | None, str]:
    """(connected, status, sentence) for the reason a record was not delivered."""
    if reason is None:
        return None, None, f"no answer from {address} within {timeout:g} s"
    server = "backend" if exporter == "codex_backend" else "collector"
    hint = _HINTS.get(reason)
    if exporter == "codex_backend" and reason in ("http_401", "http_403"):
        hint = "check codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND__TOKEN)"
    suffix = f"; {hint}" if hint else ""
    if reason.startswith("http_"):
        status = reason.removeprefix("http_")
        return True, status, f"connected, but the {server} refused it with HTTP {status}{suffix}"
    if reason.startswith("grpc_"):
        status = reason.removeprefix("grpc_").upper()
        return (
            True,
            status,
            f"connected, but the {server} refused it with gRPC status {status}{suffix}",
        )
    if reason == "unreachable":
        return (
            False,
            None,
            f"could not connect to {address} within {timeout:g} s; is a {server} listening there?",
        )
    if reason == "timeout":
        return None, None, f"no answer from {address} within {timeout:g} s"
    if reason == "tls_error":
        return False, None, f"the TLS handshake failed{suffix}"
    return None, None, f"not delivered: {reason}{suffix}"


@click.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds to wait for delivery, retries included.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@click.option("-v", "--verbose", is_flag=True, help="Also print what the sink logged.")
def check(timeout: float, as_json: bool, verbose: bool) -> None:
    """Send one test record to the configured sink and say what happened.

    Uses the settings codex_telemetry.init() would use here (see `codex-telemetry
    config`) and the same sink, retries included: the record is a codex_hook_run event
    whose names are all "codex-telemetry-check". Prints whether it connected, the status
    the collector answered, the latency and whether TLS was used. The exit code is 0 when
    the record was delivered, 1 otherwise. With the file exporter the record is appended
    to the file; with the console exporter it is printed on standard error.
    """
    settings = load_or_fail()
    if settings.exporter == "none":
        raise fail("exporter is 'none': there is no sink to check (set CODEX_TELEMETRY_EXPORTER)")
    sources = setting_sources()
    on, reason = collection_status(settings, sources)
    sink_name, address, tls = _target(settings)

    # Imported here: the other commands never load the exporters.
    from codex_telemetry._export._base import DeliveryCounters  # noqa: PLC0415
    from codex_telemetry._export._factory import create_sink  # noqa: PLC0415

    with library_logs() as logged:
        delivery = DeliveryCounters()
        try:
            sink = create_sink(settings, delivery)
        except OSError as error:
            raise fail(f"cannot open the {sink_name} sink ({address}): {error.strerror}") from None
        started = time.perf_counter()
        sink.export([test_event()], time.time_ns())
        sink.force_flush(timeout)
        elapsed = time.perf_counter() - started
        delivered = delivery.exported.value >= 1
        # Still retrying at the deadline: shutdown gives up and counts the last failure
        # (``unreachable``...), or ``shutdown`` when no attempt had ended.
        sink.shutdown(0.5)
        dropped = delivery.dropped.snapshot()
        dropped.pop("shutdown", None)

    why = next(iter(dropped), None)
    if delivered:
        connected: bool | None = True if tls is not None else None
        status: str | None = "ok"
        sentence = f"delivered in {elapsed * 1000:.0f} ms"
        if tls is not None:
            server = "backend" if settings.exporter == "codex_backend" else "collector"
            sentence = f"connected, the {server} accepted it in {elapsed * 1000:.0f} ms"
    else:
        connected, status, sentence = _explain(why, settings.exporter, address, timeout)

    if as_json:
        document: dict[str, Any] = {
            "exporter": settings.exporter,
            "address": address,
            "protocol": settings.otlp.protocol if settings.exporter == "otlp" else None,
            "tls": tls,
            "collecting": on,
            "delivered": delivered,
            "connected": connected,
            "status": status,
            "reason": None if delivered else why,
            "latency_ms": round(elapsed * 1000, 1) if delivered else None,
            "message": sentence,
        }
        click.echo(json.dumps(document, indent=2))
    else:
        tls_text = "" if tls is None else (", TLS" if tls else ", no TLS")
        click.echo(f"sending 1 test record with {sink_name} to {address}{tls_text}")
        if not on:
            click.echo(f"note: collection is off here ({reason}): init() would send nothing")
        if verbose:
            for message in logged:
                click.echo(f"log: {message}")
        if delivered:
            click.echo(f"ok: {sentence}")
    if not delivered:
        if as_json:
            raise click.exceptions.Exit(1)
        raise fail(f"failed: {sentence}")
