"""The recorder's database behind one interface: a batch writer, batched deletes, reads.

A backend commits a Batch in one transaction, runs a bounded delete in a short transaction
of its own, and answers reads. All SQL uses ``?`` placeholders; the PostgreSQL backend turns
them into ``$n``. Nothing here blocks the event loop: SQLite runs on threads of its own,
PostgreSQL through asyncpg.

A row the database cannot hold never stops the others: rows are checked against their
columns before they are written (integers in the column's range for the dialect, floats
finite, text valid UTF-8, without NUL on PostgreSQL), and when the database still refuses a
batch for its data, the batch is written again in halves under savepoints until the rows it
refuses are found. Those rows are skipped and returned; the rest commits.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import orjson

from hub.core import State
from hub.exceptions import StorageError

_LOGGER = logging.getLogger(__name__)

ATTRS_CACHE_SIZE: Final = 4096
# Kinds of rows that are never dropped, and the statement each one runs.
KIND_SESSION: Final = "session"
KIND_PORT_STATUS: Final = "port_status"
KIND_OUTAGE: Final = "outage"
KIND_EXCLUSION: Final = "exclusion"
KIND_EXCLUSION_DELETE: Final = "exclusion_delete"
KIND_ALERT: Final = "alert"
KIND_SECURITY: Final = "security"
KIND_AUDIT: Final = "audit"


class RecorderError(StorageError):
    """The recorder could not carry out a request."""


# A queued state change is the new State (or a Removed);
# a queued event is (event_type, data_json, origin, time_fired_ts, context_id, user_id).
EventRow = tuple[str, str, str, float, str | None, str | None]

# Column types, as far as checking a value goes.
TEXT: Final = "text"
INT4: Final = "int4"
INT8: Final = "int8"
REAL: Final = "real"
Columns = tuple[tuple[str, str], ...]

# The columns each write fills, in parameter order. States are checked before their
# metadata and attribute ids are looked up: entity_id stands for metadata_id.
STATE_COLUMNS: Final[Columns] = (
    ("entity_id", TEXT),
    ("state", TEXT),
    ("last_changed_ts", REAL),
    ("last_updated_ts", REAL),
    ("context_id", TEXT),
    ("context_user_id", TEXT),
)
EVENT_COLUMNS: Final[Columns] = (
    ("event_type", TEXT),
    ("data", TEXT),
    ("origin", TEXT),
    ("time_fired_ts", REAL),
    ("context_id", TEXT),
    ("context_user_id", TEXT),
)
PRIORITY_TABLES: Final[dict[str, tuple[str, Columns]]] = {
    KIND_SESSION: (
        "sessions",
        (
            ("station_id", TEXT),
            ("transaction_id", TEXT),
            ("port_id", TEXT),
            ("port", INT4),
            ("charge_point_id", TEXT),
            ("id_tag", TEXT),
            ("started_at", REAL),
            ("stopped_at", REAL),
            ("energy_wh", REAL),
            ("peak_power_w", REAL),
            ("stop_reason", TEXT),
            ("error_code", TEXT),
            ("updated_at", REAL),
        ),
    ),
    KIND_PORT_STATUS: (
        "port_status",
        (
            ("time", REAL),
            ("station_id", TEXT),
            ("port_id", TEXT),
            ("port", INT4),
            ("status", TEXT),
            ("previous", TEXT),
            ("error_code", TEXT),
            ("vendor_error_code", TEXT),
        ),
    ),
    KIND_OUTAGE: (
        "outages",
        (
            ("outage_id", TEXT),
            ("port_id", TEXT),
            ("station_id", TEXT),
            ("start_ts", REAL),
            ("end_ts", REAL),
            ("cause", TEXT),
            ("updated_at", REAL),
        ),
    ),
    KIND_EXCLUSION: (
        "exclusions",
        (
            ("exclusion_id", TEXT),
            ("port_id", TEXT),
            ("station_id", TEXT),
            ("start_ts", REAL),
            ("end_ts", REAL),
            ("reason", TEXT),
            ("note", TEXT),
            ("updated_at", REAL),
        ),
    ),
    KIND_EXCLUSION_DELETE: ("exclusions", (("exclusion_id", TEXT),)),
    KIND_ALERT: (
        "alerts",
        (
            ("alert_id", TEXT),
            ("alert_key", TEXT),
            ("severity", TEXT),
            ("status", TEXT),
            ("station_id", TEXT),
            ("device_id", TEXT),
            ("raised_at", REAL),
            ("resolved_at", REAL),
            ("data", TEXT),
            ("updated_at", REAL),
        ),
    ),
    KIND_SECURITY: (
        "security_events",
        (
            ("log_id", INT8),
            ("time", REAL),
            ("kind", TEXT),
            ("severity", TEXT),
            ("source", TEXT),
            ("message", TEXT),
            ("remote", TEXT),
            ("charge_point_id", TEXT),
            ("data", TEXT),
        ),
    ),
    KIND_AUDIT: (
        "audit",
        (
            ("time", REAL),
            ("user_id", TEXT),
            ("username", TEXT),
            ("source", TEXT),
            ("action", TEXT),
            ("target", TEXT),
            ("result", TEXT),
            ("context_id", TEXT),
            ("data", TEXT),
        ),
    ),
}

# Why a row was skipped: the label of evhub_recorder_rows_skipped_total.
REASON_OUT_OF_RANGE: Final = "out_of_range"
REASON_NOT_FINITE: Final = "not_finite"
REASON_BAD_TEXT: Final = "bad_text"
REASON_WRONG_TYPE: Final = "wrong_type"
REASON_REFUSED: Final = "refused"

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """What a dialect's columns can hold."""

    int4: tuple[int, int]
    int8: tuple[int, int]
    nul_in_text: bool


