"""The analytics reducer: joins facts into analytics events (events.md sections 3 and 4).

Pure: no settings, globals, threads or network. The wall clock and the git lookup are
injected, so every output can be asserted exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from codex_telemetry._bounded import BoundedTable, Now
from codex_telemetry._internal_errors import handle_internal_errors
from codex_telemetry._runtime import current_runtime
from codex_telemetry._skills import (
    GitRepoLookup,
    RepoInfo,
    RepoLookup,
    skill_id_for_local_skill,
    strip_url_userinfo,
)
from codex_telemetry._version import __version__
from codex_telemetry.events import (
    AnalyticsEvent,
    AppMentionedEvent,
    AppServerClient,
    AppUsedEvent,
    CompactionEvent,
    HookRunEvent,
    InitializationMode,
    PluginDisabledEvent,
    PluginEnabledEvent,
    PluginInstalledEvent,
    PluginStateEvent,
    PluginUninstalledEvent,
    PluginUsedEvent,
    SkillInvocationEvent,
    ThreadInitializedEvent,
    ThreadSource,
    TurnEvent,
    TurnSteerEvent,
)
from codex_telemetry.facts import (
    AppInvocation,
    AppMentioned,
    AppUsed,
    Compaction,
    ErrorResponse,
    Fact,
    HookRun,
    ImageInput,
    Initialize,
    LocalImageInput,
    Notification,
    Other,
    PluginMetadata,
    PluginStateChanged,
    PluginUsed,
    Request,
    Response,
    RuntimeMetadata,
    SessionSource,
    SkillInvoked,
    SubAgent,
    SubAgentSource,
    SubAgentThreadStarted,
    ThreadForkResponse,
    ThreadResumeResponse,
    ThreadSpawn,
    ThreadStartResponse,
    TokenUsage,
    TrackingContext,
    TurnCompletedNotification,
    TurnResolvedConfig,
    TurnStartedNotification,
    TurnStartRequest,
    TurnStartResponse,
    TurnSteerResponse,
    TurnTokenUsage,
    UnknownValue,
    UserInput,
)

__all__ = ["NO_EVENT_REASONS", "WAITING_FOR", "AnalyticsReducer", "ReducerLimits"]

StateKind = Literal["connections", "threads", "pending_requests", "turns"]
# Turns and pending requests are swept first: evicting them may release the threads and
# connections they needed in the same sweep.
_SWEEP_ORDER: tuple[StateKind, ...] = ("turns", "pending_requests", "threads", "connections")

# An idle sweep runs at most this many times per idle period: often enough that idle
# state outlives ``idle_seconds`` by at most an eighth, rarely enough to cost nothing.
_SWEEPS_PER_IDLE_PERIOD = 8

_SANDBOX_POLICY_NAMES = {
    "danger_full_access": "full_access",
    "read_only": "read_only",
    "workspace_write": "workspace_write",
    "external_sandbox": "external_sandbox",
}
_PLUGIN_STATE_EVENTS: dict[str, type[PluginStateEvent]] = {
    "installed": PluginInstalledEvent,
    "uninstalled": PluginUninstalledEvent,
    "enabled": PluginEnabledEvent,
    "disabled": PluginDisabledEvent,
}
_MAX_SUBAGENT_CLIENTS = 64

NO_EVENT_REASONS: Final = (
    "unknown_connection",
    "unknown_thread",
    "no_pending_request",
    "after_emission",
    "turn_evicted",
)
"""Why an accepted fact could not lead to an event (:attr:`AnalyticsReducer.no_event`)."""

WAITING_FOR: Final = (
    "turn_start_response",
    "resolved_config",
    "completion",
    "initialize",
    "thread_response",
)
"""What a turn may wait for before its event (:meth:`AnalyticsReducer.turns_waiting`)."""


@dataclass(frozen=True, slots=True)
class ReducerLimits:
    """Bounds on the reducer's state, for a long-running server.

    Each ``max_*`` is the most entries of that kind kept at once; ``idle_seconds`` is how
    long (by the reducer's clock) an entry may go untouched before it may be evicted.
    Full to the defaults, the state takes about 10 MB.
    """

    max_connections: int = 1024
    max_threads: int = 16384
    max_pending_requests: int = 4096
    max_turns: int = 4096
    idle_seconds: float = 24 * 60 * 60.0

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_threads", "max_pending_requests", "max_turns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ReducerLimits.{name} must be an integer >= 1, got {value!r}")
        if not self.idle_seconds > 0:
            raise ValueError(
                f"ReducerLimits.idle_seconds must be a positive number, got {self.idle_seconds!r}"
            )


# --- state ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Connection:
    client: AppServerClient
    runtime: RuntimeMetadata


@dataclass(slots=True)
class _Thread:
    connection_id: int
    thread_source: ThreadSource | None
    initialization_mode: InitializationMode
    subagent_source: str | None
    parent_thread_id: str | None


@dataclass(slots=True)
class _PendingTurnStart:
    connection_id: int
    thread_id: str
    num_input_images: int


@dataclass(slots=True)
class _PendingSteer:
    connection_id: int
    thread_id: str
    expected_turn_id: str
    num_input_images: int
    created_at: int


@dataclass(slots=True)
class _Completion:
    status: str | None
    turn_error: Any
    completed_at: int
    duration_ms: int | None


@dataclass(slots=True)
class _Turn:
    connection_id: int | None = None
    thread_id: str | None = None
    num_input_images: int | None = None
    resolved_config: TurnResolvedConfig | None = None
    started_at: int | None = None
    token_usage: TokenUsage | None = None
    completion: _Completion | None = None
    steer_count: int = 0
    # Emitted, or created after its turn's event was emitted: it will never emit (again),
    # so leaving the table is not a loss.
    done: bool = False


_Pending = _PendingTurnStart | _PendingSteer
_RequestKey = tuple[int, int | str]


# --- pure mappings ----------------------------------------------------------------------


def _non_negative(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def _image_count(items: Sequence[UserInput]) -> int:
    return sum(isinstance(item, ImageInput | LocalImageInput) for item in items)


def _subagent_source_name(source: SubAgentSource) -> str:
    if isinstance(source, ThreadSpawn):
        return "thread_spawn"
    if isinstance(source, Other):
        return source.name
    return source


def _subagent_parent(source: SubAgentSource) -> str | None:
    return source.parent_thread_id if isinstance(source, ThreadSpawn) else None


def _thread_lineage(
    source: SessionSource,
) -> tuple[ThreadSource | None, str | None, str | None]:
    """``(thread_source, subagent_source, parent_thread_id)`` of a session source (3.4)."""
    if isinstance(source, SubAgent):
        return "subagent", _subagent_source_name(source.source), _subagent_parent(source.source)
    if source in ("cli", "vscode", "exec"):
        return "user", None, None
    return None, None, None


def _wire(value: str | UnknownValue) -> str:
    """The wire string of an enum value; a value this release does not know as it came."""
    return value.value if isinstance(value, UnknownValue) else value


def _none_as_null(value: str | UnknownValue | None) -> str | None:
    if value is None:
        return None
    name = _wire(value)
    return None if name == "none" else name


def _sandbox_policy_name(value: str | UnknownValue) -> str:
    if isinstance(value, UnknownValue):
        return value.value
    return _SANDBOX_POLICY_NAMES[value]


def _plugin_fields(plugin: PluginMetadata, originator: str) -> dict[str, Any]:
    summary = plugin.capability_summary
    return {
        "plugin_id": plugin.key,
        "plugin_name": plugin.plugin_name,
        "marketplace_name": plugin.marketplace_name,
        "has_skills": summary.has_skills if summary is not None else None,
        "mcp_server_count": len(summary.mcp_server_names) if summary is not None else None,
        "connector_ids": tuple(summary.app_connector_ids) if summary is not None else None,
        "product_client_id": originator,
    }


# --- the reducer ------------------------------------------------------------------------


class AnalyticsReducer:
    """Joins facts into analytics events: ``ingest(fact) -> list[AnalyticsEvent]``.

    One instance per SDK client, fed one fact at a time by a single worker; not
    thread-safe. ``ingest`` never raises for a well-typed fact: a fact it cannot use
    yields no event.

    **Bounded state.** The upstream reducer never forgets a connection or a thread and
    keeps a turn that never completes forever. This one keeps at most
    :class:`ReducerLimits` entries of each kind, counts what it evicts in
    :attr:`evictions`, and follows this policy:

    - *Idle*: an entry untouched (by the injected clock) for ``idle_seconds`` is evicted.
      A fact that names an entry touches it. The check is amortised: it runs on ingest
      at most ``8`` times per idle period, and walks entries oldest-touched first.
    - *Needed state is kept*: a connection or thread referenced by a live turn state or
      a pending request is never evicted for idleness; it counts as touched instead.
    - *Full*: adding an entry to a full kind first evicts one of that kind. For turns,
      the oldest *dead-end* state goes first: one created for a turn whose event was
      already emitted (a late ``turn/started`` or token usage), which can never emit;
      else the least recently touched turn. For pending requests, the least recently
      touched (a request never answered). For connections and threads, the least
      recently touched one that no turn or pending request needs; only when all are
      needed is the least recently touched one evicted anyway, and turns that needed it
      will not emit.

    Memory therefore stays bounded whatever the input: four bounded tables (one
    ``BoundedTable`` per kind, which carries this policy), plus a bounded record of
    recently emitted turn ids (at most ``max_turns``).
    """

    def __init__(
        self,
        *,
        originator: str = "codex_cli_rs",
        runtime: RuntimeMetadata | None = None,
        clock: Callable[[], float] = time.time,
        repo_lookup: RepoLookup | None = None,
        limits: ReducerLimits | None = None,
    ) -> None:
        self._originator = originator
        self._runtime = runtime if runtime is not None else current_runtime(__version__)
        self._clock = clock
        self._repo_lookup: RepoLookup = repo_lookup if repo_lookup is not None else GitRepoLookup()
        self._limits = limits if limits is not None else ReducerLimits()
        self._sweep_interval = self._limits.idle_seconds / _SWEEPS_PER_IDLE_PERIOD

        limits = self._limits
        self._now = Now()
        self._connections: BoundedTable[int, _Connection] = BoundedTable(
            limits.max_connections, now=self._now
        )
        self._threads: BoundedTable[str, _Thread] = BoundedTable(limits.max_threads, now=self._now)
        # A pending request and a turn state hold the connection and thread they name.
        self._pending: BoundedTable[_RequestKey, _Pending] = BoundedTable(
            limits.max_pending_requests, now=self._now, on_remove=self._release_pending
        )
        self._turns: BoundedTable[str, _Turn] = BoundedTable(
            limits.max_turns, now=self._now, on_remove=self._release_turn
        )
        # Turn ids whose event was emitted, oldest first: a turn state created for one of
        # them afterwards can never emit, and is a dead end.
        self._emitted_turns: BoundedTable[str, bool] = BoundedTable(limits.max_turns)
        self._tables: dict[StateKind, BoundedTable[Any, Any]] = {
            "connections": self._connections,
            "threads": self._threads,
            "pending_requests": self._pending,
            "turns": self._turns,
        }
        self._subagent_clients: dict[tuple[str, str | None, str | None], AppServerClient] = {}
        self._next_sweep: float | None = None
        # Bumped only where a fact leads nowhere, so a healthy stream pays nothing for it.
        self._no_event: dict[str, int] = dict.fromkeys(NO_EVENT_REASONS, 0)

        self._handlers: dict[type, Callable[[Any], list[AnalyticsEvent]]] = {
            Initialize: self._on_initialize,
            Request: self._on_request,
            Response: self._on_response,
            ErrorResponse: self._on_error_response,
            Notification: self._on_notification,
            SubAgentThreadStarted: self._on_subagent_thread_started,
            TurnResolvedConfig: self._on_turn_resolved_config,
            TurnTokenUsage: self._on_turn_token_usage,
            SkillInvoked: self._on_skill_invoked,
            AppMentioned: self._on_app_mentioned,
            AppUsed: self._on_app_used,
            PluginUsed: self._on_plugin_used,
            PluginStateChanged: self._on_plugin_state_changed,
            Compaction: self._on_compaction,
            HookRun: self._on_hook_run,
        }

    # --- public -------------------------------------------------------------------------

    def ingest(self, fact: Fact) -> list[AnalyticsEvent]:
        """Apply one fact; return the events it completes (often none)."""
        handler = self._handlers.get(type(fact))
        if handler is None:
            return []
        self._now.value = now = self._clock()
        if self._next_sweep is None:
            self._next_sweep = now + self._sweep_interval
        elif now >= self._next_sweep:
            deadline = now - self._limits.idle_seconds
            for kind in _SWEEP_ORDER:
                self._tables[kind].evict_idle(deadline)
            self._next_sweep = now + self._sweep_interval
        return handler(fact)

    @property
    def evictions(self) -> Mapping[str, int]:
        """Entries evicted so far, by kind: connections, threads, pending_requests, turns."""
        return MappingProxyType({kind: table.evictions for kind, table in self._tables.items()})

    def state_sizes(self) -> dict[str, int]:
        """Entries held now, by kind (the same keys as :attr:`evictions`)."""
        return {kind: len(table) for kind, table in self._tables.items()}

    @property
    def no_event(self) -> dict[str, int]:
        """Facts that could not lead to an event so far, by reason (a copy).

        ``unknown_connection``, ``unknown_thread``, ``no_pending_request`` and
        ``after_emission`` count facts; ``turn_evicted`` counts turn states evicted while
        they still waited for facts (see :data:`NO_EVENT_REASONS`).
        """
        return dict(self._no_event)

    def turns_waiting(self) -> dict[str, int]:
        """The turns held now, by what each still waits for (see :data:`WAITING_FOR`).

        Walks the turn table, so it costs in proportion to the turns held; safe to call
        from another thread than the one ingesting (a snapshot, possibly a fact behind).
        """
        counts = dict.fromkeys(WAITING_FOR, 0)
        for _ in range(3):
            try:
                # One C call: no other thread runs while the list is made.
                turns = list(self._turns.values())
                break
            except RuntimeError:  # changed while copied: try again
                continue
        else:
            return counts
        for turn in turns:
            for missing in self._waiting_for(turn):
                counts[missing] += 1
        return counts

    def waiting_for(self, turn_id: str) -> list[str]:
        """What the turn ``turn_id`` still waits for; empty when it holds no state."""
        turn = self._turns.get(turn_id)
        return [] if turn is None else self._waiting_for(turn)

    def _waiting_for(self, turn: _Turn) -> list[str]:
        if turn.done:
            return []
        missing = []
        if turn.connection_id is None:
            missing.append("turn_start_response")
        if turn.resolved_config is None:
            missing.append("resolved_config")
        if turn.completion is None:
            missing.append("completion")
        if missing:
            return missing
        if turn.connection_id not in self._connections:
            missing.append("initialize")
        if turn.thread_id not in self._threads:
            missing.append("thread_response")
        return missing

    def _lost(self, reason: str) -> None:
        self._no_event[reason] += 1

    # --- protocol facts -----------------------------------------------------------------

    def _on_initialize(self, fact: Initialize) -> list[AnalyticsEvent]:
        capabilities = fact.params.capabilities
        client = AppServerClient(
            product_client_id=fact.product_client_id,
            client_name=fact.params.client_info.name,
            client_version=fact.params.client_info.version,
            rpc_transport=fact.rpc_transport,
            experimental_api_enabled=(
                capabilities.experimental_api if capabilities is not None else None
            ),
        )
        runtime = fact.runtime if fact.runtime is not None else self._runtime
        self._connections.put(fact.connection_id, _Connection(client, runtime))
        return []

    def _on_request(self, fact: Request) -> list[AnalyticsEvent]:
        request = fact.request
        pending: _Pending
        if isinstance(request, TurnStartRequest):
            pending = _PendingTurnStart(
                fact.connection_id, request.thread_id, _image_count(request.input)
            )
        else:
            pending = _PendingSteer(
                fact.connection_id,
                request.thread_id,
                request.expected_turn_id,
                _image_count(request.input),
                int(self._now.value),
            )
        key = (fact.connection_id, fact.request_id)
        self._pending.pop(key)  # a reused id replaces the request it named
        self._pending.put(key, pending)
        self._hold(fact.connection_id, request.thread_id)
        return []

    def _on_response(self, fact: Response) -> list[AnalyticsEvent]:
        response = fact.response
        if isinstance(response, ThreadStartResponse):
            return self._thread_initialized(fact.connection_id, response, "new")
        if isinstance(response, ThreadResumeResponse):
            return self._thread_initialized(fact.connection_id, response, "resumed")
        if isinstance(response, ThreadForkResponse):
            return self._thread_initialized(fact.connection_id, response, "forked")
        pending = self._pending.pop((fact.connection_id, fact.request_id))
        if isinstance(response, TurnStartResponse):
            if not isinstance(pending, _PendingTurnStart):
                self._lost("no_pending_request")
                return []
            turn_id = response.turn.id
            turn = self._turn(turn_id)
            self._set_turn_connection(turn, fact.connection_id)
            self._set_turn_thread(turn, pending.thread_id)
            turn.num_input_images = pending.num_input_images
            return self._try_emit_turn(turn_id, turn)
        if not isinstance(pending, _PendingSteer):
            self._lost("no_pending_request")
            return []
        steered = self._turns.use(response.turn_id)
        if steered is not None:
            steered.steer_count += 1
        return self._steer_event(fact.connection_id, pending, response, None)

    def _on_error_response(self, fact: ErrorResponse) -> list[AnalyticsEvent]:
        pending = self._pending.pop((fact.connection_id, fact.request_id))
        if pending is None:
            self._lost("no_pending_request")
            return []
        if not isinstance(pending, _PendingSteer):
            return []  # a turn start: discarded
        return self._steer_event(fact.connection_id, pending, None, fact.rejection_reason)

    def _on_notification(self, fact: Notification) -> list[AnalyticsEvent]:
        notification = fact.notification
        turn_id = notification.turn.id
        turn = self._turn(turn_id)
        if isinstance(notification, TurnStartedNotification):
            turn.started_at = _non_negative(notification.turn.started_at)
            return []
        assert isinstance(notification, TurnCompletedNotification)
        completed = notification.turn
        turn.completion = _Completion(
            status=None if completed.status == "in_progress" else _wire(completed.status),
            turn_error=completed.error.codex_error_info if completed.error is not None else None,
            completed_at=_non_negative(completed.completed_at) or 0,
            duration_ms=_non_negative(completed.duration_ms),
        )
        return self._try_emit_turn(turn_id, turn)

    # --- custom facts -------------------------------------------------------------------

    def _on_subagent_thread_started(self, fact: SubAgentThreadStarted) -> list[AnalyticsEvent]:
        client_key = (fact.product_client_id, fact.client_name, fact.client_version)
        client = self._subagent_clients.get(client_key)
        if client is None:
            if len(self._subagent_clients) >= _MAX_SUBAGENT_CLIENTS:
                self._subagent_clients.clear()
            client = AppServerClient(
                product_client_id=fact.product_client_id,
                client_name=fact.client_name,
                client_version=fact.client_version,
                rpc_transport="in_process",
                experimental_api_enabled=None,
            )
            self._subagent_clients[client_key] = client
        parent = fact.parent_thread_id
        if parent is None:
            parent = _subagent_parent(fact.subagent_source)
        return [
            ThreadInitializedEvent(
                thread_id=fact.thread_id,
                app_server_client=client,
                runtime=self._runtime,
                model=fact.model,
                ephemeral=fact.ephemeral,
                thread_source="subagent",
                initialization_mode="new",
                subagent_source=_subagent_source_name(fact.subagent_source),
                parent_thread_id=parent,
                created_at=fact.created_at,
            )
        ]

    def _on_turn_resolved_config(self, fact: TurnResolvedConfig) -> list[AnalyticsEvent]:
        turn = self._turn(fact.turn_id)
        self._set_turn_thread(turn, fact.thread_id)
        turn.num_input_images = fact.num_input_images
        turn.resolved_config = fact
        return self._try_emit_turn(fact.turn_id, turn)

    def _on_turn_token_usage(self, fact: TurnTokenUsage) -> list[AnalyticsEvent]:
        turn = self._turn(fact.turn_id)
        self._set_turn_thread(turn, fact.thread_id)
        turn.token_usage = fact.token_usage
        return self._try_emit_turn(fact.turn_id, turn)

    def _on_compaction(self, fact: Compaction) -> list[AnalyticsEvent]:
        thread = self._threads.get(fact.thread_id)
        if thread is None:
            self._lost("unknown_thread")
            return []
        connection = self._connections.get(thread.connection_id)
        if connection is None:
            self._lost("unknown_connection")
            return []
        self._threads.use(fact.thread_id)
        self._connections.use(thread.connection_id)
        return [
            CompactionEvent(
                thread_id=fact.thread_id,
                turn_id=fact.turn_id,
                app_server_client=connection.client,
                runtime=connection.runtime,
                thread_source=thread.thread_source,
                subagent_source=thread.subagent_source,
                parent_thread_id=thread.parent_thread_id,
                trigger=fact.trigger,
                reason=fact.reason,
                implementation=fact.implementation,
                phase=fact.phase,
                strategy=fact.strategy,
                status=fact.status,
                error=fact.error,
                active_context_tokens_before=fact.active_context_tokens_before,
                active_context_tokens_after=fact.active_context_tokens_after,
                started_at=fact.started_at,
                completed_at=fact.completed_at,
                duration_ms=fact.duration_ms,
            )
        ]

    def _on_skill_invoked(self, fact: SkillInvoked) -> list[AnalyticsEvent]:
        tracking = fact.tracking
        events: list[AnalyticsEvent] = []
        for invocation in fact.invocations:
            repo = self._lookup_repo(invocation.skill_path)
            repo_root = repo.root if repo is not None else None
            repo_url = repo.origin_url if repo is not None else None
            if repo_url is not None:
                repo_url = strip_url_userinfo(repo_url)  # a custom lookup may not have
            events.append(
                SkillInvocationEvent(
                    skill_id=skill_id_for_local_skill(
                        repo_url, repo_root, invocation.skill_path, invocation.skill_name
                    ),
                    skill_name=invocation.skill_name,
                    product_client_id=self._originator,
                    skill_scope=invocation.skill_scope,
                    repo_url=repo_url,
                    thread_id=tracking.thread_id,
                    invoke_type=invocation.invocation_type,
                    model_slug=tracking.model_slug,
                )
            )
        return events

    def _on_app_mentioned(self, fact: AppMentioned) -> list[AnalyticsEvent]:
        return [
            self._app_event(AppMentionedEvent, fact.tracking, mention) for mention in fact.mentions
        ]

    def _on_app_used(self, fact: AppUsed) -> list[AnalyticsEvent]:
        return [self._app_event(AppUsedEvent, fact.tracking, fact.app)]

    def _app_event(
        self,
        event_class: type[AppMentionedEvent | AppUsedEvent],
        tracking: TrackingContext,
        app: AppInvocation,
    ) -> AnalyticsEvent:
        return event_class(
            connector_id=app.connector_id,
            thread_id=tracking.thread_id,
            turn_id=tracking.turn_id,
            app_name=app.app_name,
            product_client_id=self._originator,
            invoke_type=app.invocation_type,
            model_slug=tracking.model_slug,
        )

    def _on_plugin_used(self, fact: PluginUsed) -> list[AnalyticsEvent]:
        tracking = fact.tracking
        return [
            PluginUsedEvent(
                **_plugin_fields(fact.plugin, self._originator),
                thread_id=tracking.thread_id,
                turn_id=tracking.turn_id,
                model_slug=tracking.model_slug,
            )
        ]

    def _on_plugin_state_changed(self, fact: PluginStateChanged) -> list[AnalyticsEvent]:
        event_class = _PLUGIN_STATE_EVENTS[fact.state]
        return [event_class(**_plugin_fields(fact.plugin, self._originator))]

    def _on_hook_run(self, fact: HookRun) -> list[AnalyticsEvent]:
        tracking = fact.tracking
        return [
            HookRunEvent(
                thread_id=tracking.thread_id,
                turn_id=tracking.turn_id,
                model_slug=tracking.model_slug,
                hook_name=fact.hook_name,
                hook_source=fact.hook_source,
                # A hook still running when reported did not finish: upstream says failed.
                status="failed" if fact.status == "running" else fact.status,
            )
        ]

    # --- events -------------------------------------------------------------------------

    def _thread_initialized(
        self,
        connection_id: int,
        response: ThreadStartResponse | ThreadResumeResponse | ThreadForkResponse,
        mode: InitializationMode,
    ) -> list[AnalyticsEvent]:
        connection = self._connections.use(connection_id)
        if connection is None:
            self._lost("unknown_connection")
            return []
        thread = response.thread
        thread_source, subagent_source, parent_thread_id = _thread_lineage(thread.source)
        state = _Thread(connection_id, thread_source, mode, subagent_source, parent_thread_id)
        self._threads.put(thread.id, state)
        return [
            ThreadInitializedEvent(
                thread_id=thread.id,
                app_server_client=connection.client,
                runtime=connection.runtime,
                model=response.model,
                ephemeral=thread.ephemeral,
                thread_source=thread_source,
                initialization_mode=mode,
                subagent_source=subagent_source,
                parent_thread_id=parent_thread_id,
                created_at=max(thread.created_at, 0),
            )
        ]

    def _steer_event(
        self,
        connection_id: int,
        pending: _PendingSteer,
        accepted: TurnSteerResponse | None,
        rejection_reason: str | None,
    ) -> list[AnalyticsEvent]:
        connection = self._connections.get(connection_id)
        thread = self._threads.get(pending.thread_id)
        if connection is None or thread is None:
            self._lost("unknown_connection" if connection is None else "unknown_thread")
            return []
        self._connections.use(connection_id)
        self._threads.use(pending.thread_id)
        return [
            TurnSteerEvent(
                thread_id=pending.thread_id,
                expected_turn_id=pending.expected_turn_id,
                accepted_turn_id=accepted.turn_id if accepted is not None else None,
                app_server_client=connection.client,
                runtime=connection.runtime,
                thread_source=thread.thread_source,
                subagent_source=thread.subagent_source,
                parent_thread_id=thread.parent_thread_id,
                num_input_images=pending.num_input_images,
                result="accepted" if accepted is not None else "rejected",
                rejection_reason=None if accepted is not None else rejection_reason,
                created_at=pending.created_at,
            )
        ]

    def _try_emit_turn(self, turn_id: str, turn: _Turn) -> list[AnalyticsEvent]:
        """Emit the turn event once everything it needs is known (3.3)."""
        config, completion, thread_id = turn.resolved_config, turn.completion, turn.thread_id
        if (
            thread_id is None
            or turn.num_input_images is None
            or config is None
            or completion is None
            or turn.connection_id is None
        ):
            return []
        connection = self._connections.get(turn.connection_id)
        thread = self._threads.get(thread_id)
        if connection is None or thread is None:
            self._lost("unknown_connection" if connection is None else "unknown_thread")
            return []
        self._connections.use(turn.connection_id)
        self._threads.use(thread_id)
        turn.done = True
        self._turns.pop(turn_id)
        self._emitted_turns.put(turn_id, True)
        usage = turn.token_usage
        return [
            TurnEvent(
                thread_id=thread_id,
                turn_id=turn_id,
                submission_type=config.submission_type,
                app_server_client=connection.client,
                runtime=connection.runtime,
                ephemeral=config.ephemeral,
                thread_source=thread.thread_source,
                initialization_mode=thread.initialization_mode,
                subagent_source=thread.subagent_source,
                parent_thread_id=thread.parent_thread_id,
                model=config.model,
                model_provider=config.model_provider,
                sandbox_policy=_sandbox_policy_name(config.sandbox_policy),
                reasoning_effort=(
                    _wire(config.reasoning_effort) if config.reasoning_effort is not None else None
                ),
                reasoning_summary=_none_as_null(config.reasoning_summary),
                service_tier=(
                    _wire(config.service_tier) if config.service_tier is not None else "default"
                ),
                approval_policy=_wire(config.approval_policy),
                approvals_reviewer=_wire(config.approvals_reviewer),
                sandbox_network_access=config.sandbox_network_access,
                collaboration_mode="plan" if config.collaboration_mode == "plan" else "default",
                personality=_none_as_null(config.personality),
                num_input_images=turn.num_input_images,
                is_first_turn=config.is_first_turn,
                status=completion.status,
                turn_error=completion.turn_error,
                steer_count=turn.steer_count,
                total_tool_call_count=None,
                shell_command_count=None,
                file_change_count=None,
                mcp_tool_call_count=None,
                dynamic_tool_call_count=None,
                subagent_tool_call_count=None,
                web_search_count=None,
                image_generation_count=None,
                input_tokens=usage.input_tokens if usage is not None else None,
                cached_input_tokens=usage.cached_input_tokens if usage is not None else None,
                output_tokens=usage.output_tokens if usage is not None else None,
                reasoning_output_tokens=(
                    usage.reasoning_output_tokens if usage is not None else None
                ),
                total_tokens=usage.total_tokens if usage is not None else None,
                duration_ms=completion.duration_ms,
                started_at=turn.started_at,
                completed_at=completion.completed_at,
            )
        ]

    def _lookup_repo(self, skill_path: str) -> RepoInfo | None:
        # An injected lookup that fails means "no repository".
        with handle_internal_errors("repo_lookup", "looking up a skill's repository"):
            return self._repo_lookup(skill_path)
        return None

    # --- state -------------------------------------------------------------------------

    def _turn(self, turn_id: str) -> _Turn:
        """The turn state of ``turn_id``, created if missing; used either way."""
        turn = self._turns.use(turn_id)
        if turn is None:
            turn = _Turn()
            self._turns.put(turn_id, turn)
            if turn_id in self._emitted_turns:
                self._turns.mark_dead_end(turn_id)
                turn.done = True
        if turn.done:
            self._lost("after_emission")
        return turn

    def _set_turn_connection(self, turn: _Turn, connection_id: int) -> None:
        if turn.connection_id is not None:
            self._connections.release(turn.connection_id)
        turn.connection_id = connection_id
        self._connections.hold(connection_id)
        self._connections.use(connection_id)

    def _set_turn_thread(self, turn: _Turn, thread_id: str) -> None:
        if turn.thread_id is not None:
            self._threads.release(turn.thread_id)
        turn.thread_id = thread_id
        self._threads.hold(thread_id)
        self._threads.use(thread_id)

    def _hold(self, connection_id: int, thread_id: str) -> None:
        self._connections.hold(connection_id)
        self._threads.hold(thread_id)
        self._connections.use(connection_id)
        self._threads.use(thread_id)

    def _release_pending(self, pending: _Pending) -> None:
        self._connections.release(pending.connection_id)
        self._threads.release(pending.thread_id)

    def _release_turn(self, turn: _Turn) -> None:
        if not turn.done:  # evicted before its event: the facts it had are lost
            self._lost("turn_evicted")
        if turn.connection_id is not None:
            self._connections.release(turn.connection_id)
        if turn.thread_id is not None:
            self._threads.release(turn.thread_id)
