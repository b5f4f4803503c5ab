"""`evhub audit`: each finding from a real config dir that has it, and a clean one with none;
the integration's daily run as alerts, its API and its dashboard page."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.cli import main, make_private
from hub.testing import ApiUser, HubFactory, http_url, manual_clock_of
from integrations.ocpp.system import hash_password

NOW = datetime.datetime.now(datetime.UTC)
DAY = 86400.0
STRONG_1 = "Xq7vR2mK9pL4tW8zN3bH"
STRONG_2 = "Jd5sF1gH6kL2mN8qR4tV"


def _certificate(path: Path, days_left: float, name: str = "hub.example.net") -> None:
    """A self-signed certificate ending days_left from now, and its key beside it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=400))
        .not_valid_after(NOW + datetime.timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = path.with_suffix(".key")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


def _store(config_dir: Path, key: str, data: Any, **extra: Any) -> None:
    storage = config_dir / ".storage"
    storage.mkdir(mode=0o700, exist_ok=True)
    path = storage / key
    document = {"version": 1, "minor_version": 1, "key": key, **extra, "data": data}
    path.write_text(json.dumps(document))
    path.chmod(0o600)


CLEAN_CONFIG = """\
hub:
  name: Depot
http:
  server_host: 0.0.0.0
  server_port: 8300
  ssl_certificate: http.pem
  ssl_key: http.key
ocpp:
  listeners:
    - port: 9443
      security_profile: 2
      certfile: ocpp.pem
      keyfile: ocpp.key
    - host: 127.0.0.1
      port: 9000
      security_profile: 1
  chargers:
    - id: CP-1
      password: !secret cp_1
    - id: CP-2
      password: !secret cp_2
"""


def _clean_dir(tmp_path: Path, config: str = CLEAN_CONFIG, secrets: str | None = None) -> Path:
    config_dir = tmp_path / "site"
    config_dir.mkdir(parents=True)
    (config_dir / "configuration.yaml").write_text(config)
    secrets_path = config_dir / "secrets.yaml"
    secrets_path.write_text(secrets or f"cp_1: {STRONG_1}\ncp_2: {STRONG_2}\n")
    secrets_path.chmod(0o600)
    _certificate(config_dir / "http.pem", 365)
    _certificate(config_dir / "ocpp.pem", 365)
    return config_dir


def _audit(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]]]:
    """Run `evhub audit --format json` in-process: the exit status and the findings."""
    status = main(["audit", "--config", str(config_dir), "--format", "json"])
    out = capsys.readouterr().out
    return status, json.loads(out)["findings"]


def _only(findings: list[dict[str, Any]], check: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["check"] == check]


def test_clean_config_has_no_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_dir = _clean_dir(tmp_path)
    status, findings = _audit(config_dir, capsys)
    assert findings == []
    assert status == 0
    assert main(["audit", "--config", str(config_dir)]) == 0
    assert "no findings" in capsys.readouterr().out


def test_ocpp_listener_without_tls_off_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CLEAN_CONFIG.replace("host: 127.0.0.1\n", "host: 192.0.2.10\n")
    status, findings = _audit(_clean_dir(tmp_path, config), capsys)
    [finding] = _only(findings, "ocpp_listener_no_tls")
    assert finding["severity"] == "high"
    assert finding["subject"] == "192.0.2.10:9000/ocpp"
    assert finding["where"] == "configuration.yaml:14"
    assert "security_profile 2" in finding["fix"]
    assert status == 1


def test_profile_0_anywhere_but_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CLEAN_CONFIG.replace(
        "    - host: 127.0.0.1\n      port: 9000\n      security_profile: 1\n",
        "    - port: 9000\n      security_profile: 0\n    - host: ::1\n      port: 9001\n"
        "      security_profile: 0\n",
    )
    status, findings = _audit(_clean_dir(tmp_path, config), capsys)
    [finding] = _only(findings, "ocpp_profile_0")
    assert finding["subject"] == "0.0.0.0:9000/ocpp"  # not the one on ::1
    assert finding["severity"] == "high"
    assert status == 1


