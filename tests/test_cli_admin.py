"""The operator's commands run as a user runs them: users, tokens, unban, automations, reports.

Each runs as a subprocess against a config dir; where it matters, a real `evhub run` process
then shows that the change took (a token works, a deleted user cannot log in) and that the
command's audit entry reached the recorder's audit table once the hub ran.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.hub_process import free_port, http_call

EVHUB = [sys.executable, "-m", "hub.cli"]
PASSWORD = "correct horse battery"


def evhub(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the evhub command; stdin is never a terminal here."""
    result = subprocess.run(
        [*EVHUB, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def write_config(config_dir: Path, port: int, extra: str = "") -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    config_dir.joinpath("configuration.yaml").write_text(
        f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\n  zeroconf: false\n"
        "  login_attempts_threshold: 2\n" + extra
    )


def call(
    port: int, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    status, answer, _ = http_call(port, method, path, body, headers)
    return status, answer


@contextlib.contextmanager
def running(config_dir: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """`evhub run` on config_dir until the block ends (SIGTERM, then its exit checked)."""
    process = subprocess.Popen(
        [*EVHUB, "run", "--config", str(config_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"evhub exited early: {process.communicate()[1]}"
            try:
                if call(port, "GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the hub never answered /api/health"
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr


def audit_rows(config_dir: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(config_dir / "evhub.db")) as db:
        return db.execute(
            "SELECT username, source, action, target, result FROM audit"
            " WHERE source = 'cli' ORDER BY time"
        ).fetchall()


def add_user(config_dir: Path, name: str, role: str) -> None:
    added = evhub(
        "user", "add", name, "--role", role, "--password-stdin", "-c", str(config_dir),
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr


def test_tokens_made_offline_work_in_the_hub_and_the_running_hub_is_never_overwritten(
    tmp_path: Path,
) -> None:
    port = free_port()
    write_config(tmp_path, port)
    config = ("-c", str(tmp_path))
    listed = evhub("user", "list", *config)
    assert listed.returncode == 0
    assert listed.stdout.startswith("no users yet")
    add_user(tmp_path, "ada", "admin")
    add_user(tmp_path, "bob", "operator")

    users = evhub("user", "list", *config)
    assert users.returncode == 0, users.stderr
    lines = users.stdout.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "CREATED", "TOKENS", "ID"]
    assert [line.split()[:2] for line in lines[1:]] == [["ada", "admin"], ["bob", "operator"]]
    as_json = json.loads(evhub("user", "list", "--json", *config).stdout)
    assert [(u["username"], u["role"], u["tokens"]) for u in as_json] == [
        ("ada", "admin", 0),
        ("bob", "operator", 0),
    ]
    assert all("password_hash" not in u for u in as_json)

    created = evhub("token", "create", "grafana", "--user", "bob", *config)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("evh_")
    assert "\n" not in token
    assert "shown only now" in created.stderr
    assert "expires never" in created.stderr
    expiring = evhub("token", "create", "ci", "--user", "ada", "--lifespan-days", "30", *config)
    assert expiring.returncode == 0, expiring.stderr
    expiring_token = expiring.stdout.strip()

    tokens = json.loads(evhub("token", "list", "--json", *config).stdout)
    assert [(t["name"], t["username"], t["last_used_at"]) for t in tokens] == [
        ("grafana", "bob", None),
        ("ci", "ada", None),
    ]
    assert tokens[0]["expires_at"] is None
    assert 29.9 * 86400 < tokens[1]["expires_at"] - tokens[1]["created_at"] <= 30 * 86400
    table = evhub("token", "list", *config)
    assert table.stdout.splitlines()[0].split() == [
        "ID", "NAME", "USER", "CREATED", "LAST", "USED", "EXPIRES",
    ]  # fmt: skip
    grafana_row = next(line for line in table.stdout.splitlines() if "grafana" in line)
    assert grafana_row.split()[:3] == [tokens[0]["id"], "grafana", "bob"]
    assert grafana_row.split()[4:] == ["never", "never"]
    # The value is shown once, at creation, never again.
    assert token not in table.stdout
    assert token not in json.dumps(tokens)
    only_ada = json.loads(evhub("token", "list", "--user", "ADA", "--json", *config).stdout)
    assert [t["name"] for t in only_ada] == ["ci"]

    with running(tmp_path, port):
        status, body = call(port, "GET", "/api/auth/me", token=token)
        assert status == 200, body
        assert body["user"]["username"] == "bob"
        assert call(port, "GET", "/api/auth/me", token=expiring_token)[0] == 200
        # Reading is safe while the hub runs; it saves a token's last use a moment later.
        deadline = time.monotonic() + 15
        last_used = None
        while last_used is None and time.monotonic() < deadline:
            time.sleep(0.3)
            found = json.loads(evhub("token", "list", "--json", "--user", "bob", *config).stdout)
            last_used = found[0]["last_used_at"]
        assert last_used is not None
        # Every change is refused while the hub runs: it would overwrite the store.
        refusals = {
            ("token", "revoke", tokens[0]["id"]): f"DELETE /api/tokens/{tokens[0]['id']}",
            ("token", "create", "more", "--user", "bob"): "POST /api/tokens",
            ("user", "delete", "bob", "--yes"): "DELETE /api/users/",
            ("user", "passwd", "bob", "--password-stdin"): "PATCH /api/users/",
            ("user", "add", "carl", "--role", "viewer", "--password-stdin"): "POST /api/users",
            ("unban", "127.0.0.1"): "DELETE /api/bans/127.0.0.1",
        }
        for args, hint in refusals.items():
            refused = evhub(*args, *config, stdin=PASSWORD + "\n")
            assert refused.returncode == 1, args
            assert f"a hub is running on {tmp_path}" in refused.stderr, refused.stderr
            assert hint in refused.stderr, refused.stderr
        assert call(port, "GET", "/api/auth/me", token=token)[0] == 200

    revoked = evhub("token", "revoke", tokens[0]["id"], *config)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == "revoked token 'grafana' of bob"
    again = evhub("token", "revoke", tokens[0]["id"], *config)
    assert again.returncode == 1
    assert "no token" in again.stderr

    with running(tmp_path, port):
        assert call(port, "GET", "/api/auth/me", token=token)[0] == 401
        assert call(port, "GET", "/api/auth/me", token=expiring_token)[0] == 200
        deadline = time.monotonic() + 10
        while len(audit_rows(tmp_path)) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert audit_rows(tmp_path) == [
        (None, "cli", "user.add", "ada (admin)", "ok"),
        (None, "cli", "user.add", "bob (operator)", "ok"),
        (None, "cli", "token.create", "grafana (bob)", "ok"),
        (None, "cli", "token.create", "ci (ada)", "ok"),
        (None, "cli", "token.revoke", "grafana (bob)", "ok"),
        (None, "cli", "token.revoke", tokens[0]["id"], "error: not found"),
    ]


def test_passwd_and_delete_with_their_refusals(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, port)
    config = ("-c", str(tmp_path))
    add_user(tmp_path, "ada", "admin")
    add_user(tmp_path, "bob", "viewer")
    add_user(tmp_path, "carl", "viewer")
    bob_token = evhub("token", "create", "phone", "--user", "bob", *config).stdout.strip()

    short = evhub("user", "passwd", "bob", "--password-stdin", *config, stdin="short\n")
    assert short.returncode == 1
    assert "password must be 8 to 1024 characters" in short.stderr
    unknown = evhub("user", "passwd", "zed", "--password-stdin", *config, stdin=PASSWORD)
    assert unknown.returncode == 1
    assert "no user 'zed'" in unknown.stderr
    changed = evhub(
        "user", "passwd", "BOB", "--password-stdin", *config, stdin="a new pass phrase\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == "password of bob changed; their sessions and 1 token(s) ended"
    assert json.loads(evhub("token", "list", "--json", *config).stdout) == []

    last_admin = evhub("user", "delete", "ada", "--yes", *config)
    assert last_admin.returncode == 1
    assert "cannot delete the last admin" in last_admin.stderr
    unasked = evhub("user", "delete", "carl", *config)
    assert unasked.returncode == 1
    assert "--yes" in unasked.stderr
    nobody = evhub("user", "delete", "zed", "--yes", *config)
    assert nobody.returncode == 1
    assert "no user 'zed'" in nobody.stderr
    carl_id = next(
        u["id"] for u in json.loads(evhub("user", "list", "--json", *config).stdout)
        if u["username"] == "carl"
    )  # fmt: skip
    by_id = evhub("user", "delete", carl_id, "--yes", *config)
    assert by_id.returncode == 0, by_id.stderr
    assert by_id.stdout.strip() == "deleted carl (viewer) and 0 token(s)"
    assert [u["username"] for u in json.loads(evhub("user", "list", "--json", *config).stdout)] == [
        "ada",
        "bob",
    ]

    with running(tmp_path, port):
        assert call(port, "GET", "/api/auth/me", token=bob_token)[0] == 401
        login = {"username": "bob", "password": "a new pass phrase"}
        assert call(port, "POST", "/api/auth/login", login)[0] == 200
        login = {"username": "carl", "password": PASSWORD}
        assert call(port, "POST", "/api/auth/login", login)[0] == 401
        time.sleep(1.1)  # past the throttle of one failed login
        login = {"username": "bob", "password": PASSWORD}
        assert call(port, "POST", "/api/auth/login", login)[0] == 401
        deadline = time.monotonic() + 10
        while len(audit_rows(tmp_path)) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert audit_rows(tmp_path)[4:] == [
        (None, "cli", "user.update", "bob", "error: password must be 8 to 1024 characters"),
        (None, "cli", "user.update", "zed", "error: no such user"),
        (None, "cli", "user.update", "bob (password)", "ok"),
        (None, "cli", "user.delete", "ada", "error: cannot delete the last admin"),
        (None, "cli", "user.delete", "zed", "error: no such user"),
        (None, "cli", "user.delete", "carl", "ok"),
    ]


def test_bad_input_is_a_message_and_a_non_zero_exit(tmp_path: Path) -> None:
    config = ("-c", str(tmp_path))
    write_config(tmp_path, free_port())
    add_user(tmp_path, "ada", "admin")
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("token", "revoke", "no-such-id"), 1, "no token 'no-such-id'"),
        (("token", "create", "x", "--user", "nobody"), 1, "no user 'nobody'"),
        (("token", "create", "", "--user", "ada"), 1, "token name must be 1-100 characters"),
        (("token", "create", "x", "--user", "ada", "--lifespan-days", "0"), 1, "lifespan_days"),
        (("token", "create", "x", "--user", "ada", "--lifespan-days", "nan"), 1, "lifespan_days"),
        (("token", "create", "x", "--user", "ada", "--lifespan-days", "soon"), 2, "invalid float"),
        (("token", "create", "x"), 2, "--user"),
        (("token", "list", "--user", "nobody"), 1, "no user 'nobody'"),
        (("unban", "banana"), 2, "'banana' is not an IP address"),
        (("unban", "300.1.1.1"), 2, "is not an IP address"),
        (("ban", "remove", "not-an-ip"), 2, "is not an IP address"),
        (("unban", "10.0.0.1"), 1, "10.0.0.1 is not banned"),
        (("user", "delete", "nobody", "--yes"), 1, "no user 'nobody'"),
        (("user", "add", "bad name!", "--role", "viewer", "--password-stdin"), 1, "username"),
        (("user", "add", "ada", "--role", "viewer", "--password-stdin"), 1, "exists already"),
        (("user", "add", "x", "--role", "king", "--password-stdin"), 2, "invalid choice"),
    ]
    for args, status, message in cases:
        result = evhub(*args, *config, stdin=PASSWORD + "\n")
        assert result.returncode == status, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    missing = tmp_path / "nowhere"
    for args in (
        ("user", "list"),
        ("token", "list"),
        ("user", "delete", "ada", "--yes"),
        ("token", "revoke", "x"),
        ("user", "passwd", "ada", "--password-stdin"),
    ):
        result = evhub(*args, "-c", str(missing))
        assert result.returncode == 1, args
        assert f"config dir {missing} does not exist" in result.stderr
    assert not missing.exists()


def test_unban_lifts_a_ban_the_hub_made(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, port)
    add_user(tmp_path, "ada", "admin")
    with running(tmp_path, port):
        for _ in range(2):
            call(port, "POST", "/api/auth/login", {"username": "ada", "password": "wrong!!!"})
            time.sleep(1.1)  # past the throttle
        status, body = call(
            port, "POST", "/api/auth/login", {"username": "ada", "password": PASSWORD}
        )
        assert status == 429
        assert body["error"] == "banned"
    listed = evhub("ban", "list", "-c", str(tmp_path))
    assert listed.stdout.startswith("127.0.0.1\tbanned until ")
    # The address as an IPv4-mapped IPv6 address is the same address.
    lifted = evhub("unban", "::ffff:127.0.0.1", "-c", str(tmp_path))
    assert lifted.returncode == 0, lifted.stderr
    assert lifted.stdout.strip() == "unbanned 127.0.0.1"
    assert evhub("ban", "list", "-c", str(tmp_path)).stdout.strip() == "no address is banned"
    with running(tmp_path, port):
        status, _ = call(port, "POST", "/api/auth/login", {"username": "ada", "password": PASSWORD})
        assert status == 200
        deadline = time.monotonic() + 10
        while len(audit_rows(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert audit_rows(tmp_path)[1:] == [(None, "cli", "ban.remove", "127.0.0.1", "ok")]


AUTOMATIONS = """\
automations:
  - id: greet
    alias: Greet the start
    triggers: [{trigger: hub, event: start}]
    actions: [{event: greeted}]
  - id: broken_reset
    alias: Reset what is not there
    triggers: [{trigger: hub, event: start}]
    actions:
      - stop: no charger to reset
        error: true
  - id: idle
    enabled: false
    triggers: [{trigger: event, event_type: never}]
    actions: [{event: x}]
  - id: bad
    triggers: [{trigger: event, event_type: go}]
    actions: [{delay: forever}]
"""


def test_automation_list_shows_each_with_its_last_run_and_error(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, port, AUTOMATIONS)
    config = ("-c", str(tmp_path))
    before = evhub("automation", "list", *config)
    assert before.returncode == 1  # the bad one is a configuration error
    assert [line.split()[:1] for line in before.stdout.splitlines()[1:]] == [
        ["greet"],
        ["broken_reset"],
        ["idle"],
    ]
    assert all(line.split()[-2:] == ["never", "-"] for line in before.stdout.splitlines()[1:])
    assert "configuration.yaml:23: automations[3].actions" in before.stderr
    started = time.time()
    with running(tmp_path, port):
        pass  # both start automations run; the stop saves their traces
    rows = json.loads(evhub("automation", "list", "--json", *config).stdout)
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {"greet", "broken_reset", "idle"}
    assert by_id["greet"]["alias"] == "Greet the start"
    assert by_id["greet"]["enabled"] is True
    assert by_id["greet"]["last_run"]["outcome"] == "finished"
    assert by_id["greet"]["last_run"]["error"] is None
    assert by_id["greet"]["last_run"]["started"] >= started
    assert by_id["broken_reset"]["last_run"]["outcome"] == "error"
    assert by_id["broken_reset"]["last_run"]["error"] == "no charger to reset"
    assert by_id["idle"] == {
        "id": "idle", "alias": "idle", "enabled": False, "mode": "single", "last_run": None,
    }  # fmt: skip
    table = evhub("automation", "list", *config).stdout.splitlines()
    assert table[0].split() == ["ID", "ALIAS", "ENABLED", "LAST", "RUN", "RESULT", "ERROR"]
    broken = next(line for line in table if line.startswith("broken_reset"))
    words = broken.split()
    assert words[6] == "yes"
    assert words[-5:] == ["error", "no", "charger", "to", "reset"]
    assert next(line for line in table if line.startswith("idle")).split()[2:] == [
        "no",
        "never",
        "-",
    ]
    nothing = tmp_path / "empty"
    write_config(nothing, free_port())
    assert evhub("automation", "list", "-c", str(nothing)).stdout.strip() == (
        "no automations configured"
    )
    missing = evhub("automation", "list", "-c", str(tmp_path / "nowhere"))
    assert missing.returncode == 1
    assert "no configuration.yaml" in missing.stderr


def _last_full_month(zone: ZoneInfo) -> tuple[date, date]:
    today = datetime.now(zone).date()
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def test_reports_default_to_the_last_full_period(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, port, "hub:\n  time_zone: Pacific/Auckland\n")
    with running(tmp_path, port):
        pass  # makes the recorder's database
    config = ("-c", str(tmp_path))
    zone = ZoneInfo("Pacific/Auckland")
    first, last = _last_full_month(zone)
    report = evhub("report", "uptime", "--format", "json", *config)
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    end = datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)
    assert datetime.fromisoformat(found["from"].replace("Z", "+00:00")) == start
    assert datetime.fromisoformat(found["to"].replace("Z", "+00:00")) == end
    same = evhub(
        "report", "uptime", "--format", "json", "--from", first.isoformat(),
        "--to", last.isoformat(), *config,
    )  # fmt: skip
    assert json.loads(same.stdout)["from"] == found["from"]
    assert json.loads(same.stdout)["to"] == found["to"]
    for kind in ("uptime", "charge-success"):
        half = evhub("report", kind, "--from", first.isoformat(), *config)
        assert half.returncode == 1
        assert "give both --from and --to, or neither for the last full month" in half.stderr
    success = evhub("report", "charge-success", "--format", "json", *config)
    assert success.returncode == 0, success.stderr
    assert "overall" in json.loads(success.stdout)

    local = datetime.now(zone)
    quarter = (local.month - 1) // 3
    label = f"{local.year - 1}Q4" if quarter == 0 else f"{local.year}Q{quarter}"
    evchart = evhub("report", "evchart", "--output", str(tmp_path / "out"), *config)
    assert evchart.returncode == 0, evchart.stderr
    assert f"evchart-{label}-module2-sessions.csv" in evchart.stdout
    half_label = f"{local.year - 1}H2" if local.month <= 6 else f"{local.year}H1"
    cec = evhub("report", "cec", "--output", str(tmp_path / "out"), *config)
    assert cec.returncode == 0, cec.stderr
    assert f"cec-{half_label}-semiannual.csv" in cec.stdout
