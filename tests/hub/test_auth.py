"""Users, passwords, sessions, tokens and bans of hub.auth, seen through its public API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hub.auth import (
    AuthError,
    AuthManager,
    InvalidCredentialsError,
    LoginThrottledError,
    Role,
    UserExistsError,
    hash_password,
    verify_password,
)
from hub.clock import use_manual_clock
from hub.core import Hub
from hub.security import security_log

PASSWORD = "a long enough secret"


def test_password_hash_is_scrypt_salted_and_verifies() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$")
    assert first != second  # salted
    assert verify_password(PASSWORD, first)
    assert not verify_password("wrong password", first)
    assert not verify_password(PASSWORD, "garbage")
    assert not verify_password(PASSWORD, "scrypt$x$y$z$salt$hash")


async def test_users_persist_privately_without_plain_secrets(hub: Hub, tmp_path: Path) -> None:
    auth = AuthManager(hub)
    await auth.load()
    assert auth.needs_onboarding
    admin = await auth.add_user("alice", PASSWORD, "admin")
    value, token = await auth.create_token(admin, "grafana")
    await auth.flush()
    path = tmp_path / ".storage" / "core.auth"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    text = path.read_text()
    assert PASSWORD not in text
    assert value not in text
    assert json.loads(text)["data"]["users"][0]["username"] == "alice"

    again = AuthManager(hub)
    await again.load()
    assert not again.needs_onboarding
    assert (await again.authenticate("ALICE", PASSWORD, "10.0.0.1")).id == admin.id
    found = again.validate_token(value)
    assert found is not None
    assert found[1].id == token.id
    assert found[1].last_used_at is not None


async def test_bad_users_are_refused_with_reasons(hub: Hub) -> None:
    auth = AuthManager(hub)
    await auth.add_user("bob", PASSWORD, Role.OPERATOR)
    with pytest.raises(UserExistsError):
        await auth.add_user("Bob", PASSWORD, "viewer")
    with pytest.raises(AuthError, match="password must be"):
        await auth.add_user("carol", "short", "viewer")
    with pytest.raises(AuthError, match="role must be"):
        await auth.add_user("carol", PASSWORD, "root")
    with pytest.raises(AuthError, match="username"):
        await auth.add_user("no spaces allowed", PASSWORD, "viewer")
    with pytest.raises(AuthError, match="username"):
        await auth.add_user(42, PASSWORD, "viewer")


async def test_last_admin_cannot_be_removed_or_demoted(hub: Hub) -> None:
    auth = AuthManager(hub)
    admin = await auth.add_user("root", PASSWORD, "admin")
    with pytest.raises(AuthError, match="last admin"):
        await auth.remove_user(admin.id)
    with pytest.raises(AuthError, match="last admin"):
        await auth.update_user(admin.id, role="viewer")
    other = await auth.add_user("root2", PASSWORD, "admin")
    assert (await auth.update_user(admin.id, role="viewer")).role is Role.VIEWER
    assert (await auth.remove_user(admin.id)).id == admin.id
    assert list(auth.users) == [other.id]


async def test_password_change_ends_sessions_and_tokens_removal_revokes_tokens(
    hub: Hub,
) -> None:
    auth = AuthManager(hub)
    await auth.add_user("admin", PASSWORD, "admin")
    user = await auth.add_user("op", PASSWORD, "operator")
    cookie, _session = await auth.create_session(user)
    value, _token = await auth.create_token(user, "script")
    assert auth.validate_session(cookie) is not None
    await auth.update_user(user.id, password="another long secret")
    assert auth.validate_session(cookie) is None
    assert auth.validate_token(value) is None
    # A role change keeps the user's credentials: they carry the new role.
    value, _token = await auth.create_token(user, "script")
    await auth.update_user(user.id, role="viewer")
    found = auth.validate_token(value)
    assert found is not None
    assert found[0].role is Role.VIEWER
    await auth.remove_user(user.id)
    assert auth.validate_token(value) is None


async def test_sessions_expire(hub: Hub) -> None:
    clock = use_manual_clock(hub)
    auth = AuthManager(hub)
    user = await auth.add_user("admin", PASSWORD, "admin")
    cookie, _ = await auth.create_session(user)
    await clock.advance(29 * 86400)
    assert auth.validate_session(cookie) is not None
    await clock.advance(2 * 86400)
    assert auth.validate_session(cookie) is None


async def test_failed_logins_are_throttled_then_banned(hub: Hub) -> None:
    clock = use_manual_clock(hub)
    auth = AuthManager(hub, login_attempts=3, ban_seconds=600)
    await auth.add_user("admin", PASSWORD, "admin")
    with pytest.raises(InvalidCredentialsError):
        await auth.authenticate("admin", "wrong one", "10.0.0.9")
    # Throttled: one second to wait after the first failure, even with the right password.
    with pytest.raises(LoginThrottledError) as throttled:
        await auth.authenticate("admin", PASSWORD, "10.0.0.9")
    assert not throttled.value.banned
    # Another address is not affected.
    assert (await auth.authenticate("admin", PASSWORD, "10.0.0.10")).username == "admin"
    await clock.advance(1.1)
    with pytest.raises(InvalidCredentialsError):
        await auth.authenticate("nobody", "wrong one", "10.0.0.9")
    await clock.advance(2.1)
    with pytest.raises(InvalidCredentialsError):
        await auth.authenticate("admin", "wrong again", "10.0.0.9")
    with pytest.raises(LoginThrottledError) as banned:
        await auth.authenticate("admin", PASSWORD, "10.0.0.9")
    assert banned.value.banned
    assert auth.is_banned("10.0.0.9")
    events = security_log(hub).query(kind="login_banned")
    assert len(events) == 1
    assert events[0].remote == "10.0.0.9"
    assert len(security_log(hub).query(kind="login_failed")) == 3
    await clock.advance(601)
    assert (await auth.authenticate("admin", PASSWORD, "10.0.0.9")).username == "admin"


async def test_bans_persist_and_can_be_turned_off(hub: Hub) -> None:
    auth = AuthManager(hub, login_attempts=1)
    await auth.add_user("admin", PASSWORD, "admin")
    with pytest.raises(InvalidCredentialsError):
        await auth.authenticate("admin", "wrong one", "192.0.2.1")
    await auth.flush()
    again = AuthManager(hub)
    await again.load()
    assert again.is_banned("192.0.2.1")
    assert await again.unban("192.0.2.1")
    assert not again.is_banned("192.0.2.1")

    off = AuthManager(hub, ban_enabled=False, login_attempts=1)
    await off.add_user("admin", PASSWORD, "admin")
    for _ in range(3):
        with pytest.raises(InvalidCredentialsError):
            await off.authenticate("admin", "wrong one", "192.0.2.2")
    assert (await off.authenticate("admin", PASSWORD, "192.0.2.2")).username == "admin"


async def test_malformed_credentials_are_invalid_not_crashes(hub: Hub) -> None:
    auth = AuthManager(hub, ban_enabled=False)
    await auth.add_user("admin", PASSWORD, "admin")
    for username, password in ((None, PASSWORD), ("admin", 12), (["admin"], {})):
        with pytest.raises(InvalidCredentialsError):
            await auth.authenticate(username, password, "127.0.0.1")


async def test_tokens_are_named_listed_and_revoked(hub: Hub) -> None:
    auth = AuthManager(hub)
    user = await auth.add_user("admin", PASSWORD, "admin")
    with pytest.raises(AuthError):
        await auth.create_token(user, "   ")
    value, token = await auth.create_token(user, " prometheus ")
    assert token.name == "prometheus"
    assert value.startswith("evh_")
    assert [t.id for t in auth.user_tokens(user.id)] == [token.id]
    assert "token_hash" not in token.as_public()
    await auth.revoke_token(token.id)
    assert auth.validate_token(value) is None
    assert auth.validate_token("evh_made_up") is None


async def test_cli_user_add_reads_the_password_from_stdin(hub: Hub, tmp_path: Path) -> None:
    import subprocess
    import sys

    def run(name: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", "user", "add", name, "--role", "operator",
             "--config", str(tmp_path), "--password-stdin"],
            input=password + "\n", capture_output=True, text=True, check=False,
        )  # fmt: skip

    done = await hub.run_in_executor(run, "ops", PASSWORD)
    assert done.returncode == 0, done.stderr
    assert "added ops (operator)" in done.stdout
    refused = await hub.run_in_executor(run, "ops2", "short")
    assert refused.returncode == 1
    assert "password must be" in refused.stderr
    auth = AuthManager(hub)
    await auth.load()
    user = await auth.authenticate("ops", PASSWORD, "127.0.0.1")
    assert user.role is Role.OPERATOR
    assert auth.find_user("ops2") is None
