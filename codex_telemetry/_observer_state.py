"""What the observer knows of a thread's configuration and of the turns it follows.

A thread's configuration comes from its ``thread/start``, ``thread/resume`` or
``thread/fork`` result, then every ``turn/start`` override (they apply to the turn and the
turns after it); a turn's resolved configuration is that state when its ``turn/start``
is answered. Values are named with the analytics' vocabulary; one this release does not
know follows :class:`~codex_telemetry._observer_values.UnknownValues`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from codex_telemetry._bounded import BoundedTable
from codex_telemetry._observer_rpc import PendingTurnStart
from codex_telemetry._observer_values import (
    ZERO_USAGE,
    JsonObject,
    MalformedMessageError,
    UnknownValues,
    read_usage,
    usage_minus,
)
from codex_telemetry.facts import (
    ApprovalPolicy,
    ApprovalsReviewer,
    CollaborationMode,
    Personality,
    ReasoningEffort,
    ReasoningSummary,
    SandboxPolicy,
    ServiceTier,
    SessionSource,
    TokenUsage,
    TurnResolvedConfig,
    UnknownValue,
)

__all__ = [
    "FollowedThreads",
    "ThreadState",
    "TurnState",
    "apply_thread_config",
    "apply_turn_overrides",
    "missing_config_values",
    "resolved_config",
    "turn_overrides",
]

# The protocol spells sandbox policies as tagged objects (camelCase) and sandbox modes as
# kebab-case strings; both name the same four policies.
_SANDBOX_POLICIES: Mapping[str, SandboxPolicy] = {
    "dangerFullAccess": "danger_full_access",
    "danger-full-access": "danger_full_access",
    "readOnly": "read_only",
    "read-only": "read_only",
    "workspaceWrite": "workspace_write",
    "workspace-write": "workspace_write",
    "externalSandbox": "external_sandbox",
}

_APPROVAL_POLICIES: Mapping[str, ApprovalPolicy] = {
    "untrusted": "untrusted",
    "unless-trusted": "untrusted",
    "on-failure": "on-failure",
    "on-request": "on-request",
    "never": "never",
}

# ``auto_review`` is the newer protocol name of the guardian sub-agent reviewer.
_APPROVALS_REVIEWERS: Mapping[str, ApprovalsReviewer] = {
    "user": "user",
    "guardian_subagent": "guardian_subagent",
    "guardianSubagent": "guardian_subagent",
    "auto_review": "guardian_subagent",
    "autoReview": "guardian_subagent",
}

_REASONING_EFFORTS: Mapping[str, ReasoningEffort] = {
    value: value for value in ("none", "minimal", "low", "medium", "high", "xhigh")
}

_REASONING_SUMMARIES: Mapping[str, ReasoningSummary] = {
    value: value for value in ("auto", "concise", "detailed", "none")
}

# ``priority`` is how the Responses API names the tier Codex calls ``fast``; ``default``
# is the standard tier, which the analytics report as no tier.
_SERVICE_TIERS: Mapping[str, ServiceTier | None] = {
    "fast": "fast",
    "priority": "fast",
    "flex": "flex",
    "default": None,
}

_PERSONALITIES: Mapping[str, Personality] = {
    value: value for value in ("friendly", "pragmatic", "none")
}

_COLLABORATION_MODES: Mapping[str, CollaborationMode] = {
    "default": "default",
    "plan": "plan",
    "pair_programming": "pair_programming",
    "pairProgramming": "pair_programming",
    "execute": "execute",
}


class ThreadState:
    """What the client knows of a thread's configuration: the last thread response, then
    every ``turn/start`` override (they apply to the turn and the turns after it)."""

    __slots__ = (
        "approval_policy",
        "approvals_reviewer",
        "collaboration_mode",
        "ephemeral",
        "has_turns",
        "model",
        "model_provider",
        "network_access",
        "personality",
        "reasoning_effort",
        "reasoning_summary",
        "sandbox_policy",
        "service_tier",
        "source",
        "token_total",
    )

    def __init__(self, ephemeral: bool, source: SessionSource, model: str) -> None:
        self.ephemeral = ephemeral
        self.source: SessionSource = source
        self.model = model
        self.model_provider: str | None = None
        self.sandbox_policy: SandboxPolicy | UnknownValue | None = None
        self.network_access = False
        self.reasoning_effort: ReasoningEffort | UnknownValue | None = None
        self.reasoning_summary: ReasoningSummary | UnknownValue | None = None
        self.service_tier: ServiceTier | UnknownValue | None = None
        self.approval_policy: ApprovalPolicy | UnknownValue | None = None
        self.approvals_reviewer: ApprovalsReviewer | UnknownValue | None = None
        self.collaboration_mode: CollaborationMode | UnknownValue = "default"
        self.personality: Personality | UnknownValue | None = None
        self.has_turns = False
        # The thread's running token total as last reported; None until one is seen.
        self.token_total: TokenUsage | None = None


class TurnState:
    """A turn this connection started, followed until ``turn/completed``."""

    __slots__ = ("baseline", "thread_id", "usage")

    def __init__(self, thread_id: str, baseline: TokenUsage | None) -> None:
        self.thread_id = thread_id
        # The thread's running total when the turn started; None when it was not seen.
        self.baseline = baseline
        self.usage: TokenUsage | None = None

    def record_total(self, total: TokenUsage, last: Any) -> None:
        """The thread's running total grew to ``total`` (``last``: its latest request's)."""
        if self.baseline is None:
            # The thread's total before this turn was not seen (a resumed thread whose
            # usage was not restored): the total before the turn's latest request is the
            # best the wire offers.
            self.baseline = usage_minus(total, read_usage(last))
        self.usage = usage_minus(total, self.baseline)

    def final_usage(self, status: object) -> TokenUsage | None:
        """The turn's usage as the app-server's own analytics report it at completion.

        An interrupted turn reports none; any other (one that failed before the model
        answered included) reports what it used, zero when no usage update came.
        """
        if status == "interrupted":
            return None
        return self.usage if self.usage is not None else ZERO_USAGE


def _sandbox(raw: Any, unknown: UnknownValues) -> tuple[SandboxPolicy | UnknownValue, bool] | None:
    """A sandbox policy object (or mode string) as (policy, network access)."""
    if isinstance(raw, str):
        policy = unknown.enum("sandbox_policy", _SANDBOX_POLICIES, raw)
        return policy, policy == "danger_full_access"
    if not isinstance(raw, Mapping):
        return None
    policy = unknown.enum("sandbox_policy", _SANDBOX_POLICIES, raw.get("type", raw))
    if policy is None:
        return None
    network = raw.get("networkAccess")
    if policy == "danger_full_access":
        network_access = True
    elif policy == "external_sandbox":
        network_access = network == "enabled"
    elif isinstance(policy, UnknownValue):
        network_access = network is True or network == "enabled"
    else:
        network_access = network is True
    return policy, network_access


def _approval_policy(raw: Any, unknown: UnknownValues) -> ApprovalPolicy | UnknownValue | None:
    # A granular policy asks for approval on some request kinds: on-request is its closest
    # name among the four the analytics know.
    if isinstance(raw, Mapping) and "granular" in raw:
        return "on-request"
    result: ApprovalPolicy | UnknownValue | None = unknown.enum(
        "approval_policy", _APPROVAL_POLICIES, raw
    )
    return result


def _collaboration_mode(raw: Any, unknown: UnknownValues) -> CollaborationMode | UnknownValue:
    mode: CollaborationMode | UnknownValue | None = unknown.enum(
        "collaboration_mode", _COLLABORATION_MODES, raw
    )
    return mode if mode is not None else "default"


def apply_thread_config(state: ThreadState, result: JsonObject, unknown: UnknownValues) -> None:
    """Set a thread's configuration from a thread/start, resume or fork result."""
    sandbox = _sandbox(result.get("sandbox"), unknown)
    if sandbox is not None:
        state.sandbox_policy, state.network_access = sandbox
    state.approval_policy = _approval_policy(result.get("approvalPolicy"), unknown)
    enum = unknown.enum
    state.approvals_reviewer = enum(
        "approvals_reviewer", _APPROVALS_REVIEWERS, result.get("approvalsReviewer")
    )
    state.reasoning_effort = enum(
        "reasoning_effort", _REASONING_EFFORTS, result.get("reasoningEffort")
    )
    state.reasoning_summary = enum(
        "reasoning_summary", _REASONING_SUMMARIES, result.get("reasoningSummary")
    )
    state.service_tier = enum("service_tier", _SERVICE_TIERS, result.get("serviceTier"))
    state.personality = enum("personality", _PERSONALITIES, result.get("personality"))
    mode = result.get("collaborationMode")
    if isinstance(mode, Mapping):
        state.collaboration_mode = _collaboration_mode(mode.get("mode"), unknown)


