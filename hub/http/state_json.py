"""StateJSON encoded once per state and served in slices, so the API never stalls the loop.

A State is immutable: its StateJSON, once encoded, is right for the State's whole life. The
encoder keeps one encoding per entity with the State it was made from and a revision (a
counter that moves each time an encoding is made or a removal is seen), so an answer is the
cached bytes joined, its ETag a digest of their revisions, and ``since`` polling the entities
whose revision is newer than the client's last answer. Whether an encoding is still right is
told by comparing States, not by events, so a write that fires none (a restore) is seen too;
only removals are heard as they happen, for since polling.

Work over every state runs in slices of at most SLICE_SECONDS between yields to the loop, and
gzip runs in the executor: chargers are answered between the slices.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
import zlib
from array import array
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import gt, is_not
from typing import Any, Final, NamedTuple

from aiohttp import hdrs, web

from hub.const import ATTR_ENTITY_ID, ATTR_NEW_STATE, EVENT_STATE_CHANGED
from hub.core import Event, Hub, HubKey, State
from hub.http.view import ApiError, dumps, query_int
from hub.registry import device_registry, entity_registry

DATA_STATE_ENCODER: Final[HubKey[StateEncoder]] = HubKey("http.state_encoder")
SLICE_SECONDS: Final = 0.001  # the longest the loop is held between yields
CHECK_EVERY: Final = 64  # states handled between two looks at the clock
DIFF_CHUNK: Final = 2048  # items compared or copied (in C) between two looks at the clock
SNAPSHOT_MIN: Final = 2048  # smaller selections are looked at state by state
MAX_SNAPSHOTS: Final = 8  # queries whose last selection is kept to compare with
ALL_STATES: Final = ("all",)  # the key of the unfiltered selection
MAX_TOMBSTONES: Final = 10_000  # removals remembered for since polling
CHUNK_BYTES: Final = 256 * 1024  # written (and gzipped) at a time
GZIP_MIN_BYTES: Final = 1024  # smaller answers are not worth compressing
GZIP_SYNC_BYTES: Final = 64 * 1024  # larger chunks are compressed in the executor
GZIP_LEVEL: Final = 1  # JSON compresses ~10x even so, at several times level 6's speed

# An integer beyond 64 bits (orjson refuses it) is encoded as a marked string, then unquoted.
_BIG_MARK: Final = secrets.token_hex(8)
_BIG_QUOTED: Final = re.compile(rb'"\\u0000' + _BIG_MARK.encode() + rb":(-?\d+)\\u0000\"")
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1

Entry = tuple[State, bytes, int]  # the State encoded, its StateJSON, the revision


def _fits(value: int) -> bool:
    return _INT64_MIN <= value <= _UINT64_MAX


def _mark_big_ints(value: Any) -> Any:
    if isinstance(value, int):
        return value if _fits(value) else f"\x00{_BIG_MARK}:{int(value)}\x00"
    if isinstance(value, dict):
        return {
            str(key) if isinstance(key, int) and not _fits(key) else key: _mark_big_ints(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mark_big_ints(item) for item in value]
    return value


def dumps_exact(data: Any) -> bytes:
    """Serialise like the API's dumps, integers of any size included (as JSON numbers)."""
    try:
        return dumps(data)
    except TypeError:
        marked = dumps(_mark_big_ints(data))
        return _BIG_QUOTED.sub(rb"\1", marked)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def state_json(state: State) -> dict[str, Any]:
    """StateJSON of the API contract."""
    found = _state_json(state)
    found["attributes"] = dict(state.attributes)
    return found


def _state_json(state: State) -> dict[str, Any]:
    """StateJSON, its attributes the State's own read-only dict (for encoding only)."""
    changed, updated = state.last_changed_ts, state.last_updated_ts
    last_changed = _iso(changed)
    return {
        "entity_id": state.entity_id,
        "state": state.state,
        "attributes": state.attributes,
        "last_changed": last_changed,
        "last_updated": last_changed if updated == changed else _iso(updated),
    }


def _is_removal(data: Mapping[str, Any]) -> bool:
    return data[ATTR_NEW_STATE] is None


def _same_json(cached: State, state: State) -> bool:
    """Whether two States of an entity have one StateJSON (only last_reported moved)."""
    return (
        cached.attributes is state.attributes
        and cached.last_updated_ts == state.last_updated_ts
        and cached.last_changed_ts == state.last_changed_ts
        and cached.state == state.state
    )


