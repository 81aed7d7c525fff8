"""Facts built from the requests and answers the observer matched: ``initialize``, thread
responses, turn requests and refusals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codex_telemetry._observer_errors import classify_rejection
from codex_telemetry._observer_rpc import (
    THREAD_RESUME,
    THREAD_START,
    TURN_STEER,
    PendingSteer,
    PendingTurnStart,
)
from codex_telemetry._observer_state import ThreadState, apply_thread_config, turn_overrides
from codex_telemetry._observer_values import (
    ZERO_USAGE,
    JsonObject,
    MalformedMessageError,
    UnknownValues,
    count_images,
    optional_str,
    read_session_source,
    read_user_inputs,
    required_bool,
    required_int,
    required_str,
    server_identity,
)
from codex_telemetry.facts import (
    ErrorResponse,
    Initialize,
    InitializeParams,
    JsonRpcError,
    RequestId,
    RpcTransport,
    Thread,
    ThreadForkResponse,
    ThreadResumeResponse,
    ThreadStartResponse,
    TurnStartRequest,
    TurnSteerRequest,
)

__all__ = ["error_response", "initialize_fact", "thread_response", "turn_request"]

ThreadResponse = ThreadStartResponse | ThreadResumeResponse | ThreadForkResponse


def initialize_fact(
    connection_id: int, rpc_transport: RpcTransport, params: InitializeParams, result: JsonObject
) -> Initialize:
    """The ``Initialize`` fact of an ``initialize`` request and its result."""
    originator, runtime = server_identity(result)
    return Initialize(
        connection_id=connection_id,
        params=params,
        product_client_id=originator or params.client_info.name,
        rpc_transport=rpc_transport,
        runtime=runtime,
    )


def thread_response(
    method: str, result: JsonObject, unknown: UnknownValues
) -> tuple[ThreadResponse, ThreadState]:
    """A thread request's response, and the thread's configuration as it stands."""
    raw_thread = result.get("thread")
    if not isinstance(raw_thread, Mapping):
        raise MalformedMessageError(f"a {method} result without a thread")
    model = required_str(result, "model")
    thread = Thread(
        id=required_str(raw_thread, "id"),
        ephemeral=required_bool(raw_thread, "ephemeral"),
        created_at=required_int(raw_thread, "createdAt"),
        source=read_session_source(raw_thread.get("source"), unknown),
    )
    state = ThreadState(thread.ephemeral, thread.source, model)
    state.model_provider = optional_str(result.get("modelProvider"))
    apply_thread_config(state, result, unknown)
    turns = raw_thread.get("turns")
    # A resumed or forked thread with a history is past its first turn; ``preview``
    # (its first message) still tells when the history was not sent (excludeTurns).
    state.has_turns = method != THREAD_START and bool(turns or raw_thread.get("preview"))
    if method == THREAD_START:
        state.token_total = ZERO_USAGE
    response: ThreadResponse
    if method == THREAD_START:
        response = ThreadStartResponse(thread, model)
    elif method == THREAD_RESUME:
        response = ThreadResumeResponse(thread, model)
    else:
        response = ThreadForkResponse(thread, model)
    return response, state


def error_response(
    connection_id: int, request_id: RequestId, error: Any, *, steer: bool
) -> ErrorResponse:
    """The ``ErrorResponse`` fact of a refused ``turn/start`` or ``turn/steer``."""
    if not isinstance(error, Mapping):
        raise MalformedMessageError("a JSON-RPC error is an object")
    code = error.get("code")
    message = error.get("message")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        raise MalformedMessageError("a JSON-RPC error has an integer code and a string message")
    rpc_error = JsonRpcError(code, message, error.get("data"))
    reason = classify_rejection(rpc_error) if steer else None
    return ErrorResponse(connection_id, request_id, rpc_error, reason)


def turn_request(
    method: str, params: JsonObject, unknown: UnknownValues
) -> tuple[PendingTurnStart | PendingSteer, TurnStartRequest | TurnSteerRequest]:
    """A ``turn/start`` or ``turn/steer`` request: what its answer will need, and its fact."""
    thread_id = required_str(params, "threadId")
    if method == TURN_STEER:
        expected = required_str(params, "expectedTurnId")
        items = read_user_inputs(params.get("input"), unknown)
        return PendingSteer(), TurnSteerRequest(thread_id, expected, items)
    items = read_user_inputs(params.get("input"), unknown)
    pending = PendingTurnStart(thread_id, turn_overrides(params), count_images(items))
    return pending, TurnStartRequest(thread_id, items)
