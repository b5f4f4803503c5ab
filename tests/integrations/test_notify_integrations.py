"""notify_webhook, notify_email and notify_ntfy against real servers on loopback ports."""

from __future__ import annotations

import contextlib
import datetime
import email
import email.header
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.bootstrap import new_hub
from hub.core import Event, Hub
from hub.notify import (
    EVENT_NOTIFICATION_FAILED,
    EVENT_NOTIFICATION_SENT,
    PersistentStatus,
    persistent_notifications,
    setup_persistent_notifications,
)
from hub.plugins import plugin_registry

# Helpers ---------------------------------------------------------------------------------


def write_config(config_dir: Path, sections: dict[str, Any]) -> None:
    config = {"http": {"server_host": "127.0.0.1", "server_port": 0}, **sections}
    config_dir.mkdir(exist_ok=True)
    config_dir.joinpath("configuration.yaml").write_text(yaml.safe_dump(config))


@contextlib.asynccontextmanager
async def running_hub(config_dir: Path, sections: dict[str, Any]) -> AsyncIterator[Hub]:
    """A hub started from a configuration.yaml holding sections."""
    write_config(config_dir, sections)
    hub = new_hub(config_dir)
    await hub.start()
    try:
        await setup_persistent_notifications(hub)
        yield hub
    finally:
        await hub.stop()


def collect(hub: Hub, event_type: str) -> list[Event]:
    events: list[Event] = []
    hub.bus.listen(event_type, events.append)
    return events


class Receiver:
    """An HTTP endpoint answering with scripted statuses (then 200) and recording requests."""

    def __init__(self, statuses: list[int] | None = None, *, always: int | None = None) -> None:
        self.statuses = list(statuses or [])
        self.always = always
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        if self.always is not None:
            status = self.always
        else:
            status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "receiver broken")


@contextlib.asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


# Webhook ---------------------------------------------------------------------------------


def webhook_section(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {
        "notify_webhook": [
            {
                "name": "ops_hook",
                "url": f"{receiver.url}/hooks/evhub",
                "headers": {"X-Token": "abc"},
                "timeout": 5,
                "backoff": 0.01,
                **extra,
            }
        ]
    }


async def test_webhook_posts_json(tmp_path: Path) -> None:
    async with (
        serve(Receiver()) as receiver,
        running_hub(tmp_path, webhook_section(receiver)) as hub,
    ):
        assert plugin_registry(hub).is_loaded("notify_webhook")
        sent = collect(hub, EVENT_NOTIFICATION_SENT)
        result = await hub.services.call(
            "notify",
            "ops_hook",
            {"message": "CP-1 offline", "title": "Outage", "data": {"station": "CP-1"}},
        )
        await hub.block_till_done()
        assert result["status"] == "delivered"
        assert result["attempts"] == 1
        [(path, headers, body)] = receiver.requests
        assert path == "/hooks/evhub"
        assert headers["X-Token"] == "abc"
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == {
            "title": "Outage",
            "message": "CP-1 offline",
            "data": {"station": "CP-1"},
            "target": None,
        }
        assert [e.data["notifier"] for e in sent] == ["ops_hook"]
    assert not hub.services.has_service("notify", "ops_hook")


async def test_webhook_retries_until_delivered(tmp_path: Path) -> None:
    async with (
        serve(Receiver([500, 500])) as receiver,
        running_hub(tmp_path, webhook_section(receiver, retries=3)) as hub,
    ):
        result = await hub.services.call("notify", "ops_hook", {"message": "m"})
        assert result["status"] == "delivered"
        assert result["attempts"] == 3
        assert len(receiver.requests) == 3
        assert persistent_notifications(hub) == []


async def test_webhook_always_failing_is_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        serve(Receiver(always=500)) as receiver,
        running_hub(tmp_path, webhook_section(receiver, retries=2)) as hub,
    ):
        failed = collect(hub, EVENT_NOTIFICATION_FAILED)
        with caplog.at_level(logging.ERROR):
            result = await hub.services.call(
                "notify", "ops_hook", {"message": "CP-7 tamper", "title": "Security"}
            )
        await hub.block_till_done()
        assert result["status"] == "failed"
        assert result["attempts"] == 3
        assert len(receiver.requests) == 3
        assert "HTTP 500" in result["error"]
        [event] = failed
        assert event.data["notifier"] == "ops_hook"
        [record] = persistent_notifications(hub)
        assert record.status is PersistentStatus.failed
        assert record.notifier == "ops_hook"
        assert "HTTP 500" in (record.error or "")
        assert "CP-7 tamper" in record.message
        assert any(
            r.levelno == logging.ERROR and "notify.ops_hook" in r.getMessage()
            for r in caplog.records
        )


async def test_webhook_client_error_not_retried(tmp_path: Path) -> None:
    async with (
        serve(Receiver(always=401)) as receiver,
        running_hub(tmp_path, webhook_section(receiver, retries=3)) as hub,
    ):
        result = await hub.services.call("notify", "ops_hook", {"message": "m"})
        assert (result["status"], result["attempts"]) == ("failed", 1)
        assert "HTTP 401" in result["error"]


