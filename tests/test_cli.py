"""The evhub command, run as a user runs it: a subprocess, its output and exit status."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import __version__

ROOT = Path(__file__).resolve().parents[1]
EVHUB = [sys.executable, "-m", "hub.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def example_broker(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The MQTT broker the example configuration's go-eCharger uses (scripts/run starts one
    the same way), on a free port passed as EVHUB_MQTT_PORT."""
    binary = shutil.which("mosquitto") or next(
        (path for path in ("/usr/sbin/mosquitto",) if os.access(path, os.X_OK)), None
    )
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is not installed (the example configuration's broker)")
        yield
        return
    port = free_port()
    # Outside the test's config dir: the hub's own files are what some tests look at.
    config = tmp_path_factory.mktemp("broker") / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n")
    broker = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
    monkeypatch.setenv("EVHUB_MQTT_PORT", str(port))
    try:
        yield
    finally:
        broker.terminate()
        broker.wait(10)


def evhub(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EVHUB, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def test_version() -> None:
    result = evhub("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"evhub {__version__}"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "evhub"
    assert script.exists(), "pip install -e . should have made the evhub console script"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == f"evhub {__version__}"


def test_check_config_missing_secret(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text("hub:\n  name: !secret site_name\n")
    (tmp_path / "secrets.yaml").write_text("other: x\n")
    result = evhub("check-config", "--config", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("error: configuration.yaml, line 2:")
    assert "site_name" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_each_error(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text(
        "hub:\n  time_zone: Atlantis/Capital\nhttp:\n  server_port: eighty\nwhat_is_this: 1\n"
    )
    result = evhub("check-config", "--config", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: configuration.yaml, line 2: hub → time_zone: unknown time zone 'Atlantis/Capital'",
        "error: configuration.yaml, line 4: http → server_port: expected a whole number,"
        " got 'eighty'",
        "error: configuration.yaml, line 5: what_is_this: integration 'what_is_this' not found",
        f"3 errors in {tmp_path / 'configuration.yaml'}",
    ]


def copy_example(directory: Path) -> None:
    shutil.copy(ROOT / "config.example.yaml", directory / "configuration.yaml")
    shutil.copy(ROOT / "secrets.example.yaml", directory / "secrets.yaml")


def test_check_config_ok_on_the_example(tmp_path: Path) -> None:
    copy_example(tmp_path)
    result = evhub("check-config", "--config", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "configuration ok" in result.stdout


def test_check_config_yaml_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text("hub:\n  name: [unclosed\n")
    result = evhub("check-config", "--config", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("error: configuration.yaml, line ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_missing_config_is_a_message_not_a_traceback(tmp_path: Path, command: str) -> None:
    result = evhub(command, "--config", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "nowhere" in result.stderr


def test_run_with_bad_config_exits_with_errors(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text("http:\n  server_port: -1\n")
    result = evhub("run", "--config", str(tmp_path))
    assert result.returncode == 1
    assert "configuration.yaml:2: http.server_port: must be at least 0" in result.stderr
    assert "Traceback" not in result.stderr


def wait_for_health(port: int, process: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"evhub exited early: {process.communicate()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                body: dict[str, object] = json.loads(r.read())
                if body.get("status") == "ok":
                    return body
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("health endpoint never answered")


def run_example(
    directory: Path,
) -> tuple[subprocess.Popen[str], int, dict[str, str]]:
    """Start `evhub run` on a copy of the example config, on free ports."""
    copy_example(directory)
    port = free_port()
    env = {**os.environ, "EVHUB_HTTP_PORT": str(port), "EVHUB_OCPP_PORT": str(free_port())}
    process = subprocess.Popen(
        [*EVHUB, "run", "--config", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return process, port, env


def test_run_serves_health_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """The example config runs, /api/health answers, SIGTERM stops it and flushes storage."""
    process, port, _env = run_example(tmp_path)
    try:
        body = wait_for_health(port, process)
        assert body["state"] == "RUNNING"
        assert body["version"] == __version__
        assert body["integrations"]["ocpp"]["state"] == "loaded"
        assert body["integrations"]["simulator"]["state"] == "loaded"
        assert body["integrations"]["alerts"]["state"] == "loaded"  # on by default
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "evhub stopped" in stderr
    assert "Traceback" not in stderr
    # Storage was flushed on the way out, with the configured chargers' states in it.
    saved = json.loads((tmp_path / ".storage" / "core.restore_state").read_text())
    saved_ids = {row[0] for row in saved["data"]["states"]}
    assert "sensor.bay_1_connectivity" in saved_ids


def test_check_config_reports_a_bad_automation(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text(
        "automations:\n"
        "  - id: fine\n"
        "    triggers: [{trigger: event, event_type: go}]\n"
        "    actions: [{event: done}]\n"
        "  - id: broken\n"
        "    triggers: [{trigger: event, event_type: go}]\n"
        "    actions:\n"
        "      - delay: forever\n"
    )
    result = evhub("check-config", "--config", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(
        "error: configuration.yaml, line 8: automations[1] → actions[0] → delay: expected a"
        " duration"
    ), result.stderr


def test_one_process_per_config_dir(tmp_path: Path) -> None:
    """A second hub, or `user add` (whose user the running hub would overwrite), is refused."""
    process, port, env = run_example(tmp_path)
    try:
        wait_for_health(port, process)
        second = subprocess.run(
            [*EVHUB, "run", "--config", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**env, "EVHUB_HTTP_PORT": str(free_port())},
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert "another evhub process is using" in second.stderr
        refused = subprocess.run(
            [*EVHUB, "user", "add", "ada", "--role", "admin", "--password-stdin"],
            input="correct horse battery\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
        assert refused.returncode == 1
        assert "a hub is running" in refused.stderr
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    added = subprocess.run(
        [*EVHUB, "user", "add", "ada", "--role", "admin", "--password-stdin"],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    assert "added ada (admin)" in added.stdout
