"""Firmware management: the fleet's inventory, minimum versions and roll-out campaigns.

Vendor-neutral: it reads what runs where from the device registry (manufacturer, model,
sw_version), updates through ``charger.update_firmware`` (any integration whose chargers
declare the capability) and follows the updates through charger events (``firmware``
statuses, ``boot`` with the new version, ``online``/``offline``).

```yaml
firmware:
  batch_size: 2            # default stations updated at once per campaign
  timeout_minutes: 30      # default time a station has to come back with the new firmware
  minimum_versions:
    - {vendor: ACME, model: DC50, version: "2.4.1"}
    - {vendor: ACME, version: "2.0"}      # every other ACME model
```

Services: ``firmware.inventory`` and ``firmware.campaigns`` (viewer),
``firmware.start_campaign``, ``firmware.pause``, ``firmware.resume`` and ``firmware.cancel``
(admin; the last three take ``campaign_id``). The dashboard page is panels/firmware.js.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.charger import EVENT_CHARGER
from hub.const import EVENT_DEVICE_REGISTRY_UPDATED
from hub.core import Context, Event, ServiceCall
from hub.exceptions import HubError, ServiceValidationError
from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext
from hub.registry import DeviceKind, device_registry
from hub.storage import Store
from integrations.firmware.campaign import CHECK_INTERVAL, CampaignError, Campaigns
from integrations.firmware.inventory import (
    DOMAIN,
    Flags,
    Minimum,
    Minimums,
    inventory,
    stations,
)
from integrations.firmware.version import MAX_LENGTH, VersionError, parse_version

__all__ = ["CampaignError", "Campaigns", "Minimum", "Minimums"]

_LOGGER = logging.getLogger(__name__)

CONF_BATCH_SIZE: Final = "batch_size"
CONF_TIMEOUT_MINUTES: Final = "timeout_minutes"
CONF_MINIMUM_VERSIONS: Final = "minimum_versions"
CONF_VENDOR: Final = "vendor"
CONF_MODEL: Final = "model"
CONF_VERSION: Final = "version"

ATTR_CAMPAIGN_ID: Final = "campaign_id"
ATTR_STATIONS: Final = "stations"
ATTR_LOCATION: Final = "location"
ATTR_NAME: Final = "name"
ATTR_RETRY_FAILED: Final = "retry_failed"
ATTR_REASON: Final = "reason"
ATTR_SIGNING_CERTIFICATE: Final = "signing_certificate"
ATTR_SIGNATURE: Final = "signature"
_BASE64: Final = re.compile(r"^[A-Za-z0-9+/=\s]+$")

FLAGS_STORE_KEY: Final = "firmware.flags"
PANEL_MODULE: Final = Path(__file__).resolve().parent / "panels" / "firmware.js"
PANEL_ELEMENT: Final = "firmware-panel"

_BATCH = vol.All(vol.Coerce(int), vol.Range(min=1, max=100))
_TIMEOUT = vol.All(vol.Coerce(float), vol.Range(min=1, max=7 * 24 * 60))
_TEXT = vol.All(str, vol.Strip, vol.Length(min=1, max=100))


def _version(value: Any) -> str:
    if isinstance(value, float):
        # YAML reads 2.10 as the number 2.1: a version must be quoted to keep its digits.
        raise vol.Invalid(f'quote the version ({value!r} reads as a number): version: "…"')
    text = str(value).strip() if isinstance(value, (str, int)) and value is not True else value
    try:
        parse_version(text)
    except VersionError as err:
        raise vol.Invalid(str(err)) from None
    return str(text)


def _unique_minimums(minimums: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    for entry in minimums:
        key = (entry[CONF_VENDOR].casefold(), (entry.get(CONF_MODEL) or "").casefold())
        if key in seen:
            raise vol.Invalid(
                f"two minimum versions for {entry[CONF_VENDOR]} {entry.get(CONF_MODEL) or ''}"
            )
        seen.add(key)
    return minimums


def _empty_if_none(value: Any) -> Any:
    return {} if value is None else value


MINIMUM_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_VENDOR): _TEXT,
        vol.Optional(CONF_MODEL): _TEXT,
        vol.Required(CONF_VERSION): _version,
    }
)
CONFIG_SCHEMA = vol.All(
    _empty_if_none,
    vol.Schema(
        {
            vol.Optional(CONF_BATCH_SIZE, default=2): _BATCH,
            vol.Optional(CONF_TIMEOUT_MINUTES, default=30.0): _TIMEOUT,
            vol.Optional(CONF_MINIMUM_VERSIONS, default=[]): vol.All(
                [MINIMUM_SCHEMA],
                vol.Length(max=1000),
                _unique_minimums,
            ),
        }
    ),
)


def _config(raw: Any) -> dict[str, Any]:
    validated: dict[str, Any] = CONFIG_SCHEMA(raw)
    return validated


def minimums_of(config: dict[str, Any]) -> Minimums:
    """The minimums of a firmware section, validated or raw (the security audit reads the
    raw one): an entry that is not valid is left out."""
    found: list[Minimum] = []
    entries = config.get(CONF_MINIMUM_VERSIONS) if isinstance(config, dict) else None
    for raw in entries if isinstance(entries, list) else []:
        try:
            entry = MINIMUM_SCHEMA(raw)
        except vol.Invalid:
            continue
        found.append(Minimum(entry[CONF_VENDOR], entry.get(CONF_MODEL), entry[CONF_VERSION]))
    return Minimums(found)


_ID = vol.All(str, vol.Length(min=1, max=64))

START_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_NAME): _TEXT,
        vol.Required(ATTR_LOCATION): vol.All(vol.Url(), vol.Length(max=512)),
        vol.Optional(CONF_VERSION): vol.All(str, vol.Length(max=MAX_LENGTH), _version),
        # Station device ids, or every station of a vendor (and model).
        vol.Optional(ATTR_STATIONS): vol.All([_ID], vol.Length(min=1, max=10_000)),
        vol.Optional(CONF_VENDOR): _TEXT,
        vol.Optional(CONF_MODEL): _TEXT,
        vol.Optional(CONF_BATCH_SIZE): _BATCH,
        vol.Optional(CONF_TIMEOUT_MINUTES): _TIMEOUT,
    }
)


def _certificate(value: Any) -> str:
    if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value:
        raise vol.Invalid("expected a PEM certificate (-----BEGIN CERTIFICATE-----)")
    if len(value) > 5500:
        raise vol.Invalid("a signing certificate is at most 5500 characters")
    return value


def _signature(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 800 or not _BASE64.match(value):
        raise vol.Invalid("expected a base64 signature of at most 800 characters")
    return value


START_SCHEMA = START_SCHEMA.extend(
    {
        vol.Optional(ATTR_SIGNING_CERTIFICATE): _certificate,
        vol.Optional(ATTR_SIGNATURE): _signature,
    }
)
CAMPAIGN_SCHEMA = vol.Schema({vol.Required(ATTR_CAMPAIGN_ID): _ID})
PAUSE_SCHEMA = CAMPAIGN_SCHEMA.extend(
    {vol.Optional(ATTR_REASON): vol.All(str, vol.Length(max=200))}
)
RESUME_SCHEMA = CAMPAIGN_SCHEMA.extend({vol.Optional(ATTR_RETRY_FAILED, default=False): bool})
LIST_SCHEMA = vol.Schema({vol.Optional(ATTR_CAMPAIGN_ID): _ID})


async def async_setup(ctx: SetupContext) -> bool:
    """Load the campaigns and flags, watch the fleet, register services and the page."""
    hub = ctx.hub
    config = _config(ctx.config)
    minimums = minimums_of(config)
    campaigns = Campaigns(hub)
    await campaigns.load()
    flags = Flags(hub, minimums)
    flag_store: Store[dict[str, Any]] = Store(hub, 1, FLAGS_STORE_KEY, private=True)
    stored_flags = await flag_store.load()
    if stored_flags:
        flags.flagged = {str(k): str(v) for k, v in dict(stored_flags.get("flagged", {})).items()}

    async def alert(action: str, data: dict[str, Any]) -> None:
        if not hub.services.has_service("alert", action):
            return
        try:
            await hub.services.call("alert", action, data, context=Context())
        except HubError as err:  # already resolved by hand: nothing to do
            _LOGGER.debug("alert.%s %s: %s", action, data.get("key") or data, err)

    async def save_flags() -> None:
        await flag_store.save({"flagged": flags.flagged})

    def check(device_id: str) -> None:
        device = device_registry(hub).get(device_id)
        if device is None:
            if flags.forget(device_id):
                ctx.create_task(save_flags(), "save firmware flags")
                ctx.create_task(
                    alert("resolve", {"alert": f"firmware_below_minimum:{device_id}"}),
                    "resolve firmware alert",
                )
            return
        if device.kind is not DeviceKind.STATION:
            return
        change = flags.update(device)
        if change is None:
            return
        ctx.create_task(save_flags(), "save firmware flags")
        if change[0] == "raise":
            ctx.create_task(alert("raise", flags.alert(device)), "raise firmware alert")
        else:
            ctx.create_task(
                alert("resolve", {"alert": f"firmware_below_minimum:{device.id}"}),
                "resolve firmware alert",
            )

    def on_device(event: Event) -> None:
        device_id = event.data.get("device_id")
        if isinstance(device_id, str):
            check(device_id)

    ctx.listen(EVENT_DEVICE_REGISTRY_UPDATED, on_device)
    for device in stations(hub):
        check(device.id)
    # Flags of stations gone while the hub was down.
    for device_id in list(flags.flagged):
        if device_registry(hub).get(device_id) is None:
            check(device_id)

    ctx.listen(EVENT_CHARGER, campaigns.on_charger_event, campaigns.event_filter)
    ctx.create_task(campaigns.run(), "campaigns")
    ctx.track_interval(CHECK_INTERVAL, campaigns.tick)

    async def _flush() -> None:
        await campaigns.save()

    ctx.on_unload(_flush)

    # Services -----------------------------------------------------------------------

    def get_inventory(call: ServiceCall) -> dict[str, Any]:
        defaults = {
            CONF_BATCH_SIZE: config[CONF_BATCH_SIZE],
            CONF_TIMEOUT_MINUTES: config[CONF_TIMEOUT_MINUTES],
        }
        return {**inventory(hub, minimums), "defaults": defaults}

    def list_campaigns(call: ServiceCall) -> dict[str, Any]:
        campaign_id = call.data.get(ATTR_CAMPAIGN_ID)
        if campaign_id is not None:
            return campaigns.get(campaign_id).summary()
        found = sorted(campaigns.campaigns.values(), key=lambda c: c.created_at, reverse=True)
        return {"campaigns": [campaign.summary() for campaign in found]}

    async def start_campaign(call: ServiceCall) -> dict[str, Any]:
        data = call.data
        chosen: list[str] = list(data.get(ATTR_STATIONS) or [])
        vendor, model = data.get(CONF_VENDOR), data.get(CONF_MODEL)
        if model is not None and vendor is None:
            raise ServiceValidationError("model needs a vendor")
        if vendor is not None:
            if chosen:
                raise ServiceValidationError("name stations or a vendor (and model), not both")
            chosen = [
                device.id
                for device in stations(hub)
                if (device.manufacturer or "").casefold() == vendor.casefold()
                and (model is None or (device.model or "").casefold() == model.casefold())
            ]
            if not chosen:
                raise ServiceValidationError(f"no station of {vendor} {model or ''}".rstrip())
        if not chosen:
            raise ServiceValidationError("a campaign needs stations or a vendor")
        if (ATTR_SIGNING_CERTIFICATE in data) != (ATTR_SIGNATURE in data):
            raise ServiceValidationError(
                "a signed firmware needs both signing_certificate and signature"
            )
        campaign = await campaigns.start(
            name=data[ATTR_NAME],
            location=data[ATTR_LOCATION],
            version=data.get(CONF_VERSION),
            stations=chosen,
            batch_size=data.get(CONF_BATCH_SIZE, config[CONF_BATCH_SIZE]),
            timeout=60.0 * data.get(CONF_TIMEOUT_MINUTES, config[CONF_TIMEOUT_MINUTES]),
            user_id=call.context.user_id,
            signing_certificate=data.get(ATTR_SIGNING_CERTIFICATE),
            signature=data.get(ATTR_SIGNATURE),
        )
        return campaign.summary()

    async def pause(call: ServiceCall) -> dict[str, Any]:
        reason = call.data.get(ATTR_REASON) or "paused by hand"
        return (await campaigns.pause(call.data[ATTR_CAMPAIGN_ID], reason)).summary()

    async def resume(call: ServiceCall) -> dict[str, Any]:
        campaign = await campaigns.resume(call.data[ATTR_CAMPAIGN_ID], call.data[ATTR_RETRY_FAILED])
        return campaign.summary()

    async def cancel(call: ServiceCall) -> dict[str, Any]:
        return (await campaigns.cancel(call.data[ATTR_CAMPAIGN_ID])).summary()

    ctx.register_service(
        "inventory",
        get_inventory,
        {},
        role=Role.VIEWER,
        description="Firmware versions by vendor and model, and stations below their minimum.",
    )
    ctx.register_service(
        "campaigns",
        list_campaigns,
        LIST_SCHEMA,
        role=Role.VIEWER,
        description="Firmware campaigns with their progress (or one, by campaign_id).",
    )
    ctx.register_service(
        "start_campaign",
        start_campaign,
        START_SCHEMA,
        role=Role.ADMIN,
        description="Roll a firmware out to stations a batch at a time.",
    )
    ctx.register_service(
        "pause",
        pause,
        PAUSE_SCHEMA,
        role=Role.ADMIN,
        description="Send no more updates until resumed.",
    )
    ctx.register_service(
        "resume",
        resume,
        RESUME_SCHEMA,
        role=Role.ADMIN,
        description="Go on with a paused campaign (retry_failed: try the failed stations again).",
    )
    ctx.register_service(
        "cancel",
        cancel,
        CAMPAIGN_SCHEMA,
        role=Role.ADMIN,
        description="Stop a campaign; updates already sent are still followed.",
    )
    ctx.register_panel(
        "firmware", "Firmware", PANEL_MODULE, PANEL_ELEMENT, role=Role.VIEWER, icon="system_update"
    )
    return True


@hookimpl
def evhub_integration() -> Integration:
    """Describe the firmware integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Firmware management",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
    )
