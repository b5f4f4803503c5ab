"""Running it for real: the container image, docker-compose.yaml and the systemd unit.

The image is built and run where docker can pull its base images; everywhere, the
Dockerfile passes hadolint, the compose file names what it should, the unit passes
`systemd-analyze verify`, and the image's own parts (its default configuration, entrypoint
and health check) run against a real hub.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.hub_process import ROOT, free_port, kill, wait_port

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yaml"
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "evhub.service"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    """A command from the virtual environment the tests run in, else from PATH."""
    local = BIN / name
    return str(local) if local.exists() else shutil.which(name)


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), as (KEYWORD, arguments)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


# The Dockerfile -------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = _tool("hadolint")
    assert hadolint is not None, "hadolint is a dev extra: pip install -e '.[dev]'"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_fails_a_dockerfile_that_breaks_its_rules(tmp_path: Path) -> None:
    """The lint is real: an unpinned base image and root at run time do not pass."""
    hadolint = _tool("hadolint")
    assert hadolint is not None
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python -m http.server\n")
    result = subprocess.run(
        [hadolint, "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest
    assert "DL3008" in result.stdout  # unpinned apt package


def test_the_image_is_multi_stage_pinned_and_runs_without_privileges() -> None:
    instructions = _instructions()
    bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    # node builds the dashboard, python builds the venv, python runs it.
    assert len(bases) == 3
    assert bases[0].startswith("node:")
    assert all(base.startswith("python:") for base in bases[1:])
    for base in bases:
        tag = base.partition(":")[2]
        assert re.match(r"^\d+\.\d+\.\d+-", tag), f"{base}: pin a full version tag"
    assert bases[1] == bases[2], "build and run on the same Python"
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    keywords = {keyword for keyword, _ in instructions}
    assert {"HEALTHCHECK", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD"} <= keywords
    exposed = {args for keyword, args in instructions if keyword == "EXPOSE"}
    assert exposed == {"8300 9000"}
    assert tuple(args for keyword, args in instructions if keyword == "VOLUME") == ('["/config"]',)
    [health] = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert "/usr/share/evhub/healthcheck.py" in health
    # What the image copies in exists, and .dockerignore lets it through.
    for keyword, args in instructions:
        if keyword == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ("hub", "integrations", "frontend", "deploy", "pyproject.toml", "README.md"):
        assert needed not in ignored
    assert {".venv", ".git", "frontend/node_modules", "frontend/dist"} <= set(ignored)


# docker-compose.yaml ---------------------------------------------------------------------


def test_the_compose_file_runs_the_hub_with_postgresql_and_mosquitto() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, Any] = compose["services"]
    assert set(services) == {"evhub", "db", "mosquitto"}
    assert set(compose["volumes"]) == {"evhub-config", "evhub-db", "mosquitto-data"}
    hub = services["evhub"]
    assert hub["build"] == "."
    assert "evhub-config:/config" in hub["volumes"]
    assert hub["depends_on"]["db"]["condition"] == "service_healthy"
    assert hub["environment"]["EVHUB_DB_URL"].startswith("postgresql://evhub:")
    assert hub["environment"]["EVHUB_DB_URL"].endswith("@db:5432/evhub")
    assert {port.rsplit(":", 1)[1] for port in hub["ports"]} == {"8300", "9000"}
    assert hub["cap_drop"] == ["ALL"]
    assert hub["read_only"] is True
    db = services["db"]
    assert re.match(r"^postgres:\d+\.\d+", db["image"])
    assert db["environment"]["POSTGRES_DB"] == "evhub"
    assert "pg_isready" in db["healthcheck"]["test"]
    assert any(volume.startswith("evhub-db:") for volume in db["volumes"])
    mosquitto = services["mosquitto"]
    assert re.match(r"^eclipse-mosquitto:\d+\.\d+\.\d+$", mosquitto["image"])
    assert "ports" not in mosquitto  # only the hub reaches it
    # Every file the compose file mounts is in the repository.
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
    # The hub's configuration names the services by their compose names.
    config = (DEPLOY / "compose.configuration.yaml").read_text()
    assert "host: mosquitto" in config
    assert "db_url: !env_var EVHUB_DB_URL" in config
    conf = (DEPLOY / "mosquitto.conf").read_text().split("\n")
    assert "listener 1883" in conf
    assert "persistence_location /mosquitto/data/" in conf


def test_docker_compose_accepts_the_file_where_it_is_installed() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker command")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("docker has no compose plugin here")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "EVHUB_DB_PASSWORD": "test-only"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_configurations_the_image_and_compose_use_are_valid(tmp_path: Path) -> None:
    evhub = _tool("evhub")
    assert evhub is not None
    cases = {
        "image": (DEPLOY / "configuration.yaml", {}),
        "compose": (
            DEPLOY / "compose.configuration.yaml",
            {"EVHUB_DB_URL": "postgresql://evhub:secret@db:5432/evhub"},
        ),
    }
    for name, (source, env) in cases.items():
        config_dir = tmp_path / name
        config_dir.mkdir()
        shutil.copy(source, config_dir / "configuration.yaml")
        result = subprocess.run(
            [evhub, "check-config", "--config", str(config_dir)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **env},
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert "configuration ok" in result.stdout


# The image's entrypoint and health check, on this machine --------------------------------


async def _healthcheck(port: int) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DEPLOY / "healthcheck.py"),
        env={**os.environ, "EVHUB_HTTP_PORT": str(port)},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    assert child.returncode is not None
    return child.returncode, out.decode().strip()


async def test_the_entrypoint_writes_the_default_config_and_the_health_check_sees_the_hub(
    tmp_path: Path,
) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    http_port, ocpp_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EVHUB_CONFIG_DIR": str(config_dir),
        "EVHUB_DEFAULT_CONFIG": str(DEPLOY / "configuration.yaml"),
        "EVHUB_HTTP_PORT": str(http_port),
        "EVHUB_OCPP_PORT": str(ocpp_port),
    }
    # Nothing answers yet: unhealthy.
    code, said = await _healthcheck(http_port)
    assert code == 1
    assert said.startswith("unhealthy:")
    child = await asyncio.create_subprocess_exec(
        str(DEPLOY / "docker-entrypoint.sh"),
        sys.executable,
        "-m",
        "hub.cli",
        "run",
        "--config",
        str(config_dir),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert child.returncode is None
            code, said = await _healthcheck(http_port)
            if code == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert (code, said) == (0, "ok (problems: none)")
        assert (config_dir / "configuration.yaml").read_text() == (
            DEPLOY / "configuration.yaml"
        ).read_text()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{http_port}/api/health") as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["state"] == "RUNNING"
        # The OCPP listener of the default configuration, on the port EVHUB_OCPP_PORT names.
        await wait_port(ocpp_port, timeout=10, child=child)
        # exec: the hub itself got SIGTERM, and stops cleanly.
        child.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(child.wait(), 30) == 0
    finally:
        await kill(child)
    assert child.stderr is not None
    log = (await child.stderr.read()).decode()
    assert f"new config dir, wrote {config_dir}/configuration.yaml" in log
    assert "evhub started" in log
    assert "Traceback" not in log


def test_the_entrypoint_says_so_when_the_config_dir_cannot_be_written(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "there"
    result = subprocess.run(
        [str(DEPLOY / "docker-entrypoint.sh"), "true"],
        env={
            **os.environ,
            "EVHUB_CONFIG_DIR": str(missing),
            "EVHUB_DEFAULT_CONFIG": str(DEPLOY / "configuration.yaml"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"evhub: cannot write {missing}: make it writable by uid {os.getuid()}" in (
        result.stderr
    )


# The systemd unit --------------------------------------------------------------------------


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_systemd_unit_is_hardened() -> None:
    settings = _unit_settings()
    expected = {
        "User": "evhub",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/evhub",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "UMask": "0077",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], key
    assert "@system-service" in settings["SystemCallFilter"]
    [start] = settings["ExecStart"]
    assert start == "/opt/evhub/bin/evhub run --config /var/lib/evhub"


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze on this machine")
    evhub = _tool("evhub")
    assert evhub is not None
    # The unit names /opt/evhub/bin/evhub, which verify wants to find: the same unit with
    # the evhub of this environment.
    unit = tmp_path / "evhub.service"
    unit.write_text(UNIT.read_text().replace("/opt/evhub/bin/evhub", evhub))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for evhub\.service: ([\d.]+)", security.stdout)
    if found is None:
        pytest.skip(f"systemd-analyze security --offline not supported: {security.stderr}")
    # 0 is a sealed box, 10 no sandbox at all; "OK" is below 2.
    assert float(found.group(1)) < 2.0, security.stdout


# The image itself, where docker can build it -------------------------------------------------


def _docker_cannot_build() -> str | None:
    """Why docker cannot build the image here, or None when it can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker command"
    info = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if info.returncode != 0:
        return f"no docker daemon: {info.stderr.strip()[:200]}"
    for base in sorted({args.split()[0] for k, args in _instructions() if k == "FROM"}):
        present = subprocess.run(
            [docker, "image", "inspect", base], capture_output=True, check=False
        )
        if present.returncode == 0:
            continue
        try:
            pull = subprocess.run(
                [docker, "pull", "--quiet", base],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return f"docker cannot pull {base} (no answer in 300 s)"
        if pull.returncode != 0:
            return f"docker cannot pull {base}: {pull.stderr.strip()[:200]}"
    return None


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:
        return 0, ""


@pytest.mark.timeout(1800)
def test_the_image_builds_runs_as_non_root_and_answers_its_health_check() -> None:
    reason = _docker_cannot_build()
    if reason is not None:
        pytest.skip(f"image not built ({reason}); the Dockerfile is linted by hadolint")
    docker = shutil.which("docker")
    assert docker is not None
    tag = f"evhub-test:{uuid.uuid4().hex[:12]}"
    name = f"evhub-test-{uuid.uuid4().hex[:12]}"
    port = free_port()
    build = subprocess.run(
        [docker, "build", "--quiet", "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    try:
        run = subprocess.run(
            [docker, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8300", tag],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        deadline = time.monotonic() + 90
        status, text = 0, ""
        while time.monotonic() < deadline:
            status, text = _get(f"http://127.0.0.1:{port}/api/health")
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, text
        assert json.loads(text)["status"] == "ok", text
        status, text = _get(f"http://127.0.0.1:{port}/")
        assert status == 200
        assert "<!doctype html>" in text.lower()  # the dashboard is in the image
        uid = subprocess.run(
            [docker, "exec", name, "id", "-u"], capture_output=True, text=True, check=False
        )
        assert uid.stdout.strip() == "10001"
        check = subprocess.run(
            [docker, "exec", name, "python", "/usr/share/evhub/healthcheck.py"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout
        stop = subprocess.run(
            [docker, "stop", "-t", "30", name], capture_output=True, check=False, timeout=60
        )
        assert stop.returncode == 0
        logs = subprocess.run([docker, "logs", name], capture_output=True, text=True, check=False)
        assert "evhub started" in logs.stderr
        assert "evhub stopped" in logs.stderr
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, check=False)
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True, check=False)
