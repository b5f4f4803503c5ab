"""TLS from config, the static frontend, zeroconf advertising and Prometheus metrics."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import uuid
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.auth import auth_manager
from hub.http import DATA_HTTP
from hub.http.metrics import ProtocolStats, register_protocol_stats
from tests.hub.http.conftest import PASSWORD, Api, start_api


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_serves_https_with_secure_cookies(tmp_path: Path) -> None:
    cert, key = await asyncio.get_running_loop().run_in_executor(None, _certificate, tmp_path)
    hub = await start_api(tmp_path, f"  ssl_certificate: {cert}\n  ssl_key: {key}\n")
    try:
        server = hub.data[DATA_HTTP]
        assert server.url.startswith("https://")
        await auth_manager(hub).add_user("admin", PASSWORD, "admin")
        context = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as client:
            async with client.post(
                f"{server.url}/api/auth/login",
                json={"username": "admin", "password": PASSWORD},
                ssl=context,
            ) as resp:
                assert resp.status == 200
                cookie = resp.headers["Set-Cookie"]
            assert "Secure" in cookie
            assert "HttpOnly" in cookie
            # Plain HTTP to the TLS port gets nowhere.
            plain = server.url.replace("https://", "http://")
            try:
                async with client.get(f"{plain}/api/health") as resp:
                    assert resp.status == 400
            except aiohttp.ClientError:
                pass
    finally:
        await hub.stop()


async def test_tls_config_needs_both_files(tmp_path: Path) -> None:
    from hub.bootstrap import ConfigInvalidError

    with pytest.raises(ConfigInvalidError, match="ssl_key"):
        await start_api(tmp_path, "  ssl_certificate: /nowhere/cert.pem\n")


async def test_frontend_files_fallback_and_caching(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>evhub app</title>")
    (dist / "assets" / "app-1234.js").write_text("console.log(1)")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    hub = await start_api(tmp_path, f"  frontend_dir: {dist}\n")
    url = hub.data[DATA_HTTP].url
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/") as resp:
                assert resp.status == 200
                assert "evhub app" in await resp.text()
                assert resp.headers["Cache-Control"] == "no-cache"
            async with client.get(f"{url}/chargers/abc") as resp:  # client-side route
                assert resp.status == 200
                assert "evhub app" in await resp.text()
            async with client.get(f"{url}/assets/app-1234.js") as resp:
                assert resp.status == 200
                assert "immutable" in resp.headers["Cache-Control"]
                assert "javascript" in resp.headers["Content-Type"]
            async with client.get(f"{url}/favicon.svg") as resp:
                assert resp.headers["Cache-Control"] == "no-cache"
            async with client.get(f"{url}/../secret.txt") as resp:
                assert "not for the web" not in await resp.text()
            async with client.get(f"{url}/%2e%2e/secret.txt") as resp:
                assert "not for the web" not in await resp.text()
            async with client.get(f"{url}/api/unknown") as resp:
                assert resp.status == 404
                assert (await resp.json())["error"] == "no_endpoint"
    finally:
        await hub.stop()


async def test_missing_frontend_is_a_clear_503(tmp_path: Path) -> None:
    hub = await start_api(tmp_path, f"  frontend_dir: {tmp_path / 'no_dist'}\n")
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{hub.data[DATA_HTTP].url}/dashboard") as resp,
        ):
            assert resp.status == 503
            text = await resp.text()
        assert "not built" in text
        assert "npm run build" in text
    finally:
        await hub.stop()


async def test_zeroconf_advertises_the_hub_on_loopback(tmp_path: Path) -> None:
    from zeroconf import IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    from hub.bootstrap import new_hub
    from hub.http.discovery import PROPERTY_ID, SERVICE_TYPE, async_instance_id
    from integrations.ocpp import charger_urls

    def write_config(config_dir: Path, site: str) -> Path:
        config_dir.mkdir()
        (config_dir / "configuration.yaml").write_text(
            f"hub:\n  name: {site}\n"
            "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: true\n"
            "ocpp:\n  listeners:\n    - host: 127.0.0.1\n      port: 0\n"
            "      security_profile: 0\n"
        )
        return config_dir

    # Other hubs advertise on this machine too (`scripts/run`, a parallel test run; here one
    # started first): the test's hub is the one whose TXT id is its own, under its own name.
    site = f"Depot North {uuid.uuid4().hex[:8]}"
    other = new_hub(write_config(tmp_path / "other", f"Other Depot {uuid.uuid4().hex[:8]}"))
    hub = new_hub(write_config(tmp_path / "hub", site))
    browser_zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    browser: AsyncServiceBrowser | None = None
    try:
        await other.start()
        other_advertiser = other.data[DATA_HTTP].advertiser
        assert other_advertiser is not None
        assert await asyncio.wait_for(other_advertiser.wait_registered(), 20)
        await hub.start()
        own_id = await async_instance_id(hub)
        assert own_id != await async_instance_id(other)
        added: asyncio.Queue[str] = asyncio.Queue()

        def on_change(
            zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if state_change is ServiceStateChange.Added:
                added.put_nowait(name)

        async def own_service() -> tuple[str, AsyncServiceInfo, list[bytes | None]]:
            """The advertisement carrying this hub's id, and the ids passed over for it."""
            passed_over = []
            while True:
                name = await added.get()
                info = AsyncServiceInfo(SERVICE_TYPE, name)
                found = await info.async_request(browser_zc.zeroconf, 5000)
                ident = info.properties.get(PROPERTY_ID.encode()) if found else None
                if ident == own_id.encode():
                    return name, info, passed_over
                passed_over.append(ident)

        browser = AsyncServiceBrowser(browser_zc.zeroconf, SERVICE_TYPE, handlers=[on_change])
        name, info, passed_over = await asyncio.wait_for(own_service(), 20)
        assert own_id.encode() not in passed_over
        assert name == f"{site}.{SERVICE_TYPE}"
        server = hub.data[DATA_HTTP]
        assert info.port == server.port
        # A host name of its own: not the machine's, which another hub answers for too.
        assert info.server == f"evhub-{own_id[:12]}.local."
        props = {k.decode(): v.decode() for k, v in info.properties.items() if v is not None}
        assert props["url"] == f"http://127.0.0.1:{server.port}/"
        assert props[PROPERTY_ID] == own_id
        # The port the OCPP listener bound (port 0 in the configuration picks a free one).
        [ocpp] = charger_urls(hub)
        assert props["ocpp_url"] == ocpp
        assert not ocpp.endswith(":0/ocpp")
        # The other hub is there to be found too, with its own id and port.
        other_info = AsyncServiceInfo(SERVICE_TYPE, other_advertiser.info.name)
        assert await other_info.async_request(browser_zc.zeroconf, 5000)
        assert other_info.properties[PROPERTY_ID.encode()] != own_id.encode()
        assert other_info.port == other.data[DATA_HTTP].port != server.port
    finally:
        if browser is not None:
            await browser.async_cancel()
        await browser_zc.async_close()
        await hub.stop()
        await other.stop()
    # The id is the hub's for good: the next start advertises the same one.
    assert await async_instance_id(new_hub(tmp_path / "hub")) == own_id


