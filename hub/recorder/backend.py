"""The recorder's database behind one interface: a batch writer, batched deletes, reads.

A backend commits a Batch in one transaction, runs a bounded delete in a short transaction
of its own, and answers reads. All SQL uses ``?`` placeholders; the PostgreSQL backend turns
them into ``$n``. Nothing here blocks the event loop: SQLite runs on threads of its own,
PostgreSQL through asyncpg.
"""

from __future__ import annotations

import abc
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import orjson

from hub.core import State
from hub.exceptions import StorageError

_LOGGER = logging.getLogger(__name__)

ATTRS_CACHE_SIZE: Final = 16384
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


# A queued state change is the state_changed Event itself;
# a queued event is (event_type, data_json, origin, time_fired_ts, context_id, user_id).
EventRow = tuple[str, str, str, float, str | None, str | None]


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
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


class AttributeCache:
    """Attribute sets already stored: by the identity of a State's attributes and by hash.

    States that keep their attributes share one ReadOnlyDict, so most lookups never encode.
    The cache holds the dicts it saw, so an id() never points to a different object.
    """

    __slots__ = ("by_hash", "by_object")

    def __init__(self) -> None:
        self.by_object: dict[int, tuple[Any, int]] = {}
        self.by_hash: dict[int, list[tuple[bytes, int]]] = {}

    def clear(self) -> None:
        """Forget everything (after orphaned attribute sets were purged)."""
        self.by_object.clear()
        self.by_hash.clear()

    def find(self, encoded: bytes, digest: int) -> int | None:
        """Return the id of an attribute set seen before."""
        for known, attributes_id in self.by_hash.get(digest, ()):
            if known == encoded:
                return attributes_id
        return None

    def remember(self, obj: Any, encoded: bytes, digest: int, attributes_id: int) -> None:
        """Keep an attribute set's id for its object and its hash."""
        if len(self.by_object) >= ATTRS_CACHE_SIZE:
            self.by_object.clear()
        if len(self.by_hash) >= ATTRS_CACHE_SIZE:
            self.by_hash.clear()
        self.by_object[id(obj)] = (obj, attributes_id)
        entries = self.by_hash.setdefault(digest, [])
        if all(known != encoded for known, _ in entries):
            # A copy of its own size: orjson's bytes keep their 4 KiB buffer (60 MB for a
            # cache of 15,000 attribute sets of a few dozen bytes each).
            entries.append((bytes(memoryview(encoded)), attributes_id))


@dataclass(slots=True)
class PreparedStates:
    """State changes split for writing: rows still need their metadata and attribute ids."""

    entity_ids: list[str]
    # (entity_id, state, attrs object or None, last_changed, last_updated, context_id, user_id)
    rows: list[tuple[str, str | None, Any, float, float, str | None, str | None]]
    events: list[EventRow]


class Removed(NamedTuple):
    """A queued removal of an entity's state."""

    entity_id: str
    time: float


def split_items(items: Sequence[Any]) -> PreparedStates:
    """Turn queued items into state rows and event rows (runs off the loop).

    An item is an event row (a plain tuple), a State, or a Removed.
    """
    rows: list[tuple[str, str | None, Any, float, float, str | None, str | None]] = []
    events: list[EventRow] = []
    seen: dict[str, None] = {}
    append = rows.append
    for item in items:
        kind = type(item)
        if kind is tuple:
            events.append(item)
            continue
        entity_id = item.entity_id
        seen[entity_id] = None
        if kind is Removed:
            stamp = item.time
            append((entity_id, None, None, stamp, stamp, None, None))
            continue
        state = item
        context = state.context
        append(
            (
                entity_id,
                state.state,
                state.attributes,
                state.last_changed_ts,
                state.last_updated_ts,
                # Read, never made here: a context id is made lazily in the loop.
                context._id,
                context.user_id,
            )
        )
    return PreparedStates(list(seen), rows, events)


def encode_attributes(attrs: Any, cache: AttributeCache) -> tuple[int | None, bytes, int]:
    """Return (known id or None, encoded, hash) for a State's attributes."""
    hit = cache.by_object.get(id(attrs))
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
    async def write(self, batch: Batch) -> None:
        """Write a batch in one transaction and commit it."""

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