def test_charger_without_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = CLEAN_CONFIG + "    - id: CP-3\n    - id: CP-4\n      security_profile: 3\n"
    status, findings = _audit(_clean_dir(tmp_path, config), capsys)
    [finding] = _only(findings, "charger_no_password")  # CP-4 has a certificate instead
    assert finding["subject"] == "CP-3"
    assert finding["severity"] == "medium"  # refused on profile 1 and 2: not open
    assert status == 0
    # On a profile 0 listener it is open to anyone who says its id.
    config = config.replace("    - id: CP-3\n", "    - id: CP-3\n      security_profile: 0\n")
    status, findings = _audit(_clean_dir(tmp_path / "b", config), capsys)
    [finding] = _only(findings, "charger_no_password")
    assert finding["severity"] == "high"
    assert status == 1


def test_weak_passwords_in_clear_and_as_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = _clean_dir(tmp_path, secrets=f"cp_1: '1234567890123456'\ncp_2: {STRONG_2}\n")
    # An approved charger: only its hash is known.
    _store(
        config_dir,
        "ocpp.chargers",
        {
            "approved": {
                "CP-9": {
                    "name": None,
                    "site": None,
                    "password_hash": hash_password("changemechangeme"),
                }
            }
        },
    )
    status, findings = _audit(config_dir, capsys)
    weak = {f["subject"]: f for f in _only(findings, "charger_weak_password")}
    assert set(weak) == {"CP-1", "CP-9"}
    assert "known default" in weak["CP-1"]["message"]
    assert weak["CP-9"]["where"] == ".storage/ocpp.chargers"
    assert status == 1
    # Strength, not only the list: 20 lower-case letters of one kind of pattern, and digits.
    config_dir = _clean_dir(
        tmp_path / "b", secrets="cp_1: '8473625190817263'\ncp_2: aaaabbbbccccddddeeee\n"
    )
    _, findings = _audit(config_dir, capsys)
    weak = {f["subject"]: f["message"] for f in _only(findings, "charger_weak_password")}
    assert "bits" in weak["CP-1"]
    assert "different characters" in weak["CP-2"]


def test_reused_passwords(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = CLEAN_CONFIG.replace("!secret cp_2", "!secret cp_1")
    config_dir = _clean_dir(tmp_path, config)
    # An approved charger whose (hashed) key is CP-1's too.
    _store(
        config_dir,
        "ocpp.chargers",
        {"approved": {"CP-7": {"password_hash": hash_password(STRONG_1)}}},
    )
    status, findings = _audit(config_dir, capsys)
    reused = {f["subject"]: f["message"] for f in _only(findings, "charger_reused_password")}
    assert set(reused) == {"CP-1", "CP-2", "CP-7"}
    assert "CP-2, CP-7" in reused["CP-1"]
    assert STRONG_1 not in json.dumps(findings)  # never the password itself
    assert status == 1


@pytest.mark.parametrize(("policy", "severity"), [("accept", "high"), ("pending", "medium")])
def test_unknown_charger_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, severity: str
) -> None:
    config = CLEAN_CONFIG.replace("  chargers:\n", f"  unknown_chargers: {policy}\n  chargers:\n")
    status, findings = _audit(_clean_dir(tmp_path, config), capsys)
    [finding] = _only(findings, "ocpp_unknown_chargers")
    assert finding["severity"] == severity
    assert finding["where"] == "configuration.yaml:17"
    assert status == (1 if severity == "high" else 0)


