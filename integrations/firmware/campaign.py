"""Firmware roll-out campaigns: a group of stations updated a few at a time.

A campaign sends ``charger.update_firmware`` (whatever integration owns the station; for a
signed firmware the station's integration's own ``update_firmware``, which takes the
signature) to at most ``batch_size`` stations at once. A station is done when it is back
online with the new firmware (the target version when the campaign names one, else any
version other than the one it had); it failed when the update is refused, when it reports a
failed status (DownloadFailed, InstallationFailed, a bad signature...) or when it is not
back with the new firmware within the timeout (hub clock). The first failure pauses the
campaign: nothing more is sent until an admin resumes it (optionally retrying the failed
stations) or cancels it. Every step is written to ``.storage/firmware.campaigns`` before it
is acted on, so a hub restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from hub.charger import ChargerCapability, ChargerEventKind, get_charger
from hub.clock import clock
from hub.core import Context, Event, Hub
from hub.exceptions import HubError, ServiceValidationError
from hub.registry import DeviceKind, device_registry
from hub.storage import Store
from integrations.firmware.version import MAX_LENGTH, VersionError, compare_versions

_LOGGER = logging.getLogger(__name__)

STORE_KEY: Final = "firmware.campaigns"
STORE_VERSION: Final = 1
MAX_CAMPAIGNS: Final = 50  # finished ones beyond this are forgotten, oldest first
MAX_STATIONS: Final = 10_000
MAX_ACTIVE: Final = 20
CHECK_INTERVAL: Final = 5.0  # seconds of hub clock between timeout checks
# After a restart the hub could not watch: a station gets at least this long to come back.
RESTART_GRACE: Final = 600.0

RUNNING: Final = "running"
PAUSED: Final = "paused"
COMPLETED: Final = "completed"
CANCELLED: Final = "cancelled"
ACTIVE_STATES: Final = frozenset({RUNNING, PAUSED})

PENDING: Final = "pending"
UPDATING: Final = "updating"
DONE: Final = "done"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
ITEM_STATES: Final = (PENDING, UPDATING, DONE, FAILED, SKIPPED, CANCELLED)

# Firmware statuses (OCPP 1.6, its security whitepaper and 2.0.1) that end an update badly.
FAILED_STATUSES: Final = frozenset(
    {
        "DownloadFailed",
        "InstallationFailed",
        "InstallVerificationFailed",
        "InvalidSignature",
        "InvalidCertificate",
        "RevokedCertificate",
    }
)
# Answers to the update request that mean it will not happen.
REFUSED_ANSWERS: Final = frozenset(
    {"Rejected", "InvalidCertificate", "RevokedCertificate", "NotSupported"}
)
_WATCHED_KINDS: Final = frozenset(
    {
        str(ChargerEventKind.BOOT),
        str(ChargerEventKind.ONLINE),
        str(ChargerEventKind.FIRMWARE),
        str(ChargerEventKind.OFFLINE),
    }
)


# A station is back: one waiting for its turn may be sent its update now.
_BACK_KINDS: Final = frozenset({str(ChargerEventKind.BOOT), str(ChargerEventKind.ONLINE)})


class CampaignError(HubError):
    """A campaign request that cannot be done (unknown campaign, wrong state)."""

    http_status = 400
    error_code = "campaign_error"


@dataclass(slots=True)
class Item:
    """One station of a campaign."""

    device_id: str
    name: str | None = None
    state: str = PENDING
    from_version: str | None = None
    version: str | None = None
    answer: str | None = None
    status: str | None = None  # the last firmware status the station reported
    error: str | None = None
    sent_at: float | None = None
    deadline: float | None = None
    finished_at: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Item:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        item = cls(**known)
        if item.state not in ITEM_STATES:
            raise ValueError(f"unknown item state {item.state!r}")
        if not isinstance(item.device_id, str):
            raise ValueError(f"device_id {item.device_id!r} is not text")
        if item.deadline is not None and not isinstance(item.deadline, (int, float)):
            raise ValueError(f"deadline {item.deadline!r} is not a time")
        return item


@dataclass(slots=True)
class Campaign:
    """A roll-out of one firmware to a group of stations."""

    id: str
    name: str
    location: str
    version: str | None
    batch_size: int
    timeout: float
    created_at: float
    created_by: str | None = None
    # A signed firmware (OCPP 1.6 security whitepaper, 2.0.1 L01): PEM and base64 signature.
    signing_certificate: str | None = None
    signature: str | None = None
    state: str = RUNNING
    reason: str | None = None  # why it is paused or cancelled
    updated_at: float = 0.0
    finished_at: float | None = None
    items: list[Item] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Campaign:
        known = {
            key: data[key] for key in cls.__dataclass_fields__ if key in data and key != "items"
        }
        campaign = cls(**known, items=[Item.from_dict(item) for item in data.get("items", [])])
        if campaign.state not in (RUNNING, PAUSED, COMPLETED, CANCELLED):
            raise ValueError(f"unknown campaign state {campaign.state!r}")
        if type(campaign.batch_size) is not int or campaign.batch_size < 1:
            raise ValueError(f"batch_size {campaign.batch_size!r} is not a positive number")
        if not isinstance(campaign.timeout, (int, float)) or campaign.timeout <= 0:
            raise ValueError(f"timeout {campaign.timeout!r} is not a positive number")
        if not all(isinstance(value, str) for value in (campaign.id, campaign.location)):
            raise ValueError("a campaign's id and location are text")
        return campaign

    def as_dict(self) -> dict[str, Any]:
        """The stored form."""
        return asdict(self)

    def progress(self) -> dict[str, Any]:
        """Counts per station state, and how much is finished (0-100)."""
        counts = dict.fromkeys(ITEM_STATES, 0)
        for item in self.items:
            counts[item.state] += 1
        total = len(self.items)
        finished = total - counts[PENDING] - counts[UPDATING]
        return {
            "total": total,
            **counts,
            "percent": round(100.0 * finished / total, 1) if total else 100.0,
        }

    def summary(self) -> dict[str, Any]:
        """The API's form: the stored one with progress (whether signed, not the PEM)."""
        found = self.as_dict()
        found["signed"] = found.pop("signature") is not None
        del found["signing_certificate"]
        return {**found, "progress": self.progress()}


