"""Properties of the reducer over random fact sequences on a small id space.

Ids are drawn from a handful of values so that joins really happen: responses meet their
requests, turns meet their threads and connections, and steers meet their turns.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_telemetry import AnalyticsReducer, ReducerLimits
from codex_telemetry._skills import RepoInfo
from codex_telemetry.facts import (
    AppInvocation,
    AppMentioned,
    AppUsed,
    Capabilities,
    ClientInfo,
    Compaction,
    CustomSource,
    ErrorResponse,
    Fact,
    HookRun,
    ImageInput,
    Initialize,
    InitializeParams,
    JsonRpcError,
    LocalImageInput,
    Notification,
    Other,
    OtherInput,
    PluginCapabilitySummary,
    PluginMetadata,
    PluginStateChanged,
    PluginUsed,
    Request,
    Response,
    RuntimeMetadata,
    SkillInvocation,
    SkillInvoked,
    SubAgent,
    SubAgentSource,
    SubAgentThreadStarted,
    TextInput,
    Thread,
    ThreadForkResponse,
    ThreadResumeResponse,
    ThreadSpawn,
    ThreadStartResponse,
    TokenUsage,
    TrackingContext,
    Turn,
    TurnCompletedNotification,
    TurnError,
    TurnResolvedConfig,
    TurnStartedNotification,
    TurnStartRequest,
    TurnStartResponse,
    TurnSteerRequest,
    TurnSteerResponse,
    TurnTokenUsage,
)

# The exact event_params keys of every event type, in wire order (events.md section 4).
APP_KEYS = [
    "connector_id",
    "thread_id",
    "turn_id",
    "app_name",
    "product_client_id",
    "invoke_type",
    "model_slug",
]
PLUGIN_KEYS = [
    "plugin_id",
    "plugin_name",
    "marketplace_name",
    "has_skills",
    "mcp_server_count",
    "connector_ids",
    "product_client_id",
]
EVENT_PARAMS_KEYS: dict[str, list[str]] = {
    "codex_thread_initialized": [
        "thread_id",
        "app_server_client",
        "runtime",
        "model",
        "ephemeral",
        "thread_source",
        "initialization_mode",
        "subagent_source",
        "parent_thread_id",
        "created_at",
    ],
    "codex_turn_event": [
        "thread_id",
        "turn_id",
        "submission_type",
        "app_server_client",
        "runtime",
        "ephemeral",
        "thread_source",
        "initialization_mode",
        "subagent_source",
        "parent_thread_id",
        "model",
        "model_provider",
        "sandbox_policy",
        "reasoning_effort",
        "reasoning_summary",
        "service_tier",
        "approval_policy",
        "approvals_reviewer",
        "sandbox_network_access",
        "collaboration_mode",
        "personality",
        "num_input_images",
        "is_first_turn",
        "status",
        "turn_error",
        "steer_count",
        "total_tool_call_count",
        "shell_command_count",
        "file_change_count",
        "mcp_tool_call_count",
        "dynamic_tool_call_count",
        "subagent_tool_call_count",
        "web_search_count",
        "image_generation_count",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_output_tokens",
        "total_tokens",
        "duration_ms",
        "started_at",
        "completed_at",
    ],
    "codex_turn_steer_event": [
        "thread_id",
        "expected_turn_id",
        "accepted_turn_id",
        "app_server_client",
        "runtime",
        "thread_source",
        "subagent_source",
        "parent_thread_id",
        "num_input_images",
        "result",
        "rejection_reason",
        "created_at",
    ],
    "skill_invocation": [
        "product_client_id",
        "skill_scope",
        "repo_url",
        "thread_id",
        "invoke_type",
        "model_slug",
    ],
    "codex_app_mentioned": APP_KEYS,
    "codex_app_used": APP_KEYS,
    "codex_plugin_used": [*PLUGIN_KEYS, "thread_id", "turn_id", "model_slug"],
    "codex_plugin_installed": PLUGIN_KEYS,
    "codex_plugin_uninstalled": PLUGIN_KEYS,
    "codex_plugin_enabled": PLUGIN_KEYS,
    "codex_plugin_disabled": PLUGIN_KEYS,
    "codex_hook_run": [
        "thread_id",
        "turn_id",
        "model_slug",
        "hook_name",
        "hook_source",
        "status",
    ],
    "codex_compaction_event": [
        "thread_id",
        "turn_id",
        "app_server_client",
        "runtime",
        "thread_source",
        "subagent_source",
        "parent_thread_id",
        "trigger",
        "reason",
        "implementation",
        "phase",
        "strategy",
        "status",
        "error",
        "active_context_tokens_before",
        "active_context_tokens_after",
        "started_at",
        "completed_at",
        "duration_ms",
    ],
}
CLIENT_KEYS = [
    "product_client_id",
    "client_name",
    "client_version",
    "rpc_transport",
    "experimental_api_enabled",
]
RUNTIME_KEYS = ["codex_rs_version", "runtime_os", "runtime_os_version", "runtime_arch"]

LIMITS = ReducerLimits(
    max_connections=2, max_threads=3, max_pending_requests=3, max_turns=3, idle_seconds=40.0
)

# --- strategies ------------------------------------------------------------------------------

connection_ids = st.sampled_from([1, 2, 3])
request_ids: st.SearchStrategy[int | str] = st.sampled_from([1, 2, "r"])
thread_ids = st.sampled_from(["t1", "t2", "t3"])
turn_ids = st.sampled_from(["u1", "u2", "u3"])
timestamps = st.integers(min_value=-5, max_value=2_000_000_000)
maybe_timestamps = st.none() | timestamps
small_ints = st.integers(min_value=0, max_value=10)
names = st.sampled_from(["a", "b"])

runtimes = st.none() | st.builds(
    RuntimeMetadata, st.just("0.1.0"), st.just("macos"), st.just("15.3.1"), st.just("aarch64")
)
subagent_sources: st.SearchStrategy[SubAgentSource] = st.one_of(
    st.sampled_from(["review", "compact", "memory_consolidation"]),
    st.builds(ThreadSpawn, thread_ids, small_ints),
    st.builds(Other, names),
)
session_sources = (
    st.sampled_from(["cli", "vscode", "exec", "app_server", "unknown"])
    | st.builds(CustomSource, names)
    | st.builds(SubAgent, subagent_sources)
)
user_inputs = st.lists(
    st.one_of(
        st.builds(TextInput, names),
        st.builds(ImageInput, names),
        st.builds(LocalImageInput, names),
        st.builds(OtherInput, names),
    ),
    max_size=3,
).map(tuple)
turns = st.builds(
    Turn,
    turn_ids,
    st.sampled_from(["completed", "failed", "interrupted", "in_progress"]),
    st.none() | st.builds(TurnError, names, st.none() | st.just("badRequest")),
    maybe_timestamps,
    maybe_timestamps,
    st.none() | st.integers(min_value=-5, max_value=10_000),
)
threads = st.builds(Thread, thread_ids, st.booleans(), timestamps, session_sources)
tracking = st.builds(TrackingContext, names, thread_ids, turn_ids)
plugins = st.builds(
    PluginMetadata,
    names,
    names,
    st.none()
    | st.builds(
        PluginCapabilitySummary,
        st.booleans(),
        st.lists(names, max_size=2).map(tuple),
        st.lists(names, max_size=2).map(tuple),
    ),
)
apps = st.builds(
    AppInvocation,
    st.none() | names,
    st.none() | names,
    st.none() | st.sampled_from(["explicit", "implicit"]),
)


def _enum(*values: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


resolved_configs = st.builds(
    TurnResolvedConfig,
    turn_id=turn_ids,
    thread_id=thread_ids,
    num_input_images=small_ints,
    submission_type=st.none() | _enum("default", "queued"),
    ephemeral=st.booleans(),
    session_source=session_sources,
    model=names,
    model_provider=names,
    sandbox_policy=_enum("danger_full_access", "read_only", "workspace_write", "external_sandbox"),
    reasoning_effort=st.none() | _enum("none", "minimal", "low", "medium", "high", "xhigh"),
    reasoning_summary=st.none() | _enum("auto", "concise", "detailed", "none"),
    service_tier=st.none() | _enum("fast", "flex"),
    approval_policy=_enum("untrusted", "on-failure", "on-request", "never"),
    approvals_reviewer=_enum("user", "guardian_subagent"),
    sandbox_network_access=st.booleans(),
    collaboration_mode=_enum("default", "plan", "pair_programming", "execute"),
    personality=st.none() | _enum("friendly", "pragmatic", "none"),
    is_first_turn=st.booleans(),
)

facts: st.SearchStrategy[Fact] = st.one_of(
    st.builds(
        Initialize,
        connection_ids,
        st.builds(
            InitializeParams,
            st.builds(ClientInfo, names, names),
            st.none() | st.builds(Capabilities, st.booleans()),
        ),
        names,
        _enum("stdio", "websocket", "in_process"),
        runtimes,
    ),
    st.builds(
        Request,
        connection_ids,
        request_ids,
        st.builds(TurnStartRequest, thread_ids, user_inputs)
        | st.builds(TurnSteerRequest, thread_ids, turn_ids, user_inputs),
    ),
    st.builds(
        Response,
        connection_ids,
        request_ids,
        st.one_of(
            st.builds(ThreadStartResponse, threads, names),
            st.builds(ThreadResumeResponse, threads, names),
            st.builds(ThreadForkResponse, threads, names),
            st.builds(TurnStartResponse, turns),
            st.builds(TurnSteerResponse, turn_ids),
        ),
    ),
    st.builds(
        ErrorResponse,
        connection_ids,
        request_ids,
        st.builds(JsonRpcError, st.integers(-32700, -32000), names),
        st.none()
        | _enum(
            "no_active_turn",
            "expected_turn_mismatch",
            "non_steerable_review",
            "non_steerable_compact",
            "empty_input",
            "input_too_large",
        ),
    ),
    st.builds(
        Notification,
        st.builds(TurnStartedNotification, thread_ids, turns)
        | st.builds(TurnCompletedNotification, thread_ids, turns),
    ),
    st.builds(
        SubAgentThreadStarted,
        thread_ids,
        st.none() | thread_ids,
        names,
        st.none() | names,
        st.none() | names,
        names,
        st.booleans(),
        subagent_sources,
        timestamps,
    ),
    resolved_configs,
    st.builds(
        TurnTokenUsage,
        turn_ids,
        thread_ids,
        st.builds(TokenUsage, small_ints, small_ints, small_ints, small_ints, small_ints),
    ),
    st.builds(
        SkillInvoked,
        tracking,
        st.lists(
            st.builds(
                SkillInvocation,
                names,
                _enum("user", "repo", "system", "admin"),
                st.sampled_from(["/repo/a/SKILL.md", "/home/u/.codex/skills/b/SKILL.md"]),
                _enum("explicit", "implicit"),
            ),
            max_size=2,
        ).map(tuple),
    ),
    st.builds(AppMentioned, tracking, st.lists(apps, max_size=2).map(tuple)),
    st.builds(AppUsed, tracking, apps),
    st.builds(PluginUsed, tracking, plugins),
    st.builds(
        PluginStateChanged, plugins, _enum("installed", "uninstalled", "enabled", "disabled")
    ),
    st.builds(
        Compaction,
        thread_ids,
        turn_ids,
        _enum("manual", "auto"),
        _enum("user_requested", "context_limit", "model_downshift"),
        _enum("responses", "responses_compact"),
        _enum("standalone_turn", "pre_turn", "mid_turn"),
        _enum("memento", "prefix_compaction"),
        _enum("completed", "failed", "interrupted"),
        st.none() | names,
        small_ints,
        small_ints,
        timestamps,
        timestamps,
        st.none() | small_ints,
    ),
    st.builds(
        HookRun,
        tracking,
        _enum(
            "PreToolUse",
            "PermissionRequest",
            "PostToolUse",
            "SessionStart",
            "UserPromptSubmit",
            "Stop",
        ),
        _enum("system", "user", "project", "unknown"),
        _enum("running", "completed", "blocked", "failed", "stopped"),
    ),
)


def session(draw: st.DrawFn, connection_id: int, thread_id: str) -> list[Fact]:
    """A connection initialized, then a thread started (or resumed, forked) on it."""
    initialize = draw(
        st.builds(
            Initialize,
            st.just(connection_id),
            st.builds(InitializeParams, st.builds(ClientInfo, names, names)),
            names,
            _enum("stdio", "websocket"),
            runtimes,
        )
    )
    kinds: list[type[ThreadStartResponse | ThreadResumeResponse | ThreadForkResponse]] = [
        ThreadStartResponse,
        ThreadResumeResponse,
        ThreadForkResponse,
    ]
    thread = dataclasses.replace(draw(threads), id=thread_id)
    kind = draw(st.sampled_from(kinds))
    return [initialize, Response(connection_id, draw(request_ids), kind(thread, draw(names)))]


@st.composite
def session_fragment(draw: st.DrawFn) -> list[Fact]:
    return session(draw, draw(connection_ids), draw(thread_ids))


@st.composite
def turn_fragment(draw: st.DrawFn) -> list[Fact]:
    """The facts of one turn with matching ids, in order or shuffled, some maybe missing."""
    connection_id, request_id = draw(connection_ids), draw(request_ids)
    thread_id, turn_id = draw(thread_ids), draw(turn_ids)
    config = draw(resolved_configs)
    usage = draw(st.builds(TokenUsage, small_ints, small_ints, small_ints, small_ints, small_ints))
    turn = draw(turns)
    chain: list[Fact] = [
        Request(connection_id, request_id, TurnStartRequest(thread_id, draw(user_inputs))),
        Response(connection_id, request_id, TurnStartResponse(Turn(turn_id, "in_progress"))),
        dataclasses.replace(config, turn_id=turn_id, thread_id=thread_id),
        Notification(TurnStartedNotification(thread_id, Turn(turn_id, "in_progress", None, 5))),
        TurnTokenUsage(turn_id, thread_id, usage),
        Notification(
            TurnCompletedNotification(
                thread_id,
                Turn(turn_id, turn.status, turn.error, None, turn.completed_at, turn.duration_ms),
            )
        ),
    ]
    kept = draw(st.lists(st.booleans(), min_size=len(chain), max_size=len(chain)))
    # Mostly complete, ordered turns on a known thread, so that turn events happen.
    if draw(st.integers(0, 3)) == 0:
        chain = [fact for fact, keep in zip(chain, kept, strict=True) if keep]
    if draw(st.integers(0, 3)) == 0:
        chain = list(draw(st.permutations(chain)))
    if draw(st.integers(0, 3)) != 0:
        chain = session(draw, connection_id, thread_id) + chain
    return chain


@st.composite
def steer_fragment(draw: st.DrawFn) -> list[Fact]:
    """A steer request and its answer, accepted or rejected."""
    connection_id, request_id, thread_id = draw(connection_ids), draw(request_ids), draw(thread_ids)
    request = TurnSteerRequest(thread_id, draw(turn_ids), draw(user_inputs))
    answer: Fact
    if draw(st.booleans()):
        answer = Response(connection_id, request_id, TurnSteerResponse(draw(turn_ids)))
    else:
        error = JsonRpcError(-32600, "refused")
        answer = ErrorResponse(
            connection_id, request_id, error, draw(st.none() | _enum("empty_input"))
        )
    prefix = session(draw, connection_id, thread_id) if draw(st.booleans()) else []
    return [*prefix, Request(connection_id, request_id, request), answer]


fragments = st.one_of(
    facts.map(lambda fact: [fact]),
    session_fragment(),
    turn_fragment(),
    steer_fragment(),
)
# Each fragment comes with how far the clock moves before it.
steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=15.0, allow_nan=False), fragments),
    min_size=1,
    max_size=30,
).map(
    lambda pairs: [
        (delta if index == 0 else 0.0, fact)
        for delta, fragment in pairs
        for index, fact in enumerate(fragment)
    ]
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def lookup(skill_path: str) -> RepoInfo | None:
    if skill_path.startswith("/repo/"):
        return RepoInfo("/repo", "https://user:token@example.com/repo.git")
    return None


def make_reducer(clock: Clock) -> AnalyticsReducer:
    return AnalyticsReducer(
        runtime=RuntimeMetadata("9.9.9", "linux", "12.0.0", "x86_64"),
        clock=clock,
        repo_lookup=lookup,
        limits=LIMITS,
    )


def check_event(wire: dict[str, Any]) -> None:
    event_type = wire["event_type"]
    params = wire["event_params"]
    assert list(params) == EVENT_PARAMS_KEYS[event_type], event_type
    if event_type == "skill_invocation":
        assert list(wire) == ["event_type", "skill_id", "skill_name", "event_params"]
        assert len(wire["skill_id"]) == 40
        assert params["repo_url"] in (None, "https://example.com/repo.git")
    else:
        assert list(wire) == ["event_type", "event_params"]
    if "app_server_client" in params:
        assert list(params["app_server_client"]) == CLIENT_KEYS
        assert list(params["runtime"]) == RUNTIME_KEYS
    for key in ("created_at", "completed_at"):
        if key in params and event_type != "codex_compaction_event":
            assert isinstance(params[key], int)
            if event_type != "codex_thread_initialized" or params["thread_source"] != "subagent":
                assert params[key] >= 0
    if event_type == "codex_turn_event":
        for key in ("started_at", "duration_ms"):
            assert params[key] is None or params[key] >= 0
        assert params["status"] in ("completed", "failed", "interrupted", None)
        assert params["sandbox_policy"] != "danger_full_access"
        assert params["reasoning_summary"] != "none"
        assert params["personality"] != "none"
        assert params["service_tier"] in ("default", "fast", "flex")
        assert params["collaboration_mode"] in ("default", "plan")


def check_internal_references(reducer: AnalyticsReducer) -> None:
    """The reference counts that protect needed state match the state itself."""
    connections: Counter[int] = Counter()
    threads: Counter[str] = Counter()
    for pending in reducer._pending.values():
        connections[pending.connection_id] += 1
        threads[pending.thread_id] += 1
    for turn in reducer._turns.values():
        if turn.connection_id is not None:
            connections[turn.connection_id] += 1
        if turn.thread_id is not None:
            threads[turn.thread_id] += 1
    assert reducer._connections.held() == dict(connections)
    assert reducer._threads.held() == dict(threads)
    assert set(reducer._turns.dead_ends()) <= set(reducer._turns)
    assert len(reducer._emitted_turns) <= LIMITS.max_turns


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_fact_sequences(sequence: list[tuple[float, Fact]]) -> None:
    clock = Clock()
    reducer = make_reducer(clock)
    limits = {
        "connections": LIMITS.max_connections,
        "threads": LIMITS.max_threads,
        "pending_requests": LIMITS.max_pending_requests,
        "turns": LIMITS.max_turns,
    }
    previous_evictions = dict(reducer.evictions)
    for delta, fact in sequence:
        clock.now += delta
        for event in reducer.ingest(fact):
            check_event(event.to_dict())
        sizes = reducer.state_sizes()
        assert set(sizes) == set(limits)
        for kind, size in sizes.items():
            assert size <= limits[kind], (kind, size)
        evictions = dict(reducer.evictions)
        assert set(evictions) == set(limits)
        assert all(evictions[kind] >= previous_evictions[kind] for kind in limits)
        previous_evictions = evictions
        check_internal_references(reducer)


@settings(max_examples=50, deadline=None)
@given(st.lists(facts, max_size=40))
def test_ingesting_never_changes_facts_and_reducers_agree(sequence: list[Fact]) -> None:
    # The reducer is deterministic given the clock: two instances see the same events.
    first, second = make_reducer(Clock()), make_reducer(Clock())
    for fact in sequence:
        before = repr(fact)
        assert [e.to_dict() for e in first.ingest(fact)] == [
            e.to_dict() for e in second.ingest(fact)
        ]
        assert repr(fact) == before
