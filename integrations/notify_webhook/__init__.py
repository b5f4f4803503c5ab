"""Notifications by webhook: POST JSON ``{"title", "message", "data", "target"}`` to a URL.

Configuration::

    notify_webhook:
      - name: ops_hook
        url: https://hooks.example.com/evhub
        headers: {Authorization: !secret ops_hook_auth}
        timeout: 10
        retries: 3
        backoff: 1

A non-2xx answer or a network error is retried with backoff; 4xx answers other than 408 and
429 are refused requests and are not retried.
"""

from __future__ import annotations

import logging
from typing import Final

import aiohttp
import voluptuous as vol

from hub.core import HubKey
from hub.hookspecs import hookimpl
from hub.notify import (
    HttpNotifiers,
    Notification,
    NotifyTarget,
    check_http_status,
    notifier_services,
    setup_http_notifiers,
    unique_names,
    unload_http_notifiers,
    valid_notifier_name,
)
from hub.plugins import Integration, SetupContext

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "notify_webhook"
DATA: Final[HubKey[HttpNotifiers]] = HubKey("notify_webhook.running")

TARGET_SCHEMA = vol.Schema(
    {
        vol.Required("name"): valid_notifier_name,
        vol.Required("url"): vol.All(str, vol.Match(r"^https?://", msg="expected an http(s) URL")),
        vol.Optional("headers", default=dict): {str: vol.Coerce(str)},
        vol.Optional("timeout", default=10.0): vol.All(vol.Coerce(float), vol.Range(min=0.1)),
        vol.Optional("retries", default=3): vol.All(int, vol.Range(min=0, max=20)),
        vol.Optional("backoff", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0)),
    }
)

CONFIG_SCHEMA = vol.All([TARGET_SCHEMA], unique_names)


class WebhookTarget(NotifyTarget):
    """POSTs each notification as JSON."""

    def __init__(
        self,
        name: str,
        session: aiohttp.ClientSession,
        url: str,
        headers: dict[str, str],
        timeout: float,
    ) -> None:
        super().__init__(name)
        self._session = session
        self._url = url
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, message: Notification) -> None:
        """POST the notification; raise on a non-2xx answer."""
        payload = {
            "title": message.title,
            "message": message.message,
            "data": dict(message.data),
            "target": message.target,
        }
        async with self._session.post(
            self._url, json=payload, headers=self._headers, timeout=self._timeout
        ) as response:
            body = await response.text(errors="replace")
            check_http_status(response.status, body, self._url)


async def async_setup(ctx: SetupContext) -> bool:
    """Register notify.<name> for each configured webhook."""
    ctx.on_unload(lambda: unload_http_notifiers(ctx.hub, DATA))
    await setup_http_notifiers(
        ctx.hub,
        DATA,
        ctx.config,
        lambda session, entry: WebhookTarget(
            entry["name"], session, entry["url"], entry["headers"], entry["timeout"]
        ),
    )
    return True


@hookimpl
def evhub_integration() -> Integration:
    """Describe the webhook notify integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Webhook notifications",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        services=notifier_services,
    )
