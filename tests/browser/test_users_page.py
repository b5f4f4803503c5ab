"""The users and tokens page and "My account" in Chromium, at desktop size and on a 375 px
phone, against a real hub: every change is checked in the hub's auth store and audit log."""

from __future__ import annotations

import asyncio
import re

import aiohttp
from playwright.async_api import expect

from hub.auth import auth_manager
from hub.security import recent_audit
from tests.browser.conftest import (
    ADMIN,
    PHONE,
    VIEWER,
    Dashboard,
    NewPage,
    confirm,
    login,
    nav,
    no_overflow,
    screenshot_path,
    to_docs,
)

NEW_PASSWORD = "dana-new-password-2"


async def whose(dashboard: Dashboard, token: str) -> tuple[int, str | None]:
    """GET /api/auth/me with a bearer token: the status, and the user's name when allowed."""
    async with (
        aiohttp.ClientSession() as client,
        client.get(
            f"{dashboard.url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        if resp.status != 200:
            return resp.status, None
        username: str = (await resp.json())["user"]["username"]
        return resp.status, username


def audited(dashboard: Dashboard, action: str) -> list[dict[str, object]]:
    return [e for e in reversed(recent_audit(dashboard.hub, 500)) if e["action"] == action]


async def test_admin_manages_users_and_every_token(dashboard: Dashboard, new_page: NewPage) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    await dashboard.add_user(*VIEWER, "viewer")
    auth = auth_manager(dashboard.hub)
    victor = auth.find_user(VIEWER[0])
    assert victor is not None
    _, grafana = await auth.create_token(victor, "grafana")

    page = await new_page()
    await login(page, dashboard.url, *ADMIN)
    await nav(page, "Users")
    await expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    users = page.locator("table.users-table")
    await expect(users.locator("tr[data-username]")).to_have_count(2)
    # The only admin can be neither deleted nor demoted.
    admin_row = users.locator(f"tr[data-username='{ADMIN[0]}']")
    await expect(admin_row.locator("[data-action='delete']")).to_be_disabled()
    await expect(admin_row.get_by_role("combobox")).to_be_disabled()

    form = page.locator("form.add-user")
    await form.get_by_label("Username").fill("dana")
    await form.get_by_label("Password").fill("short")
    await form.get_by_label("Role").select_option("viewer")
    await form.get_by_role("button", name="Add user").click()
    # The browser refuses a short password before anything is sent.
    await expect(form.locator("input[name='new-password']:invalid")).to_have_count(1)
    assert auth_manager(dashboard.hub).find_user("dana") is None
    await form.get_by_label("Password").fill("dana-password-1")
    await form.get_by_role("button", name="Add user").click()
    dana_row = users.locator("tr[data-username='dana']")
    await expect(dana_row).to_have_attribute("data-role", "viewer")
    dana = auth.find_user("dana")
    assert dana is not None
    assert dana.role == "viewer"

    # Another role, confirmed.
    await dana_row.get_by_role("combobox").select_option("operator")
    await expect(page.locator("dialog.confirm-dialog")).to_contain_text(
        "Give dana the role operator?"
    )
    await confirm(page)
    await expect(dana_row).to_have_attribute("data-role", "operator")
    assert auth.users[dana.id].role == "operator"

    # A new password, typed in the dialog.
    await dana_row.locator("[data-action='reset-password']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await dialog.get_by_label("New password").fill(NEW_PASSWORD)
    await confirm(page)
    await expect(page.locator(".notice", has_text="New password set for dana")).to_be_visible()
    assert (await auth.authenticate("dana", NEW_PASSWORD, "192.0.2.10")).id == dana.id

    # Every user's tokens, with their owners; the admin revokes the viewer's.
    tokens = page.locator("[data-section='all-tokens']")
    row = tokens.locator(f"tr[data-token-id='{grafana.id}']")
    await expect(row).to_contain_text(VIEWER[0])
    await page.evaluate("document.getElementById('notices')?.replaceChildren()")
    shot = screenshot_path("users-desktop")
    await page.screenshot(path=shot, full_page=True)
    await to_docs(shot, "users.png")

    await row.locator("[data-action='revoke']").click()
    await expect(page.locator("dialog.confirm-dialog")).to_contain_text(
        f"Revoke the token grafana of {VIEWER[0]}?"
    )
    await confirm(page)
    await expect(row).to_have_count(0)
    assert grafana.id not in auth.tokens

    # Deleting asks first; cancelled, dana stays.
    await dana_row.locator("[data-action='delete']").click()
    await page.locator("dialog.confirm-dialog").get_by_role("button", name="Cancel").click()
    await expect(dana_row).to_have_count(1)
    await dana_row.locator("[data-action='delete']").click()
    await confirm(page)
    await expect(dana_row).to_have_count(0)
    assert auth.find_user("dana") is None

    assert [e["target"] for e in audited(dashboard, "user.add")] == ["dana (viewer)"]
    assert [e["target"] for e in audited(dashboard, "user.update")] == [
        "dana (role)",
        "dana (password)",
    ]
    assert [e["target"] for e in audited(dashboard, "user.delete")] == ["dana"]
    assert [(e["target"], e["username"]) for e in audited(dashboard, "token.revoke")] == [
        ("grafana", ADMIN[0])
    ]


async def test_a_viewer_changes_their_password_and_keeps_tokens_on_a_phone(
    dashboard: Dashboard, new_page: NewPage
) -> None:
    await dashboard.add_user(*VIEWER, "viewer")
    page = await new_page(PHONE)
    await login(page, dashboard.url, *VIEWER)
    # No users page for a viewer: their account is behind their name.
    menu = page.get_by_role("button", name="Menu")
    await menu.click()
    await expect(page.locator("#main-nav").get_by_role("link", name="Users")).to_have_count(0)
    await menu.click()
    await page.locator(".topbar .whoami").click()
    await expect(page.get_by_role("heading", name="My account")).to_be_visible()
    await no_overflow(page, "My account")

    form = page.locator("form.change-password")
    await form.get_by_label("Current password").fill("not my password")
    await form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await form.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await expect(form.locator(".error-box")).to_have_text("The current password is wrong.")
    await asyncio.sleep(1.1)  # a wrong password throttles the address for a second

    await form.get_by_label("Current password").fill(VIEWER[1])
    await form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await form.get_by_label("Repeat new password").fill("something else 1")
    await form.get_by_role("button", name="Change password").click()
    await expect(form.locator(".error-box")).to_have_text("The new passwords differ.")
    await form.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await expect(page.locator(".notice", has_text="Password changed")).to_be_visible()
    # Still signed in, with the new session: live again and allowed to act.
    await expect(page.locator(".topbar [data-connection]")).to_have_attribute(
        "data-connection", "connected"
    )
    auth = auth_manager(dashboard.hub)
    assert (await auth.authenticate(VIEWER[0], NEW_PASSWORD, "192.0.2.11")).username == VIEWER[0]

    # A token: its value is shown once and works.
    tokens = page.locator("[data-section='my-tokens']")
    await tokens.get_by_label("Token name").fill("home assistant")
    await tokens.get_by_label("Valid for (days)").fill("30")
    await tokens.get_by_role("button", name="Create token").click()
    once = tokens.locator("[data-token-once] input")
    await expect(once).to_have_value(re.compile(r"^evh_\S{40,}$"))
    value = await once.input_value()
    assert value.startswith("evh_")
    assert await whose(dashboard, value) == (200, VIEWER[0])
    row = tokens.locator("tr[data-token-name='home assistant']")
    await expect(row).to_have_count(1)
    await no_overflow(page, "My account with a new token")
    await page.screenshot(path=screenshot_path("account-phone"), full_page=True)
    await tokens.get_by_role("button", name="Done").click()
    await expect(tokens.locator("[data-token-once]")).to_have_count(0)
    await expect(tokens).not_to_contain_text(value)

    await row.locator("[data-action='revoke']").click()
    await confirm(page)
    await expect(row).to_have_count(0)
    assert (await whose(dashboard, value))[0] == 401
    assert [e["result"] for e in audited(dashboard, "user.password")] == [
        "error: the current password is wrong",
        "ok",
    ]


async def test_users_page_on_a_phone(dashboard: Dashboard, new_page: NewPage) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    await dashboard.add_user(*VIEWER, "viewer")
    page = await new_page(PHONE)
    await login(page, dashboard.url, *ADMIN)
    await nav(page, "Users")
    await expect(page.locator("tr[data-username]")).to_have_count(2)
    await expect(page.locator("[data-section='all-tokens'] .loading")).to_have_count(0)
    await no_overflow(page, "Users")
    row = page.locator(f"tr[data-username='{VIEWER[0]}']")
    await row.locator("[data-action='delete']").click()
    await confirm(page)
    await expect(row).to_have_count(0)
    await page.screenshot(path=screenshot_path("users-phone"), full_page=True)