async def test_webhook_unreachable_is_recorded(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    section = {
        "notify_webhook": [
            {"name": "gone", "url": f"http://127.0.0.1:{port}/", "retries": 1, "backoff": 0.01}
        ]
    }
    async with running_hub(tmp_path, section) as hub:
        result = await hub.services.call("notify", "gone", {"message": "m"})
        assert (result["status"], result["attempts"]) == ("failed", 2)
        assert "Connect" in result["error"]
        assert len(persistent_notifications(hub)) == 1


# ntfy ------------------------------------------------------------------------------------


async def test_ntfy_publishes_to_topic(tmp_path: Path) -> None:
    section = {
        "notify_ntfy": [
            {"name": "ops_phone", "url": "", "topic": "evhub-site-1", "token": "tk_123",
             "priority": "high", "backoff": 0.01}
        ]
    }  # fmt: skip
    async with serve(Receiver([503])) as receiver:
        section["notify_ntfy"][0]["url"] = receiver.url + "/"
        async with running_hub(tmp_path, section) as hub:
            result = await hub.services.call(
                "notify",
                "ops_phone",
                {"message": "Connector 2 faulted", "title": "Störung CP-1",
                 "data": {"tags": ["warning", "ev"]}},
            )  # fmt: skip
    assert (result["status"], result["attempts"]) == ("delivered", 2)
    path, headers, body = receiver.requests[-1]
    assert path == "/evhub-site-1"
    assert body == b"Connector 2 faulted"
    assert headers["Priority"] == "high"
    assert headers["Authorization"] == "Bearer tk_123"
    assert headers["Tags"] == "warning,ev"
    title = str(email.header.make_header(email.header.decode_header(headers["Title"])))
    assert title == "Störung CP-1"


async def test_ntfy_bad_config_skips_integration(tmp_path: Path) -> None:
    section = {"notify_ntfy": [{"name": "x", "topic": "bad topic!", "priority": "loud"}]}
    async with running_hub(tmp_path, section) as hub:
        assert not plugin_registry(hub).is_loaded("notify_ntfy")
        assert hub.config is not None
        assert any("notify_ntfy" in str(error) for error in hub.config.errors)


# Email -----------------------------------------------------------------------------------

USER, PASSWORD = "alerts", "s3cret"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.tls.append(session.ssl is not None and bool(session.authenticated))
        return "250 Message accepted for delivery"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """An SMTP server requiring STARTTLS and login, on a free loopback port."""
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        yield inbox, controller.port, cert
    finally:
        controller.stop()


def email_section(port: int, cert: Path, password: str = PASSWORD) -> dict[str, Any]:
    return {
        "notify_email": [
            {
                "name": "ops_mail",
                "host": "127.0.0.1",
                "port": port,
                "starttls": True,
                "username": USER,
                "password": password,
                "sender": "alerts@example.com",
                "recipients": ["ops@example.com", "oncall@example.com"],
                "timeout": 5,
                "ca_file": str(cert),
                "retries": 2,
                "backoff": 0.01,
            }
        ]
    }


async def test_email_sent_with_starttls_and_login(
    tmp_path: Path, smtp_server: tuple[Inbox, int, Path]
) -> None:
    inbox, port, cert = smtp_server
    async with running_hub(tmp_path / "hub", email_section(port, cert)) as hub:
        result = await hub.services.call(
            "notify", "ops_mail", {"message": "CP-3 has been offline for 10 min", "title": "Outage"}
        )
    assert result["status"] == "delivered"
    [envelope] = inbox.envelopes
    assert inbox.tls == [True]
    assert envelope.mail_from == "alerts@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert isinstance(envelope.content, bytes)
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert mail["Subject"] == "Outage"
    assert mail["From"] == "alerts@example.com"
    assert mail.get_content().strip() == "CP-3 has been offline for 10 min"


async def test_email_target_overrides_recipients(
    tmp_path: Path, smtp_server: tuple[Inbox, int, Path]
) -> None:
    inbox, port, cert = smtp_server
    async with running_hub(tmp_path / "hub", email_section(port, cert)) as hub:
        await hub.services.call(
            "notify", "ops_mail", {"message": "m", "target": "boss@example.com"}
        )
    assert inbox.envelopes[0].rcpt_tos == ["boss@example.com"]


async def test_email_wrong_password_fails_without_retry(
    tmp_path: Path, smtp_server: tuple[Inbox, int, Path]
) -> None:
    inbox, port, cert = smtp_server
    async with running_hub(tmp_path / "hub", email_section(port, cert, "wrong")) as hub:
        failed = collect(hub, EVENT_NOTIFICATION_FAILED)
        result = await hub.services.call("notify", "ops_mail", {"message": "m", "title": "t"})
        await hub.block_till_done()
        assert (result["status"], result["attempts"]) == ("failed", 1)
        assert "refused the login" in result["error"]
        [record] = persistent_notifications(hub)
        assert record.status is PersistentStatus.failed
        assert record.notifier == "ops_mail"
        assert len(failed) == 1
    assert inbox.envelopes == []


async def test_email_untrusted_certificate_fails(
    tmp_path: Path, smtp_server: tuple[Inbox, int, Path]
) -> None:
    inbox, port, cert = smtp_server
    section = email_section(port, cert)
    del section["notify_email"][0]["ca_file"]
    async with running_hub(tmp_path / "hub", section) as hub:
        result = await hub.services.call("notify", "ops_mail", {"message": "m"})
    assert (result["status"], result["attempts"]) == ("failed", 1)
    assert "certificate" in result["error"]
    assert inbox.envelopes == []
