"""Find wallboxes on the LAN with zeroconf: a list of what was found, nothing configured.

The browser watches the service types chargers announce (``_modbus._tcp``, ``_http._tcp``
of wallbox web interfaces) and ``_evhub._tcp``; a service whose names match a profile's
discovery patterns, or that announces Modbus, enters the discovered list with its name,
address and likely product. Other evhub hubs are listed as hubs; this hub's own
advertisement (it carries a token only this hub knows) is skipped. A user adopts an entry
with the ``modbus.adopt`` service.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from hub.clock import clock
from hub.core import Hub
from integrations.modbus.profile import Profile

_LOGGER = logging.getLogger(__name__)

EVHUB_TYPE: Final = "_evhub._tcp.local."
MODBUS_TYPE: Final = "_modbus._tcp.local."
DEFAULT_TYPES: Final = (MODBUS_TYPE, "_http._tcp.local.", EVHUB_TYPE)
# The TXT property by which the hub knows its own advertisement.
SELF_PROPERTY: Final = "modbus_discovery"
MAX_DISCOVERED: Final = 500
MAX_LOOKUPS: Final = 32
_TEXT_LIMIT: Final = 120


@dataclass(slots=True)
class Discovered:
    """One service found on the LAN."""

    id: str
    name: str
    service_type: str
    host: str | None
    port: int | None
    kind: str
    vendor: str | None
    profile: str | None
    properties: dict[str, str]
    first_seen: float
    last_seen: float
    adopted: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The API's form."""
        return {
            "id": self.id,
            "name": self.name,
            "service_type": self.service_type,
            "host": self.host,
            "port": self.port,
            "kind": self.kind,
            "vendor": self.vendor,
            "profile": self.profile,
            "properties": self.properties,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "adopted": self.adopted,
        }


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return "".join(ch for ch in str(value) if ch.isprintable())[:_TEXT_LIMIT]


def likely_profile(profiles: Iterable[Profile], *names: str) -> Profile | None:
    """The profile whose discovery patterns match one of the names (case-blind)."""
    text = " ".join(names).lower()
    for profile in profiles:
        for pattern in profile.discovery.get("names") or ():
            try:
                if re.search(pattern, text, re.IGNORECASE):
                    return profile
            except re.error:
                continue
    return None


class LanDiscovery:
    """A zeroconf browser filling the discovered list."""

    def __init__(
        self,
        hub: Hub,
        profiles: Callable[[], Iterable[Profile]],
        *,
        interfaces: list[str] | None = None,
        service_types: Iterable[str] = DEFAULT_TYPES,
    ) -> None:
        self.hub = hub
        self._profiles = profiles
        self.interfaces = interfaces
        self.service_types = tuple(service_types)
        self.token = secrets.token_hex(8)
        self.found: dict[str, Discovered] = {}
        # How often the hub's own advertisement was seen (and skipped).
        self.seen_self = 0
        self._zeroconf: Any = None
        self._browser: Any = None
        self._lookups: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start browsing (quietly does nothing where multicast is unavailable)."""
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        kwargs: dict[str, Any] = {"ip_version": IPVersion.V4Only}
        if self.interfaces:
            kwargs["interfaces"] = self.interfaces
        try:
            self._zeroconf = AsyncZeroconf(**kwargs)
            self._browser = AsyncServiceBrowser(
                self._zeroconf.zeroconf, list(self.service_types), handlers=[self._on_change]
            )
        except OSError as err:
            _LOGGER.warning("LAN discovery unavailable: %s", err)
            await self.stop()

    async def stop(self) -> None:
        """Stop browsing and close the sockets."""
        for task in list(self._lookups):
            task.cancel()
        if self._lookups:
            await asyncio.gather(*self._lookups, return_exceptions=True)
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
            self._browser = None
        if self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_close()
            self._zeroconf = None

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            return
        if len(self._lookups) >= MAX_LOOKUPS:
            # A flood of announcements: what is missed now is announced again later.
            return
        task = asyncio.get_running_loop().create_task(
            self._lookup(service_type, name), name="modbus discovery lookup"
        )
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _lookup(self, service_type: str, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        if self._zeroconf is None:
            return
        info = AsyncServiceInfo(service_type, name)
        try:
            if not await info.async_request(self._zeroconf.zeroconf, 3000):
                return
        except Exception as err:
            _LOGGER.debug("Cannot resolve %s: %s", name, err)
            return
        properties = {
            _text(key): _text(value)
            for key, value in (info.properties or {}).items()
            if key is not None and value is not None
        }
        self.add(service_type, name, info, properties)

    def add(
        self, service_type: str, name: str, info: Any, properties: dict[str, str]
    ) -> Discovered | None:
        """Take one resolved service into the list (or skip it); return its entry."""
        if service_type == EVHUB_TYPE and properties.get(SELF_PROPERTY) == self.token:
            self.seen_self += 1
            return None  # this hub's own advertisement
        addresses = [
            str(ipaddress.ip_address(raw))
            for raw in (getattr(info, "addresses", None) or [])
            if len(raw) in (4, 16)
        ]
        host = addresses[0] if addresses else None
        instance = _text(name.removesuffix("." + service_type))
        server = _text(getattr(info, "server", "") or "")
        profile = likely_profile(self._profiles(), instance, server, *properties.values())
        if service_type == EVHUB_TYPE:
            kind = "hub"
        elif profile is not None or service_type == MODBUS_TYPE:
            kind = "charger"
        else:
            return None  # an HTTP service of something that is not a known wallbox
        ident = hashlib.sha256(f"{service_type}|{name}".encode()).hexdigest()[:12]
        now = clock(self.hub).time()
        entry = self.found.get(ident)
        if entry is None:
            if len(self.found) >= MAX_DISCOVERED:
                return None
            entry = self.found[ident] = Discovered(
                id=ident,
                name=instance,
                service_type=service_type.removesuffix(".local."),
                host=host,
                port=getattr(info, "port", None),
                kind=kind,
                vendor=profile.manufacturer if profile is not None else None,
                profile=profile.key if profile is not None else None,
                properties=properties,
                first_seen=now,
                last_seen=now,
            )
            _LOGGER.info("Discovered %s %s at %s", kind, instance, host)
        else:
            entry.host = host or entry.host
            entry.port = getattr(info, "port", None) or entry.port
            entry.last_seen = now
        return entry

    def listing(self) -> list[dict[str, Any]]:
        """The discovered list, by name."""
        return [entry.as_dict() for entry in sorted(self.found.values(), key=lambda e: e.name)]
