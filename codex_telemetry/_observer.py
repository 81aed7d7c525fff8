"""Facts derived from the JSON-RPC traffic of one Codex app-server connection.

A program that drives ``codex app-server`` itself (over stdio) sees every message the
analytics need: the ``initialize`` handshake, thread and turn requests with their
responses, and the turn notifications. :class:`AppServerObserver` watches that traffic
from the client's side and turns it into the facts of ``codex_telemetry.facts``, which it
hands to ``track`` (``codex_telemetry.track_fact`` unless told otherwise).

Some values the app-server's own analytics know are not visible on the wire (the
``submission_type`` of a turn, a personality or reasoning summary set in the server's
``config.toml``): the observer reports what the client can see and documents the rest in
:class:`AppServerObserver`.

The observer sits on the client's I/O path, so it is built to be cheap and harmless:
messages it does not need are dropped after one dictionary lookup, only requests whose
answer it needs are remembered (in bounded tables), and nothing it does ever raises into
the client. A message it cannot read is counted and logged once.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import re
import reprlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from codex_telemetry._bounded import BoundedTable
from codex_telemetry._client import track_fact
from codex_telemetry._runtime import current_runtime, os_info_version, rust_arch_name, rust_os_name
from codex_telemetry._stats import Counter
from codex_telemetry.facts import (
    ApprovalPolicy,
    ApprovalsReviewer,
    Capabilities,
    ClientInfo,
    CollaborationMode,
    CustomSource,
    ErrorResponse,
    Fact,
    ImageInput,
    Initialize,
    InitializeParams,
    JsonRpcError,
    LocalImageInput,
    Notification,
    Other,
    OtherInput,
    Personality,
    ReasoningEffort,
    ReasoningSummary,
    RejectionReason,
    Request,
    RequestId,
    Response,
    RpcTransport,
    RuntimeMetadata,
    SandboxPolicy,
    ServiceTier,
    SessionSource,
    SubAgent,
    SubAgentSource,
    TextInput,
    Thread,
    ThreadForkResponse,
    ThreadResumeResponse,
    ThreadSpawn,
    ThreadStartResponse,
    TokenUsage,
    Turn,
    TurnCompletedNotification,
    TurnError,
    TurnResolvedConfig,
    TurnStartedNotification,
    TurnStartRequest,
    TurnStartResponse,
    TurnStatus,
    TurnSteerRequest,
    TurnSteerResponse,
    TurnTokenUsage,
    UnknownValue,
    UserInput,
)

__all__ = ["AppServerObserver", "Direction", "ObserverStats"]

_logger = logging.getLogger(__name__)

Direction: TypeAlias = Literal["sent", "received"]
"""``"sent"``: client → app-server. ``"received"``: app-server → client."""

_JsonObject: TypeAlias = Mapping[str, Any]

# Process-wide, so that two observers feeding one SDK client never share a connection id.
_connection_ids = itertools.count(1)

_DEFAULT_MAX_PENDING = 1024
_DEFAULT_MAX_THREADS = 1024
_DEFAULT_MAX_TURNS = 1024

# Requests whose answer becomes a fact; every other request is not remembered at all.
_INITIALIZE = "initialize"
_THREAD_START = "thread/start"
_THREAD_RESUME = "thread/resume"
_THREAD_FORK = "thread/fork"
_TURN_START = "turn/start"
_TURN_STEER = "turn/steer"
_THREAD_METHODS = frozenset({_THREAD_START, _THREAD_RESUME, _THREAD_FORK})
_REQUESTS = frozenset({_INITIALIZE, _TURN_START, _TURN_STEER, *_THREAD_METHODS})
_TOKEN_USAGE_UPDATED = "thread/tokenUsage/updated"
_TURN_STARTED = "turn/started"
_TURN_COMPLETED = "turn/completed"
_NOTIFICATIONS = frozenset({_TOKEN_USAGE_UPDATED, _TURN_STARTED, _TURN_COMPLETED})

# Indexes of the counters in ``AppServerObserver._counts``, after ``messages``.
_FACTS, _MALFORMED, _UNRECOGNIZED, _TRACK_ERRORS = range(4)

_TURN_STATUSES: Mapping[str, TurnStatus] = {
    "completed": "completed",
    "failed": "failed",
    "interrupted": "interrupted",
    "inProgress": "in_progress",
    "in_progress": "in_progress",
}
_SESSION_SOURCES: Mapping[str, SessionSource] = {
    "cli": "cli",
    "vscode": "vscode",
    "exec": "exec",
    "appServer": "app_server",
    "app_server": "app_server",
    "unknown": "unknown",
}
_SUBAGENT_SOURCES: Mapping[str, SubAgentSource] = {
    "review": "review",
    "compact": "compact",
    "memory_consolidation": "memory_consolidation",
    "memoryConsolidation": "memory_consolidation",
}
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

# The ``CodexErrorInfo`` variants this release knows (camelCase, as on the wire). Any
# other is passed through all the same, and counted as unknown.
_CODEX_ERROR_INFOS = frozenset(
    {
        "contextWindowExceeded",
        "sessionBudgetExceeded",
        "usageLimitExceeded",
        "serverOverloaded",
        "cyberPolicy",
        "httpConnectionFailed",
        "responseStreamConnectionFailed",
        "internalServerError",
        "unauthorized",
        "badRequest",
        "sandboxError",
        "responseStreamDisconnected",
        "responseTooManyFailedAttempts",
        "activeTurnNotSteerable",
        "threadRollbackFailed",
        "other",
    }
)
# The ``UserInput`` item types of the protocol; an item of another type is kept as
# ``OtherInput`` and counted as unknown.
_INPUT_ITEM_TYPES = frozenset({"text", "image", "localImage", "skill", "mention"})

_NO_ACTIVE_TURN = "no active turn to steer"
_EXPECTED_TURN_MISMATCH = "expected active turn id"
_INVALID_PARAMS = -32602
_INPUT_ERROR_CODES: Mapping[str, RejectionReason] = {
    "empty": "empty_input",
    "input_too_large": "input_too_large",
}
_NON_STEERABLE: Mapping[str, RejectionReason] = {
    "review": "non_steerable_review",
    "compact": "non_steerable_compact",
}

# ``originator/version (OS VERSION; ARCH) terminal``, as codex-rs formats its user agent.
_USER_AGENT = re.compile(
    r"(?P<originator>[^/\s]+)/(?P<version>\S+)(?: \((?P<os>[^;()]*); (?P<arch>[^)]*)\))?"
)
_ROLLING = "Rolling Release"


class _MalformedError(Exception):
    """A message the observer needs but cannot read; counted, never raised to the client."""


class _UnknownValues:
    """The observer's one rule for values a newer app-server may send.

    An enum value, session source, turn status, error info or input item type that this
    release does not know never costs a fact: it is reported as the server sent it (an
    :class:`~codex_telemetry.facts.UnknownValue` where the fact's field is an enum, the
    value itself where the field passes JSON through, ``"unknown"`` for a session source,
    which the turn event reports as a null ``thread_source``), counted by field, and
    logged once per field.
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def note(self, field: str, raw: Any) -> None:
        count = self.counts.get(field, 0)
        self.counts[field] = count + 1
        if not count:
            _logger.warning(
                "codex_telemetry does not know the %s %s sent by the app-server (a newer "
                "version?); it is reported as sent, your code is unaffected. Further unknown "
                "%s values are only counted.",
                field,
                reprlib.repr(raw),
                field,
            )

    def enum(self, field: str, table: Mapping[str, Any], raw: Any) -> Any:
        """``table``'s name for ``raw``; an :class:`UnknownValue` for a value it lacks.

        None when ``raw`` is absent or null, or when it names nothing (neither a string
        nor a tagged object): then the field keeps no value.
        """
        if raw is None:
            return None
        if isinstance(raw, str) and raw in table:
            return table[raw]
        self.note(field, raw)
        name = _tag(raw)
        return UnknownValue(name) if name is not None else None