# The ``turn/start`` parameters read when its response arrives.
_TURN_OVERRIDES = (
    "model",
    "effort",
    "summary",
    "sandboxPolicy",
    "approvalPolicy",
    "approvalsReviewer",
    "serviceTier",
    "serviceTierForTurn",
    "personality",
    "collaborationMode",
)


def turn_overrides(params: JsonObject) -> JsonObject:
    """A copy of the overrides of ``turn/start`` parameters, without the input.

    Copied because the request waits for its response: the client may reuse its objects
    meanwhile, and the input (images as data URLs) can be large.
    """
    return {key: copy.deepcopy(params[key]) for key in _TURN_OVERRIDES if key in params}


def apply_turn_overrides(state: ThreadState, params: JsonObject, unknown: UnknownValues) -> None:
    """Apply a ``turn/start``'s overrides: they hold for this turn and the next ones.

    An absent or null parameter keeps the thread's value.
    """
    get = params.get
    enum = unknown.enum
    if (model := get("model")) is not None and isinstance(model, str):
        state.model = model
    if (effort := get("effort")) is not None:
        state.reasoning_effort = enum("reasoning_effort", _REASONING_EFFORTS, effort)
    if (summary := get("summary")) is not None:
        state.reasoning_summary = enum("reasoning_summary", _REASONING_SUMMARIES, summary)
    if (raw_sandbox := get("sandboxPolicy")) is not None:
        sandbox = _sandbox(raw_sandbox, unknown)
        state.sandbox_policy, state.network_access = sandbox or (None, False)
    if (approval := get("approvalPolicy")) is not None:
        state.approval_policy = _approval_policy(approval, unknown)
    if (reviewer := get("approvalsReviewer")) is not None:
        state.approvals_reviewer = enum("approvals_reviewer", _APPROVALS_REVIEWERS, reviewer)
    if (tier := get("serviceTier")) is not None:
        state.service_tier = enum("service_tier", _SERVICE_TIERS, tier)
    if (personality := get("personality")) is not None:
        state.personality = enum("personality", _PERSONALITIES, personality)
    mode = get("collaborationMode")
    if isinstance(mode, Mapping):
        state.collaboration_mode = _collaboration_mode(mode.get("mode"), unknown)
        settings = mode.get("settings")
        # A collaboration mode's own model and effort take precedence over the turn's.
        if isinstance(settings, Mapping):
            if isinstance(settings.get("model"), str):
                state.model = settings["model"]
            if (effort := settings.get("reasoning_effort")) is not None:
                state.reasoning_effort = enum("reasoning_effort", _REASONING_EFFORTS, effort)


