"""Access seen from a real `evhub run` process: what survives SIGKILL, who may read its files,
and the unban command."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.hub_process import http_call
from tests.test_cli import (  # noqa: F401 - example_broker: the example's MQTT broker, autouse
    example_broker,
    free_port,
    run_example,
    wait_for_health,
)

EVHUB = [sys.executable, "-m", "hub.cli"]
PASSWORD = "correct horse battery"


def start(config_dir: Path, port: int) -> subprocess.Popen[str]:
    """`evhub run` on a config with HTTP only (and the default recorder)."""
    config_dir.joinpath("configuration.yaml").write_text(
        f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\n  zeroconf: false\n"
        "  login_attempts_threshold: 2\n"
    )
    process = subprocess.Popen(
        [*EVHUB, "run", "--config", str(config_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_health(port, process)
    return process


def kill(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=30)
    return stderr


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        return kill(process)
    return stderr


def call(
    port: int,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    token: str | None = None,
    cookie: str | None = None,
    csrf: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["Cookie"] = cookie
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return http_call(port, method, path, body, headers)


def test_users_tokens_and_revocations_acknowledged_survive_sigkill(tmp_path: Path) -> None:
    port = free_port()
    process = start(tmp_path, port)
    try:
        status, body, headers = call(
            port, "POST", "/api/onboarding", {"username": "root", "password": PASSWORD}
        )
        assert status == 200
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        csrf = body["csrf_token"]
        status, admin_token, _ = call(
            port, "POST", "/api/tokens", {"name": "admin"}, cookie=cookie, csrf=csrf
        )
        assert status == 201
        status, doomed, _ = call(
            port, "POST", "/api/tokens", {"name": "doomed"}, cookie=cookie, csrf=csrf
        )
        assert status == 201
        token = admin_token["token"]
        status, user, _ = call(
            port,
            "POST",
            "/api/users",
            {"username": "ada", "password": PASSWORD, "role": "operator"},
            token=token,
        )
        assert status == 201
        status, _, _ = call(port, "DELETE", f"/api/tokens/{doomed['id']}", token=token)
        assert status == 204
        # SIGKILL right after the last answer: nothing had time to be saved later.
    finally:
        kill(process)

    process = start(tmp_path, port)
    try:
        status, me, _ = call(port, "GET", "/api/auth/me", token=token)
        assert status == 200, me
        assert me["user"]["username"] == "root"
        status, body, _ = call(
            port, "POST", "/api/auth/login", {"username": "ada", "password": PASSWORD}
        )
        assert status == 200, body
        assert body["user"]["role"] == "operator"
        status, _, _ = call(port, "GET", "/api/auth/me", token=doomed["token"])
        assert status == 401  # the revocation held too
        # A new password (which revokes tokens) and a deletion, killed right after.
        status, _, _ = call(
            port, "PATCH", f"/api/users/{user['id']}", {"role": "viewer"}, token=token
        )
        assert status == 200
        status, _, _ = call(
            port, "PATCH", f"/api/users/{me['user']['id']}", {"password": "new " + PASSWORD},
            token=token,
        )  # fmt: skip
        assert status == 200
    finally:
        kill(process)

    process = start(tmp_path, port)
    try:
        status, _, _ = call(port, "GET", "/api/auth/me", token=token)
        assert status == 401  # the new password revoked it, on disk before the 200
        status, body, _ = call(
            port, "POST", "/api/auth/login", {"username": "ada", "password": PASSWORD}
        )
        assert status == 200
        assert body["user"]["role"] == "viewer"
        status, _, _ = call(
            port, "POST", "/api/auth/login", {"username": "root", "password": PASSWORD}
        )
        assert status == 401  # the old password
    finally:
        stop(process)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_the_hub_writes_is_private(tmp_path: Path) -> None:
    # What an older evhub left: a world-readable .storage and store.
    storage = tmp_path / ".storage"
    storage.mkdir(mode=0o755)
    os.chmod(storage, 0o755)
    old = storage / "core.restore_state"
    old.write_text('{"version": 1, "minor_version": 1, "key": "core.restore_state", "data": {}}')
    os.chmod(old, 0o644)
    process, port, _env = run_example(tmp_path)
    try:
        wait_for_health(port, process)
        # Let the registries, restore state and transactions reach the disk.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (storage / "core.device_registry").exists():
            time.sleep(0.2)
        written = _written(tmp_path)
        assert _mode(storage) == 0o700
        assert {".lock", "core.restore_state", "core.device_registry"} <= {
            p.name for p in written
        }, written
        assert "evhub.db" in {p.name for p in written}
        assert "ocpp_transactions.db" in {p.name for p in written}
        loose = {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in written if _mode(p) != 0o600}
        assert not loose, loose
    finally:
        stderr = stop(process)
    assert "Traceback" not in stderr
    loose = {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in _written(tmp_path)}
    assert set(loose.values()) == {"0o600"}, loose


def _written(config_dir: Path) -> list[Path]:
    """The files the hub wrote: everything but the config the test copied."""
    given = {"configuration.yaml", "secrets.yaml"}
    return [path for path in config_dir.rglob("*") if path.is_file() and path.name not in given]


def test_evhub_ban_list_and_remove_lift_a_ban_with_an_audit_entry(tmp_path: Path) -> None:
    port = free_port()
    process = start(tmp_path, port)
    try:
        status, body, _ = call(
            port, "POST", "/api/onboarding", {"username": "root", "password": PASSWORD}
        )
        assert status == 200
        for _ in range(2):
            status, _, _ = call(
                port, "POST", "/api/auth/login", {"username": "root", "password": "wrong!!!"}
            )
            time.sleep(1.1)  # past the throttle
        status, body, _ = call(
            port, "POST", "/api/auth/login", {"username": "root", "password": PASSWORD}
        )
        assert status == 429
        assert body["error"] == "banned"
        # While the hub runs, the command refuses (the hub would overwrite its change).
        refused = evhub("ban", "remove", "127.0.0.1", "--config", str(tmp_path))
        assert refused.returncode == 1
        assert "DELETE /api/bans/127.0.0.1" in refused.stderr
    finally:
        stop(process)
    listed = evhub("ban", "list", "--config", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("127.0.0.1\tbanned until ")
    removed = evhub("ban", "remove", "127.0.0.1", "--config", str(tmp_path))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == "unbanned 127.0.0.1"
    again = evhub("ban", "remove", "127.0.0.1", "--config", str(tmp_path))
    assert again.returncode == 1
    assert "not banned" in again.stderr
    assert evhub("ban", "list", "--config", str(tmp_path)).stdout.strip() == "no address is banned"

    process = start(tmp_path, port)
    try:
        status, body, _ = call(
            port, "POST", "/api/auth/login", {"username": "root", "password": PASSWORD}
        )
        assert status == 200, body
        # The CLI's unban reached the audit log once the hub ran again.
        deadline = time.monotonic() + 10
        rows: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline and not rows:
            with sqlite3.connect(tmp_path / "evhub.db") as conn:
                rows = conn.execute(
                    "SELECT username, source, action, target, result FROM audit"
                    " WHERE action = 'ban.remove'"
                ).fetchall()
            time.sleep(0.2)
        assert rows == [(None, "cli", "ban.remove", "127.0.0.1", "ok")]
    finally:
        stop(process)


def evhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVHUB, *args], capture_output=True, text=True, timeout=60, check=False)