def _tag(raw: Any) -> str | None:
    """The name of a protocol value: a string itself, or the tag of a tagged object."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping):
        tag = raw.get("type")
        if isinstance(tag, str):
            return tag
        if len(raw) == 1:
            key = next(iter(raw))
            return key if isinstance(key, str) else None
    return None


@dataclass(frozen=True, slots=True)
class ObserverStats:
    """A snapshot of what one :class:`AppServerObserver` has seen."""

    messages: int
    """Messages observed, in both directions."""
    facts: int
    """Facts handed to ``track``."""
    malformed: int
    """Messages that were not JSON-RPC, or that the observer needed and could not read."""
    unrecognized: int
    """Turns whose configuration lacked a value the analytics need, or held one that is
    neither a string nor a tagged object (no resolved config)."""
    evicted: int
    """Remembered requests, threads or turns dropped to keep the tables bounded, and
    requests replaced by a later request with the same id."""
    track_errors: int
    """Calls to ``track`` that raised."""
    unknown_values: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Values this release does not know, by field (``sandbox_policy``,
    ``approval_policy``, ``turn_status``, ``codex_error_info``, ``session_source``,
    ``input_item``, ...). Each was reported as the server sent it; none cost a fact."""


class _ThreadState:
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


class _TurnState:
    """A turn this connection started, followed until ``turn/completed``."""

    __slots__ = ("baseline", "thread_id", "usage")

    def __init__(self, thread_id: str, baseline: TokenUsage | None) -> None:
        self.thread_id = thread_id
        self.baseline = baseline
        self.usage: TokenUsage | None = None


@dataclass(frozen=True, slots=True)
class _PendingInitialize:
    params: InitializeParams


@dataclass(frozen=True, slots=True)
class _PendingThread:
    method: str