class Campaigns:
    """The campaigns of the hub, on disk, driven by charger events and the hub clock."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store: Store[dict[str, Any]] = Store(hub, STORE_VERSION, STORE_KEY, private=True)
        self.campaigns: dict[str, Campaign] = {}
        self._lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._kick: asyncio.Event | None = None
        self._watching: frozenset[str] = frozenset()  # stations with an update under way
        self._waiting: frozenset[str] = frozenset()  # pending stations of running campaigns

    # Persistence ----------------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored campaigns; in-flight stations get time to come back."""
        stored = await self.store.load()
        now = self.now()
        found = stored.get("campaigns") if isinstance(stored, dict) else None
        for raw in found if isinstance(found, list) else []:
            try:
                if not isinstance(raw, dict):
                    raise TypeError(f"not a campaign: {raw!r}"[:200])
                campaign = Campaign.from_dict(raw)
            except (KeyError, TypeError, ValueError) as err:
                _LOGGER.error("Skipping a stored firmware campaign: %s", err)
                continue
            for item in campaign.items:
                if item.state == UPDATING and item.deadline is not None:
                    item.deadline = max(item.deadline, now + min(campaign.timeout, RESTART_GRACE))
            self.campaigns[campaign.id] = campaign
        self._refresh_watching()

    async def save(self) -> None:
        """Write every campaign now (a step is on disk before it is acted on)."""
        self._refresh_watching()
        async with self._save_lock:
            await self.store.save({"campaigns": [c.as_dict() for c in self.campaigns.values()]})

    def now(self) -> float:
        return clock(self.hub).time()

    def _refresh_watching(self) -> None:
        self._watching = frozenset(
            item.device_id
            for campaign in self.campaigns.values()
            for item in campaign.items
            if item.state == UPDATING
        )
        self._waiting = frozenset(
            item.device_id
            for campaign in self.campaigns.values()
            if campaign.state == RUNNING
            for item in campaign.items
            if item.state == PENDING
        )

    # Requests -------------------------------------------------------------------------

    def get(self, campaign_id: str) -> Campaign:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            raise CampaignError(f"no firmware campaign {campaign_id!r}")
        return campaign

    def busy_stations(self) -> dict[str, str]:
        """Station device id → the active campaign it is in (pending or updating)."""
        busy: dict[str, str] = {}
        for campaign in self.campaigns.values():
            if campaign.state not in ACTIVE_STATES:
                continue
            for item in campaign.items:
                if item.state in (PENDING, UPDATING):
                    busy[item.device_id] = campaign.name
        return busy

    async def start(
        self,
        *,
        name: str,
        location: str,
        version: str | None,
        stations: Iterable[str],
        batch_size: int,
        timeout: float,
        user_id: str | None,
        signing_certificate: str | None = None,
        signature: str | None = None,
    ) -> Campaign:
        """Check the stations (each a station whose charger can update firmware) and start.

        A signed firmware goes through ``<integration>.update_firmware`` of each station's
        integration (with signing_certificate and signature): charger.update_firmware, the
        vendor-neutral one, has no signature."""
        devices = device_registry(self.hub)
        active = [c for c in self.campaigns.values() if c.state in ACTIVE_STATES]
        if len(active) >= MAX_ACTIVE:
            raise CampaignError(f"at most {MAX_ACTIVE} campaigns may be active at once")
        busy = self.busy_stations()
        items: list[Item] = []
        for device_id in dict.fromkeys(stations):
            device = devices.get(device_id)
            if device is None or device.kind is not DeviceKind.STATION:
                raise ServiceValidationError(f"{device_id} is not a station")
            charger = get_charger(self.hub, device_id)
            if charger is None:
                raise ServiceValidationError(f"no charger integration controls {device_id}")
            if ChargerCapability.UPDATE_FIRMWARE not in charger.capabilities:
                raise ServiceValidationError(
                    f"{device.name or device_id} does not support update_firmware"
                )
            if signature is not None and not self.hub.services.has_service(
                device.integration, "update_firmware"
            ):
                raise ServiceValidationError(
                    f"{device.name or device_id} ({device.integration}) offers no signed"
                    " firmware update"
                )
            if device_id in busy:
                raise ServiceValidationError(
                    f"{device.name or device_id} is already in campaign {busy[device_id]!r}"
                )
            item = Item(device_id, device.name, from_version=device.sw_version)
            if version is not None and _same(device.sw_version, version):
                item.state = SKIPPED
                item.version = device.sw_version
                item.error = "already runs this version"
                item.finished_at = self.now()
            items.append(item)
        if not items:
            raise ServiceValidationError("a campaign needs at least one station")
        if len(items) > MAX_STATIONS:
            raise ServiceValidationError(f"a campaign has at most {MAX_STATIONS} stations")
        now = self.now()
        campaign = Campaign(
            id=uuid.uuid4().hex[:12],
            name=name,
            location=location,
            version=version,
            batch_size=batch_size,
            timeout=timeout,
            created_at=now,
            created_by=user_id,
            signing_certificate=signing_certificate,
            signature=signature,
            updated_at=now,
            items=items,
        )
        self.campaigns[campaign.id] = campaign
        self._forget_old()
        self._finish_if_done(campaign)
        await self.save()
        self.kick()
        return campaign

    async def pause(self, campaign_id: str, reason: str = "paused by hand") -> Campaign:
        campaign = self.get(campaign_id)
        if campaign.state != RUNNING:
            raise CampaignError(f"campaign {campaign.name!r} is {campaign.state}, not running")
        campaign.state = PAUSED
        campaign.reason = reason
        campaign.updated_at = self.now()
        await self.save()
        return campaign

    async def resume(self, campaign_id: str, retry_failed: bool = False) -> Campaign:
        campaign = self.get(campaign_id)
        if campaign.state != PAUSED:
            raise CampaignError(f"campaign {campaign.name!r} is {campaign.state}, not paused")
        if retry_failed:
            for item in campaign.items:
                if item.state == FAILED:
                    item.state = PENDING
                    item.error = item.status = item.answer = None
                    item.sent_at = item.deadline = item.finished_at = None
        campaign.state = RUNNING
        campaign.reason = None
        campaign.updated_at = self.now()
        self._finish_if_done(campaign)
        await self.save()
        self.kick()
        return campaign

    async def cancel(self, campaign_id: str) -> Campaign:
        """Stop the campaign: what was not sent is cancelled; updates under way are watched."""
        campaign = self.get(campaign_id)
        if campaign.state not in ACTIVE_STATES:
            raise CampaignError(f"campaign {campaign.name!r} is already {campaign.state}")
        now = self.now()
        for item in campaign.items:
            if item.state == PENDING:
                item.state = CANCELLED
                item.finished_at = now
        campaign.state = CANCELLED
        campaign.reason = "cancelled"
        campaign.updated_at = campaign.finished_at = now
        await self.save()
        return campaign

    # Driving --------------------------------------------------------------------------

    def kick(self) -> None:
        """Ask the driver task to look at the campaigns again."""
        if self._kick is not None:
            self._kick.set()

    async def run(self) -> None:
        """The driver: sends the next updates whenever something may have changed."""
        self._kick = asyncio.Event()
        self._kick.set()
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self._advance()
            except Exception:
                _LOGGER.exception("Firmware campaigns could not advance")

    async def _advance(self) -> None:
        async with self._lock:
            before = [(c.state, c.updated_at) for c in self.campaigns.values()]
            for campaign in list(self.campaigns.values()):
                while campaign.state == RUNNING:
                    item = self._next(campaign)
                    if item is None:
                        break
                    await self._send(campaign, item)
                self._finish_if_done(campaign)
            if before != [(c.state, c.updated_at) for c in self.campaigns.values()]:
                await self.save()

    def _next(self, campaign: Campaign) -> Item | None:
        """The next station to update, if the batch has room and one is online."""
        in_flight = sum(1 for item in campaign.items if item.state == UPDATING)
        if in_flight >= campaign.batch_size:
            return None
        devices = device_registry(self.hub)
        for item in campaign.items:
            if item.state != PENDING:
                continue
            if devices.get(item.device_id) is None:
                item.state = SKIPPED
                item.error = "the station was removed"
                item.finished_at = campaign.updated_at = self.now()
                continue
            charger = get_charger(self.hub, item.device_id)
            if charger is not None and charger.online:
                return item
        return None

    async def _send(self, campaign: Campaign, item: Item) -> None:
        now = self.now()
        device = device_registry(self.hub).get(item.device_id)
        item.state = UPDATING
        item.from_version = device.sw_version if device is not None else item.from_version
        item.sent_at = now
        item.deadline = now + campaign.timeout
        campaign.updated_at = now
        await self.save()
        context = Context(user_id=campaign.created_by)
        try:
            if campaign.signature is not None and device is not None:
                result = await self.hub.services.call(
                    device.integration,
                    "update_firmware",
                    {
                        "location": campaign.location,
                        "signing_certificate": campaign.signing_certificate,
                        "signature": campaign.signature,
                    },
                    target={"device_id": item.device_id},
                    context=context,
                )
            else:
                result = await self.hub.services.call(
                    "charger",
                    "update_firmware",
                    {"device_id": item.device_id, "location": campaign.location},
                    context=context,
                )
        except Exception as err:
            await self._fail(campaign, item, f"update refused: {err}")
            return
        # charger.* answers per device; an integration's own service with its answer.
        answer = result.get(item.device_id, result) if isinstance(result, dict) else None
        status = answer.get("status") if isinstance(answer, dict) else answer
        item.answer = status if isinstance(status, str) else None
        if item.answer in REFUSED_ANSWERS:
            await self._fail(campaign, item, f"update refused: {item.answer}")
            return
        await self.save()

    async def _fail(self, campaign: Campaign, item: Item, error: str) -> None:
        self._mark_failed(campaign, item, error)
        await self.save()

    def _mark_failed(self, campaign: Campaign, item: Item, error: str) -> None:
        now = self.now()
        item.state = FAILED
        item.error = error
        item.finished_at = now
        campaign.updated_at = now
        _LOGGER.warning("Firmware campaign %s: %s %s", campaign.name, item.name, error)
        if campaign.state == RUNNING:
            campaign.state = PAUSED
            campaign.reason = f"{item.name or item.device_id}: {error}"

    def _finish_if_done(self, campaign: Campaign) -> None:
        if campaign.state != RUNNING:
            return
        if any(item.state in (PENDING, UPDATING) for item in campaign.items):
            return
        campaign.state = COMPLETED
        campaign.finished_at = campaign.updated_at = self.now()

    def _forget_old(self) -> None:
        finished = [c for c in self.campaigns.values() if c.state not in ACTIVE_STATES]
        for campaign in finished[: max(0, len(self.campaigns) - MAX_CAMPAIGNS)]:
            del self.campaigns[campaign.id]

    # What stations say ----------------------------------------------------------------

    def event_filter(self, data: Mapping[str, Any]) -> bool:
        """Only the charger events of stations being updated (runs on every charger event)."""
        kind, station = data.get("kind"), data.get("station_id")
        if kind not in _WATCHED_KINDS:
            return False
        return station in self._watching or (kind in _BACK_KINDS and station in self._waiting)

    def on_charger_event(self, event: Event) -> None:
        """A station being updated booted, came online or reported a firmware status."""
        data = event.data
        station = data.get("station_id")
        if station in self._waiting and data.get("kind") in _BACK_KINDS:
            self.kick()  # a station waiting for its update is back online
        changed = False
        for campaign in self.campaigns.values():
            for item in campaign.items:
                if item.device_id != station or item.state != UPDATING:
                    continue
                changed = True
                if data.get("kind") == ChargerEventKind.FIRMWARE:
                    status = data.get("status")
                    item.status = str(status)[:50] if status is not None else None
                    if item.status in FAILED_STATUSES:
                        self._mark_failed(campaign, item, f"firmware status {item.status}")
                        continue
                firmware = data.get("firmware") if data.get("kind") == "boot" else None
                self._check(campaign, item, firmware if isinstance(firmware, str) else None)
        if changed:
            self.hub.create_task(self._saved_and_kicked(), "firmware campaign step")

    async def _saved_and_kicked(self) -> None:
        await self.save()
        self.kick()

    def _check(self, campaign: Campaign, item: Item, reported: str | None = None) -> bool:
        """Whether the station is back online with the new firmware (then it is done)."""
        device = device_registry(self.hub).get(item.device_id)
        charger = get_charger(self.hub, item.device_id)
        if device is None or charger is None or not charger.online:
            return False
        version = reported or device.sw_version
        if version is None:
            return False
        if campaign.version is not None:
            if not _same(version, campaign.version):
                return False
        elif version == item.from_version:
            return False
        now = self.now()
        item.state = DONE
        item.version = version[:MAX_LENGTH]
        item.finished_at = campaign.updated_at = now
        self._finish_if_done(campaign)
        return True

    async def tick(self) -> None:
        """On the hub clock: stations past their deadline have failed."""
        now = self.now()
        for campaign in list(self.campaigns.values()):
            for item in campaign.items:
                if item.state != UPDATING or item.deadline is None or item.deadline > now:
                    continue
                if self._check(campaign, item):
                    continue
                minutes = campaign.timeout / 60
                last = f" (last status {item.status})" if item.status else ""
                await self._fail(
                    campaign,
                    item,
                    f"not back online with the new firmware within {minutes:g} min{last}",
                )
        self.kick()


def _same(version: str | None, target: str) -> bool:
    if version is None:
        return False
    if version.strip() == target.strip():
        return True
    try:
        return compare_versions(version, target) == 0
    except VersionError:
        return False