def test_firmware_below_minimum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = CLEAN_CONFIG + (
        "firmware:\n  minimum_versions:\n"
        "    - {vendor: Other, model: Wallbox X, version: '2.10.0'}\n"
        "    - {vendor: ACME, version: '1.4'}\n"
    )
    config_dir = _clean_dir(tmp_path, config)

    def device(device_id: str, vendor: str, model: str, version: str) -> dict[str, Any]:
        return {
            "id": device_id,
            "kind": "station",
            "name": device_id,
            "manufacturer": vendor,
            "model": model,
            "sw_version": version,
        }

    _store(
        config_dir,
        "core.device_registry",
        {
            "devices": [
                device("old", "Other", "Wallbox X", "2.9.3"),  # 2.9 < 2.10: numbers, not text
                device("new", "Other", "Wallbox X", "2.10.0"),
                device("pole", "Acme", "Pole", "1.5"),
                device("gone", "Acme", "Pole", "0.1"),
            ]
        },
        journal=0,
    )
    # The journal since the snapshot: "pole" downgraded, "gone" removed.
    (config_dir / ".storage" / "core.device_registry.journal.0").write_text(
        json.dumps(["set", device("pole", "Acme", "Pole", "1.3.9")])
        + "\n"
        + json.dumps(["del", "gone"])
        + "\n"
    )
    status, findings = _audit(config_dir, capsys)
    below = {f["subject"]: f for f in _only(findings, "firmware_below_minimum")}
    assert set(below) == {"old", "pole"}
    assert "2.9.3" in below["old"]["message"]
    assert status == 1


