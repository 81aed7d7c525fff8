"""``codex-telemetry spool list|flush|purge``: the events the SDK keeps on disk.

The spool directory is the one ``init()`` would use here (``spool.directory``, by
default the per-user cache directory's ``spool`` folder); ``--directory`` reads another.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import click

from codex_telemetry._cli._common import fail, library_logs, table
from codex_telemetry._cli._config import load_or_fail

__all__ = ["spool"]

_DIRECTORY = click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The spool directory (default: spool.directory, or the per-user cache folder).",
)


def _root(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    settings = load_or_fail()
    if settings.spool.directory is not None:
        return settings.spool.directory
    from codex_telemetry._spool import default_spool_directory  # noqa: PLC0415

    return default_spool_directory()


def _when(timestamp_ns: int | None) -> str | None:
    if timestamp_ns is None:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp_ns / 1e9, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group()
def spool() -> None:
    """Undelivered events kept on disk: list, flush or purge them."""


@spool.command(name="list")
@_DIRECTORY
def list_command(directory: Path | None) -> None:
    """What is spooled, per destination: events and bytes still to send, the oldest."""
    from codex_telemetry._spool import list_spool  # noqa: PLC0415

    root = _root(directory)
    try:
        summaries = list_spool(root)
    except OSError as error:
        raise fail(f"{root}: cannot read the spool: {error.strerror or error}") from None
    click.echo(f"spool directory: {root}")
    if not summaries:
        click.echo("nothing spooled")
        return
    rows = []
    for summary in summaries:
        alive = sum(1 for segment in summary.segments if segment.owner == "alive")
        rows.append(
            (
                summary.label or summary.directory.name,
                summary.events,
                summary.bytes,
                len(summary.segments) - alive,
                alive,
                _when(summary.oldest_timestamp_ns),
            )
        )
    for line in table(
        ("destination", "events", "bytes", "orphaned", "in use", "oldest (UTC)"), rows
    ):
        click.echo(line)


@spool.command()
@_DIRECTORY
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each batch's delivery, retries included.",
)
def flush(directory: Path | None, timeout: float) -> None:
    """Send the spooled events of the configured destination now, oldest first.

    Only segments no running process holds are sent; a batch that is not delivered
    stays spooled, and the command fails.
    """
    from codex_telemetry._export._base import DeliveryCounters  # noqa: PLC0415
    from codex_telemetry._export._factory import create_sink, spool_plan  # noqa: PLC0415
    from codex_telemetry._spool import SpooledEvent, drain_orphans  # noqa: PLC0415

    settings = load_or_fail()
    plan = spool_plan(settings.model_copy(update={"enabled": True}))
    if plan is None:
        raise fail(f"exporter {settings.exporter!r} does not use the spool")
    root = directory if directory is not None else _root(None)
    with library_logs():
        delivery = DeliveryCounters()
        try:
            sink = create_sink(settings, delivery)
        except (OSError, ValueError) as error:
            raise fail(f"cannot create the sink: {error}") from None

        def send(batch: Sequence[SpooledEvent]) -> bool:
            before = delivery.exported.value
            for spooled in batch:
                sink.export([spooled.to_event()], spooled.timestamp_ns)
            sink.force_flush(timeout)
            return delivery.exported.value - before == len(batch)

        try:
            result = drain_orphans(send, destination=plan.key, root=root)
        finally:
            sink.shutdown(1.0)
    click.echo(f"sent {result.delivered} events to {plan.label}")
    if result.stopped_early:
        raise fail(
            f"a batch was not delivered within {timeout:g} s; the rest stays spooled "
            "(see 'codex-telemetry check')"
        )


@spool.command()
@_DIRECTORY
@click.option("--yes", is_flag=True, help="Delete without asking.")
def purge(directory: Path | None, yes: bool) -> None:
    """Delete the spooled events no running process holds (they are never sent)."""
    from codex_telemetry._spool import purge_spool  # noqa: PLC0415

    root = _root(directory)
    if not yes:
        click.confirm(f"Delete the spooled events under {root}?", abort=True)
    try:
        result = purge_spool(root)
    except OSError as error:
        raise fail(f"{root}: cannot purge the spool: {error.strerror or error}") from None
    click.echo(
        f"deleted {result.events} events ({result.bytes} bytes) in {result.segments} segments"
    )