async def test_metrics_need_an_admin_and_show_protocol_counters(
    api: Api, session: aiohttp.ClientSession
) -> None:
    hub = api.hub
    stats = ProtocolStats()
    unregister = register_protocol_stats(hub, "testproto", stats)
    stats.message("Heartbeat")
    stats.message("Heartbeat")
    stats.error("Reset")
    stats.observe("Reset", 0.02)
    stats.observe("Reset", 3.0)
    hub.states.set("sensor.bay_1_1_uptime", "98.5", {"unit_of_measurement": "%"})
    try:
        async with session.get(f"{api.url}/metrics") as resp:
            assert resp.status == 401
        async with session.get(f"{api.url}/metrics", headers=api.headers("operator")) as resp:
            assert resp.status == 403
        async with session.get(f"{api.url}/metrics", headers=api.headers("admin")) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
    finally:
        unregister()
    assert 'evhub_protocol_messages_total{action="Heartbeat",protocol="testproto"} 2.0' in text
    assert 'evhub_protocol_errors_total{action="Reset",protocol="testproto"} 1.0' in text
    bucket = (
        'evhub_protocol_call_latency_seconds_bucket{action="Reset",le="%s",protocol="testproto"}'
    )
    assert f"{bucket % '0.025'} 1.0" in text
    assert f"{bucket % '+Inf'} 2.0" in text
    assert (
        'evhub_port_uptime_percent{device_id="",entity_id="sensor.bay_1_1_uptime",name="",'
        'port_name="",station_id=""} 98.5'
    ) in text
    assert "evhub_chargers_online 0.0" in text
    assert "evhub_event_loop_lag_seconds" in text
    assert "evhub_recorder_backlog" in text


async def test_metrics_can_be_open(tmp_path: Path) -> None:
    hub = await start_api(tmp_path, "  metrics_open: true\n")
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{hub.data[DATA_HTTP].url}/metrics") as resp,
        ):
            assert resp.status == 200
            assert "evhub_chargers_offline" in await resp.text()
    finally:
        await hub.stop()