def missing_config_values(state: ThreadState) -> list[str]:
    """The protocol names of the values a resolved configuration needs and ``state`` lacks."""
    return [
        name
        for name, value in (
            ("modelProvider", state.model_provider),
            ("sandbox", state.sandbox_policy),
            ("approvalPolicy", state.approval_policy),
            ("approvalsReviewer", state.approvals_reviewer),
        )
        if value is None
    ]


def resolved_config(
    turn_id: str,
    thread_id: str,
    num_input_images: int,
    overrides: JsonObject,
    state: ThreadState,
    *,
    is_first_turn: bool,
    unknown: UnknownValues,
) -> TurnResolvedConfig:
    """The configuration a turn runs with; ``state`` lacks none of its values."""
    assert state.model_provider is not None
    assert state.sandbox_policy is not None
    assert state.approval_policy is not None
    assert state.approvals_reviewer is not None
    # ``serviceTierForTurn`` applies to this turn only; "default" is the standard tier.
    service_tier = state.service_tier
    raw_tier = overrides.get("serviceTierForTurn")
    if raw_tier is not None:
        service_tier = unknown.enum("service_tier", _SERVICE_TIERS, raw_tier)
    return TurnResolvedConfig(
        turn_id=turn_id,
        thread_id=thread_id,
        num_input_images=num_input_images,
        submission_type=None,
        ephemeral=state.ephemeral,
        session_source=state.source,
        model=state.model,
        model_provider=state.model_provider,
        sandbox_policy=state.sandbox_policy,
        reasoning_effort=state.reasoning_effort,
        reasoning_summary=state.reasoning_summary,
        service_tier=service_tier,
        approval_policy=state.approval_policy,
        approvals_reviewer=state.approvals_reviewer,
        sandbox_network_access=state.network_access,
        collaboration_mode=state.collaboration_mode,
        personality=state.personality,
        is_first_turn=is_first_turn,
    )