class Slicer:
    """Yield to the loop once SLICE_SECONDS have passed since the last yield."""

    __slots__ = ("_deadline",)

    def __init__(self) -> None:
        self._deadline = time.perf_counter() + SLICE_SECONDS

    async def pause(self) -> None:
        """Yield if this slice is used up."""
        if time.perf_counter() >= self._deadline:
            await asyncio.sleep(0)
            self._deadline = time.perf_counter() + SLICE_SECONDS


@dataclass(slots=True)
class Collected:
    """The encodings of a selection of states, in its order, and their revisions."""

    parts: list[bytes]
    revisions: list[int]
    made: int  # revisions given out while collecting (new encodings)
    slicer: Slicer  # the request's: its slice goes on where collecting left it

    async def newer_than(self, since: int) -> list[bytes]:
        """The encodings whose revision is newer than since."""
        if since <= 0:
            return self.parts
        found: list[bytes] = []
        slicer = self.slicer
        for low in range(0, len(self.parts), DIFF_CHUNK):
            high = low + DIFF_CHUNK
            newer = map(gt, self.revisions[low:high], repeat(since))
            found.extend(compress(self.parts[low:high], newer))
            await slicer.pause()
        return found

    async def etag(self, instance: str, extra: str = "") -> str:
        """A weak ETag: the revisions name exactly which state of which entity is where."""
        digest = hashlib.blake2b(extra.encode(), digest_size=12)
        slicer = self.slicer
        for low in range(0, len(self.revisions), DIFF_CHUNK):
            digest.update(array("q", self.revisions[low : low + DIFF_CHUNK]).tobytes())
            await slicer.pause()
        return f'W/"{instance}-{digest.hexdigest()}"'


class _Snapshot(NamedTuple):
    """A selection as last collected, to compare the next one of the same query with."""

    states: list[State]
    parts: list[bytes]
    revisions: list[int]


