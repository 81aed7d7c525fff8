"""From settings to a client's parts, and what goes wrong there as a ``ConfigurationError``.

Everything here runs inside ``init()`` or a client's constructor, where failing loudly is
right: a sink that cannot be made, an unknown instrumentation. The exporters and the
reducer are imported only when a client needs them, so that ``import codex_telemetry``
stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider

    from codex_telemetry._export._base import DeliveryCounters, EventSink
    from codex_telemetry._export._factory import SpoolPlan
    from codex_telemetry._hooks import EventHooks
    from codex_telemetry._instrumentation import FactTracker
    from codex_telemetry._internal_errors import InternalErrors
    from codex_telemetry._reducer import AnalyticsReducer
    from codex_telemetry._settings import ConfigurationError, TelemetrySettings

__all__ = [
    "check_instrumentation_names",
    "default_reducer_factory",
    "default_sink_factory",
    "event_hooks",
    "has_spooled_events",
    "import_worker_modules",
    "instrument",
    "sink_error",
    "spool_plan",
    "uninstrument",
]


def _configuration_error(problems: list[str]) -> ConfigurationError:
    # Imported here: the settings module imports pydantic-settings, which ``import
    # codex_telemetry`` does not need.
    from codex_telemetry._settings import ConfigurationError  # noqa: PLC0415

    return ConfigurationError(problems)


def default_sink_factory(
    settings: TelemetrySettings, logger_provider: LoggerProvider | None
) -> Callable[[DeliveryCounters], EventSink]:
    """Makes the sink ``settings.exporter`` names, reporting through the given counters;
    a network sink is made when its first batch is due (``create_deferred_sink``)."""

    def create(delivery: DeliveryCounters) -> EventSink:
        from codex_telemetry._export._factory import create_deferred_sink  # noqa: PLC0415

        return create_deferred_sink(settings, delivery, logger_provider)

    return create


def spool_plan(settings: TelemetrySettings) -> SpoolPlan | None:
    """Where the worker keeps its durable spool for ``settings``; None: no spool."""
    from codex_telemetry._export._factory import spool_plan as plan  # noqa: PLC0415

    return plan(settings)


def has_spooled_events(plan: SpoolPlan) -> bool:
    """Whether events wait in the spool of ``plan`` (then the worker starts at once)."""
    from codex_telemetry._export._factory import has_spooled_events as waiting  # noqa: PLC0415

    return waiting(plan)


def default_reducer_factory(settings: TelemetrySettings) -> Callable[[], AnalyticsReducer]:
    """Makes the reducer for ``settings`` (originator, runtime, limits, debug)."""
    # Imported now, by the client's constructor, not by the worker as it starts: a thread
    # executing module code holds the GIL for long stretches, which the caller's first
    # facts felt.
    from codex_telemetry._reducer import AnalyticsReducer, ReducerLimits  # noqa: PLC0415
    from codex_telemetry._runtime import current_runtime  # noqa: PLC0415

    reducer_class = AnalyticsReducer
    if settings.debug:  # decided here, once: off, the plain reducer runs
        from codex_telemetry._explain import DebugReducer, show_debug_lines  # noqa: PLC0415

        show_debug_lines()
        reducer_class = DebugReducer

    def create() -> AnalyticsReducer:
        return reducer_class(
            originator=settings.originator,
            runtime=current_runtime(settings.runtime_version),
            limits=ReducerLimits(**settings.reducer.given()),
        )

    return create


def import_worker_modules() -> None:
    """Import, on the caller's thread, what the worker needs once it starts and its sink
    does not import (the fact queue's size estimates): a thread executing module code
    holds the GIL for stretches that the caller's first facts would feel."""
    import codex_telemetry._export._batching  # noqa: F401, PLC0415


def event_hooks(settings: TelemetrySettings, errors: InternalErrors) -> EventHooks | None:
    """The event type filter and ``before_send`` the settings ask for; None without any, so
    that a client without hooks pays nothing for them."""
    types = settings.event_types
    if settings.before_send is None and types.include is None and not types.exclude:
        return None
    from codex_telemetry._hooks import EventHooks  # noqa: PLC0415 - only when asked for

    return EventHooks(
        before_send=settings.before_send,
        include=types.include,
        exclude=types.exclude,
        errors=errors,
    )


def sink_error(settings: TelemetrySettings, error: OSError | ValueError) -> ConfigurationError:
    """The ``ConfigurationError`` for a sink that could not be made."""
    if isinstance(error, OSError):
        # The only sink that opens something at construction is the file sink.
        setting = "file.path (CODEX_TELEMETRY_FILE__PATH)"
        if settings.exporter != "file":
            setting = "exporter (CODEX_TELEMETRY_EXPORTER)"
        return _configuration_error([f"{setting}: cannot open: {error}"])
    return _configuration_error(
        [f"exporter (CODEX_TELEMETRY_EXPORTER): cannot create the sink: {error}"]
    )


def check_instrumentation_names(names: Sequence[str]) -> None:
    """Raise for an unknown name before anything changes (a disabled SDK instruments
    nothing, but a typo is still a configuration error)."""
    if not names:
        return
    # Only the names are checked: the instrumentation modules stay unimported.
    from codex_telemetry._instrumentation import check_name  # noqa: PLC0415

    problems = []
    for name in names:
        try:
            check_name(name)
        except ValueError as error:
            problems.append(f"instrument: {error}")
    if problems:
        raise _configuration_error(problems)


def instrument(name: str, telemetry: FactTracker) -> None:
    """Switch the instrumentation ``name`` on, reporting to ``telemetry``."""
    from codex_telemetry import _instrumentation  # noqa: PLC0415 - it patches libraries

    try:
        _instrumentation.instrument(name, telemetry)
    except ValueError as error:
        raise _configuration_error([f"instrument: {error}"]) from None


def uninstrument(name: str) -> None:
    """Switch the instrumentation ``name`` off."""
    from codex_telemetry import _instrumentation  # noqa: PLC0415

    _instrumentation.uninstrument(name)