class FollowedThreads:
    """The threads one connection saw answered, and the turns it follows on them.

    Both tables are bounded; a followed turn holds its thread, whose configuration its
    resolved configuration and its token usage still need.
    """

    __slots__ = ("_threads", "_turns")

    def __init__(self, max_threads: int, max_turns: int) -> None:
        self._threads: BoundedTable[str, ThreadState] = BoundedTable(max_threads)
        self._turns: BoundedTable[str, TurnState] = BoundedTable(
            max_turns, on_remove=lambda turn: self._threads.release(turn.thread_id)
        )

    @property
    def evictions(self) -> int:
        """Threads and turns evicted to keep the tables bounded."""
        return self._threads.evictions + self._turns.evictions

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._threads

    def follows(self, turn_id: object) -> bool:
        """Whether ``turn_id`` is a turn followed here."""
        return turn_id in self._turns

    def add(self, thread_id: str, state: ThreadState) -> None:
        """A thread response: a full table forgets the thread least recently answered."""
        self._threads.put(thread_id, state)

    def start_turn(
        self, pending: PendingTurnStart, turn_id: str, unknown: UnknownValues
    ) -> TurnResolvedConfig | list[str] | None:
        """Follow a turn whose ``turn/start`` was answered; its resolved configuration.

        The thread's configuration with the request's overrides applied, which hold for
        the turns after it too. Instead of a configuration: the names of the values it
        lacks, or None when the thread was forgotten while the request was in flight.
        """
        state = self._threads.get(pending.thread_id)
        if state is None:
            return None
        is_first_turn = not state.has_turns
        state.has_turns = True
        apply_turn_overrides(state, pending.overrides, unknown)
        self._turns.put(turn_id, TurnState(pending.thread_id, state.token_total))
        self._threads.hold(pending.thread_id)
        missing = missing_config_values(state)
        if missing:
            return missing
        return resolved_config(
            turn_id,
            pending.thread_id,
            pending.num_input_images,
            pending.overrides,
            state,
            is_first_turn=is_first_turn,
            unknown=unknown,
        )

    def record_usage(self, params: JsonObject) -> None:
        """A ``thread/tokenUsage/updated`` notification."""
        thread_id = params.get("threadId")
        state = self._threads.get(thread_id)  # type: ignore[arg-type]
        if state is None:
            return
        raw = params.get("tokenUsage")
        if not isinstance(raw, Mapping):
            raise MalformedMessageError("thread/tokenUsage/updated without tokenUsage")
        total = read_usage(raw.get("total"))
        turn = self._turns.get(params.get("turnId"))  # type: ignore[arg-type]
        if turn is not None and turn.thread_id == thread_id:
            turn.record_total(total, raw.get("last"))
        state.token_total = total

    def complete_turn(self, turn_id: Any) -> TurnState | None:
        """Stop following ``turn_id``; its state, or None if it was not followed."""
        return self._turns.pop(turn_id)
