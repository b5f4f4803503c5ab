"""The Recorder: queues what happens in the hub and commits it at most a second later.

The state_changed listener only appends the new state to a list. A background task hands
the list to the backend, where it is written in one transaction. Commits run on a deadline
that starts with the oldest row waiting: a commit starts once that row is half a
``commit_interval`` old, which leaves the other half for the write itself (and for the
previous commit, when the database is slow), so a row is on disk within ``commit_interval``
of happening under any load the database keeps up with. With nothing queued, nothing runs.

When the disk cannot keep up, state changes and events beyond ``max_backlog`` are dropped
and counted; sessions, port status changes, outages, exclusions, alerts, security events
and audit entries are queued apart and never dropped. A row no column can hold is logged,
counted and skipped while the rest of its batch commits. A commit that fails for the
database's sake (full, read-only, unreachable) is retried with backoff, nothing lost, and
the writer reports itself degraded, then failed, in /api/health until a commit succeeds.

Query times are POSIX seconds (float) or aware datetimes; results carry POSIX seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from hub.charger import (
    EVENT_CHARGER,
    EVENT_SESSION_RECORD,
    ChargerEventKind,
    register_history_flush,
)
from hub.const import EVENT_AUDIT, EVENT_EXCLUSION, EVENT_OUTAGE, EVENT_STATE_CHANGED, MATCH_ALL
from hub.core import Context, Event, Hub, ReadOnlyDict, State, Unsubscribe
from hub.security import EVENT_SECURITY, SecurityQuery
from hub.util import release_free_memory
from integrations.recorder.backend import (
    KIND_ALERT,
    KIND_AUDIT,
    KIND_EXCLUSION,
    KIND_EXCLUSION_DELETE,
    KIND_OUTAGE,
    KIND_PORT_STATUS,
    KIND_SECURITY,
    KIND_SESSION,
    Batch,
    RecorderBackend,
    RecorderError,
    Removed,
    Skipped,
    dumps,
)
from integrations.recorder.filters import ALERT_EVENTS, RecorderFilter
from integrations.recorder.schema import LONG_TABLES, SCHEMA_VERSION

if TYPE_CHECKING:
    from hub.plugins import HealthReporter

_LOGGER = logging.getLogger(__name__)

Time = float | datetime

DAY: Final = 86400.0
PURGE_BATCH: Final = 5000
BACKLOG_WARN_INTERVAL: Final = 60.0
DEFAULT_LIMIT: Final = 100
LARGE_BATCH: Final = 50_000
ALERT_ACTIVE: Final = "active"
# A commit starts when the oldest waiting row is this part of commit_interval old: the rest
# is for the write and the previous commit still running (measured: 40-330 ms at 3,000
# changes/s on a busy 2-core machine).
COMMIT_START: Final = 0.5
# Failed commits are retried after commit_interval, doubling up to RETRY_MAX seconds.
RETRY_MAX: Final = 10.0
# Consecutive failed commits after which the writer shows failed rather than degraded.
FAILED_AFTER: Final = 3
# A commit still running after this many seconds shows the writer failed (a hung disk, a
# server that does not answer, a lock held elsewhere).
STALLED_AFTER: Final = 30.0
# Skipped rows logged one by one per SKIP_LOG_WINDOW; beyond that they are only counted.
SKIP_LOG_BURST: Final = 20
SKIP_LOG_WINDOW: Final = 60.0


def to_ts(value: Time | None, default: float | None = None) -> float:
    """A POSIX timestamp from a float or an aware datetime (naive ones are taken as UTC)."""
    if value is None:
        if default is None:
            raise ValueError("a time is required")
        return default
    if isinstance(value, datetime):
        if value.tzinfo is None:
            from datetime import UTC

            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def _loads_object(text: Any) -> dict[str, Any] | None:
    """A JSON object column's value (None for none, or for what is not an object)."""
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _f(value: Any) -> Any:
    """A float column's value: None for what is no number; a number too large for a float is
    kept as it is, for the row check to refuse."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:
        return value
    except (TypeError, ValueError):
        return None


def _i(value: Any) -> Any:
    """An integer column's value: None for what is no number; inf and NaN are kept as they
    are, for the row check to refuse."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _in(column: str, values: Sequence[Any]) -> str:
    return f"{column} IN ({', '.join('?' * len(values))})"