def test_firmware_check_skipped_without_minimums(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = _clean_dir(tmp_path)
    _store(
        config_dir,
        "core.device_registry",
        {
            "devices": [
                {"id": "x", "kind": "station", "manufacturer": "V", "model": "M", "sw_version": "0"}
            ]
        },
    )
    status, findings = _audit(config_dir, capsys)
    assert findings == []
    assert status == 0


def test_http_without_tls_and_open_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CLEAN_CONFIG.replace(
        "  ssl_certificate: http.pem\n  ssl_key: http.key\n", "  metrics_open: true\n"
    )
    status, findings = _audit(_clean_dir(tmp_path, config), capsys)
    [no_tls] = _only(findings, "http_no_tls")
    assert no_tls["severity"] == "high"
    assert no_tls["where"] == "configuration.yaml:4"
    [metrics] = _only(findings, "metrics_open")
    assert metrics["severity"] == "medium"
    assert status == 1
    # On loopback (behind a TLS proxy) neither is a finding.
    config = config.replace("0.0.0.0\n  server_port", "127.0.0.1\n  server_port")
    _, findings = _audit(_clean_dir(tmp_path / "b", config), capsys)
    assert _only(findings, "http_no_tls") == []
    assert _only(findings, "metrics_open") == []


def test_secrets_written_in_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = CLEAN_CONFIG.replace("!secret cp_2", STRONG_2) + (
        "notify_ntfy:\n  - name: phone\n    url: https://ntfy.example.net\n    topic: evhub\n"
        "    token: tk_plain_in_config\n"
    )
    config_dir = _clean_dir(tmp_path, config)
    status, findings = _audit(config_dir, capsys)
    plain = {f["subject"]: f for f in _only(findings, "secret_in_config")}
    assert set(plain) == {"ocpp.chargers[1].password", "notify_ntfy[0].token"}
    assert plain["ocpp.chargers[1].password"]["where"] == "configuration.yaml:21"
    assert "!secret" in plain["notify_ntfy[0].token"]["fix"]
    assert _only(findings, "config_error") == []
    # From the environment is not written in the file.
    monkeypatch.setenv("EVHUB_TEST_NTFY_TOKEN", "tk_from_env")
    (config_dir / "configuration.yaml").write_text(
        config.replace("token: tk_plain_in_config", "token: !env_var EVHUB_TEST_NTFY_TOKEN")
    )
    _, findings = _audit(config_dir, capsys)
    assert {f["subject"] for f in _only(findings, "secret_in_config")} == {
        "ocpp.chargers[1].password"
    }
    assert "tk_plain_in_config" not in json.dumps(findings)
    assert status == 0  # medium: a finding, not a failure


def test_world_readable_secrets_and_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = _clean_dir(tmp_path)
    _store(config_dir, "core.auth", {"users": [], "tokens": []})
    (config_dir / "secrets.yaml").chmod(0o644)
    (config_dir / ".storage" / "core.auth").chmod(0o644)
    status, findings = _audit(config_dir, capsys)
    [secrets] = _only(findings, "world_readable_secrets")
    assert secrets["severity"] == "high"
    [storage] = _only(findings, "world_readable_storage")
    assert ".storage/core.auth" in storage["message"]
    assert storage["severity"] == "high"
    assert status == 1
    (config_dir / "secrets.yaml").chmod(0o600)
    (config_dir / ".storage" / "core.auth").chmod(0o600)
    status, findings = _audit(config_dir, capsys)
    assert findings == []
    assert status == 0


def test_old_admin_passwords_and_unused_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = _clean_dir(tmp_path)
    now = NOW.timestamp()

    def user(user_id: str, role: str, created: float, changed: float | None) -> dict[str, Any]:
        found = {
            "id": user_id,
            "username": user_id,
            "role": role,
            "created_at": created,
            "password_hash": "scrypt$x",
        }
        if changed is not None:
            found["password_changed_at"] = changed
        return found

    def token(
        token_id: str, created: float, used: float | None, expires: float | None = None
    ) -> dict[str, Any]:
        return {
            "id": token_id,
            "user_id": "alice",
            "name": token_id,
            "token_hash": "h",
            "created_at": created,
            "last_used_at": used,
            "expires_at": expires,
        }

    _store(
        config_dir,
        "core.auth",
        {
            "users": [
                user("alice", "admin", now - 800 * DAY, now - 10 * DAY),  # changed lately
                user("bob", "admin", now - 400 * DAY, None),  # older evhub: created_at
                user("carol", "admin", now - 500 * DAY, now - 380 * DAY),
                user("dave", "viewer", now - 900 * DAY, None),  # not an admin
            ],
            "tokens": [
                token("grafana", now - 300 * DAY, now - 1 * DAY),
                token("old-script", now - 300 * DAY, now - 120 * DAY),
                token("never", now - 100 * DAY, None),
                token("expired", now - 300 * DAY, None, now - DAY),  # refused anyway
            ],
        },
    )
    status, findings = _audit(config_dir, capsys)
    assert {f["subject"] for f in _only(findings, "admin_password_old")} == {"bob", "carol"}
    unused = {f["subject"].split(" ")[0]: f for f in _only(findings, "token_unused")}
    assert set(unused) == {"alice/old-script", "alice/never"}
    assert "never used" in unused["alice/never"]["message"]
    assert status == 0
    # The thresholds come from the security_audit: section.
    (config_dir / "configuration.yaml").write_text(
        CLEAN_CONFIG + "security_audit:\n  password_max_age_days: 390\n  token_unused_days: 110\n"
    )
    _, findings = _audit(config_dir, capsys)
    assert {f["subject"] for f in _only(findings, "admin_password_old")} == {"bob"}
    assert [f["subject"].split(" ")[0] for f in _only(findings, "token_unused")] == [
        "alice/old-script"
    ]


def test_certificates_near_expiry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = CLEAN_CONFIG.replace(
        "      certfile: ocpp.pem\n      keyfile: ocpp.key\n",
        "      certfile: [ocpp.pem, ocpp-ec.pem]\n      keyfile: [ocpp.key, ocpp-ec.key]\n",
    ).replace(
        "      security_profile: 2\n", "      security_profile: 3\n      ca_certs: missing-ca.pem\n"
    )
    config_dir = _clean_dir(tmp_path, config)
    _certificate(config_dir / "ocpp.pem", 20)
    _certificate(config_dir / "ocpp-ec.pem", 3)
    _certificate(config_dir / "http.pem", -2)
    ca = tmp_path / "ca.pem"
    _certificate(ca, 25, "evhub OCPP CA")
    _store(config_dir, "ocpp.certificate_authority", {"certificate": ca.read_text(), "key": "k"})
    status, findings = _audit(config_dir, capsys)
    expiring = {f["subject"]: f["severity"] for f in _only(findings, "certificate_expiring")}
    assert expiring == {
        "OCPP listener 0.0.0.0:9443/ocpp certificate ocpp.pem": "medium",  # 20 days
        "OCPP listener 0.0.0.0:9443/ocpp certificate ocpp-ec.pem": "high",  # 3 days
        "the hub's OCPP CA": "medium",
    }
    [expired] = _only(findings, "certificate_expired")
    assert expired["subject"] == "HTTP certificate"
    assert expired["severity"] == "high"
    [missing] = _only(findings, "certificate_unreadable")
    assert "missing-ca.pem" in missing["message"]
    assert status == 1


def test_text_output_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = CLEAN_CONFIG.replace("  chargers:\n", "  unknown_chargers: accept\n  chargers:\n")
    config_dir = _clean_dir(tmp_path, config)
    assert main(["audit", "--config", str(config_dir)]) == 1
    out = capsys.readouterr().out
    assert "HIGH   ocpp_unknown_chargers: unknown_chargers (configuration.yaml:17)" in out
    assert "fix: set unknown_chargers: reject" in out
    assert "1 finding(s): 1 high, 0 medium, 0 low" in out


def test_command_as_a_subprocess(tmp_path: Path) -> None:
    """The installed console script: exit 1 on a high finding, 2 when it cannot audit."""
    evhub = [sys.executable, "-m", "hub.cli"]
    config = CLEAN_CONFIG.replace("host: 127.0.0.1\n", "host: 0.0.0.0\n")
    config_dir = _clean_dir(tmp_path, config)
    done = subprocess.run(
        [*evhub, "audit", "--config", str(config_dir), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert [f["check"] for f in json.loads(done.stdout)["findings"]] == ["ocpp_listener_no_tls"]
    missing = subprocess.run(
        [*evhub, "audit", "--config", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "configuration.yaml").write_text("ocpp: [unclosed\n")
    done = subprocess.run(
        [*evhub, "audit", "--config", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "configuration.yaml:" in done.stderr
    assert "Traceback" not in done.stderr


def test_hostile_files_give_findings_not_crashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CLEAN_CONFIG
    config_dir = _clean_dir(tmp_path, config)
    (config_dir / "http.pem").write_bytes(b"\x00not a certificate\xff")
    # A FIFO where a certificate should be: a plain read would wait for a writer forever.
    (config_dir / "ocpp.pem").unlink()
    os.mkfifo(config_dir / "ocpp.pem")
    storage = config_dir / ".storage"
    storage.mkdir(mode=0o700)
    for name in ("core.auth", "ocpp.chargers", "ocpp.passwords", "core.device_registry"):
        (storage / name).write_bytes(b'{"data": [1, 2')
        (storage / name).chmod(0o600)
    (storage / "ocpp.certificate_authority").write_text(json.dumps({"data": {"certificate": 42}}))
    (storage / "ocpp.certificate_authority").chmod(0o600)
    status, findings = _audit(config_dir, capsys)
    unreadable = {f["subject"]: f["message"] for f in _only(findings, "certificate_unreadable")}
    assert set(unreadable) == {
        "HTTP certificate",
        "OCPP listener 0.0.0.0:9443/ocpp certificate ocpp.pem",
    }
    assert (
        "not a regular file" in unreadable["OCPP listener 0.0.0.0:9443/ocpp certificate ocpp.pem"]
    )
    assert {f["check"] for f in findings if f["severity"] == "high"} == {"certificate_unreadable"}
    assert _only(findings, "audit_error") == []
    assert status == 1


# The integration ------------------------------------------------------------------------


async def test_daily_audit_raises_and_resolves_alerts(
    hub_factory: HubFactory, api_user: ApiUser
) -> None:
    hub = await hub_factory("security_audit:\n")
    await hub.block_till_done()
    admin = await api_user(hub, "admin")
    viewer = await api_user(hub, "viewer")
    # The test hub's umask leaves its stores readable: make them private as `evhub run` does.
    make_private(hub.config_dir)
    secrets = hub.config_dir / "secrets.yaml"
    secrets.write_text("unused: value\n")
    secrets.chmod(0o644)
    key = "security_audit:world_readable_secrets:secrets.yaml"
    clock = manual_clock_of(hub)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as session:

        async def alerts() -> dict[str, str]:
            async with session.get(f"{http_url(hub)}/api/alerts") as response:
                assert response.status == 200
                return {a["key"]: a["state"] for a in await response.json()}

        assert key not in await alerts()
        await clock.advance(24 * 3600)
        await hub.block_till_done()
        assert (await alerts())[key] == "open"
        async with session.get(f"{http_url(hub)}/api/security_audit/findings") as response:
            body = await response.json()
        assert body["counts"]["high"] >= 1
        assert "world_readable_secrets" in {f["check"] for f in body["findings"]}
        assert body["ran_at"] == clock.time()

        secrets.chmod(0o600)
        await clock.advance(24 * 3600)
        await hub.block_till_done()
        assert (await alerts())[key] == "resolved"
        # Run on demand too.
        async with session.post(f"{http_url(hub)}/api/security_audit/run", json={}) as response:
            assert response.status == 200
            body = await response.json()
        assert "world_readable_secrets" not in {f["check"] for f in body["findings"]}

        # The page is listed for admins and its module served; viewers get neither.
        async with session.get(f"{http_url(hub)}/api/panels") as response:
            panels = {
                p["name"]: p for p in await response.json() if p["domain"] == "security_audit"
            }
        assert panels["audit"]["placement"] == "page"
        async with session.get(f"{http_url(hub)}{panels['audit']['url']}") as response:
            assert response.status == 200
            assert "evhub-security-audit-panel" in await response.text()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {viewer}"}) as session:
        async with session.get(f"{http_url(hub)}/api/security_audit/findings") as response:
            assert response.status == 403
        async with session.get(f"{http_url(hub)}/api/panels") as response:
            assert all(p["domain"] != "security_audit" for p in await response.json())


async def test_password_age_is_kept_by_the_auth_store(tmp_path: Path) -> None:
    """hub.auth keeps when each password was set; the audit reads it from core.auth."""
    from hub.auth import AuthManager
    from hub.clock import use_manual_clock
    from hub.core import Hub
    from integrations.security_audit.checks import run_audit

    config_dir = _clean_dir(tmp_path)
    hub = Hub(config_dir)
    clock = use_manual_clock(hub, 1_800_000_000.0)
    auth = AuthManager(hub)
    await auth.load()
    admin = await auth.add_user("root", "a long enough password", "admin")
    assert admin.password_changed_at == 1_800_000_000.0
    await clock.advance(100 * DAY)
    admin = await auth.update_user(admin.id, role="admin")  # not a password change
    assert admin.password_changed_at == 1_800_000_000.0
    await auth.flush()
    later = 1_800_000_000.0 + 400 * DAY
    findings = await hub.run_in_executor(run_audit, config_dir, later)
    assert [f.subject for f in findings if f.check == "admin_password_old"] == ["root"]
    admin = await auth.update_user(admin.id, password="another long password")
    assert admin.password_changed_at == 1_800_000_000.0 + 100 * DAY
    await auth.flush()
    findings = await hub.run_in_executor(run_audit, config_dir, later)
    assert [f for f in findings if f.check == "admin_password_old"] == []
    # A store written by an older evhub (no password_changed_at) still loads.
    reloaded = AuthManager(hub)
    await reloaded.load()
    assert reloaded.users[admin.id].password_changed_at == admin.password_changed_at


def test_config_errors_are_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = CLEAN_CONFIG + "notify_ntfy:\n  url: https://ntfy.example.net\n"
    status, findings = _audit(_clean_dir(tmp_path, config), capsys)
    [error] = _only(findings, "config_error")
    assert error["subject"] == "notify_ntfy"
    assert error["where"] == "configuration.yaml:23"
    assert status == 0
