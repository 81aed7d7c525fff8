"""What the SDK relies on from OpenTelemetry Python, pinned: a release that removes or
changes one of these names fails here, not in a user's export.

OpenTelemetry Python keeps its logs signal in ``opentelemetry._logs`` (API) and
``opentelemetry.sdk._logs`` (SDK): the underscore marks the signal as not yet stable,
and there is no public module to use instead. Everything else the export layer uses is
public: ``opentelemetry-proto``'s messages and service definition, ``Resource``,
grpcio and requests. ``pyproject.toml`` bounds the supported releases.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from opentelemetry._logs import NoOpLogger, SeverityNumber
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

import codex_telemetry
from codex_telemetry._export._grpc import EXPORT_METHOD
from codex_telemetry._export._otlp import _EventLogRecord
from codex_telemetry.events import SkillInvocationEvent

# Every non-public OpenTelemetry module the package imports, and the names it takes.
PRIVATE_NAMES = {
    "opentelemetry._logs": {"LogRecord", "NoOpLogger", "SeverityNumber"},
    "opentelemetry.sdk._logs": {
        "LoggerProvider",
        "LogRecordProcessor",
        "ReadableLogRecord",
        "ReadWriteLogRecord",
    },
    "opentelemetry.sdk._logs.export": {"LogRecordExporter", "LogRecordExportResult"},
}

SKILL = SkillInvocationEvent(
    skill_id="037cfe53fd881d2ea36aec8302ccde76376a0f7a",
    skill_name="doc",
    product_client_id="codex_cli_rs",
    skill_scope="user",
    repo_url=None,
    thread_id="thread-2",
    invoke_type="explicit",
    model_slug="gpt-5",
)


def opentelemetry_imports() -> dict[str, set[str]]:
    """The OpenTelemetry modules with a private part the package imports, and the names."""
    found: dict[str, set[str]] = {}
    for path in Path(codex_telemetry.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opentelemetry"):
                module = node.module or ""
                if any(part.startswith("_") for part in module.split(".")):
                    found.setdefault(module, set()).update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("opentelemetry") or not any(
                        part.startswith("_") for part in alias.name.split(".")
                    ), alias.name
    return found


def test_the_package_imports_no_other_private_opentelemetry_name() -> None:
    imported = opentelemetry_imports()
    assert set(imported) <= set(PRIVATE_NAMES)
    for module, names in imported.items():
        assert names <= PRIVATE_NAMES[module], (module, names - PRIVATE_NAMES[module])


def test_every_private_name_the_package_uses_still_exists() -> None:
    for module, names in PRIVATE_NAMES.items():
        loaded = importlib.import_module(module)
        missing = sorted(name for name in names if not hasattr(loaded, name))
        assert not missing, f"{module} lost {missing}"


def test_the_sdk_hands_our_record_to_every_processor_as_it_was_emitted() -> None:
    # The exporter writes each record from the event it carries: the SDK must pass the
    # API record through, with its resource and scope, rather than a copy without it.
    seen: list[ReadWriteLogRecord] = []

    class Keep(LogRecordProcessor):
        def on_emit(self, log_record: ReadWriteLogRecord) -> None:
            seen.append(log_record)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(Keep())
    logger = provider.get_logger("codex_telemetry", "1.0")
    assert not isinstance(logger, NoOpLogger)
    record = _EventLogRecord(SKILL, 5)
    logger.emit(record)

    [emitted] = seen
    assert isinstance(emitted, ReadableLogRecord | ReadWriteLogRecord)
    assert emitted.log_record is record
    assert emitted.log_record.severity_number is SeverityNumber.INFO
    assert emitted.log_record.event_name == "skill_invocation"
    assert emitted.log_record.timestamp == 5
    assert emitted.resource is provider.resource
    assert emitted.instrumentation_scope is not None
    assert emitted.instrumentation_scope.name == "codex_telemetry"
    assert emitted.dropped_attributes == 0


def test_the_exporter_interface_is_the_one_processors_call() -> None:
    for name in ("export", "shutdown"):
        assert callable(getattr(LogRecordExporter, name))
    assert {result.name for result in LogRecordExportResult} >= {"SUCCESS", "FAILURE"}


def test_the_grpc_method_comes_from_the_official_service_definition() -> None:
    service = logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"]
    assert EXPORT_METHOD == "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    assert service.methods_by_name["Export"].input_type.full_name == (
        "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest"
    )