class Recorder:
    """The hub's history store: writes in the background, async queries."""

    def __init__(
        self,
        hub: Hub,
        backend: RecorderBackend,
        *,
        commit_interval: float = 1.0,
        keep_days: float = 30.0,
        domain_keep_days: Mapping[str, float] | None = None,
        long_keep_days: float = 731.0,
        max_backlog: int = 200_000,
        record_filter: RecorderFilter | None = None,
        now: Callable[[], float] = time.time,
        health: HealthReporter | None = None,
    ) -> None:
        self.hub = hub
        self.backend = backend
        self.commit_interval = commit_interval
        self.keep_days = keep_days
        self.domain_keep_days = dict(domain_keep_days or {})
        self.long_keep_days = long_keep_days
        self.max_backlog = max_backlog
        self.filter = record_filter or RecorderFilter({}, {})
        self.now = now
        self.health = health
        # State changes and events waiting for the writer; a list swapped at each commit.
        self._pending: list[Any] = []
        self._priority: list[tuple[str, tuple[Any, ...]]] = []
        self._in_flight = 0
        self._room = max_backlog
        # When the next commit is due (time.monotonic()); None while nothing waits.
        self._due: float | None = None
        self._start_after = commit_interval * COMMIT_START
        self.dropped = 0
        self.committed = 0
        self.commits = 0
        # Rows left out of their commit, by (table, reason).
        self.skipped: dict[tuple[str, str], int] = {}
        self.failed_commits = 0
        self.failures = 0
        self.last_commit_error: str | None = None
        self._dropping = False
        self._stalled = False
        self._last_warning = 0.0
        self._skip_window = -SKIP_LOG_WINDOW
        self._skip_logged = 0
        self._wake = asyncio.Event()
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._unsubs: list[Unsubscribe] = []
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._attr_cache: dict[Any, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<Recorder {self.backend!r} backlog={self.backlog} dropped={self.dropped}>"

    @property
    def backlog(self) -> int:
        """Rows waiting to be committed (queued and being written)."""
        return len(self._pending) + len(self._priority) + self._in_flight

    # Lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database, listen to the bus and start committing."""
        await self.backend.open(SCHEMA_VERSION)
        bus = self.hub.bus
        entity_filter = self.filter.entity if self.filter.filters_entities else None
        self._unsubs = [
            bus.listen(
                EVENT_STATE_CHANGED,
                self._on_state_changed,
                None if entity_filter is None else lambda data: entity_filter(data["entity_id"]),
            ),
            bus.listen(MATCH_ALL, self._on_event),
            bus.listen(EVENT_CHARGER, self._on_charger_event),
            bus.listen(EVENT_SESSION_RECORD, self._on_session_record),
            # Drivers with durable stores of their own (OCPP) learn what is on disk here.
            register_history_flush(self.hub, self.flush),
            bus.listen(EVENT_OUTAGE, self._on_outage),
            bus.listen(EVENT_EXCLUSION, self._on_exclusion),
            bus.listen(EVENT_SECURITY, self._on_security),
            bus.listen(EVENT_AUDIT, self._on_audit),
            *(bus.listen(event_type, self._on_alert) for event_type in ALERT_EVENTS),
        ]
        self._running = True
        self._task = self.hub.create_background_task(self._commit_loop(), "recorder commits")
        self._task.add_done_callback(self._writer_done)

    async def stop(self) -> None:
        """Stop listening, commit everything queued and close the database."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs = []
        self._running = False
        self._wake.set()
        if self._task is not None:
            await asyncio.shield(self._task)
            self._task = None
        await self._commit()
        await self.backend.close()

    # Hot path ------------------------------------------------------------------------

    def _arm(self) -> None:
        """Start the clock of the next commit: the first row is waiting."""
        self._due = time.monotonic() + self._start_after
        self._wake.set()

    def _on_state_changed(self, event: Event) -> None:
        pending = self._pending
        if len(pending) < self._room:
            if self._due is None:
                self._arm()
            # The new State alone: holding the Event would keep its data dict and the old
            # State alive until the commit, which in a burst of connecting chargers is
            # hundreds of thousands of objects (and RSS the allocator does not give back).
            data = event.data
            new_state = data["new_state"]
            if new_state is None:
                pending.append(Removed(data["entity_id"], event.time_fired_ts))
            else:
                # The context id is made here, on the loop: made lazily, it may not exist
                # yet when the writer thread builds the row (context_id NULL), and making it
                # there would race the loop making another.
                _made = new_state.context.id
                pending.append(new_state)
        else:
            self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        if not self._dropping:
            self._dropping = True
            self._report_health()
        now = time.monotonic()
        if now - self._last_warning >= BACKLOG_WARN_INTERVAL:
            self._last_warning = now
            _LOGGER.warning(
                "Recorder backlog of %s rows: the database cannot keep up; %s state changes"
                " and events dropped so far",
                self.backlog,
                self.dropped,
            )

    def _on_event(self, event: Event) -> None:
        event_type = event.event_type
        if not self.filter.event(event_type):
            return
        pending = self._pending
        if len(pending) >= self._room:
            self._drop()
            return
        if self._due is None:
            self._arm()
        try:
            data = dumps(dict(event.data)).decode()
        except (TypeError, ValueError) as err:
            _LOGGER.warning("Recorder cannot encode %s event data: %s", event_type, err)
            data = "{}"
        context = event.context
        pending.append(
            (event_type, data, str(event.origin), event.time_fired_ts, context.id, context.user_id)
        )

    # Rows never dropped --------------------------------------------------------------

    def _keep(self, kind: str, params: tuple[Any, ...]) -> None:
        if self._due is None:
            self._arm()
        self._priority.append((kind, params))

    def _on_charger_event(self, event: Event) -> None:
        data = event.data
        kind = data.get("kind")
        if kind in (ChargerEventKind.SESSION_STARTED, ChargerEventKind.SESSION_ENDED):
            self._keep_session(event, kind)
        elif kind == ChargerEventKind.STATUS and data.get(ChargerEventKind.STATUS) is not None:
            self._keep(
                KIND_PORT_STATUS,
                (
                    _f(data.get("time")) or event.time_fired_ts,
                    _s(data.get("station_id")),
                    str(data.get("device_id") or data.get("station_id")),
                    _i(data.get("port")),
                    str(data["status"]),
                    _s(data.get("previous")),
                    _s(data.get("error_code")),
                    _s(data.get("vendor_error_code")),
                ),
            )

    def _on_session_record(self, event: Event) -> None:
        self._keep_session(event, "session record")

    def _keep_session(self, event: Event, kind: str) -> None:
        data = event.data
        transaction_id = data.get("transaction_id")
        station_id = data.get("station_id")
        if transaction_id is None or station_id is None:
            _LOGGER.warning("Recorder: %s without station_id/transaction_id", kind)
            return
        self._keep(
            KIND_SESSION,
            (
                str(station_id),
                str(transaction_id),
                _s(data.get("device_id")),
                _i(data.get("port")),
                _s(data.get("charge_point_id")),
                _s(data.get("id_tag")),
                _f(data.get("started_at")),
                _f(data.get("stopped_at")),
                _f(data.get("energy_wh")),
                _f(data.get("peak_power_w")),
                _s(data.get("stop_reason")),
                _s(data.get("error_code")),
                event.time_fired_ts,
            ),
        )

    def _on_outage(self, event: Event) -> None:
        data = event.data
        start = _f(data.get("start"))
        if data.get("outage_id") is None or start is None:
            _LOGGER.warning("Recorder: outage without outage_id or start: %s", dict(data))
            return
        self._keep(
            KIND_OUTAGE,
            (
                str(data["outage_id"]),
                _s(data.get("port_id")),
                _s(data.get("station_id")),
                start,
                _f(data.get("end")),
                _s(data.get("cause")),
                event.time_fired_ts,
            ),
        )

    def _on_exclusion(self, event: Event) -> None:
        data = event.data
        if data.get("exclusion_id") is None:
            _LOGGER.warning("Recorder: exclusion without exclusion_id: %s", dict(data))
            return
        if data.get("deleted"):
            self._keep(KIND_EXCLUSION_DELETE, (str(data["exclusion_id"]),))
            return
        start = _f(data.get("start"))
        if start is None:
            _LOGGER.warning("Recorder: exclusion without start: %s", dict(data))
            return
        self._keep(
            KIND_EXCLUSION,
            (
                str(data["exclusion_id"]),
                _s(data.get("port_id")),
                _s(data.get("station_id")),
                start,
                _f(data.get("end")),
                _s(data.get("reason")),
                _s(data.get("note")),
                event.time_fired_ts,
            ),
        )

    def _on_alert(self, event: Event) -> None:
        data = event.data
        if data.get("id") is None:
            return
        self._keep(
            KIND_ALERT,
            (
                str(data["id"]),
                _s(data.get("key")),
                _s(data.get("severity")),
                _s(data.get("state")),
                _s(data.get("station_id")),
                _s(data.get("device_id")),
                _f(data.get("raised_at")),
                _f(data.get("resolved_at")),
                dumps(dict(data)).decode(),
                event.time_fired_ts,
            ),
        )

    def _on_security(self, event: Event) -> None:
        data = event.data
        self._keep(
            KIND_SECURITY,
            (
                _i(data.get("id")),
                _f(data.get("time")) or event.time_fired_ts,
                str(data.get("kind") or "unknown"),
                _s(data.get("severity")),
                _s(data.get("source")),
                _s(data.get("message")),
                _s(data.get("remote")),
                _s(data.get("charge_point_id")),
                dumps(data.get("data") or {}).decode(),
            ),
        )

    def _on_audit(self, event: Event) -> None:
        data = event.data
        self._keep(
            KIND_AUDIT,
            (
                _f(data.get("time")) or event.time_fired_ts,
                _s(data.get("user_id")),
                _s(data.get("username")),
                _s(data.get("source")),
                _s(data.get("action")),
                _s(data.get("target")),
                _s(data.get("result")),
                _s(data.get("context_id")) or event.context.id,
                dumps(data["data"]).decode() if data.get("data") else None,
            ),
        )

    # Commits -------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while self._running:
            due = self._due
            wait = None if due is None else due - time.monotonic()
            if wait is None or wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()
                continue
            try:
                await self._commit()
            except Exception as err:
                # Not the database (_commit handles that): the writer itself. It goes on.
                _LOGGER.exception("Recorder writer error")
                self._commit_failed(err)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        # Cancelled: the hub is stopping.
        if not self._running or task.cancelled():
            return
        reason = repr(task.exception())
        _LOGGER.error("Recorder writer stopped: %s", reason)
        if self.health is not None:
            self.health.failed(f"writer stopped: {reason}")

    async def _commit(self) -> None:
        """Write what is queued now in one transaction; tell flush() waiters."""
        items, self._pending = self._pending, []
        priority, self._priority = self._priority, []
        waiters, self._flush_waiters = self._flush_waiters, []
        self._due = None
        error: BaseException | None = None
        if items or priority:
            self._in_flight = len(items) + len(priority)
            self._room = max(0, self.max_backlog - len(items))
            watchdog = asyncio.get_running_loop().call_later(STALLED_AFTER, self._stall)
            try:
                try:
                    skipped = await self.backend.write(Batch(items, priority))
                finally:
                    watchdog.cancel()
                    self._stalled = False
            except Exception as err:
                error = err
                # Nothing is lost here: the rows go back to the front of the queue (state
                # changes and events within max_backlog, the rest always).
                room = max(0, self.max_backlog - len(self._pending))
                if len(items) > room:
                    self.dropped += len(items) - room
                    items = items[len(items) - room :]
                self._pending[:0] = items
                self._priority[:0] = priority
                self._commit_failed(err)
            else:
                self.committed += len(items) + len(priority) - len(skipped)
                self.commits += 1
                if len(items) >= LARGE_BATCH:
                    # A backlog written (a fleet connecting): its rows are freed now, and
                    # the allocator should give the memory back rather than keep it.
                    del items
                    release_free_memory()
                if skipped:
                    self._skip(skipped)
                if self.failures:
                    _LOGGER.warning(
                        "Recorder commits work again after %d failed; nothing was lost",
                        self.failures,
                    )
                self.failures = 0
                self.last_commit_error = None
                if self._dropping and len(self._pending) < self.max_backlog // 2:
                    self._dropping = False
                self._report_health()
            finally:
                self._in_flight = 0
                self._room = self.max_backlog
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(RecorderError(f"recorder commit failed: {error}"))

    def _commit_failed(self, err: BaseException) -> None:
        """Count a failed commit, schedule the retry and say so in /api/health."""
        self.failures += 1
        self.failed_commits += 1
        self.last_commit_error = f"{type(err).__name__}: {err}"
        delay = min(RETRY_MAX, self.commit_interval * 2 ** min(self.failures - 1, 16))
        if not self._flush_waiters:  # else flush() asked for the next attempt now
            self._due = time.monotonic() + delay
        _LOGGER.error(
            "Recorder commit failed (%d in a row), retrying in %.1f s: %s",
            self.failures,
            delay,
            self.last_commit_error,
        )
        self._report_health()

    def _stall(self) -> None:
        self._stalled = True
        _LOGGER.error("Recorder commit still running after %.0f s", STALLED_AFTER)
        self._report_health()

    def _report_health(self) -> None:
        health = self.health
        if health is None:
            return
        if self._stalled:
            health.failed(f"a commit has been running for over {STALLED_AFTER:.0f} s")
        elif self.failures >= FAILED_AFTER:
            health.failed(
                f"{self.failures} commits in a row failed, retrying; {self.backlog} rows"
                f" waiting: {self.last_commit_error}"
            )
        elif self.failures:
            health.degraded(f"commit failed, retrying: {self.last_commit_error}")
        elif self._dropping:
            health.degraded(
                f"the database cannot keep up: {self.dropped} state changes and events dropped"
            )
        else:
            health.ok()

    def _skip(self, skipped: list[Skipped]) -> None:
        """Count rows left out of a commit and log each (up to SKIP_LOG_BURST a minute)."""
        counts = self.skipped
        for row in skipped:
            key = (row.table, row.reason)
            counts[key] = counts.get(key, 0) + 1
        now = time.monotonic()
        if now - self._skip_window >= SKIP_LOG_WINDOW:
            self._skip_window = now
            self._skip_logged = 0
        for row in skipped:
            if self._skip_logged < SKIP_LOG_BURST:
                _LOGGER.warning(
                    "Recorder skipped a %s row the database cannot hold (%s): %s",
                    row.table,
                    row.reason,
                    row.detail,
                )
            elif self._skip_logged == SKIP_LOG_BURST:
                _LOGGER.warning(
                    "Recorder skips more rows; for %.0f s they are only counted"
                    " (evhub_recorder_rows_skipped_total)",
                    SKIP_LOG_WINDOW - (now - self._skip_window),
                )
            else:
                return
            self._skip_logged += 1

    async def flush(self) -> None:
        """Return once everything queued before the call is committed."""
        if not self._running:
            await self._commit()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(waiter)
        self._due = time.monotonic()
        self._wake.set()
        await waiter

    # Retention -----------------------------------------------------------------------

    async def purge(
        self, keep_days: float | None = None, long_keep_days: float | None = None
    ) -> dict[str, int]:
        """Delete history older than the retention, in small batches; return rows per table.

        keep_days overrides the retention of states (every domain) and events;
        long_keep_days that of sessions, port status, outages, exclusions, alerts, security
        events and audit entries (open outages and unresolved alerts are always kept).
        """
        now = self.now()
        short = self.keep_days if keep_days is None else keep_days
        long = self.long_keep_days if long_keep_days is None else long_keep_days
        removed: dict[str, int] = {}
        overrides = {} if keep_days is not None else self.domain_keep_days
        meta = await self.backend.fetch("SELECT metadata_id, entity_id FROM states_meta")
        by_domain: dict[str, list[int]] = {}
        for metadata_id, entity_id in meta:
            domain = entity_id.partition(".")[0]
            if domain in overrides:
                by_domain.setdefault(domain, []).append(int(metadata_id))
        special = [metadata_id for ids in by_domain.values() for metadata_id in ids]
        states = 0
        if special:
            where = f"last_updated_ts < ? AND NOT ({_in('metadata_id', special)})"
            states += await self._purge_table("states", where, [now - short * DAY, *special])
        else:
            states += await self._purge_table("states", "last_updated_ts < ?", [now - short * DAY])
        for domain, ids in by_domain.items():
            cutoff = now - overrides[domain] * DAY
            where = f"last_updated_ts < ? AND {_in('metadata_id', ids)}"
            states += await self._purge_table("states", where, [cutoff, *ids])
        removed["states"] = states
        removed["events"] = await self._purge_table(
            "events", "time_fired_ts < ?", [now - short * DAY]
        )
        for table, column in LONG_TABLES.items():
            # A NULL end (an open outage, a running session) compares as unknown: kept.
            removed[table] = await self._purge_table(table, f"{column} < ?", [now - long * DAY])
        orphans = 0
        while True:
            count = await self.backend.purge_orphans(PURGE_BATCH)
            orphans += count
            if count < PURGE_BATCH:
                break
            await asyncio.sleep(0)
        removed["state_attributes"] = orphans
        await self.backend.reclaim()
        self._attr_cache.clear()
        _LOGGER.info("Recorder purge removed %s", {k: v for k, v in removed.items() if v})
        return removed

    async def _purge_table(self, table: str, where: str, params: list[Any]) -> int:
        total = 0
        while True:
            count = await self.backend.delete_batch(table, where, params, PURGE_BATCH)
            total += count
            if count < PURGE_BATCH:
                return total
            # Let commits of new rows go between the batches.
            await asyncio.sleep(0)

    # Queries -------------------------------------------------------------------------

    def _attributes(self, attributes_id: Any, shared: str | None) -> dict[str, Any]:
        if shared is None:
            return {}
        cache = self._attr_cache
        found = cache.get(attributes_id)
        if found is None:
            if len(cache) > 10000:
                cache.clear()
            found = cache[attributes_id] = orjson.loads(shared)
        return dict(found)

    async def history(
        self, entity_ids: Iterable[str] | None, start: Time, end: Time | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Return each entity's states from start to end, oldest first.

        The first row of an entity is the state in force at start (recorded before it,
        with its own times) when there is one. Rows: state, attributes, last_changed,
        last_updated (POSIX seconds). Entities without rows are left out.
        """
        start_ts = to_ts(start)
        end_ts = to_ts(end, self.now())
        if entity_ids is None:
            meta = await self.backend.fetch("SELECT metadata_id, entity_id FROM states_meta")
        else:
            wanted = list(dict.fromkeys(entity_ids))
            if not wanted:
                return {}
            meta = await self.backend.fetch(
                "SELECT metadata_id, entity_id FROM states_meta WHERE " + _in("entity_id", wanted),
                wanted,
            )
        names = {int(metadata_id): entity_id for metadata_id, entity_id in meta}
        result: dict[str, list[dict[str, Any]]] = {}
        if not names:
            return result
        select = (
            "SELECT s.metadata_id, s.state, s.attributes_id, a.shared_attrs,"
            " s.last_changed_ts, s.last_updated_ts FROM states s"
            " LEFT JOIN state_attributes a ON a.attributes_id = s.attributes_id"
        )
        rows: list[tuple[Any, ...]] = []
        for metadata_id in names:
            rows.extend(
                await self.backend.fetch(
                    f"{select} WHERE s.metadata_id = ? AND s.last_updated_ts < ?"
                    " ORDER BY s.last_updated_ts DESC, s.state_id DESC LIMIT 1",
                    [metadata_id, start_ts],
                )
            )
        ids = list(names)
        rows.extend(
            await self.backend.fetch(
                f"{select} WHERE {_in('s.metadata_id', ids)} AND s.last_updated_ts >= ?"
                " AND s.last_updated_ts < ? ORDER BY s.last_updated_ts, s.state_id",
                [*ids, start_ts, end_ts],
            )
        )
        for metadata_id, state, attributes_id, shared, changed, updated in rows:
            result.setdefault(names[int(metadata_id)], []).append(
                {
                    "state": state,
                    "attributes": self._attributes(attributes_id, shared),
                    "last_changed": changed,
                    "last_updated": updated,
                }
            )
        return result

    async def latest_states(self, newer_than: float | None = None) -> list[State]:
        """Return each entity's last recorded state (removed entities left out).

        With newer_than, only those updated after it; when nothing is (the last stop was
        clean), one indexed look-up answers and the per-entity query is skipped.
        """
        params: list[Any] = []
        newer = ""
        if newer_than is not None:
            (newest,) = await self.backend.fetch("SELECT MAX(last_updated_ts) FROM states")
            if newest[0] is None or newest[0] <= newer_than:
                return []
            newer = " WHERE s.last_updated_ts > ?"
            params.append(newer_than)
        rows = await self.backend.fetch(
            "SELECT m.entity_id, s.state, s.attributes_id, a.shared_attrs, s.last_changed_ts,"
            " s.last_updated_ts, s.context_id FROM states_meta m"
            " JOIN states s ON s.state_id = (SELECT s2.state_id FROM states s2"
            " WHERE s2.metadata_id = m.metadata_id"
            " ORDER BY s2.last_updated_ts DESC, s2.state_id DESC LIMIT 1)"
            " LEFT JOIN state_attributes a ON a.attributes_id = s.attributes_id" + newer,
            params,
        )
        found: list[State] = []
        for entity_id, state, attributes_id, shared, changed, updated, context_id in rows:
            if state is None:
                continue
            found.append(
                State(
                    entity_id,
                    state,
                    ReadOnlyDict(self._attributes(attributes_id, shared)),
                    changed if changed is not None else updated,
                    updated,
                    updated,
                    Context(context_id),
                )
            )
        return found

    async def events(
        self,
        event_types: Iterable[str] | None,
        start: Time,
        end: Time | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return events fired in [start, end), oldest first.

        Rows: event_type, data, origin, time_fired, context_id, context_user_id.
        """
        params: list[Any] = [to_ts(start), to_ts(end, self.now())]
        sql = (
            "SELECT event_type, data, origin, time_fired_ts, context_id, context_user_id"
            " FROM events WHERE time_fired_ts >= ? AND time_fired_ts < ?"
        )
        if event_types is not None:
            types = list(event_types)
            if not types:
                return []
            sql += " AND " + _in("event_type", types)
            params.extend(types)
        sql += " ORDER BY time_fired_ts, event_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [
            {
                "event_type": event_type,
                "data": orjson.loads(data) if data else {},
                "origin": origin,
                "time_fired": fired,
                "context_id": context_id,
                "context_user_id": user_id,
            }
            for event_type, data, origin, fired, context_id, user_id in await self.backend.fetch(
                sql, params
            )
        ]

    async def sessions(
        self,
        start: Time,
        end: Time | None = None,
        station_ids: Iterable[str] | None = None,
        port_ids: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Return charging sessions overlapping [start, end) (running ones too), by start.

        Rows: station_id, transaction_id, port_id, port, charge_point_id, id_tag,
        started_at, stopped_at (None while running), energy_wh, peak_power_w, stop_reason,
        error_code.
        """
        params: list[Any] = [to_ts(end, self.now()), to_ts(start)]
        sql = (
            "SELECT station_id, transaction_id, port_id, port, charge_point_id, id_tag,"
            " started_at, stopped_at, energy_wh, peak_power_w, stop_reason, error_code"
            " FROM sessions WHERE started_at < ? AND (stopped_at IS NULL OR stopped_at >= ?)"
        )
        for column, values in (("station_id", station_ids), ("port_id", port_ids)):
            if values is not None:
                chosen = list(values)
                if not chosen:
                    return []
                sql += " AND " + _in(column, chosen)
                params.extend(chosen)
        sql += " ORDER BY started_at, station_id, transaction_id"
        keys = (
            "station_id",
            "transaction_id",
            "port_id",
            "port",
            "charge_point_id",
            "id_tag",
            "started_at",
            "stopped_at",
            "energy_wh",
            "peak_power_w",
            "stop_reason",
            "error_code",
        )
        return [dict(zip(keys, row, strict=True)) for row in await self.backend.fetch(sql, params)]

    async def port_status(
        self, start: Time, end: Time | None = None, port_ids: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Return port status changes in [start, end), each port's status at start first.

        Rows: time, station_id, port_id, port, status, previous, error_code,
        vendor_error_code; oldest first.
        """
        start_ts, end_ts = to_ts(start), to_ts(end, self.now())
        cols = "time, station_id, port_id, port, status, previous, error_code, vendor_error_code"
        where = ""
        params: list[Any] = []
        if port_ids is not None:
            chosen = list(port_ids)
            if not chosen:
                return []
            where = " AND " + _in("port_id", chosen)
            params = chosen
        before = await self.backend.fetch(
            f"SELECT {cols} FROM port_status p WHERE time < ?{where} AND time = (SELECT MAX(time)"
            " FROM port_status q WHERE q.port_id = p.port_id AND q.time < ?)",
            [start_ts, *params, start_ts],
        )
        seen: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        for row in before:
            if row[2] not in seen:  # two changes at the same instant: one is enough
                seen.add(row[2])
                rows.append(row)
        rows.sort(key=lambda row: row[0])
        rows.extend(
            await self.backend.fetch(
                f"SELECT {cols} FROM port_status WHERE time >= ? AND time < ?{where}"
                " ORDER BY time, id",
                [start_ts, end_ts, *params],
            )
        )
        keys = (
            "time",
            "station_id",
            "port_id",
            "port",
            "status",
            "previous",
            "error_code",
            "vendor_error_code",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def outages(
        self, start: Time, end: Time | None = None, port_ids: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Return every outage overlapping [start, end), open ones too, by start.

        Rows: outage_id, port_id, station_id, start, end (None while open), cause.
        """
        params: list[Any] = [to_ts(end, self.now()), to_ts(start)]
        sql = (
            "SELECT outage_id, port_id, station_id, start_ts, end_ts, cause FROM outages"
            " WHERE start_ts < ? AND (end_ts IS NULL OR end_ts > ?)"
        )
        if port_ids is not None:
            chosen = list(port_ids)
            if not chosen:
                return []
            sql += " AND " + _in("port_id", chosen)
            params.extend(chosen)
        sql += " ORDER BY start_ts, outage_id"
        keys = ("outage_id", "port_id", "station_id", "start", "end", "cause")
        return [dict(zip(keys, row, strict=True)) for row in await self.backend.fetch(sql, params)]

    async def first_seen(self, port_ids: Iterable[str] | None = None) -> dict[str, float]:
        """Return each port's earliest recorded moment: first status, outage or session start."""
        where = ""
        params: list[Any] = []
        if port_ids is not None:
            chosen = list(port_ids)
            if not chosen:
                return {}
            where = " AND " + _in("port_id", chosen)
            params = chosen * 3
        sql = (
            "SELECT port_id, MIN(t) FROM ("
            f"SELECT port_id, MIN(time) AS t FROM port_status WHERE port_id IS NOT NULL{where}"
            " GROUP BY port_id"
            " UNION ALL SELECT port_id, MIN(start_ts) FROM outages"
            f" WHERE port_id IS NOT NULL{where} GROUP BY port_id"
            " UNION ALL SELECT port_id, MIN(started_at) FROM sessions"
            f" WHERE port_id IS NOT NULL AND started_at IS NOT NULL{where} GROUP BY port_id"
            ") AS firsts GROUP BY port_id"
        )
        return {
            str(port_id): float(first)
            for port_id, first in await self.backend.fetch(sql, params)
            if first is not None
        }

    async def exclusions(self, start: Time, end: Time | None = None) -> list[dict[str, Any]]:
        """Return exclusions overlapping [start, end) (open-ended ones too), by start.

        Rows: exclusion_id, port_id, station_id, start, end, reason, note.
        """
        sql = (
            "SELECT exclusion_id, port_id, station_id, start_ts, end_ts, reason, note"
            " FROM exclusions WHERE start_ts < ? AND (end_ts IS NULL OR end_ts > ?)"
            " ORDER BY start_ts, exclusion_id"
        )
        keys = ("exclusion_id", "port_id", "station_id", "start", "end", "reason", "note")
        rows = await self.backend.fetch(sql, [to_ts(end, self.now()), to_ts(start)])
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def alerts(
        self, status: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[dict[str, Any]]:
        """Return alerts as Alert.as_dict() gives them, last changed first.

        status: open, acknowledged, resolved, or active (open or acknowledged); None: all.
        """
        sql = "SELECT data FROM alerts"
        params: list[Any] = []
        if status == ALERT_ACTIVE:
            sql += " WHERE status <> ?"
            params.append("resolved")
        elif status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY updated_at DESC, alert_id LIMIT ?"
        params.append(int(limit))
        return [orjson.loads(data) for (data,) in await self.backend.fetch(sql, params)]

    async def security_events(
        self,
        query: SecurityQuery | None = None,
        *,
        limit: int = DEFAULT_LIMIT,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return security events, newest first, shaped as SecurityEvent.as_dict().

        query: by kind, charge point, source, least severity and time (its limit counts);
        without one, the newest limit events, optionally of one kind.
        """
        if query is None:
            query = SecurityQuery(kind=kind, limit=limit)
        sql = (
            "SELECT log_id, time, kind, severity, source, message, remote, charge_point_id, data"
            " FROM security_events"
        )
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("kind", query.kind),
            ("charge_point_id", query.charge_point_id),
            ("source", query.source),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.min_severity is not None:
            severities = query.severities()
            where.append(f"severity IN ({', '.join('?' * len(severities))})")
            params.extend(severities)
        if query.since is not None:
            where.append("time >= ?")
            params.append(float(query.since))
        if query.until is not None:
            where.append("time < ?")
            params.append(float(query.until))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        params.append(int(query.limit))
        keys = ("id", "time", "kind", "severity", "source", "message", "remote", "charge_point_id")
        result = []
        for row in await self.backend.fetch(sql, params):
            entry = dict(zip(keys, row[:-1], strict=True))
            entry["data"] = orjson.loads(row[-1]) if row[-1] else {}
            result.append(entry)
        return result

    async def audit(
        self, limit: int = DEFAULT_LIMIT, since: Time | None = None
    ) -> list[dict[str, Any]]:
        """Return audit entries, newest first, at or after since.

        Rows: time, user_id, username, source, action, target, result, context_id, data
        (what the action sent, None when nothing was kept).
        """
        sql = (
            "SELECT time, user_id, username, source, action, target, result, context_id, data"
            " FROM audit"
        )
        params: list[Any] = []
        if since is not None:
            sql += " WHERE time >= ?"
            params.append(to_ts(since))
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        params.append(int(limit))
        keys = ("time", "user_id", "username", "source", "action", "target", "result", "context_id")
        entries = []
        for row in await self.backend.fetch(sql, params):
            entry = dict(zip(keys, row[:-1], strict=True))
            entry["data"] = _loads_object(row[-1])
            entries.append(entry)
        return entries
