"""Advertise the hub on the local network with zeroconf (``_evhub._tcp.local.``)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from typing import Any, Final

from hub.core import Hub
from hub.http.extensions import extensions

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_evhub._tcp.local."


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
            scheme = "https" if self.secure else "http"
            properties = {
                "url": f"{scheme}://{addresses[0]}:{self.port}/",
                "api": "/api/",
                "version": __import__("hub").__version__,
            }
            # What integrations advertise (the OCPP integration: its chargers' URL).
            for key, value in extensions(self.hub).discovery.items():
                text = value(addresses[0])
                if text is not None:
                    properties[key] = text
            hostname = socket.gethostname().split(".")[0] or "evhub"
            self.info = AsyncServiceInfo(
                SERVICE_TYPE,
                f"{name}.{SERVICE_TYPE}",
                addresses=[socket.inet_aton(address) for address in addresses],
                port=self.port,
                properties=properties,
                server=f"{hostname}.local.",
            )
            task = await self._zeroconf.async_register_service(self.info, allow_name_change=True)
            await task
            _LOGGER.info("Advertised as %s on %s", self.info.name, ", ".join(addresses))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            _LOGGER.warning("Cannot advertise the hub with zeroconf: %s", err)

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