@dataclass(frozen=True, slots=True)
class _PendingTurnStart:
    thread_id: str
    overrides: _JsonObject
    num_input_images: int


@dataclass(frozen=True, slots=True)
class _PendingSteer:
    pass


_Pending: TypeAlias = _PendingInitialize | _PendingThread | _PendingTurnStart | _PendingSteer


class AppServerObserver:
    """Derives analytics facts from one Codex app-server JSON-RPC connection.

    Create one observer per connection (per ``codex app-server`` process) and show it
    every message, in the order the client sent or received them::

        observer = AppServerObserver()
        observer.observe_sent(request)        # client -> app-server
        observer.observe_received(message)    # app-server -> client

    A message is a decoded JSON object (a ``dict``) or one raw JSON line (``str`` or
    ``bytes``). Facts go to ``track`` (default ``codex_telemetry.track_fact``), in the
    order they happen; the observer never raises, whatever it is shown.

    Derived facts: ``Initialize`` (from the ``initialize`` request and its response; the
    ``product_client_id`` is the originator in the server's user agent, the runtime is the
    app-server's), thread responses (``thread/start``, ``thread/resume``,
    ``thread/fork``), ``turn/start`` and ``turn/steer`` requests with their responses or
    errors (a refused steer is classified), ``turn/started`` and ``turn/completed``
    notifications, and per turn a ``TurnResolvedConfig`` (when the ``turn/start``
    response arrives) and a ``TurnTokenUsage`` (just before the turn's completion).

    A value this release does not know (a newer app-server's sandbox type, turn status,
    error info, ...) never costs a fact: it is carried as sent (an ``UnknownValue`` in an
    enum field), counted in ``stats().unknown_values`` and logged once per field.

    What the client cannot see, and what is reported instead:

    - ``submission_type`` is None;
    - ``reasoning_summary`` and ``personality`` are None unless a ``turn/start`` set them
      (a value from the server's configuration file is not on the wire);
    - ``collaboration_mode`` is ``"default"`` unless a thread response or a ``turn/start``
      named one;
    - a turn's token usage is the growth of the thread's running total during the turn
      (its ``thread/tokenUsage/updated`` notifications): zero for a turn with no usage
      notification (one that failed before the model answered), and, as the app-server
      reports it, none at all for an interrupted turn;
    - only turns started by this connection's ``turn/start`` are followed: other turns
      (reviews, compactions, sub-agents) cannot produce a turn event.

    Args:
        track: where facts go; ``codex_telemetry.track_fact`` by default.
        connection_id: the connection's id in the facts; a fresh process-wide number by
            default.
        rpc_transport: how the client talks to the app-server.
        max_pending: requests remembered while their answer is awaited.
        max_threads: threads whose configuration is remembered.
        max_turns: turns followed at once.
    """

    __slots__ = (
        "_connection_id",
        "_counts",
        "_lock",
        "_logged",
        "_messages",
        "_pending",
        "_rpc_transport",
        "_threads",
        "_track",
        "_turns",
        "_unknown",
    )

    def __init__(
        self,
        *,
        track: Callable[[Fact], object] | None = None,
        connection_id: int | None = None,
        rpc_transport: RpcTransport = "stdio",
        max_pending: int = _DEFAULT_MAX_PENDING,
        max_threads: int = _DEFAULT_MAX_THREADS,
        max_turns: int = _DEFAULT_MAX_TURNS,
    ) -> None:
        if min(max_pending, max_threads, max_turns) < 1:
            raise ValueError("max_pending, max_threads and max_turns must be at least 1")
        self._track: Callable[[Fact], object] = track if track is not None else track_fact
        self._connection_id = connection_id if connection_id is not None else next(_connection_ids)
        self._rpc_transport: RpcTransport = rpc_transport
        self._pending: BoundedTable[RequestId, _Pending] = BoundedTable(max_pending)
        # A followed turn holds its thread: the thread's configuration is still needed.
        self._threads: BoundedTable[str, _ThreadState] = BoundedTable(max_threads)
        self._turns: BoundedTable[str, _TurnState] = BoundedTable(
            max_turns, on_remove=lambda turn: self._threads.release(turn.thread_id)
        )
        # Counted without the lock, from any thread; the others are counted under it.
        self._messages = Counter()
        self._counts = [0, 0, 0, 0]
        self._logged: set[str] = set()
        self._unknown = _UnknownValues()
        # The client may write from several threads while one thread reads: a request
        # must be seen before its response, and facts must reach ``track`` in order.
        self._lock = threading.Lock()

    @property
    def connection_id(self) -> int:
        """The connection id carried by this observer's facts."""
        return self._connection_id

    def stats(self) -> ObserverStats:
        """A snapshot of this observer's counters."""
        with self._lock:
            facts, malformed, unrecognized, track_errors = self._counts
            evicted = self._pending.evictions + self._threads.evictions + self._turns.evictions
            return ObserverStats(
                messages=self._messages.value,
                facts=facts,
                malformed=malformed,
                unrecognized=unrecognized,
                evicted=evicted,
                track_errors=track_errors,
                unknown_values=dict(self._unknown.counts),
            )

    def observe_sent(self, message: _JsonObject | str | bytes) -> None:
        """Observe a message the client sent to the app-server."""
        self.observe(message, "sent")

    def observe_received(self, message: _JsonObject | str | bytes) -> None:
        """Observe a message the client received from the app-server."""
        self.observe(message, "received")

    def observe(self, message: _JsonObject | str | bytes, direction: Direction) -> None:
        """Observe one message crossing the connection in ``direction``. Never raises."""
        try:
            self._messages.increment()
            if type(message) is not dict:
                message = _decode(message)
            # Most traffic is streaming notifications: drop what cannot become a fact
            # before taking the lock. Reading the pending table unlocked is safe: a
            # request is remembered before it is written, so before its answer exists.
            method: Any = message.get("method")
            if direction == "received":
                if method is None:
                    response_id = message.get("id")
                    if type(response_id) is not int and type(response_id) is not str:
                        if response_id is None:
                            return  # an error about a message the server could not read
                        # Checked before the lookup: True or 1.0 would find request 1.
                        raise _MalformedError("a JSON-RPC id must be an integer or a string")
                    if response_id not in self._pending:
                        return
                elif method not in _NOTIFICATIONS or "id" in message:
                    return  # uninteresting, or a request from the server
            elif method not in _REQUESTS or "id" not in message:
                return
            with self._lock:
                if direction == "sent":
                    self._on_sent(method, message)
                else:
                    self._on_received(method, message)
        except Exception as exc:  # the client's I/O must never fail because of telemetry
            with self._lock:
                self._counts[_MALFORMED] += 1
                self._log_once(
                    "malformed",
                    "codex_telemetry could not read a JSON-RPC message (%s: %s); it is "
                    "skipped, your code is unaffected. Further ones are only counted.",
                    type(exc).__name__,
                    exc,
                )

    # --- dispatch --------------------------------------------------------------------

    def _on_sent(self, method: str, message: _JsonObject) -> None:
        request_id = message["id"]
        if method == _TURN_START:
            self._on_turn_start_request(request_id, _params(message))
        elif method == _TURN_STEER:
            self._on_turn_steer_request(request_id, _params(message))
        elif method in _THREAD_METHODS:
            self._remember(request_id, _PendingThread(method))
        elif method == _INITIALIZE:
            self._remember(request_id, _PendingInitialize(_initialize_params(_params(message))))

    def _on_received(self, method: str | None, message: _JsonObject) -> None:
        if method is not None:
            if method == _TOKEN_USAGE_UPDATED:
                self._on_token_usage(_params(message))
            elif method == _TURN_STARTED:
                self._on_turn_notification(_params(message), completed=False)
            else:
                self._on_turn_notification(_params(message), completed=True)
            return
        pending = self._pending.pop(message.get("id"))  # type: ignore[arg-type]
        if pending is None:
            return
        request_id: RequestId = message["id"]
        error = message.get("error")
        if error is not None:
            self._on_error(request_id, pending, error)
            return
        result = message.get("result")
        if not isinstance(result, Mapping):
            raise _MalformedError("a response without a result object")
        if isinstance(pending, _PendingTurnStart):
            self._on_turn_start_result(request_id, pending, result)
        elif isinstance(pending, _PendingSteer):
            turn_id = _required_str(result, "turnId")
            self._emit(Response(self._connection_id, request_id, TurnSteerResponse(turn_id)))
        elif isinstance(pending, _PendingThread):
            self._on_thread_result(request_id, pending.method, result)
        else:
            self._on_initialize_result(pending.params, result)

    # --- requests --------------------------------------------------------------------

    def _remember(self, request_id: Any, pending: _Pending) -> None:
        if not isinstance(request_id, int | str) or isinstance(request_id, bool):
            raise _MalformedError("a JSON-RPC id must be an integer or a string")
        # An id reused before its answer: the earlier request can no longer be matched.
        self._pending.evict(request_id)
        # When full, the oldest request goes: the likeliest to have been answered out of view.
        self._pending.put(request_id, pending)

    def _on_turn_start_request(self, request_id: Any, params: _JsonObject) -> None:
        thread_id = _required_str(params, "threadId")
        if thread_id not in self._threads:
            return  # no thread response seen here: the turn could never make an event
        items = _user_inputs(params.get("input"), self._unknown)
        pending = _PendingTurnStart(thread_id, _turn_overrides(params), _count_images(items))
        self._remember(request_id, pending)
        self._emit(Request(self._connection_id, request_id, TurnStartRequest(thread_id, items)))

    def _on_turn_steer_request(self, request_id: Any, params: _JsonObject) -> None:
        thread_id = _required_str(params, "threadId")
        if thread_id not in self._threads:
            return
        expected = _required_str(params, "expectedTurnId")
        items = _user_inputs(params.get("input"), self._unknown)
        self._remember(request_id, _PendingSteer())
        self._emit(
            Request(self._connection_id, request_id, TurnSteerRequest(thread_id, expected, items))
        )

    # --- responses -------------------------------------------------------------------

    def _on_error(self, request_id: RequestId, pending: _Pending, error: Any) -> None:
        if not isinstance(pending, _PendingTurnStart | _PendingSteer):
            return  # a failed initialize or thread request is no fact
        if not isinstance(error, Mapping):
            raise _MalformedError("a JSON-RPC error is an object")
        code = error.get("code")
        message = error.get("message")
        if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
            raise _MalformedError("a JSON-RPC error has an integer code and a string message")
        rpc_error = JsonRpcError(code, message, error.get("data"))
        reason = classify_rejection(rpc_error) if isinstance(pending, _PendingSteer) else None
        self._emit(ErrorResponse(self._connection_id, request_id, rpc_error, reason))

    def _on_initialize_result(self, params: InitializeParams, result: _JsonObject) -> None:
        originator, runtime = _server_identity(result)
        self._emit(
            Initialize(
                connection_id=self._connection_id,
                params=params,
                product_client_id=originator or params.client_info.name,
                rpc_transport=self._rpc_transport,
                runtime=runtime,
            )
        )

    def _on_thread_result(self, request_id: RequestId, method: str, result: _JsonObject) -> None:
        raw_thread = result.get("thread")
        if not isinstance(raw_thread, Mapping):
            raise _MalformedError(f"a {method} result without a thread")
        model = _required_str(result, "model")
        thread = Thread(
            id=_required_str(raw_thread, "id"),
            ephemeral=_required_bool(raw_thread, "ephemeral"),
            created_at=_required_int(raw_thread, "createdAt"),
            source=_session_source(raw_thread.get("source"), self._unknown),
        )
        state = _ThreadState(thread.ephemeral, thread.source, model)
        state.model_provider = _optional_str(result.get("modelProvider"))
        _apply_thread_config(state, result, self._unknown)
        turns = raw_thread.get("turns")
        # A resumed or forked thread with a history is past its first turn; ``preview``
        # (its first message) still tells when the history was not sent (excludeTurns).
        state.has_turns = method != _THREAD_START and bool(turns or raw_thread.get("preview"))
        if method == _THREAD_START:
            state.token_total = _ZERO_USAGE
        # When full, the least recently started or resumed thread no followed turn needs goes.
        self._threads.put(thread.id, state)
        response: ThreadStartResponse | ThreadResumeResponse | ThreadForkResponse
        if method == _THREAD_START:
            response = ThreadStartResponse(thread, model)
        elif method == _THREAD_RESUME:
            response = ThreadResumeResponse(thread, model)
        else:
            response = ThreadForkResponse(thread, model)
        self._emit(Response(self._connection_id, request_id, response))

    def _on_turn_start_result(
        self, request_id: RequestId, pending: _PendingTurnStart, result: _JsonObject
    ) -> None:
        raw_turn = result.get("turn")
        if not isinstance(raw_turn, Mapping):
            raise _MalformedError("a turn/start result without a turn")
        turn = _turn(raw_turn, self._unknown)
        self._emit(Response(self._connection_id, request_id, TurnStartResponse(turn)))
        state = self._threads.get(pending.thread_id)
        if state is None:
            return  # evicted while the request was in flight
        is_first_turn = not state.has_turns
        state.has_turns = True
        _apply_turn_overrides(state, pending.overrides, self._unknown)
        self._turns.put(turn.id, _TurnState(pending.thread_id, state.token_total))
        self._threads.hold(pending.thread_id)
        config = self._resolved_config(turn.id, pending, state, is_first_turn)
        if config is not None:
            self._emit(config)

    def _resolved_config(
        self,
        turn_id: str,
        pending: _PendingTurnStart,
        state: _ThreadState,
        is_first_turn: bool,
    ) -> TurnResolvedConfig | None:
        missing = [
            name
            for name, value in (
                ("modelProvider", state.model_provider),
                ("sandbox", state.sandbox_policy),
                ("approvalPolicy", state.approval_policy),
                ("approvalsReviewer", state.approvals_reviewer),
            )
            if value is None
        ]
        if missing:
            self._counts[_UNRECOGNIZED] += 1
            self._log_once(
                "unrecognized",
                "codex_telemetry could not name the %s of a turn's configuration; the turn "
                "is not reported. Further ones are only counted.",
                ", ".join(missing),
            )
            return None
        assert state.model_provider is not None
        assert state.sandbox_policy is not None
        assert state.approval_policy is not None
        assert state.approvals_reviewer is not None
        # ``serviceTierForTurn`` applies to this turn only; "default" is the standard tier.
        service_tier = state.service_tier
        if "serviceTierForTurn" in pending.overrides:
            raw_tier = pending.overrides["serviceTierForTurn"]
            if raw_tier is not None:
                service_tier = self._unknown.enum("service_tier", _SERVICE_TIERS, raw_tier)
        return TurnResolvedConfig(
            turn_id=turn_id,
            thread_id=pending.thread_id,
            num_input_images=pending.num_input_images,
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

    # --- notifications ---------------------------------------------------------------

    def _on_token_usage(self, params: _JsonObject) -> None:
        thread_id = params.get("threadId")
        state = self._threads.get(thread_id)  # type: ignore[arg-type]
        if state is None:
            return
        raw = params.get("tokenUsage")
        if not isinstance(raw, Mapping):
            raise _MalformedError("thread/tokenUsage/updated without tokenUsage")
        total = _usage(raw.get("total"))
        turn = self._turns.get(params.get("turnId"))  # type: ignore[arg-type]
        if turn is not None and turn.thread_id == thread_id:
            if turn.baseline is None:
                # The thread's total before this turn was not seen (a resumed thread whose
                # usage was not restored): the total before the turn's latest request is
                # the best the wire offers.
                turn.baseline = _minus(total, _usage(raw.get("last")))
            turn.usage = _minus(total, turn.baseline)
        state.token_total = total

    def _on_turn_notification(self, params: _JsonObject, *, completed: bool) -> None:
        raw_turn = params.get("turn")
        if not isinstance(raw_turn, Mapping):
            raise _MalformedError("a turn notification without a turn")
        turn_id = raw_turn.get("id")
        thread_id = params.get("threadId")
        if not completed:
            if turn_id in self._turns or self._starting(thread_id):
                started = _turn(raw_turn, self._unknown)
                self._emit(Notification(TurnStartedNotification(_thread_id(thread_id), started)))
            return
        followed = self._turns.pop(turn_id)  # type: ignore[arg-type]
        if followed is None:
            return
        thread_id = _thread_id(thread_id)
        turn = _turn(raw_turn, self._unknown)
        # As the app-server's own analytics: an interrupted turn reports no usage; any
        # other (a failure before the model answered included) reports what it used,
        # zero when no usage update came.
        if turn.status != "interrupted":
            usage = followed.usage if followed.usage is not None else _ZERO_USAGE
            self._emit(TurnTokenUsage(turn.id, thread_id, usage))
        self._emit(Notification(TurnCompletedNotification(thread_id, turn)))

    def _starting(self, thread_id: Any) -> bool:
        # A turn/started that overtakes its turn/start response still counts: the
        # reducer joins the two whichever comes first.
        return any(
            isinstance(pending, _PendingTurnStart) and pending.thread_id == thread_id
            for pending in self._pending.values()
        )

    # --- output ----------------------------------------------------------------------

    def _emit(self, fact: Fact) -> None:
        self._counts[_FACTS] += 1
        try:
            self._track(fact)
        except Exception as exc:
            self._counts[_TRACK_ERRORS] += 1
            self._log_once(
                "track",
                "codex_telemetry could not track a fact (%s: %s); your code is unaffected. "
                "Further failures are only counted.",
                type(exc).__name__,
                exc,
            )

    def _log_once(self, key: str, message: str, *args: object) -> None:
        if key in self._logged:
            _logger.debug(message, *args)
            return
        self._logged.add(key)
        _logger.warning(message, *args)


# --- reading protocol values ---------------------------------------------------------

_ZERO_USAGE = TokenUsage(0, 0, 0, 0, 0)


def _decode(message: Any) -> _JsonObject:
    if isinstance(message, str | bytes | bytearray):
        message = json.loads(message)
    if not isinstance(message, Mapping):
        raise _MalformedError("a JSON-RPC message is a JSON object")
    return message


def _params(message: _JsonObject) -> _JsonObject:
    params = message.get("params")
    if not isinstance(params, Mapping):
        raise _MalformedError(f"{message.get('method')} without params")
    return params


def _required_str(obj: _JsonObject, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _MalformedError(f"{key} must be a string")
    return value


def _thread_id(value: Any) -> str:
    if not isinstance(value, str):
        raise _MalformedError("threadId must be a string")
    return value


def _required_int(obj: _JsonObject, key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _MalformedError(f"{key} must be an integer")
    return value


def _required_bool(obj: _JsonObject, key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise _MalformedError(f"{key} must be a boolean")
    return value


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _initialize_params(params: _JsonObject) -> InitializeParams:
    info = params.get("clientInfo")
    if not isinstance(info, Mapping):
        raise _MalformedError("initialize without clientInfo")
    client_info = ClientInfo(
        name=_required_str(info, "name"),
        version=_required_str(info, "version"),
        title=_optional_str(info.get("title")),
    )
    raw_capabilities = params.get("capabilities")
    capabilities = None
    if isinstance(raw_capabilities, Mapping):
        capabilities = Capabilities(
            experimental_api=raw_capabilities.get("experimentalApi") is True
        )
    return InitializeParams(client_info=client_info, capabilities=capabilities)


def _server_identity(result: _JsonObject) -> tuple[str | None, RuntimeMetadata]:
    """The originator and the runtime of the app-server, from its ``initialize`` result.

    codex-rs builds its user agent as ``originator/version (OS VERSION; ARCH) terminal``,
    where OS and VERSION are ``os_info``'s names. The app-server runs on the client's
    machine (stdio), so what the result does not say is taken from this process.
    """
    user_agent = _optional_str(result.get("userAgent")) or ""
    match = _USER_AGENT.match(user_agent.strip())
    originator = match["originator"] if match else None
    server_info = result.get("serverInfo")
    version = None
    if isinstance(server_info, Mapping):
        version = _optional_str(server_info.get("version"))
    if not version and match:
        version = match["version"]
    local = current_runtime(version or "unknown")
    platform_os = _optional_str(result.get("platformOs"))
    os_version = _os_version(match["os"]) if match and match["os"] else None
    arch = match["arch"].strip() if match and match["arch"] else None
    return originator, RuntimeMetadata(
        codex_rs_version=local.codex_rs_version,
        runtime_os=rust_os_name(platform_os) if platform_os else local.runtime_os,
        runtime_os_version=os_version or local.runtime_os_version,
        runtime_arch=rust_arch_name(arch) if arch and arch != "unknown" else local.runtime_arch,
    )


def _os_version(os_part: str) -> str | None:
    """The version in ``os_info``'s ``"{type} {version}"`` (``"Debian 12.0.0"``)."""
    os_part = os_part.strip()
    rolling = os_part.find(_ROLLING)
    if rolling > 0:
        return os_part[rolling:]
    _, _, version = os_part.rpartition(" ")
    if not version or not version[0].isdigit():
        return "Unknown" if version == "Unknown" else None
    return os_info_version(version)


def _session_source(raw: Any, unknown: _UnknownValues) -> SessionSource:
    if raw is None:
        raise _MalformedError("a thread without a source")
    if isinstance(raw, str):
        source = _SESSION_SOURCES.get(raw)
        if source is not None:
            return source
    elif isinstance(raw, Mapping):
        custom = raw.get("custom")
        if isinstance(custom, str):
            return CustomSource(custom)
        sub_agent = raw.get("subAgent", raw.get("sub_agent"))
        if sub_agent is not None:
            return SubAgent(_subagent_source(sub_agent, unknown))
    # A source this version does not know has no name the analytics could report: it
    # reads as "unknown", whose thread_source is null.
    unknown.note("session_source", raw)
    return "unknown"


def _subagent_source(raw: Any, unknown: _UnknownValues) -> SubAgentSource:
    if isinstance(raw, str):
        known = _SUBAGENT_SOURCES.get(raw)
        if known is not None:
            return known
        unknown.note("subagent_source", raw)
        return Other(raw)  # reported verbatim, as events.md reports an Other source
    if isinstance(raw, Mapping):
        spawn = raw.get("thread_spawn", raw.get("threadSpawn"))
        if isinstance(spawn, Mapping):
            parent = spawn.get("parent_thread_id", spawn.get("parentThreadId"))
            depth = _optional_int(spawn.get("depth"))
            if not isinstance(parent, str) or depth is None:
                raise _MalformedError("a thread_spawn source needs parent_thread_id and depth")
            return ThreadSpawn(
                parent_thread_id=parent,
                depth=depth,
                agent_nickname=_optional_str(
                    spawn.get("agent_nickname", spawn.get("agentNickname"))
                ),
                agent_role=_optional_str(spawn.get("agent_role", spawn.get("agentRole"))),
            )
        other = raw.get("other")
        if isinstance(other, str):
            return Other(other)
    name = _tag(raw)
    if name is None:
        raise _MalformedError(f"unknown sub-agent source {reprlib.repr(raw)}")
    unknown.note("subagent_source", raw)
    return Other(name)


def _user_inputs(raw: Any, unknown: _UnknownValues) -> tuple[UserInput, ...]:
    if not isinstance(raw, list):
        raise _MalformedError("input must be a list")
    items: list[UserInput] = []
    for item in raw:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if not isinstance(kind, str):
            raise _MalformedError("an input item needs a type")
        if kind == "text":
            items.append(TextInput(_required_str(item, "text")))
        elif kind == "image":
            items.append(ImageInput(_required_str(item, "url")))
        elif kind == "localImage":
            items.append(LocalImageInput(_required_str(item, "path")))
        else:
            if kind not in _INPUT_ITEM_TYPES:
                unknown.note("input_item", kind)
            items.append(OtherInput(kind))
    return tuple(items)


def _count_images(items: tuple[UserInput, ...]) -> int:
    return sum(isinstance(item, ImageInput | LocalImageInput) for item in items)


def _turn(raw: _JsonObject, unknown: _UnknownValues) -> Turn:
    raw_status = raw.get("status")
    if not isinstance(raw_status, str):
        raise _MalformedError(f"a turn status must be a string, not {reprlib.repr(raw_status)}")
    # A status this version does not know still ends the turn: the turn event reports it
    # as the server sent it.
    status = unknown.enum("turn_status", _TURN_STATUSES, raw_status)
    error = None
    raw_error = raw.get("error")
    if isinstance(raw_error, Mapping):
        info = raw_error.get("codexErrorInfo")
        if info is not None and _tag(info) not in _CODEX_ERROR_INFOS:
            unknown.note("codex_error_info", info)  # passed through unchanged all the same
        error = TurnError(
            message=_optional_str(raw_error.get("message")) or "",
            codex_error_info=info if isinstance(info, str | Mapping) else None,
        )
    return Turn(
        id=_required_str(raw, "id"),
        status=status,
        error=error,
        started_at=_optional_int(raw.get("startedAt")),
        completed_at=_optional_int(raw.get("completedAt")),
        duration_ms=_optional_int(raw.get("durationMs")),
    )


def _usage(raw: Any) -> TokenUsage:
    if not isinstance(raw, Mapping):
        raise _MalformedError("token usage must be an object")
    return TokenUsage(
        input_tokens=_required_int(raw, "inputTokens"),
        cached_input_tokens=_required_int(raw, "cachedInputTokens"),
        output_tokens=_required_int(raw, "outputTokens"),
        reasoning_output_tokens=_required_int(raw, "reasoningOutputTokens"),
        total_tokens=_required_int(raw, "totalTokens"),
    )


def _minus(total: TokenUsage, before: TokenUsage) -> TokenUsage:
    # Never negative: a total that shrank (a compaction resets it) counts as no growth.
    return TokenUsage(
        input_tokens=max(0, total.input_tokens - before.input_tokens),
        cached_input_tokens=max(0, total.cached_input_tokens - before.cached_input_tokens),
        output_tokens=max(0, total.output_tokens - before.output_tokens),
        reasoning_output_tokens=max(
            0, total.reasoning_output_tokens - before.reasoning_output_tokens
        ),
        total_tokens=max(0, total.total_tokens - before.total_tokens),
    )


def _sandbox(raw: Any, unknown: _UnknownValues) -> tuple[SandboxPolicy | UnknownValue, bool] | None:
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


def _approval_policy(raw: Any, unknown: _UnknownValues) -> ApprovalPolicy | UnknownValue | None:
    # A granular policy asks for approval on some request kinds: on-request is its closest
    # name among the four the analytics know.
    if isinstance(raw, Mapping) and "granular" in raw:
        return "on-request"
    result: ApprovalPolicy | UnknownValue | None = unknown.enum(
        "approval_policy", _APPROVAL_POLICIES, raw
    )
    return result


def _collaboration_mode(raw: Any, unknown: _UnknownValues) -> CollaborationMode | UnknownValue:
    mode: CollaborationMode | UnknownValue | None = unknown.enum(
        "collaboration_mode", _COLLABORATION_MODES, raw
    )
    return mode if mode is not None else "default"


def _apply_thread_config(state: _ThreadState, result: _JsonObject, unknown: _UnknownValues) -> None:
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


def _turn_overrides(params: _JsonObject) -> _JsonObject:
    """A copy of the overrides of ``turn/start`` parameters, without the input.

    Copied because the request waits for its response: the client may reuse its objects
    meanwhile, and the input (images as data URLs) can be large.
    """
    return {key: copy.deepcopy(params[key]) for key in _TURN_OVERRIDES if key in params}


def _apply_turn_overrides(
    state: _ThreadState, params: _JsonObject, unknown: _UnknownValues
) -> None:
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


def classify_rejection(error: JsonRpcError) -> RejectionReason | None:
    """The reason a ``turn/steer`` was refused, from its JSON-RPC error (events.md 3.6)."""
    data = error.data if isinstance(error.data, Mapping) else {}
    info = data.get("codex_error_info", data.get("codexErrorInfo"))
    if isinstance(info, Mapping):
        not_steerable = info.get("activeTurnNotSteerable")
        if isinstance(not_steerable, Mapping):
            reason = _NON_STEERABLE.get(not_steerable.get("turnKind"))  # type: ignore[arg-type]
            if reason is not None:
                return reason
    if error.message == _NO_ACTIVE_TURN:
        return "no_active_turn"
    if error.message.startswith(_EXPECTED_TURN_MISMATCH):
        return "expected_turn_mismatch"
    if error.code == _INVALID_PARAMS:
        code = data.get("input_error_code", data.get("inputErrorCode"))
        if isinstance(code, str):
            return _INPUT_ERROR_CODES.get(code)
    return None