# SQLite's INTEGER is 64 bits whatever the declared type; its text keeps NUL.
SQLITE_LIMITS: Final = Limits((INT64_MIN, INT64_MAX), (INT64_MIN, INT64_MAX), nul_in_text=True)
POSTGRESQL_LIMITS: Final = Limits((INT32_MIN, INT32_MAX), (INT64_MIN, INT64_MAX), nul_in_text=False)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row the database could not hold: left out of its commit."""

    table: str
    reason: str
    detail: str


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def bad_value(values: Sequence[Any], columns: Columns, limits: Limits) -> tuple[str, str] | None:
    """Return (reason, detail) for the first value its column cannot hold; None when all fit."""
    for value, (name, kind) in zip(values, columns, strict=True):
        if value is None:
            continue
        if kind is TEXT:
            if type(value) is not str:
                return REASON_WRONG_TYPE, f"{name}: {type(value).__name__} is not text"
            if not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    return REASON_BAD_TEXT, f"{name}: not valid UTF-8 (lone surrogate)"
            if not limits.nul_in_text and "\x00" in value:
                return REASON_BAD_TEXT, f"{name}: NUL character"
        elif kind is REAL:
            if type(value) is float:
                if not math.isfinite(value):
                    return REASON_NOT_FINITE, f"{name}: {value!r}"
            elif isinstance(value, int):
                if not INT64_MIN <= value <= INT64_MAX:
                    return REASON_OUT_OF_RANGE, f"{name}: {_shown(value)} out of range"
            elif isinstance(value, float):
                if not math.isfinite(value):
                    return REASON_NOT_FINITE, f"{name}: {value!r}"
            else:
                return REASON_WRONG_TYPE, f"{name}: {type(value).__name__} is not a number"
        else:
            if not isinstance(value, int):
                return REASON_WRONG_TYPE, f"{name}: {type(value).__name__} is not an integer"
            low, high = limits.int4 if kind is INT4 else limits.int8
            if not low <= value <= high:
                bits = 32 if low == INT32_MIN else 64
                return REASON_OUT_OF_RANGE, f"{name}: {_shown(value)} out of {bits}-bit range"
    return None


@dataclass(slots=True)
class Batch:
    """What one commit writes: state changes and events in order, then the kept-forever rows."""

    items: list[Any] = field(default_factory=list)
    priority: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items) + len(self.priority)


def attrs_hash(encoded: bytes) -> int:
    """A stable signed 64-bit hash of encoded attributes (the lookup key of an attribute set)."""
    return int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), "little", signed=True)


def _default(value: Any) -> Any:
    if isinstance(value, State):
        return value.as_dict()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dumps(value: Any) -> bytes:
    """Encode to JSON; whatever JSON has no form for becomes its string."""
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits, a lone surrogate, an odd key or nesting too deep:
        # the value is kept, with those parts as text.
        return orjson.dumps(_json_safe(value, 0), option=orjson.OPT_NON_STR_KEYS)


JSON_MAX_DEPTH: Final = 64


def _safe_text(text: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def _json_safe(value: Any, depth: int) -> Any:
    """A copy of value that orjson can encode."""
    if depth > JSON_MAX_DEPTH:
        return _safe_text(str(value))
    if isinstance(value, str):
        return _safe_text(value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= 2**64 - 1 else str(value)
    if isinstance(value, State):
        return _json_safe(value.as_dict(), depth + 1)
    if isinstance(value, dict):
        return {_safe_text(str(k)): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item, depth + 1) for item in value]
    return _safe_text(str(value))


class AttributeCache:
    """Attribute sets already stored: each entity's current one, and recent ones by hash.

    An entity keeps its attributes object from state to state (they live in a shared
    ReadOnlyDict), so the entity's last (object, id) answers almost every row without
    encoding; only a new attributes object is encoded and looked up by hash (then in the
    database). One entry per entity: a fleet's 200,000 entities never thrash it, and the
    objects it holds are the entities' current attributes, alive anyway.
    """

    __slots__ = ("by_entity", "by_hash")

    def __init__(self) -> None:
        self.by_entity: dict[str, tuple[Any, int]] = {}
        self.by_hash: dict[int, list[tuple[bytes, int]]] = {}

    def clear(self) -> None:
        """Forget everything (after orphaned attribute sets were purged)."""
        self.by_entity.clear()
        self.by_hash.clear()

    def find(self, encoded: bytes, digest: int) -> int | None:
        """Return the id of an attribute set seen before."""
        for known, attributes_id in self.by_hash.get(digest, ()):
            if known == encoded:
                return attributes_id
        return None

    def remember(
        self, entity_id: str, obj: Any, encoded: bytes, digest: int, attributes_id: int
    ) -> None:
        """Keep an entity's attribute set id, by its object and by its hash."""
        self.by_entity[entity_id] = (obj, attributes_id)
        if len(self.by_hash) >= ATTRS_CACHE_SIZE:
            self.by_hash.clear()
        entries = self.by_hash.setdefault(digest, [])
        if all(known != encoded for known, _ in entries):
            # A copy of its own size: orjson's bytes keep their 4 KiB buffer (60 MB for a
            # cache of 15,000 attribute sets of a few dozen bytes each).
            entries.append((bytes(memoryview(encoded)), attributes_id))