class StateEncoder:
    """The StateJSON of each entity, encoded once per state, with revisions and removals."""

    __slots__ = (
        "_entries",
        "_floor",
        "_hub",
        "_removed",
        "_revision",
        "_snapshots",
        "instance",
    )

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.instance = secrets.token_hex(4)  # revisions of another run mean nothing here
        # Removals are the one change a comparison of States cannot see cheaply (it would
        # take every entity id): they are heard as they happen. The filter is all most
        # state changes cost.
        hub.bus.listen(EVENT_STATE_CHANGED, self._removed_one, _is_removal)
        self._entries: dict[str, Entry] = {}
        self._revision = 0
        # Removals seen, oldest first: entity_id -> revision. Those dropped past
        # MAX_TOMBSTONES raise the floor: an older revision must start again.
        self._removed: dict[str, int] = {}
        self._floor = 0
        # The last large selection of each recent query, oldest first.
        self._snapshots: dict[Hashable, _Snapshot] = {}

    @property
    def revision(self) -> int:
        """The newest revision given out."""
        return self._revision

    @property
    def floor(self) -> int:
        """Since revisions below this may have missed a removal."""
        return self._floor

    def entry(self, state: State) -> tuple[bytes, int]:
        """The StateJSON of state and its revision, encoded now if not yet."""
        entity_id = state.entity_id
        found = self._entries.get(entity_id)
        if found is not None:
            cached = found[0]
            if cached is state:
                return found[1], found[2]
            if _same_json(cached, state):
                self._entries[entity_id] = (state, found[1], found[2])
                return found[1], found[2]
        current = self._hub.states.get(entity_id)
        if current is not None and current is not state:
            # A newer state than the caller's: never cache an older one over it.
            if found is not None and (found[0] is current or _same_json(found[0], current)):
                return found[1], found[2]
            state = current
        # A copy of its own size: orjson's bytes keep a larger buffer.
        body = bytes(memoryview(dumps_exact(_state_json(state))))
        self._revision += 1
        revision = self._revision
        if current is not None:
            self._entries[entity_id] = (state, body, revision)
            if self._removed:
                self._removed.pop(entity_id, None)
        return body, revision

    def encode(self, state: State) -> bytes:
        """The StateJSON of state (cached)."""
        return self.entry(state)[0]

    async def collect(
        self, states: list[State], key: Hashable | None = None, slicer: Slicer | None = None
    ) -> Collected:
        """The encodings of states, in slices: other requests may encode states meanwhile.

        A large selection is compared with the last one of the same query (key) object by
        object, in C: only the states that differ are looked at one by one. With a key, the
        list is kept for that (and emptied later): the caller must not use it afterwards.
        """
        slicer = slicer or Slicer()
        count = len(states)
        keep = key is not None and count >= SNAPSHOT_MIN
        previous = self._snapshots.pop(key, None) if keep else None
        todo: Iterable[int]
        if previous is None:
            parts, revisions, todo = [b""] * count, [0] * count, range(count)
        else:
            # Copies: an answer still being sent may hold the previous lists.
            parts, revisions = [], []
            changed: list[int] = []
            common = min(count, len(previous.states))
            for low in range(0, common, DIFF_CHUNK):
                high = min(low + DIFF_CHUNK, common)
                parts.extend(previous.parts[low:high])
                revisions.extend(previous.revisions[low:high])
                different = map(is_not, states[low:high], previous.states[low:high])
                changed.extend(compress(range(low, high), different))
                await slicer.pause()
            parts.extend([b""] * (count - common))
            revisions.extend([0] * (count - common))
            changed.extend(range(common, count))
            todo = changed
            # The last references to the states replaced since: freed a slice at a time.
            gone = previous.states
            del previous
            while gone:
                del gone[-DIFF_CHUNK:]
                await slicer.pause()
        made = 0
        entries = self._entries
        for done, index in enumerate(todo):
            state = states[index]
            found = entries.get(state.entity_id)
            if found is not None and found[0] is state:
                parts[index], revisions[index] = found[1], found[2]
                if done % CHECK_EVERY == 0:
                    await slicer.pause()
            else:
                before = self._revision
                parts[index], revisions[index] = self.entry(state)
                made += self._revision - before
                await slicer.pause()  # an encoding costs as much as a hundred lookups
        if keep:
            self._snapshots[key] = _Snapshot(states, parts, revisions)
            while len(self._snapshots) > MAX_SNAPSHOTS:
                del self._snapshots[next(iter(self._snapshots))]
        return Collected(parts, revisions, made, slicer)

    async def changes(
        self,
        states: list[State],
        since: int,
        key: Hashable | None = None,
        slicer: Slicer | None = None,
    ) -> tuple[list[bytes], list[str], int]:
        """The encodings of states changed after since, the entities removed, and the
        revision to ask from next time.

        That revision is the newest one if every revision given out meanwhile was given
        here; if not (another request encoded states while this one yielded, perhaps one
        already passed here; or an entity was removed), it is the one at the start: some
        states come twice, none is missed.
        """
        start = self._revision
        collected = await self.collect(states, key, slicer)
        parts = await collected.newer_than(since)
        removed = self.removed_since(since)
        end = self._revision
        return parts, removed, end if end - start == collected.made else start

    async def encode_many(self, states: list[State]) -> list[bytes]:
        """The StateJSON of each state, in order; the loop is yielded between slices."""
        return (await self.collect(states)).parts

    def _removed_one(self, event: Event) -> None:
        """Forget a removed entity's encoding; remember when it went, for since polling."""
        entity_id = event.data[ATTR_ENTITY_ID]
        self._entries.pop(entity_id, None)
        self._revision += 1
        self._removed.pop(entity_id, None)  # kept oldest first
        self._removed[entity_id] = self._revision
        if len(self._removed) > MAX_TOMBSTONES:
            oldest = next(iter(self._removed))
            self._floor = max(self._floor, self._removed.pop(oldest))

    def removed_since(self, since: int) -> list[str]:
        """Entities seen removed after revision since, oldest first."""
        found: list[str] = []
        for entity_id, revision in reversed(self._removed.items()):
            if revision <= since:
                break
            found.append(entity_id)
        found.reverse()
        return found


def state_encoder(hub: Hub) -> StateEncoder:
    """The hub's state encoder, made on first use."""
    found = hub.data.get(DATA_STATE_ENCODER)
    if found is None:
        found = hub.data[DATA_STATE_ENCODER] = StateEncoder(hub)
    return found


def not_modified(request: web.Request, tag: str) -> bool:
    """Whether the request's If-None-Match already names this ETag."""
    header = request.headers.get(hdrs.IF_NONE_MATCH)
    if not header:
        return False
    sent = {value.strip() for value in header.split(",")}
    return tag in sent or "*" in sent or tag.removeprefix("W/") in sent


def _wants_gzip(request: web.Request) -> bool:
    """Whether Accept-Encoding takes gzip (q above 0)."""
    for item in request.headers.get(hdrs.ACCEPT_ENCODING, "").lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() != "gzip":
            continue
        name, _, quality = params.partition("=")
        if name.strip() != "q":
            return True
        try:
            return float(quality) > 0
        except ValueError:
            return False
    return False


