"""The durable spool: events produced but not yet settled by the sink, kept on disk.

The worker appends each batch of events as soon as the reducer produces them (one
``write(2)`` per batch, so the bytes are in the operating system's page cache before the
sink sees them). Normally the same events are then handed to the sink in memory, and the
spool is only a write-ahead log: nothing is read back. When the sink has no room, or
older events still wait, events stay in the spool's **backlog** on disk and are read back,
oldest first, as the sink catches up; the spool is then the queue, bounded in bytes
instead of in memory. The sink acknowledges events in the order they were handed out,
once each is settled (delivered, or given up on for good). What was appended and never
acknowledged survives the process: a collector down at exit, ``SIGTERM`` with Python's
default handling, ``SIGKILL`` or a crash. The next process that opens the same directory
for the same destination claims those segments into its backlog and sends them first.

What is promised: once ``append`` returns, its events are on disk for every other process:
they survive the death of this one, however it dies. Nothing is ``fsync``-ed, so a power
loss or a kernel crash can lose what the operating system had not yet written back (on
Linux by default, up to about the last 30 seconds of events), tear the last line (skipped
and counted) or roll an acknowledgement back (those events are sent again). Delivery is
at least once: an event is sent twice only when the process dies between the sink's
delivery of its batch and the acknowledgement that follows.

Layout, under the root (by default ``platformdirs.user_cache_dir("codex-telemetry")``
``/spool``); directories are created with mode 0700 and files with mode 0600::

    <root>/<destination hash>/DESTINATION        the destination's label, for people
    <root>/<destination hash>/<segment>.jsonl    {"time_unix_nano":...,"event":{...}} a line
    <root>/<destination hash>/<segment>.ack      how many bytes of the segment are settled

A segment is named ``<creation time, unix ns, 20 digits>-<pid>-<random>``, so sorting the
names sorts the segments oldest first. Each process writes only segments it created and
holds an exclusive ``flock`` on each while it lives; a segment whose lock can be taken has
no living owner (an orphan) and is claimed under that lock, so two processes never both
replay one segment. A segment is created under a hidden temporary name, locked, and only
then renamed into place, so no other process can claim it in the instant between its
creation and its lock. A claimer that dies mid-replay releases its lock with its life: the
next process resumes from the last acknowledgement.

An unusable directory (missing permissions, read-only, full, no ``fcntl``) turns the spool
into an in-memory one with one warning: appends are then handed out at once and only
counted (the sink's queue holds the events), nothing survives the process, and nothing
raises.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, cast

from codex_telemetry._internal_errors import log_internal_error
from codex_telemetry.events import (
    AnalyticsEvent,
    AppServerClient,
    WireEvent,
    WireShape,
    field_names,
    params_fields,
    to_wire,
    wire_event,
    wire_values,
)
from codex_telemetry.facts import RuntimeMetadata

if sys.platform != "win32":
    import fcntl

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DestinationSummary",
    "DrainResult",
    "PurgeResult",
    "SegmentSummary",
    "Spool",
    "SpoolStats",
    "SpoolableEvent",
    "SpooledEvent",
    "default_spool_directory",
    "destination_directory_name",
    "drain_orphans",
    "event_from_wire",
    "list_spool",
    "purge_spool",
]

_logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
"""The default bound of one process's spool for one destination, in bytes on disk."""

_DIRECTORY_MODE: Final = 0o700
_FILE_MODE: Final = 0o600
_SEGMENT_SUFFIX: Final = ".jsonl"
_ACK_SUFFIX: Final = ".ack"
_NEW_SUFFIX: Final = ".new"
_LABEL_FILE: Final = "DESTINATION"
# The largest segment before the writer starts a new one: dropping the oldest segment to
# keep the bound then drops at most an eighth of it.
_MAX_SEGMENT_BYTES: Final = 8 * 1024 * 1024
# A temporary segment older than this whose lock can be taken was left by a crash.
_STALE_NEW_SECONDS: Final = 60.0
_READ_CHUNK: Final = 1024 * 1024
# Orphaned segments claimed at a time (each holds a descriptor); more once these are read.
_MAX_CLAIMED: Final = 64
# ASCII JSON: a lone surrogate (a file name decoded with surrogateescape) round-trips
# exactly, and a line can be read with any tool whatever its locale.
_ENCODE: Final = json.JSONEncoder(separators=(",", ":")).encode
_NO_INHERIT: Final = getattr(os, "O_CLOEXEC", 0)
_NO_LINK: Final = getattr(os, "O_NOFOLLOW", 0)  # the spool writes and deletes what it opens
_OPEN_FLAGS: Final = os.O_RDWR | _NO_INHERIT


def default_spool_directory() -> Path:
    """The per-user cache directory's ``spool`` folder (platformdirs, imported lazily)."""
    import platformdirs  # noqa: PLC0415  (only a process that spools pays for the import)

    return Path(platformdirs.user_cache_dir("codex-telemetry", appauthor=False)) / "spool"


