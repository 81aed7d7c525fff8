"""Why a ``turn/steer`` was refused, classified from its JSON-RPC error (events.md 3.6)."""

from __future__ import annotations

from collections.abc import Mapping

from codex_telemetry.facts import JsonRpcError, RejectionReason

__all__ = ["classify_rejection"]

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