@dataclass(slots=True)
class PreparedStates:
    """A batch checked and split for writing: state rows still need their metadata and
    attribute ids; rows no column could hold are in skipped."""

    entity_ids: list[str]
    # (entity_id, state, attrs object or None, last_changed, last_updated, context_id, user_id)
    rows: list[tuple[str, str | None, Any, float, float, str | None, str | None]]
    events: list[EventRow]
    priority: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class Removed(NamedTuple):
    """A queued removal of an entity's state."""

    entity_id: str
    time: float


def split_items(items: Sequence[Any], limits: Limits = SQLITE_LIMITS) -> PreparedStates:
    """Turn queued items into state rows and event rows, leaving out the rows a column of the
    dialect cannot hold (runs off the loop).

    An item is an event row (a plain tuple), a State, or a Removed.
    """
    rows: list[tuple[str, str | None, Any, float, float, str | None, str | None]] = []
    events: list[EventRow] = []
    skipped: list[Skipped] = []
    seen: dict[str, None] = {}
    append = rows.append
    # Entity ids need no check: the state machine takes only valid ones (ASCII, no NUL).
    nul_ok = limits.nul_in_text
    for item in items:
        kind = type(item)
        if kind is tuple:
            bad = bad_value(item, EVENT_COLUMNS, limits)
            if bad is None:
                events.append(item)
            else:
                skipped.append(Skipped("events", bad[0], f"{item[0]!r}: {bad[1]}"))
            continue
        if kind is Removed:
            stamp = item.time
            row: tuple[str, str | None, Any, float, float, str | None, str | None] = (
                item.entity_id,
                None,
                None,
                stamp,
                stamp,
                None,
                None,
            )
        else:
            context = item.context
            # Read, never made here: the recorder made the id on the loop when it queued the
            # state (Recorder._on_state_changed).
            row = (
                item.entity_id,
                item.state,
                item.attributes,
                item.last_changed_ts,
                item.last_updated_ts,
                context._id,
                context.user_id,
            )
        _entity_id, state, _attrs, changed, updated, ctx, user = row
        # The common row, checked inline: ASCII text (no NUL where the dialect forbids it)
        # and finite float times. Anything else goes through the full check.
        if not (
            type(changed) is float
            and changed - changed == 0.0
            and type(updated) is float
            and updated - updated == 0.0
            and (state is None or (type(state) is str and state.isascii()))
            and (ctx is None or (type(ctx) is str and ctx.isascii()))
            and (user is None or (type(user) is str and user.isascii()))
            and (
                nul_ok
                or "\x00" not in "".join(text for text in (state, ctx, user) if text is not None)
            )
        ):
            bad = bad_value((_entity_id, state, changed, updated, ctx, user), STATE_COLUMNS, limits)
            if bad is not None:
                skipped.append(Skipped("states", bad[0], f"{_entity_id!r}: {bad[1]}"))
                continue
        seen[_entity_id] = None
        append(row)
    return PreparedStates(list(seen), rows, events, skipped=skipped)