def destination_directory_name(destination: str) -> str:
    """The folder name of a destination key: its SHA-256, so no key appears on disk."""
    return hashlib.sha256(destination.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SpooledEvent:
    """An event read back from the spool: its wire object and when it was produced."""

    timestamp_ns: int
    wire: dict[str, Any]

    def to_event(self) -> AnalyticsEvent:
        """The event, for the sinks: the typed event whose wire object this is (see
        :func:`event_from_wire`), or, for one ``before_send`` reshaped, a
        :class:`~codex_telemetry.events.WireEvent` of it; ``ValueError`` if it is neither."""
        try:
            return event_from_wire(self.wire)
        except ValueError:
            try:
                return wire_event(self.wire)
            except TypeError as error:
                raise ValueError(f"not an analytics event: {error}") from None


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """What one :class:`Spool` did so far; counts are events unless they say bytes."""

    directory: Path | None
    """The destination's folder; None when the spool never had a usable one."""
    in_memory: bool
    """True once appends are no longer written (the directory is unusable)."""
    pending: int
    """Handed out, and not yet acknowledged."""
    backlog_bytes: int
    """Bytes on disk not yet handed out (orphans, and events appended to the backlog)."""
    bytes_on_disk: int
    """Size of the segments this process holds (its own and the orphans it claimed)."""
    dropped: int
    """Removed from disk before they were handed out, to keep the byte bound."""
    not_spooled: int
    """Appended while the spool was in memory, or that could not be encoded."""
    truncated_lines: int
    """Torn last lines (a crash mid-write) skipped in orphaned segments."""
    corrupt_lines: int
    """Whole lines of orphaned segments that were not a spooled event, skipped."""


@dataclass(slots=True, eq=False)
class _Segment:
    path: Path
    fd: int
    size: int
    acked: int
    own: bool
    file: BinaryIO | None = None  # own segments: where appends are written
    ack_fd: int = -1
    read_offset: int = 0  # how far events were handed out (appended or taken)
    pending: int = 0  # events handed out (appended or taken) not yet acknowledged
    deleted: bool = False
    unreadable: bool = False

    @property
    def ack_path(self) -> Path:
        return self.path.with_suffix(_ACK_SUFFIX)


@dataclass(slots=True)
class _Pending:
    """Events handed out together, in order: where each one ends in its segment."""

    segment: _Segment | None
    ends: list[int] | None  # None: not on disk
    count: int
    done: int = 0


SpoolableEvent = AnalyticsEvent | Mapping[str, Any]
"""What :meth:`Spool.append` takes: an event, or its wire object (``event.to_dict()``)."""

_encode_string: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii
_SHARED_TYPES: Final = (AppServerClient, RuntimeMetadata)
_SHARED_LIMIT: Final = 1024
# A connection's client and runtime objects, encoded once: id -> (object, JSON).
_shared: dict[int, tuple[object, str]] = {}
# Per event class: the JSON text before each field's value, a function that returns the
# field values in that order, and the text after the last one.
_Plan = tuple[tuple[str, ...], Callable[[object], Iterable[Any]], str]
_plans: dict[type, _Plan] = {}


def _plan(cls: type[AnalyticsEvent]) -> _Plan:
    plan = _plans.get(cls)
    if plan is None:
        top = cls.top_level_fields
        params = params_fields(cls)
        texts: list[str] = []
        head = f'{{"event_type":{_encode_string(cls.event_type)}'
        for name in top:
            texts.append(f"{head},{_encode_string(name)}:")
            head = ""
        head += ',"event_params":{'
        for name in params:
            texts.append(f"{head}{_encode_string(name)}:")
            head = ","
        end = "}}" if params else f"{head}}}}}"
        if not texts:
            end = f'{{"event_type":{_encode_string(cls.event_type)},"event_params":{{}}}}'
        plan = (tuple(texts), wire_values(cls), end)
        _plans[cls] = plan
    return plan


def _encode_value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind in _SHARED_TYPES:
        entry = _shared.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        text = _ENCODE(to_wire(value))
        if len(_shared) >= _SHARED_LIMIT:
            _shared.clear()
        _shared[id(value)] = (value, text)
        return text
    return _ENCODE(to_wire(value))


def _encode_event(event: SpoolableEvent) -> str:
    """The compact JSON of the event's wire object: the same text as encoding
    ``event.to_dict()``, written straight from the typed event (three times faster), or
    from the values of what ``before_send`` returned."""
    if not isinstance(event, AnalyticsEvent):
        return _ENCODE(event)
    shared = None
    if type(event) is WireEvent:
        texts, end = _wire_plan(event.shape)
        values: Iterable[Any] = event.values
        shared = event.shared
        head = _event_type_texts.get(event.event_type) or _event_type_text(event.event_type)
        parts: list[str] = [head]
    else:
        texts, getter, end = _plan(type(event))
        values = getter(event)
        parts = []
    append = parts.append
    encode_string = _encode_string
    for text, value in zip(texts, values, strict=True):
        append(text)
        kind = type(value)
        if kind is str:
            append(encode_string(value))
        elif value is None:
            append("null")
        elif kind is bool:
            append("true" if value else "false")
        elif kind is int:
            append(int.__repr__(value))
        elif shared is not None and kind is dict:
            append(_encode_value(shared.get(id(value), value)))
        else:
            append(_encode_value(value))
    append(end)
    return "".join(parts)


# Per shape of a before_send result: the JSON text before each value, after the event
# type, and the text after the last one (the shapes are interned and bounded).
_wire_plans: dict[WireShape, tuple[tuple[str, ...], str]] = {}
_event_type_texts: dict[str, str] = {}


def _wire_plan(shape: WireShape) -> tuple[tuple[str, ...], str]:
    plan = _wire_plans.get(shape)
    if plan is None:
        texts: list[str] = [f",{_encode_string(name)}:" for name in shape.top]
        head = ',"event_params":{'
        for name in shape.params:
            texts.append(f"{head}{_encode_string(name)}:")
            head = ","
        plan = _wire_plans[shape] = (tuple(texts), "}}" if shape.params else f"{head}}}}}")
    return plan


def _event_type_text(event_type: str) -> str:
    if len(_event_type_texts) >= _SHARED_LIMIT:
        _event_type_texts.clear()
    text = _event_type_texts[event_type] = f'{{"event_type":{_encode_string(event_type)}'
    return text


class _SpoolUnusableError(Exception):
    """The directory cannot hold the spool; the reason is the message."""


def _open_append(fd: int) -> BinaryIO:
    """The file object appends go through: unbuffered, so a failed write leaves nothing
    behind in a buffer to be glued onto the next one."""
    return open(fd, "ab", buffering=0, closefd=False)


def _write_all(file: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError(errno.EIO, "the spool segment accepted no bytes")
        view = view[written:]


def _make_directory(path: Path) -> None:
    """Create ``path`` and any missing parent with mode 0700; refuse one that another user
    owns or may write to."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=_DIRECTORY_MODE)
    status = path.stat()
    if not path.is_dir():
        raise _SpoolUnusableError(f"{path} is not a directory")
    if hasattr(os, "geteuid") and status.st_uid != os.geteuid():
        raise _SpoolUnusableError(f"{path} belongs to another user")
    if status.st_mode & 0o022:  # others could plant segments (sent as ours) or links
        raise _SpoolUnusableError(f"{path} is writable by other users")


def _read_ack(path: Path, size: int) -> int:
    """The settled byte count of a segment; 0 when missing or unreadable (a resend, never
    a loss)."""
    try:
        text = path.read_bytes()
    except OSError:
        return 0
    try:
        acked = int(text.strip() or b"0")
    except ValueError:
        return 0
    return min(max(acked, 0), size)


def _lock_if_orphaned(path: Path) -> int | None:
    """Open and lock ``path`` if no living process holds it; None otherwise.

    The lock is checked to still belong to the file at ``path``: a segment finished and
    deleted by its claimer while we waited is not taken again.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS | _NO_LINK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status = os.fstat(fd)
        if status.st_nlink == 0 or os.stat(path).st_ino != status.st_ino:
            raise FileNotFoundError(path)
    except OSError:
        os.close(fd)
        return None
    return fd


def _count_lines(data: bytes) -> tuple[int, int]:
    """Whole lines in ``data``, and 1 if it ends with a torn line."""
    whole = data.count(b"\n")
    return whole, int(bool(data) and not data.endswith(b"\n"))


def _parse_line(line: bytes) -> SpooledEvent | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    timestamp = record.get("time_unix_nano")
    event = record.get("event")
    if type(timestamp) is not int or not isinstance(event, dict):
        return None
    return SpooledEvent(timestamp, event)


class Spool:
    """One process's spool for one destination. Made by :meth:`open`; thread-safe.

    Events are **handed out** to the sink in one order, and acknowledged in that order:

    - :meth:`append` writes every batch of events the reducer produces. It returns True
      when the caller should hand them to the sink now; False when they joined the
      **backlog** instead: the caller passed ``hand_out=False`` (the sink has no room),
      or older events are still waiting (a dead process's orphans, or earlier events
      spooled without being handed out), so that the oldest always go first.
    - :meth:`take` reads the backlog back, oldest first, as those events are handed out;
      call it whenever the sink has room, until it returns nothing.
    - :meth:`acknowledge` the events in the order they were handed out, each once, when
      the sink delivered it or gave up on it for good (a permanent refusal). Events the
      sink did not deliver because the process is exiting are not acknowledged: the next
      process sends them.
    - :meth:`close` at exit (the kernel releases the locks anyway if the process dies).

    No method raises: a failing disk turns the spool into an in-memory one, with one
    warning; :meth:`append` then hands every batch out.
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        max_bytes: int,
        on_drop: Callable[[int], None] | None = None,
        warning: str | None = None,
    ) -> None:
        """Use :meth:`open`."""
        self._directory = directory
        self._max_bytes = max(int(max_bytes), 1)
        self._segment_limit = max(1, min(self._max_bytes // 8, _MAX_SEGMENT_BYTES))
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._in_memory = directory is None
        self._warned = False
        self._closed = False
        self._current: _Segment | None = None
        self._held: list[_Segment] = []  # own and claimed segments, oldest first
        self._pending: collections.deque[_Pending] = collections.deque()
        self._pending_events = 0
        self._bytes = 0
        self._backlog = 0  # bytes of held segments not yet handed out
        self._more_orphans = False  # orphans left unclaimed by the last claim
        self._dropped = 0
        self._unreported_drops = 0
        self._not_spooled = 0
        self._truncated = 0
        self._corrupt = 0
        if warning is not None:
            self._warn(warning)

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        destination: str,
        *,
        root: Path | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        label: str = "",
        on_drop: Callable[[int], None] | None = None,
    ) -> Spool:
        """The spool of ``destination`` under ``root`` (default: the user's cache folder),
        with every orphaned segment of that destination claimed (they are the backlog).

        ``destination`` keys the partition: events spooled under one key are only ever
        handed back under the same key. It is hashed, never written; put in it everything
        that decides where events go (sink, endpoint, account), and nothing secret in
        ``label``, which is written for people to read. ``max_bytes`` bounds the segments
        this process holds; ``on_drop(count)`` is called (outside the spool's lock) when
        events that were never handed out are dropped to keep that bound, oldest first.
        Never raises: an unusable directory gives an in-memory spool and one warning.
        """
        folder: Path | None = None
        if sys.platform == "win32":
            return cls(None, max_bytes=max_bytes, warning="file locking is not available")
        try:
            base = root if root is not None else default_spool_directory()
            folder = base / destination_directory_name(destination)
            _make_directory(folder)
            label_path = folder / _LABEL_FILE
            if not label_path.exists():
                temporary = folder / f".{_LABEL_FILE}.{secrets.token_hex(4)}{_NEW_SUFFIX}"
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
                with open(descriptor, "w", encoding="utf-8", errors="replace") as stream:
                    stream.write(label + "\n")
                os.replace(temporary, label_path)
        except (OSError, _SpoolUnusableError, ImportError, ValueError) as error:
            return cls(None, max_bytes=max_bytes, warning=f"{folder or root}: {error}")
        spool = cls(folder, max_bytes=max_bytes, on_drop=on_drop)
        spool.claim_orphans()
        return spool

    def claim_orphans(self) -> int:
        """Claim the orphaned segments of this destination (those whose lock can be
        taken) into the backlog; return how many. :meth:`open` does it; call again to
        pick up the segments of processes that died since."""
        with self._lock:
            if self._closed or self._directory is None:
                return 0
            try:
                claimed = self._claim()
            except OSError as error:
                self._fail(error)
                claimed = 0
        self._report_drops()
        return claimed

    def _claim(self) -> int:
        assert self._directory is not None
        held = {segment.path for segment in self._held}
        claimed = 0
        self._more_orphans = False
        names = sorted(os.listdir(self._directory))
        present = set(names)
        now = time.time()
        for name in names:
            path = self._directory / name
            if name.endswith(_NEW_SUFFIX):
                self._remove_stale_new(path, now)
            elif name.endswith(_ACK_SUFFIX):
                if name[: -len(_ACK_SUFFIX)] + _SEGMENT_SUFFIX not in present:
                    path.unlink(missing_ok=True)  # left by a finish cut short
            elif name.endswith(_SEGMENT_SUFFIX) and path not in held:
                if claimed >= _MAX_CLAIMED:
                    self._more_orphans = True
                    break
                fd = _lock_if_orphaned(path)
                if fd is None:
                    continue
                size = os.fstat(fd).st_size
                segment = _Segment(path, fd, size, 0, own=False)
                segment.acked = segment.read_offset = _read_ack(segment.ack_path, size)
                self._held.append(segment)
                self._bytes += size
                self._backlog += size - segment.read_offset
                if segment.acked >= size:
                    self._finish(segment)
                    continue
                claimed += 1
        # Oldest first: the names start with the creation time.
        self._held.sort(key=lambda segment: segment.path.name)
        self._make_room(0)
        return claimed

    @staticmethod
    def _remove_stale_new(path: Path, now: float) -> None:
        try:
            if now - path.stat().st_mtime < _STALE_NEW_SECONDS:
                return
        except OSError:
            return
        fd = _lock_if_orphaned(path)
        if fd is not None:
            try:
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)

    # --- the live path ---------------------------------------------------------------------

    def append(
        self,
        events: Sequence[SpoolableEvent],
        timestamp_ns: int,
        *,
        hand_out: bool = True,
        timestamps: Sequence[int] | None = None,
    ) -> bool:
        """Write ``events`` (typed events, or their wire objects) produced at
        ``timestamp_ns`` (or each at its own of ``timestamps``), with one write. True:
        hand them to the sink now (they count as handed out); False: they joined the
        backlog, and :meth:`take` returns them."""
        count = len(events)
        if not count:
            return True
        with self._lock:
            if self._closed:
                return True
            handed_out = self._append(events, timestamp_ns, hand_out=hand_out, times=timestamps)
        self._report_drops()
        return handed_out

    def _append(
        self,
        events: Sequence[SpoolableEvent],
        timestamp_ns: int,
        *,
        hand_out: bool,
        times: Sequence[int] | None = None,
    ) -> bool:
        count = len(events)
        if self._in_memory:
            self._not_spooled += count
            self._hand_out(None, None, count)
            return True
        if times is None:
            lines = self._encode(events, timestamp_ns)
        else:
            lines = []
            start = 0
            for end in range(1, count + 1):  # one run of equal timestamps at a time
                if end == count or times[end] != times[start]:
                    lines += self._encode(events[start:end], times[start])
                    start = end
        data = "".join(lines).encode("ascii")
        try:
            self._make_room(len(data))
            segment = self._writable_segment()
            start = segment.size
            assert segment.file is not None
            try:
                _write_all(segment.file, data)
            except OSError:
                self._cut_back(segment, start)
                raise
        except OSError as error:
            self._fail(error)
            self._not_spooled += count
            self._hand_out(None, None, count)
            return True
        segment.size = start + len(data)
        self._bytes += len(data)
        if segment.size >= self._segment_limit:
            self._current = None  # the next append starts a new segment
        if not hand_out or self._backlog or self._more_orphans:
            self._backlog += len(data)
            return False
        ends: list[int] = []
        end = start
        for line in lines:
            end += len(line)  # ASCII: one character, one byte
            ends.append(end)
        segment.read_offset = end
        self._hand_out(segment, ends, count)
        return True

    def _hand_out(self, segment: _Segment | None, ends: list[int] | None, count: int) -> None:
        if segment is not None:
            segment.pending += count
        self._pending_events += count
        self._pending.append(_Pending(segment, ends, count))

    def _encode(self, events: Sequence[SpoolableEvent], timestamp_ns: int) -> list[str]:
        prefix = f'{{"time_unix_nano":{int(timestamp_ns)},"event":'
        encode = _encode_event
        try:
            return [f"{prefix}{encode(event)}}}\n" for event in events]
        except (TypeError, ValueError, RecursionError):
            pass
        lines: list[str] = []
        for event in events:
            try:
                lines.append(f"{prefix}{encode(event)}}}\n")
            except (TypeError, ValueError, RecursionError):
                # Kept in order as an empty entry: the sink still acknowledges it.
                self._not_spooled += 1
                lines.append("")
        return lines

    def _writable_segment(self) -> _Segment:
        if self._current is not None and not self._current.deleted:
            return self._current
        assert self._directory is not None
        for _ in range(3):
            name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
            temporary = self._directory / f".{name}{_NEW_SUFFIX}"
            fd = os.open(temporary, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL | os.O_APPEND, _FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(temporary, self._directory / f"{name}{_SEGMENT_SUFFIX}")
            except FileNotFoundError:  # removed as stale in between: try another name
                os.close(fd)
                continue
            except OSError:
                os.close(fd)
                temporary.unlink(missing_ok=True)
                raise
            segment = _Segment(self._directory / f"{name}{_SEGMENT_SUFFIX}", fd, 0, 0, own=True)
            segment.file = _open_append(fd)
            self._held.append(segment)
            self._current = segment
            return segment
        raise OSError(errno.EEXIST, "could not create a spool segment")

    @staticmethod
    def _cut_back(segment: _Segment, size: int) -> None:
        """Remove what a failed write left, so no torn line stays behind; if even that
        fails, readers skip the torn line and nothing is ever written after it."""
        with contextlib.suppress(OSError):
            os.ftruncate(segment.fd, size)

    def acknowledge(self, count: int) -> None:
        """The next ``count`` events, in the order they were handed out, are settled:
        persist it (one small write per segment touched) and delete the segments that
        are settled in full."""
        with self._lock:
            if self._closed:  # the segments may belong to another process by now
                return
            touched: dict[int, _Segment] = {}
            while count > 0 and self._pending:
                entry = self._pending[0]
                taken = min(count, entry.count - entry.done)
                entry.done += taken
                count -= taken
                self._pending_events -= taken
                segment = entry.segment
                if segment is not None and entry.ends is not None:
                    segment.pending -= taken
                    segment.acked = max(segment.acked, entry.ends[entry.done - 1])
                    touched[id(segment)] = segment
                if entry.done == entry.count:
                    self._pending.popleft()
            for segment in touched.values():
                if segment.deleted:
                    continue
                try:
                    if self._settled(segment):
                        self._finish(segment)
                    else:
                        self._write_ack(segment)
                except OSError as error:
                    self._fail(error)

    def _settled(self, segment: _Segment) -> bool:
        """Everything in it was handed out and acknowledged, and no more will be written."""
        return (
            not segment.pending
            and segment.read_offset >= segment.size
            and segment is not self._current
            and not segment.unreadable
        )

    def _write_ack(self, segment: _Segment) -> None:
        if segment.ack_fd < 0:
            segment.ack_fd = os.open(
                segment.ack_path,
                os.O_WRONLY | os.O_CREAT | _NO_INHERIT | _NO_LINK,
                _FILE_MODE,
            )
        # Fixed width: one small write replaces the previous value in place.
        os.pwrite(segment.ack_fd, b"%020d\n" % segment.acked, 0)

    def _finish(self, segment: _Segment) -> None:
        """Delete a settled (or dropped) segment while still holding its lock: the segment
        first, so a claimer that was waiting for the lock sees it gone."""
        if segment.deleted:
            return
        segment.deleted = True
        try:
            segment.path.unlink(missing_ok=True)
            segment.ack_path.unlink(missing_ok=True)
        finally:
            self._forget(segment)

    def _forget(self, segment: _Segment) -> None:
        """Release a segment and stop counting it."""
        self._release(segment)
        if segment in self._held:
            self._held.remove(segment)
            self._bytes -= segment.size
            if not segment.unreadable:
                self._backlog -= max(segment.size - segment.read_offset, 0)
        if segment is self._current:
            self._current = None

    @staticmethod
    def _release(segment: _Segment) -> None:
        if segment.file is not None:
            segment.file.close()
            segment.file = None
        for fd in (segment.ack_fd, segment.fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        segment.ack_fd = segment.fd = -1

    def _make_room(self, incoming: int) -> None:
        """Drop the oldest segments until ``incoming`` more bytes fit in the bound; count
        the events in them that were never handed out."""
        while self._held and self._bytes + incoming > self._max_bytes:
            oldest = self._held[0]
            start = oldest.read_offset
            length = max(oldest.size - start, 0)
            data = os.pread(oldest.fd, length, start) if oldest.fd >= 0 and length else b""
            whole, torn = _count_lines(data)
            self._dropped += whole
            self._unreported_drops += whole
            self._truncated += torn
            self._finish(oldest)

    def _report_drops(self) -> None:
        if self._on_drop is None or not self._unreported_drops:
            return
        with self._lock:
            count, self._unreported_drops = self._unreported_drops, 0
        if count:
            try:
                self._on_drop(count)
            except Exception:
                log_internal_error("spool_on_drop", "reporting the spool's dropped events")

    # --- the backlog -----------------------------------------------------------------------

    @property
    def backlog(self) -> bool:
        """True while spooled events wait to be handed out through :meth:`take`."""
        return self._backlog > 0 or self._more_orphans

    def take(self, max_events: int) -> list[SpooledEvent]:
        """Up to ``max_events`` events of the backlog, oldest first (orphans of dead
        processes, then events appended without being handed out); empty when there are
        none. They count as handed out: acknowledge them in the order taken."""
        taken: list[SpooledEvent] = []
        while True:
            with self._lock:
                self._take_held(max_events, taken)
                reclaim = (
                    len(taken) < max_events
                    and self._more_orphans
                    and not any(
                        not segment.own and segment.read_offset < segment.size
                        for segment in self._held
                        if not segment.unreadable
                    )
                )
                if reclaim:  # the claimed orphans are read: claim the next ones
                    try:
                        self._claim()
                    except OSError as error:
                        self._fail(error)
                        self._more_orphans = False
            self._report_drops()
            if not reclaim:
                return taken

    def _take_held(self, max_events: int, taken: list[SpooledEvent]) -> None:
        for segment in list(self._held):
            if len(taken) >= max_events or (segment.own and self._more_orphans):
                return  # done, or older orphans are still to be claimed
            while (
                len(taken) < max_events
                and segment.read_offset < segment.size
                and not segment.unreadable
            ):
                try:
                    self._read(segment, max_events - len(taken), taken)
                except OSError as error:
                    # Unreadable (EIO): never read nor deleted here again; the next process
                    # tries once this one has closed.
                    _logger.warning("codex_telemetry: reading %s failed: %s", segment.path, error)
                    segment.unreadable = True
                    self._backlog -= segment.size - segment.read_offset
                    break
            if not segment.deleted and self._settled(segment):
                try:
                    self._finish(segment)
                except OSError as error:
                    self._fail(error)

    def _read(self, segment: _Segment, limit: int, out: list[SpooledEvent]) -> None:
        chunk = _READ_CHUNK
        while True:
            start = segment.read_offset
            length = min(chunk, segment.size - start)
            data = os.pread(segment.fd, length, start)
            if len(data) < length:  # shorter than when claimed (cut by hand)
                self._bytes -= segment.size - (start + len(data))
                self._backlog -= segment.size - (start + len(data))
                segment.size = start + len(data)
            cut = data.rfind(b"\n") + 1
            if cut or start + len(data) >= segment.size:
                break
            chunk *= 2  # a line longer than the chunk: read more
        events: list[SpooledEvent] = []
        ends: list[int] = []
        offset = start
        lines = data[:cut].split(b"\n")
        lines.pop()  # after the last newline
        for line in lines:
            if len(events) >= limit:
                break
            offset += len(line) + 1
            event = _parse_line(line)
            if event is None:
                self._corrupt += 1
                continue
            events.append(event)
            ends.append(offset)
        at_end = start + len(data) >= segment.size
        if offset == start + cut and cut < len(data) and at_end:
            # The rest is a torn last line: a crash mid-write. Skip it.
            self._truncated += 1
            offset = start + len(data)
        segment.read_offset = offset
        self._backlog -= offset - start
        if events:
            self._hand_out(segment, ends, len(events))
            out.extend(events)

    # --- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release every lock; delete the segments settled in full. What is left is the
        next process's to send. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._current = None
            for segment in list(self._held):
                try:
                    if self._settled(segment):
                        self._finish(segment)
                    else:
                        self._release(segment)
                except OSError:
                    self._release(segment)
            self._held.clear()

    def unsettled_events(self) -> int:
        """Events on disk not yet acknowledged: handed out and pending, and the backlog's
        (read to count them: call it once, at the end). In memory: only the pending."""
        with self._lock:
            count = self._pending_events
            if self._in_memory and self._directory is None:
                return count
            for segment in self._held:
                if segment.fd < 0 or segment.unreadable or segment.read_offset >= segment.size:
                    continue
                try:
                    data = os.pread(
                        segment.fd, segment.size - segment.read_offset, segment.read_offset
                    )
                except OSError:
                    continue
                count += _count_lines(data)[0]
            return count

    def close_after_fork(self) -> None:
        """In a forked child: forget the inherited segments without touching them (the
        parent still owns them and their locks). Open a new spool in the child."""
        self._lock = threading.Lock()
        self._closed = True
        for segment in self._held:
            self._release(segment)
        self._held.clear()
        self._current = None

    def stats(self) -> SpoolStats:
        """A snapshot of the counters."""
        with self._lock:
            return SpoolStats(
                directory=self._directory,
                in_memory=self._in_memory,
                pending=self._pending_events,
                backlog_bytes=self._backlog,
                bytes_on_disk=self._bytes,
                dropped=self._dropped,
                not_spooled=self._not_spooled,
                truncated_lines=self._truncated,
                corrupt_lines=self._corrupt,
            )

    @property
    def in_memory(self) -> bool:
        """True once appends are no longer written to disk."""
        return self._in_memory

    def _fail(self, error: BaseException) -> None:
        """Stop writing (the segments already written stay held and acknowledged)."""
        self._in_memory = True
        self._current = None
        self._warn(f"{self._directory}: {error}")

    def _warn(self, reason: str) -> None:
        if self._warned:
            return
        self._warned = True
        _logger.warning(
            "codex_telemetry: the spool directory is unusable (%s); events are kept in "
            "memory only and are lost if the process ends before they are delivered; "
            "your program is unaffected",
            reason,
        )


# --- reading a spool, for diagnostics ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """One segment file: what it still holds to send."""

    path: Path
    events: int
    """Whole lines after the acknowledged offset."""
    bytes: int
    """Bytes after the acknowledged offset."""
    oldest_timestamp_ns: int | None
    """When the first of those events was produced."""
    owner: Literal["alive", "orphaned"]
    """``alive``: a running process holds it (writing or replaying); ``orphaned``: the
    next process that opens the destination sends it."""
    truncated_lines: int
    """1 when the segment ends with a torn line (a crash mid-write); it is skipped."""


@dataclass(frozen=True, slots=True)
class DestinationSummary:
    """The spooled events of one destination."""

    directory: Path
    label: str
    segments: tuple[SegmentSummary, ...]

    @property
    def events(self) -> int:
        """Events still to send, in every segment."""
        return sum(segment.events for segment in self.segments)

    @property
    def bytes(self) -> int:
        """Bytes still to send, in every segment."""
        return sum(segment.bytes for segment in self.segments)

    @property
    def oldest_timestamp_ns(self) -> int | None:
        """When the oldest event still to send was produced."""
        times = [s.oldest_timestamp_ns for s in self.segments if s.oldest_timestamp_ns is not None]
        return min(times) if times else None


def _probe_owner(path: Path) -> Literal["alive", "orphaned"]:
    # A shared lock: two listings never disturb each other. A process claiming at this
    # very moment leaves the segment to the next claim.
    try:
        fd = os.open(path, os.O_RDONLY | _NO_INHERIT | _NO_LINK)
    except OSError:
        return "orphaned"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return "alive"
    finally:
        os.close(fd)
    return "orphaned"


def _summarise_segment(path: Path) -> SegmentSummary | None:
    try:
        fd = os.open(path, os.O_RDONLY | _NO_INHERIT | _NO_LINK)
    except OSError:
        return None
    try:
        data = os.pread(fd, os.fstat(fd).st_size, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    acked = _read_ack(path.with_suffix(_ACK_SUFFIX), len(data))
    rest = data[acked:]
    whole, torn = _count_lines(rest)
    oldest: int | None = None
    for line in rest.split(b"\n")[:whole]:
        event = _parse_line(line)
        if event is not None:
            oldest = event.timestamp_ns
            break
    return SegmentSummary(path, whole, len(rest), oldest, _probe_owner(path), torn)


def _destination_folders(root: Path | None, destination: str | None) -> Iterator[Path]:
    base = root if root is not None else default_spool_directory()
    if destination is not None:
        folder = base / destination_directory_name(destination)
        if folder.is_dir():
            yield folder
        return
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return
    for name in names:
        if (base / name).is_dir():
            yield base / name


def list_spool(
    root: Path | None = None, *, destination: str | None = None
) -> list[DestinationSummary]:
    """What is spooled under ``root`` (default: the user's cache folder), per destination
    (or for ``destination`` alone): each segment's events and bytes still to send, its
    oldest event, and whether a living process holds it. Reads only; takes no lock for
    longer than a probe. An unreadable root or folder raises ``OSError``."""
    summaries: list[DestinationSummary] = []
    for folder in _destination_folders(root, destination):
        try:
            label = (folder / _LABEL_FILE).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            label = ""
        segments = [
            summary
            for name in sorted(os.listdir(folder))
            if name.endswith(_SEGMENT_SUFFIX)
            and (summary := _summarise_segment(folder / name)) is not None
        ]
        summaries.append(DestinationSummary(folder, label, tuple(segments)))
    return summaries


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What :func:`purge_spool` deleted (events and bytes not yet acknowledged)."""

    segments: int
    events: int
    bytes: int


def purge_spool(root: Path | None = None, *, destination: str | None = None) -> PurgeResult:
    """Delete the orphaned segments under ``root`` (of ``destination`` alone, if given).
    Segments a living process holds are left alone: it owns them."""
    segments = events = size = 0
    for folder in _destination_folders(root, destination):
        for name in sorted(os.listdir(folder)):
            if not name.endswith(_SEGMENT_SUFFIX):
                continue
            path = folder / name
            fd = _lock_if_orphaned(path)
            if fd is None:
                continue
            try:
                data = os.pread(fd, os.fstat(fd).st_size, 0)
                rest = data[_read_ack(path.with_suffix(_ACK_SUFFIX), len(data)) :]
                path.unlink(missing_ok=True)
                path.with_suffix(_ACK_SUFFIX).unlink(missing_ok=True)
            finally:
                os.close(fd)
            segments += 1
            events += _count_lines(rest)[0]
            size += len(rest)
    return PurgeResult(segments, events, size)


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What :func:`drain_orphans` did."""

    delivered: int
    """Events the send callable accepted (and that were acknowledged)."""
    stopped_early: bool
    """True when a send returned False: the rest stays spooled."""
    stats: SpoolStats


def drain_orphans(
    send: Callable[[Sequence[SpooledEvent]], bool],
    *,
    destination: str,
    root: Path | None = None,
    batch_size: int = 512,
) -> DrainResult:
    """Deliver the orphaned events of ``destination`` through ``send``, oldest first, in
    batches of at most ``batch_size``. ``send`` returns True once a batch is delivered
    (it is then acknowledged) and False to stop; what was not acknowledged stays spooled,
    also when ``send`` raises (the exception propagates). Nothing is dropped for size,
    and nothing is created when the destination has no folder.
    """
    base = root if root is not None else default_spool_directory()
    if not (base / destination_directory_name(destination)).is_dir():
        nothing = SpoolStats(
            directory=None,
            in_memory=False,
            pending=0,
            backlog_bytes=0,
            bytes_on_disk=0,
            dropped=0,
            not_spooled=0,
            truncated_lines=0,
            corrupt_lines=0,
        )
        return DrainResult(0, False, nothing)
    spool = Spool.open(destination, root=base, max_bytes=sys.maxsize)
    delivered = 0
    stopped = False
    try:
        while batch := spool.take(batch_size):
            if not send(batch):
                stopped = True
                break
            spool.acknowledge(len(batch))
            delivered += len(batch)
    finally:
        spool.close()
    return DrainResult(delivered, stopped, spool.stats())


# --- back to typed events ------------------------------------------------------------------


def _event_classes() -> dict[str, type[AnalyticsEvent]]:
    found: dict[str, type[AnalyticsEvent]] = {}
    stack: list[type[AnalyticsEvent]] = [AnalyticsEvent]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        # dataclass(slots=True) replaces each class; the one replaced can linger among
        # the subclasses until collected: keep only the class its module names.
        module = sys.modules.get(cls.__module__)
        event_type = cls.__dict__.get("event_type")
        if isinstance(event_type, str) and getattr(module, cls.__qualname__, None) is cls:
            found[cls.event_type] = cls
    return found


_EVENT_CLASSES: dict[str, type[AnalyticsEvent]] = {}
# A connection's client and runtime, rebuilt once: the same object for every event of
# the connection, as the reducer makes them (the OTLP encoder encodes it once).
_rebuilt: dict[tuple[type, tuple[tuple[str, Any], ...]], object] = {}


def _shared_object(cls: type, values: Mapping[str, Any]) -> Any:
    key = (cls, tuple(values.items()))
    try:
        found = _rebuilt.get(key)
    except TypeError:  # an unhashable value: not one of ours, let the class refuse it
        return cls(**values)
    if found is None:
        found = cls(**values)
        if len(_rebuilt) >= _SHARED_LIMIT:
            _rebuilt.clear()
        _rebuilt[key] = found
    return found


def event_from_wire(wire: Mapping[str, Any]) -> AnalyticsEvent:
    """The typed event whose ``to_dict()`` is ``wire``; ``ValueError`` if it is not one
    (an unknown type, or keys other than its class's, in another order)."""
    if not _EVENT_CLASSES:
        _EVENT_CLASSES.update(_event_classes())
    cls = _EVENT_CLASSES.get(str(wire.get("event_type")))
    params = wire.get("event_params")
    if cls is None or not isinstance(params, Mapping):
        raise ValueError(f"not an analytics event: {wire.get('event_type')!r}")
    top, names = _wire_keys(cls)
    values: dict[str, Any] = {}
    try:
        if tuple(wire) != top or tuple(params) != names:
            raise TypeError("its keys are not the event's")
        for name in cls.top_level_fields:
            values[name] = wire[name]
        for name, given in params.items():
            kind = _SHARED_FIELDS.get(name)
            value = given
            if kind is not None and type(given) is dict:
                if tuple(given) != field_names(kind):
                    raise TypeError(f"{name} does not hold the keys of a {kind.__name__}")
                value = _shared_object(kind, given)
            elif name == "connector_ids" and type(given) is list:
                value = tuple(given)
            values[name] = value
        return cast(Callable[..., AnalyticsEvent], cls)(**values)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a {cls.event_type} event: {error}") from error


_SHARED_FIELDS: Final[dict[str, type]] = {
    "app_server_client": AppServerClient,
    "runtime": RuntimeMetadata,
}
_keys: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _wire_keys(cls: type[AnalyticsEvent]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys of ``cls``'s wire object, in order: top level, and ``event_params``."""
    keys = _keys.get(cls)
    if keys is None:
        top = cls.top_level_fields
        keys = _keys[cls] = (("event_type", *top, "event_params"), params_fields(cls))
    return keys