async def _gzip(compressor: Any, chunk: bytes) -> bytes:
    if len(chunk) > GZIP_SYNC_BYTES:
        out: bytes = await asyncio.get_running_loop().run_in_executor(
            None, compressor.compress, chunk
        )
        return out
    return bytes(compressor.compress(chunk))


async def respond(
    request: web.Request,
    head: bytes,
    parts: list[bytes],
    tail: bytes,
    headers: dict[str, str],
    slicer: Slicer | None = None,
) -> web.StreamResponse:
    """Answer head + the parts joined by commas + tail, in chunks; gzip if asked and worth it."""
    slicer = slicer or Slicer()
    size = len(head) + len(tail) + max(len(parts) - 1, 0)
    for low in range(0, len(parts), DIFF_CHUNK):
        size += sum(map(len, parts[low : low + DIFF_CHUNK]))
        await slicer.pause()
    headers = {**headers, hdrs.VARY: hdrs.ACCEPT_ENCODING}
    gzip = size >= GZIP_MIN_BYTES and _wants_gzip(request)
    if size <= CHUNK_BYTES and not gzip:
        body = head + b",".join(parts) + tail
        return web.Response(body=body, content_type="application/json", headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_type = "application/json"
    compressor: Any = None
    if gzip:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        response.headers[hdrs.CONTENT_ENCODING] = "gzip"
    else:
        response.content_length = size
    await response.prepare(request)
    try:
        start = 0
        pending = head
        while start < len(parts) or pending:
            # Whole parts up to about CHUNK_BYTES: one join, one write.
            end, taken = start, len(pending)
            while end < len(parts) and taken < CHUNK_BYTES:
                taken += len(parts[end]) + 1
                end += 1
            chunk = b",".join(parts[start:end])
            if start and end > start:
                chunk = b"," + chunk
            chunk = pending + chunk
            pending = b""
            start = end
            if start >= len(parts):
                chunk += tail
            if compressor is not None:
                chunk = await _gzip(compressor, chunk)
                if start >= len(parts):
                    chunk += compressor.flush()
            if chunk:
                await response.write(chunk)
            await slicer.pause()
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left; nothing to answer
    return response


# The query of GET /api/states ----------------------------------------------------------------

QUERY_DOMAIN: Final = "domain"
QUERY_ENTITY_ID: Final = "entity_id"
QUERY_DEVICE_ID: Final = "device_id"
QUERY_SINCE: Final = "since"
QUERY_LIMIT: Final = "limit"
QUERY_CURSOR: Final = "cursor"
STATES_QUERY: Final = (
    QUERY_DOMAIN,
    QUERY_ENTITY_ID,
    QUERY_DEVICE_ID,
    QUERY_SINCE,
    QUERY_LIMIT,
    QUERY_CURSOR,
)
MAX_LIMIT: Final = 100_000
MAX_NAME_LENGTH: Final = 255
_SINCE: Final = re.compile(r"([0-9a-f]{8})\.([0-9]{1,18})")
_CURSOR: Final = re.compile(r"([0-9]{1,9}):(.{1,255})")


def _names(request: web.Request, key: str) -> tuple[str, ...] | None:
    """A filter's values: repeated or comma-separated, in order, once each."""
    values = request.query.getall(key, [])
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    names = [name for name in names if name]
    if not names:
        raise ApiError(400, "invalid", f"{key} must name at least one")
    for name in names:
        if len(name) > MAX_NAME_LENGTH:
            raise ApiError(400, "invalid", f"{key} values are at most {MAX_NAME_LENGTH} long")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class StatesQuery:
    """What a GET /api/states asks for: filters, a page, or the changes since a revision."""

    domains: tuple[str, ...] | None
    entity_ids: tuple[str, ...] | None
    device_ids: tuple[str, ...] | None
    since: int | None  # None: no since; a reset is since 0
    reset: bool
    limit: int | None
    cursor: tuple[int, str] | None

    @classmethod
    def parse(cls, request: web.Request, encoder: StateEncoder) -> StatesQuery:
        """Read and check the query; a bad one is a 400 naming the parameter."""
        query = request.query
        unknown = sorted(set(query) - set(STATES_QUERY))
        if unknown:
            raise ApiError(400, "invalid", f"unknown query parameters: {', '.join(unknown)}")
        limit = query_int(request, QUERY_LIMIT, 0, 1, MAX_LIMIT) or None
        cursor: tuple[int, str] | None = None
        raw_cursor = query.get(QUERY_CURSOR)
        if raw_cursor is not None:
            match = _CURSOR.fullmatch(raw_cursor)
            if match is None:
                raise ApiError(400, "invalid", "cursor must come from an answer's next link")
            cursor = (int(match.group(1)), match.group(2))
        since: int | None = None
        reset = False
        raw_since = query.get(QUERY_SINCE)
        if raw_since is not None:
            if limit is not None or cursor is not None:
                raise ApiError(400, "invalid", "since does not page: leave out limit and cursor")
            since, reset = cls._since(raw_since, encoder)
        return cls(
            _names(request, QUERY_DOMAIN),
            _names(request, QUERY_ENTITY_ID),
            _names(request, QUERY_DEVICE_ID),
            since,
            reset,
            limit,
            cursor,
        )

    @staticmethod
    def _since(raw: str, encoder: StateEncoder) -> tuple[int, bool]:
        """The revision to answer changes after, and whether everything must be sent."""
        if raw == "0":
            return 0, True
        match = _SINCE.fullmatch(raw)
        if match is None:
            raise ApiError(400, "invalid", "since must be 0 or the revision of an earlier answer")
        revision = int(match.group(2))
        # Another run's revision, one not given yet, or one before removals were forgotten.
        if (
            match.group(1) != encoder.instance
            or revision > encoder.revision
            or revision < encoder.floor
        ):
            return 0, True
        return revision, False

    @property
    def key(self) -> Hashable:
        """What names this selection among others, to compare it with its last answer."""
        if (
            self.domains is None
            and self.entity_ids is None
            and self.device_ids is None
            and self.limit is None
            and self.cursor is None
        ):
            return ALL_STATES
        return (self.domains, self.entity_ids, self.device_ids, self.limit, self.cursor)

    async def select(self, hub: Hub, slicer: Slicer) -> list[State]:
        """The states the filters select: in the state machine's order, or as named."""
        states = hub.states
        if self.entity_ids is not None:
            selected = [s for eid in self.entity_ids if (s := states.get(eid)) is not None]
        else:
            selected = states.all()
        if self.device_ids is not None:
            wanted = self._device_entities(hub)
            if self.entity_ids is not None:
                selected = [s for s in selected if s.entity_id in wanted]
            else:
                selected = [s for eid in wanted if (s := states.get(eid)) is not None]
        if self.domains is not None:
            prefixes = tuple(f"{domain}." for domain in self.domains)
            kept: list[State] = []
            for index, state in enumerate(selected):
                if state.entity_id.startswith(prefixes):
                    kept.append(state)
                if index % (CHECK_EVERY * 8) == 0:
                    await slicer.pause()
            selected = kept
        return selected

    def _device_entities(self, hub: Hub) -> dict[str, None]:
        """The entity ids of the devices asked for and of every device below them."""
        devices = device_registry(hub)
        entities = entity_registry(hub)
        found: dict[str, None] = {}
        assert self.device_ids is not None
        for device_id in self.device_ids:
            if devices.get(device_id) is None:
                raise ApiError(404, "not_found", f"no device {device_id!r}")
            for device in (device_id, *(d.id for d in devices.descendants(device_id))):
                for entry in entities.entities_for_device(device):
                    found[entry.entity_id] = None
        return found

    def keep_removed(self, removed: list[str]) -> list[str]:
        """The removals the filters name (by domain or id; a device's are all kept)."""
        if self.entity_ids is not None:
            wanted = set(self.entity_ids)
            removed = [eid for eid in removed if eid in wanted]
        if self.domains is not None:
            prefixes = tuple(f"{domain}." for domain in self.domains)
            removed = [eid for eid in removed if eid.startswith(prefixes)]
        return removed

    async def page(self, selected: list[State]) -> tuple[list[State], str | None]:
        """The page asked for and the cursor of the next one (None: this is the last)."""
        if self.limit is None and self.cursor is None:
            return selected, None
        start = 0
        if self.cursor is not None:
            start = await self._after(selected, *self.cursor)
        end = len(selected) if self.limit is None else start + self.limit
        page = selected[start:end]
        if end >= len(selected) or not page:
            return page, None
        return page, f"{end}:{page[-1].entity_id}"

    @staticmethod
    async def _after(selected: list[State], index: int, entity_id: str) -> int:
        """Where the page after entity_id starts: at index, unless states moved meanwhile."""
        if 0 < index <= len(selected) and selected[index - 1].entity_id == entity_id:
            return index
        slicer = Slicer()
        for position, state in enumerate(selected):
            if state.entity_id == entity_id:
                return position + 1
            if position % (CHECK_EVERY * 8) == 0:
                await slicer.pause()
        raise ApiError(
            410, "cursor_expired", f"{entity_id} was removed: start again without a cursor"
        )
