"""Notifications through ntfy (https://ntfy.sh or a self-hosted server).

Configuration::

    notify_ntfy:
      - name: ops_phone
        url: https://ntfy.sh
        topic: evhub-site-1
        token: !secret ntfy_token
        priority: high

Each message is POSTed to ``<url>/<topic>`` with the headers Title, Priority, Tags and
``Authorization: Bearer <token>``, as ntfy documents. A call's ``data`` may set
``priority``, ``tags`` (list or comma-separated) and ``click``.
"""

from __future__ import annotations

import email.header
import logging
from typing import Any, Final

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

DOMAIN: Final = "notify_ntfy"
DATA: Final[HubKey[HttpNotifiers]] = HubKey("notify_ntfy.running")

PRIORITIES: Final = ("min", "low", "default", "high", "max", "urgent", "1", "2", "3", "4", "5")


def _priority(value: Any) -> str:
    text = str(value).lower()
    if text not in PRIORITIES:
        raise vol.Invalid(f"unknown priority {value!r}; use 1-5 or min, low, default, high, max")
    return text


TARGET_SCHEMA = vol.Schema(
    {
        vol.Required("name"): valid_notifier_name,
        vol.Optional("url", default="https://ntfy.sh"): vol.All(
            str, vol.Match(r"^https?://", msg="expected an http(s) URL")
        ),
        vol.Required("topic"): vol.All(str, vol.Match(r"^[-_A-Za-z0-9]{1,64}$")),
        vol.Optional("token"): str,
        vol.Optional("priority", default="default"): _priority,
        vol.Optional("timeout", default=10.0): vol.All(vol.Coerce(float), vol.Range(min=0.1)),
        vol.Optional("retries", default=3): vol.All(int, vol.Range(min=0, max=20)),
        vol.Optional("backoff", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0)),
    }
)

CONFIG_SCHEMA = vol.All([TARGET_SCHEMA], unique_names)


def _header(text: str) -> str:
    """Header values are Latin-1 on the wire: RFC 2047-encode others (ntfy decodes them)."""
    if text.isascii():
        return text
    return email.header.Header(text, "utf-8").encode()


class NtfyTarget(NotifyTarget):
    """Publishes each notification to one ntfy topic."""

    def __init__(self, name: str, session: aiohttp.ClientSession, config: dict[str, Any]) -> None:
        super().__init__(name)
        self._session = session
        self._url = f"{config['url'].rstrip('/')}/{config['topic']}"
        self._token: str | None = config.get("token")
        self._priority: str = config["priority"]
        self._timeout = aiohttp.ClientTimeout(total=config["timeout"])

    async def send(self, message: Notification) -> None:
        """POST the message text to the topic."""
        headers = {"Priority": _priority(message.data.get("priority", self._priority))}
        if message.title:
            headers["Title"] = _header(message.title)
        tags = message.data.get("tags")
        if tags:
            headers["Tags"] = _header(tags if isinstance(tags, str) else ",".join(map(str, tags)))
        if message.data.get("click"):
            headers["Click"] = str(message.data["click"])
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        async with self._session.post(
            self._url, data=message.message.encode(), headers=headers, timeout=self._timeout
        ) as response:
            body = await response.text(errors="replace")
            check_http_status(response.status, body, self._url)


async def async_setup(ctx: SetupContext) -> bool:
    """Register notify.<name> for each configured topic."""
    ctx.on_unload(lambda: unload_http_notifiers(ctx.hub, DATA))
    await setup_http_notifiers(
        ctx.hub,
        DATA,
        ctx.config,
        lambda session, entry: NtfyTarget(entry["name"], session, entry),
    )
    return True


@hookimpl
def evhub_integration() -> Integration:
    """Describe the ntfy notify integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="ntfy notifications",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        services=notifier_services,
    )
