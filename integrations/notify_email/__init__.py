"""Notifications by email: plain-text mail over SMTP with STARTTLS and login.

Configuration::

    notify_email:
      - name: ops_mail
        host: smtp.example.com
        port: 587
        starttls: true          # or ssl: true for implicit TLS (port 465)
        username: alerts@example.com
        password: !secret smtp_password
        sender: alerts@example.com
        recipients: [ops@example.com]
        timeout: 10
        ca_file: /etc/ssl/my-ca.pem   # optional: trust this CA instead of the system's

The title becomes the Subject; a call's ``target`` (addresses) replaces the recipients.
smtplib runs in the executor. Refused credentials, senders or recipients are not retried.
"""

from __future__ import annotations

import email.utils
import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any, Final

import voluptuous as vol

from hub.core import Hub
from hub.hookspecs import hookimpl
from hub.notify import (
    Notification,
    NotifyError,
    NotifyPermanentError,
    NotifyTarget,
    notifier_services,
    register_notifiers,
    unique_names,
    valid_notifier_name,
)
from hub.plugins import Integration, SetupContext

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "notify_email"
DEFAULT_SUBJECT: Final = "evhub notification"

_ADDRESS = vol.All(str, vol.Match(r"^[^@\s]+@[^@\s]+$", msg="expected an email address"))


def _login_pair(config: dict[str, Any]) -> dict[str, Any]:
    if ("username" in config) != ("password" in config):
        raise vol.Invalid("username and password go together")
    if config["ssl"] and config["starttls"]:
        raise vol.Invalid("use either ssl (implicit TLS) or starttls, not both")
    return config


TARGET_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Required("name"): valid_notifier_name,
            vol.Required("host"): vol.All(str, vol.Length(min=1)),
            vol.Optional("port", default=587): vol.All(int, vol.Range(min=1, max=65535)),
            vol.Optional("starttls", default=True): bool,
            vol.Optional("ssl", default=False): bool,
            vol.Optional("username"): str,
            vol.Optional("password"): str,
            vol.Required("sender"): _ADDRESS,
            vol.Required("recipients"): vol.All([_ADDRESS], vol.Length(min=1)),
            vol.Optional("timeout", default=10.0): vol.All(vol.Coerce(float), vol.Range(min=0.1)),
            vol.Optional("ca_file"): str,
            vol.Optional("retries", default=3): vol.All(int, vol.Range(min=0, max=20)),
            vol.Optional("backoff", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0)),
        }
    ),
    _login_pair,
)

CONFIG_SCHEMA = vol.All([TARGET_SCHEMA], unique_names)


class EmailTarget(NotifyTarget):
    """Sends each notification as a plain-text email."""

    def __init__(self, name: str, hub: Hub, config: dict[str, Any]) -> None:
        super().__init__(name)
        self._hub = hub
        self._config = config

    async def send(self, message: Notification) -> None:
        """Build the email and send it from the executor."""
        recipients = message.target or self._config["recipients"]
        mail = EmailMessage()
        mail["Subject"] = message.title or DEFAULT_SUBJECT
        mail["From"] = self._config["sender"]
        mail["To"] = ", ".join(recipients)
        mail["Date"] = email.utils.formatdate(message.created_at, localtime=False)
        mail["Message-ID"] = email.utils.make_msgid(idstring=message.id)
        mail.set_content(message.message)
        await self._hub.run_in_executor(self._send_blocking, mail, recipients)

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._config.get("ca_file"))

    def _send_blocking(self, mail: EmailMessage, recipients: list[str]) -> None:
        config = self._config
        host, port, timeout = config["host"], config["port"], config["timeout"]
        try:
            smtp: smtplib.SMTP
            if config["ssl"]:
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            with smtp:
                if config["starttls"]:
                    smtp.starttls(context=self._tls_context())
                if "username" in config:
                    smtp.login(config["username"], config["password"])
                refused = smtp.send_message(mail, config["sender"], recipients)
        except smtplib.SMTPAuthenticationError as err:
            raise NotifyPermanentError(
                f"{host}:{port} refused the login of {config['username']!r}: "
                f"{err.smtp_code} {_text(err.smtp_error)}"
            ) from err
        except smtplib.SMTPRecipientsRefused as err:
            raise NotifyPermanentError(
                f"{host}:{port} refused every recipient: {', '.join(err.recipients)}"
            ) from err
        except smtplib.SMTPNotSupportedError as err:
            raise NotifyPermanentError(f"{host}:{port}: {err}") from err
        except smtplib.SMTPResponseException as err:
            text = f"{host}:{port} answered {err.smtp_code} {_text(err.smtp_error)}"
            if 500 <= err.smtp_code < 600:
                raise NotifyPermanentError(text) from err
            raise NotifyError(text) from err
        except ssl.SSLCertVerificationError as err:
            raise NotifyPermanentError(f"{host}:{port}: TLS certificate rejected: {err}") from err
        except (smtplib.SMTPException, OSError) as err:
            raise NotifyError(f"{host}:{port}: {type(err).__name__}: {err}") from err
        if refused:
            _LOGGER.warning("%s: some recipients were refused: %s", self.name, ", ".join(refused))


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


async def async_setup(ctx: SetupContext) -> bool:
    """Register notify.<name> for each configured mail target."""
    hub = ctx.hub
    ctx.on_unload(
        register_notifiers(hub, ctx.config, lambda entry: EmailTarget(entry["name"], hub, entry))
    )
    return True


@hookimpl
def evhub_integration() -> Integration:
    """Describe the email notify integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Email notifications",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        services=notifier_services,
    )
