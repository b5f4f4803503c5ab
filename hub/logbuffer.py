"""The hub's recent WARNING and worse log records, kept in memory for ``GET /api/error_log``.

One handler on the root logger for the process, attached while at least one HTTP server
runs (``attach``/``detach`` count). Repeats of the last record (same logger, level and
text) are counted rather than stored again, so a flood of one warning keeps the others.
Credentials in URLs are redacted when a record is taken; the API redacts the hub's
``secrets.yaml`` values as well when it serves them.
"""

from __future__ import annotations

import collections
import logging
import threading
import traceback
from datetime import UTC, datetime
from typing import Any, Final

from hub.redact import redact_text

MAX_RECORDS: Final = 200
MAX_MESSAGE: Final = 4096
MAX_EXCEPTION: Final = 16384


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ... (cut off)"


class LogBuffer(logging.Handler):
    """A ring of the most recent WARNING+ records (newest last), repeats counted."""

    def __init__(self, size: int = MAX_RECORDS) -> None:
        super().__init__(logging.WARNING)
        self._records: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one record (called by logging, from any thread)."""
        try:
            message = _cut(redact_text(record.getMessage()), MAX_MESSAGE)
            exception: str | None = None
            if record.exc_info and record.exc_info[1] is not None:
                exception = "".join(traceback.format_exception(*record.exc_info))
            elif record.exc_text:
                exception = record.exc_text
            if exception is not None:
                exception = _cut(redact_text(exception), MAX_EXCEPTION)
            with self._guard:
                last = self._records[-1] if self._records else None
                if (
                    last is not None
                    and last["logger"] == record.name
                    and last["level"] == record.levelname
                    and last["message"] == message
                    and last["exception"] == exception
                ):
                    last["count"] += 1
                    last["created"] = record.created
                    return
                self._records.append(
                    {
                        "created": record.created,
                        "level": record.levelname,
                        "logger": record.name,
                        "message": message,
                        "exception": exception,
                        "count": 1,
                    }
                )
        except Exception:  # logging must never raise into the code that logs
            self.handleError(record)

    def records(self) -> list[dict[str, Any]]:
        """The kept records, newest first, with ISO 8601 UTC times."""
        with self._guard:
            kept = [dict(entry) for entry in self._records]
        kept.reverse()
        for entry in kept:
            created = entry.pop("created")
            entry["time"] = datetime.fromtimestamp(created, UTC).isoformat()
        return kept

    def clear(self) -> None:
        """Forget every record."""
        with self._guard:
            self._records.clear()


_lock = threading.Lock()
_buffer: LogBuffer | None = None
_users = 0


def attach() -> LogBuffer:
    """Start keeping records (a running HTTP server calls this; detach when it stops)."""
    global _buffer, _users  # noqa: PLW0603 (one handler per process, as logging's own)
    with _lock:
        if _buffer is None:
            _buffer = LogBuffer()
        if _users == 0:
            logging.getLogger().addHandler(_buffer)
        _users += 1
        return _buffer


def detach() -> None:
    """Stop keeping records once no server needs them any more."""
    global _users  # noqa: PLW0603
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0 and _buffer is not None:
            logging.getLogger().removeHandler(_buffer)


def log_buffer() -> LogBuffer | None:
    """The buffer while attached, else None."""
    with _lock:
        return _buffer if _users else None
