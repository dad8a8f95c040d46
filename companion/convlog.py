"""The conversation log: one JSON line per finished turn, safe against crashes.

Subscribe a :class:`ConversationLog` to the loop's :class:`~companion.stages.EventBus`.
Each line is written, flushed and fsynced before the next turn, so a crash or power
cut loses at most the turn in flight. When a line would push the file past
``max_bytes`` the file is rotated: ``companion.log`` -> ``companion.log.1`` ->
``companion.log.2`` ... keeping ``backups`` old files.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from companion.messages import Event, TurnFinished, TurnRecord

_log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_BACKUPS = 3


def _local_now() -> datetime:
    return datetime.now().astimezone()


def turn_line(record: TurnRecord, when: datetime) -> str:
    """The JSON line for one turn (no newline)."""
    data: dict[str, object] = {
        "time": when.isoformat(timespec="milliseconds"),
        "turn": record.turn,
        "persona": record.persona,
        "heard": record.heard,
        "reply": record.reply,
        "spoken": record.spoken,
        "timings_ms": {k: round(v, 1) for k, v in record.timings_ms.items()},
    }
    if record.error:
        data["error"] = record.error
    return json.dumps(data, ensure_ascii=False)


class ConversationLog:
    """Appends finished turns to ``path`` as JSON lines, rotating by size."""

    def __init__(
        self,
        path: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        now: Callable[[], datetime] = _local_now,
    ) -> None:
        if max_bytes <= 0 or backups < 0:
            raise ValueError("max_bytes must be above 0 and backups 0 or more")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._now = now
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._failed = False

    def __call__(self, event: Event) -> None:
        """EventBus listener: logs :class:`TurnFinished`, ignores everything else."""
        if isinstance(event, TurnFinished):
            self.write(event.record)

    def write(self, record: TurnRecord) -> bool:
        """Append one turn; True when it is on disk. Errors are logged, never raised."""
        data = (turn_line(record, self._now()) + "\n").encode()
        with self._lock:
            try:
                fd = self._open()
                size = os.fstat(fd).st_size
                if size > 0 and size + len(data) > self.max_bytes:
                    self._rotate()
                    fd = self._open()
                _write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                if not self._failed:
                    _log.error("cannot write the conversation log %s: %s", self.path, exc)
                    self._failed = True
                self._close_fd()
                return False
            if self._failed:
                _log.info("conversation log %s is writable again", self.path)
                self._failed = False
            return True

    def backup_path(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def close(self) -> None:
        with self._lock:
            self._close_fd()

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        return self._fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _rotate(self) -> None:
        self._close_fd()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            self.backup_path(self.backups).unlink(missing_ok=True)
            for n in range(self.backups - 1, 0, -1):
                if self.backup_path(n).exists():
                    self.backup_path(n).replace(self.backup_path(n + 1))
            self.path.replace(self.backup_path(1))
        _fsync_dir(self.path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
