"""Advertise the hub on the local network with zeroconf (``_evhub._tcp.local.``)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import uuid
from typing import Any, Final

from hub.core import Hub, HubKey
from hub.http.extensions import extensions
from hub.storage import Store

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_evhub._tcp.local."
# The TXT property with the hub's instance id: names are the site's (two hubs may share
# one, and zeroconf renames the second "Depot (2)"); the id tells one hub from another.
PROPERTY_ID: Final = "id"
STORAGE_KEY: Final = "core.instance"
STORAGE_VERSION: Final = 1
DATA_INSTANCE_ID: Final[HubKey[str]] = HubKey("instance_id")
_DATA_INSTANCE_LOCK: Final[HubKey[asyncio.Lock]] = HubKey("instance_id.lock")
_INSTANCE_ID: Final = re.compile(r"^[0-9a-f]{32}$")


async def async_instance_id(hub: Hub) -> str:
    """This hub's id: made the first time it is asked for, kept in .storage from then on."""
    lock = hub.data.get(_DATA_INSTANCE_LOCK)
    if lock is None:
        lock = hub.data[_DATA_INSTANCE_LOCK] = asyncio.Lock()
    async with lock:  # one load (and at most one write) however many ask at once
        found = hub.data.get(DATA_INSTANCE_ID)
        if found is not None:
            return found
        store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY)
        data = await store.load()
        ident = data.get("id") if isinstance(data, dict) else None
        if not isinstance(ident, str) or not _INSTANCE_ID.match(ident):
            ident = uuid.uuid4().hex
            await store.save({"id": ident})
        hub.data[DATA_INSTANCE_ID] = ident
        return ident


def _addresses(host: str) -> list[str]:
    """The IPv4 addresses to advertise (blocking: reads the interfaces)."""
    if host not in ("0.0.0.0", "", "::"):
        return [host]
    import ifaddr

    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return found or ["127.0.0.1"]


class Advertiser:
    """Registers the hub's service while the HTTP server runs."""

    def __init__(self, hub: Hub, host: str, port: int, secure: bool) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.secure = secure
        self._zeroconf: Any = None
        self._task: asyncio.Task[None] | None = None
        self.info: Any = None
        self.registered = False

    def start(self) -> None:
        """Start advertising in the background (probing the name takes a second or two).

        Started once the hub runs, so what integrations advertise (their bound ports) is in.
        """
        self._task = asyncio.get_running_loop().create_task(self._register(), name="zeroconf")

    async def _register(self) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        try:
            addresses = await self.hub.run_in_executor(_addresses, self.host)
            interfaces: Any = [self.host] if self.host not in ("0.0.0.0", "", "::") else None
            kwargs: dict[str, Any] = {"ip_version": IPVersion.V4Only}
            if interfaces is not None:
                kwargs["interfaces"] = interfaces
            self._zeroconf = AsyncZeroconf(**kwargs)
            name = self.hub.config.name if self.hub.config is not None else "evhub"
            ident = await async_instance_id(self.hub)
            scheme = "https" if self.secure else "http"
            properties = {
                "url": f"{scheme}://{addresses[0]}:{self.port}/",
                "api": "/api/",
                "version": __import__("hub").__version__,
                PROPERTY_ID: ident,
            }
            # What integrations advertise (the OCPP integration: its chargers' URL).
            for key, value in extensions(self.hub).discovery.items():
                text = value(addresses[0])
                if text is not None:
                    properties[key] = text
            # A host name of its own, not the machine's: another hub on this machine (or the
            # machine's own mDNS responder) answers for <hostname>.local with its addresses.
            self.info = AsyncServiceInfo(
                SERVICE_TYPE,
                f"{name}.{SERVICE_TYPE}",
                addresses=[socket.inet_aton(address) for address in addresses],
                port=self.port,
                properties=properties,
                server=f"evhub-{ident[:12]}.local.",
            )
            task = await self._zeroconf.async_register_service(self.info, allow_name_change=True)
            await task
            self.registered = True
            _LOGGER.info("Advertised as %s on %s", self.info.name, ", ".join(addresses))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            _LOGGER.warning("Cannot advertise the hub with zeroconf: %s", err)

    async def wait_registered(self) -> bool:
        """Wait until the advertisement is out; False if it could not be (the log says why)."""
        if self._task is None:
            return False
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        return self.registered

    async def stop(self) -> None:
        """Withdraw the service and close the sockets."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._zeroconf is not None:
            try:
                await self._zeroconf.async_close()
            except Exception as err:
                _LOGGER.debug("zeroconf close: %s", err)
            self._zeroconf = None