def prepare(batch: Batch, limits: Limits) -> PreparedStates:
    """Check and split a whole batch for a dialect (runs off the loop)."""
    prepared = split_items(batch.items, limits)
    priority = prepared.priority
    for kind, params in batch.priority:
        table, columns = PRIORITY_TABLES[kind]
        try:
            bad = bad_value(params, columns, limits)
        except ValueError:
            bad = (REASON_WRONG_TYPE, f"{len(params)} values for {len(columns)} columns")
        if bad is None:
            priority.append((kind, params))
        else:
            prepared.skipped.append(Skipped(table, bad[0], f"{_shown(params[0])}: {bad[1]}"))
    return prepared


# Kinds of the rows an isolating write handles besides the KIND_* ones.
UNIT_STATE: Final = "state"
UNIT_EVENT: Final = "event"
# One row of an isolating write: (KIND_* or UNIT_*, its parameters, what names it in a log).
Unit = tuple[str, tuple[Any, ...], Any]


def unit_table(kind: str) -> str:
    """The table a row of an isolating write goes to."""
    if kind == UNIT_STATE:
        return "states"
    if kind == UNIT_EVENT:
        return "events"
    return PRIORITY_TABLES[kind][0]


def units_of(state_rows: Sequence[tuple[Any, ...]], prepared: PreparedStates) -> list[Unit]:
    """The rows of a batch one by one, in the order a commit writes them."""
    units: list[Unit] = [
        (UNIT_STATE, row, source[0]) for row, source in zip(state_rows, prepared.rows, strict=True)
    ]
    units.extend((UNIT_EVENT, row, row[0]) for row in prepared.events)
    units.extend(
        (kind, params, params[0] if params else None) for kind, params in prepared.priority
    )
    return units


def refused(unit: Unit, err: BaseException) -> Skipped:
    """The record of a row the database refused."""
    message = str(err)
    if len(message) > 200:
        message = message[:197] + "..."
    return Skipped(
        unit_table(unit[0]), REASON_REFUSED, f"{_shown(unit[2])}: {type(err).__name__}: {message}"
    )


def halves(part: list[Any]) -> tuple[list[Any], list[Any]]:
    """Split a refused part of a batch in two, to find the rows the database refuses."""
    middle = len(part) // 2
    return part[:middle], part[middle:]


def encode_attributes(
    entity_id: str, attrs: Any, cache: AttributeCache
) -> tuple[int | None, bytes, int]:
    """Return (known id or None, encoded, hash) for a State's attributes."""
    hit = cache.by_entity.get(entity_id)
    if hit is not None and hit[0] is attrs:
        return hit[1], b"", 0
    encoded = dumps(attrs)
    digest = attrs_hash(encoded)
    return cache.find(encoded, digest), encoded, digest


class RecorderBackend(abc.ABC):
    """One database the recorder writes to and reads from."""

    dialect: str

    @abc.abstractmethod
    async def open(self, target_version: int) -> int:
        """Connect, create or migrate the schema to target_version; return the version found."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish what is running and disconnect."""

    @abc.abstractmethod
    async def write(self, batch: Batch) -> list[Skipped]:
        """Write a batch in one transaction and commit it; return the rows left out.

        Rows a column cannot hold and rows the database refuses for their data are left out;
        anything else that fails the write (the database unreachable, full, read-only)
        raises, and nothing of the batch is committed.
        """

    @abc.abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read and return its rows."""

    @abc.abstractmethod
    async def delete_batch(self, table: str, where: str, params: Sequence[Any], limit: int) -> int:
        """Delete at most limit rows of table matching where, in a short transaction."""

    @abc.abstractmethod
    async def purge_orphans(self, limit: int) -> int:
        """Delete at most limit attribute sets no state refers to; forget cached ids."""

    @abc.abstractmethod
    async def reclaim(self) -> None:
        """Give freed space back a little at a time (never a full VACUUM)."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """Return the schema version of the database."""
