"""Onboarding, login/logout, users and access tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.auth import (
    MAX_PASSWORD_LENGTH,
    SESSION_LIFETIME,
    AccessToken,
    AuthError,
    AuthManager,
    InvalidCredentialsError,
    LoginThrottledError,
    Role,
    User,
    UserExistsError,
    auth_manager,
    check_password,
    verify_password,
)
from hub.core import Context
from hub.http.schemas import (
    BOOLEAN,
    NO_CONTENT,
    NUMBER,
    OPT_NUMBER,
    OPT_STRING,
    STRING,
    array,
    json_ok,
    obj,
    ref,
)
from hub.http.view import (
    COOKIE_SESSION,
    KEY_HUB,
    KEY_SECURE,
    REQ_SESSION,
    ApiError,
    Route,
    current_user,
    json_response,
    read_json,
    remote,
)
from hub.security import audit


def _audit(
    request: web.Request,
    action: str,
    user: User | None,
    target: str | None = None,
    result: str = "ok",
) -> None:
    audit(
        request.app[KEY_HUB],
        action,
        user=user,
        source=remote(request),
        target=target,
        result=result,
        context=Context(user_id=user.id if user is not None else None),
    )


async def _logged_in(request: web.Request, user: User, status: int = 200) -> web.Response:
    """Start a session for user and answer with its cookie and CSRF token."""
    cookie, session = await auth_manager(request.app[KEY_HUB]).create_session(user)
    response = json_response({"user": user.as_public(), "csrf_token": session.csrf_token}, status)
    response.set_cookie(
        COOKIE_SESSION,
        cookie,
        max_age=int(SESSION_LIFETIME),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[KEY_SECURE],
    )
    return response


async def onboarding_status(request: web.Request) -> web.Response:
    """Tell whether the first admin must still be created."""
    return json_response({"needed": auth_manager(request.app[KEY_HUB]).needs_onboarding})


async def onboarding(request: web.Request) -> web.Response:
    """Create the first admin on a fresh install and log them in."""
    auth = auth_manager(request.app[KEY_HUB])
    auth.check_allowed(remote(request))
    if not auth.needs_onboarding:
        raise ApiError(409, "conflict", "onboarding is done: users exist")
    body = await read_json(request)
    try:
        user = await auth.add_user(body.get("username"), body.get("password"), Role.ADMIN)
    except UserExistsError:
        raise ApiError(409, "conflict", "onboarding is done: users exist") from None
    _audit(request, "onboarding", user, target=user.username)
    return await _logged_in(request, user)


async def login(request: web.Request) -> web.Response:
    """Check a username and password; start a session."""
    auth = auth_manager(request.app[KEY_HUB])
    body = await read_json(request)
    username = body.get("username")
    try:
        user = await auth.authenticate(username, body.get("password"), remote(request))
    except (InvalidCredentialsError, LoginThrottledError) as err:
        _audit(
            request,
            "login",
            None,
            target=username if isinstance(username, str) else None,
            result=f"error: {err}",
        )
        raise
    _audit(request, "login", user, target=user.username)
    return await _logged_in(request, user)


async def logout(request: web.Request) -> web.Response:
    """End the session of the cookie (a bearer token stays valid: revoke it instead)."""
    user = current_user(request)
    cookie = request.cookies.get(COOKIE_SESSION)
    if cookie:
        await auth_manager(request.app[KEY_HUB]).end_session(cookie)
    _audit(request, "logout", user, target=user.username)
    response = web.Response(status=204)
    response.del_cookie(COOKIE_SESSION, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    """Who is logged in, with the session's CSRF token (null for a bearer token)."""
    user = current_user(request)
    session = request.get(REQ_SESSION)
    return json_response(
        {"user": user.as_public(), "csrf_token": session.csrf_token if session else None}
    )


async def change_password(request: web.Request) -> web.Response:
    """Change one's own password, given the current one.

    Like any new password it ends the user's sessions and tokens; a browser gets a new
    session (cookie and CSRF token) in the answer.
    """
    user = current_user(request)
    hub = request.app[KEY_HUB]
    auth = auth_manager(hub)
    address = remote(request)
    body = await read_json(request)
    unknown = set(body) - {"current_password", "new_password"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))[:200]}")
    current, new = body.get("current_password"), body.get("new_password")
    try:
        if not isinstance(current, str) or not current:
            raise AuthError("current_password is required")
        check_password(new)
        if new == current:
            raise AuthError("the new password is the current one")
        # A stolen session must not be a way to guess the password: throttled and banned
        # like a login.
        auth.check_allowed(address)
        ok = await hub.run_in_executor(
            verify_password, current[:MAX_PASSWORD_LENGTH], user.password_hash
        )
        if not ok:
            auth.record_failure(
                address, "wrong current password in a password change", username=user.username
            )
            raise ApiError(403, "invalid_credentials", "the current password is wrong")
        user = await auth.update_user(user.id, password=new)
    except (AuthError, ApiError) as err:
        message = err.message if isinstance(err, ApiError) else str(err)
        _audit(request, "user.password", user, user.username, f"error: {message}")
        raise
    _audit(request, "user.password", user, user.username)
    if request.get(REQ_SESSION) is not None:
        return await _logged_in(request, user)
    return json_response({"user": user.as_public(), "csrf_token": None})


# Users ----------------------------------------------------------------------------------


async def list_users(request: web.Request) -> web.Response:
    """Every user."""
    auth = auth_manager(request.app[KEY_HUB])
    users = sorted(auth.users.values(), key=lambda u: u.created_at)
    return json_response([user.as_public() for user in users])


async def add_user(request: web.Request) -> web.Response:
    """Create a user with a role."""
    actor = current_user(request)
    body = await read_json(request)
    auth = auth_manager(request.app[KEY_HUB])
    try:
        user = await auth.add_user(body.get("username"), body.get("password"), body.get("role"))
    except AuthError as err:
        _audit(request, "user.add", actor, str(body.get("username")), f"error: {err}")
        raise
    _audit(request, "user.add", actor, f"{user.username} ({user.role})")
    return json_response(user.as_public(), 201)


async def update_user(request: web.Request) -> web.Response:
    """Change a user's role and/or password."""
    actor = current_user(request)
    body = await read_json(request)
    unknown = set(body) - {"role", "password"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))}")
    user_id = request.match_info["user_id"]
    auth = auth_manager(request.app[KEY_HUB])
    try:
        user = await auth.update_user(user_id, password=body.get("password"), role=body.get("role"))
    except AuthError as err:
        _audit(request, "user.update", actor, user_id, f"error: {err}")
        raise
    changed = ", ".join(sorted(body)) or "nothing"
    _audit(request, "user.update", actor, f"{user.username} ({changed})")
    return json_response(user.as_public())


async def delete_user(request: web.Request) -> web.Response:
    """Delete a user, their sessions and tokens."""
    actor = current_user(request)
    user_id = request.match_info["user_id"]
    try:
        user = await auth_manager(request.app[KEY_HUB]).remove_user(user_id)
    except AuthError as err:
        _audit(request, "user.delete", actor, user_id, f"error: {err}")
        raise
    _audit(request, "user.delete", actor, user.username)
    return web.Response(status=204)


# Tokens ---------------------------------------------------------------------------------


def _token_json(auth: AuthManager, token: AccessToken) -> dict[str, Any]:
    owner = auth.users.get(token.user_id)
    return {**token.as_public(), "username": owner.username if owner is not None else None}


async def list_tokens(request: web.Request) -> web.Response:
    """The caller's own tokens, or with ``all=true`` every user's (admins); never the values."""
    user = current_user(request)
    auth = auth_manager(request.app[KEY_HUB])
    every = request.query.get("all", "").lower()
    if every not in ("", "0", "false", "1", "true"):
        raise ApiError(400, "invalid", "all must be true or false")
    if every in ("1", "true"):
        if user.role is not Role.ADMIN:
            raise ApiError(
                403, "forbidden", f"every user's tokens need the admin role; you are {user.role}"
            )
        tokens = sorted(auth.tokens.values(), key=lambda t: t.created_at)
    else:
        tokens = auth.user_tokens(user.id)
    return json_response([_token_json(auth, token) for token in tokens])


async def create_token(request: web.Request) -> web.Response:
    """Make a named token for the caller, optionally expiring; the value is shown only here."""
    user = current_user(request)
    body = await read_json(request)
    unknown = set(body) - {"name", "lifespan_days"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))}")
    try:
        value, token = await auth_manager(request.app[KEY_HUB]).create_token(
            user, body.get("name"), body.get("lifespan_days")
        )
    except AuthError as err:
        _audit(request, "token.create", user, str(body.get("name")), f"error: {err}")
        raise
    _audit(request, "token.create", user, token.name)
    body_out: dict[str, Any] = {
        "id": token.id,
        "name": token.name,
        "token": value,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    }
    return json_response(body_out, 201)


async def delete_token(request: web.Request) -> web.Response:
    """Revoke a token: one's own, or anyone's for an admin."""
    user = current_user(request)
    auth = auth_manager(request.app[KEY_HUB])
    token_id = request.match_info["token_id"]
    token = auth.tokens.get(token_id)
    if token is None or (token.user_id != user.id and user.role is not Role.ADMIN):
        _audit(request, "token.revoke", user, token_id, "error: not found")
        raise ApiError(404, "not_found", f"no token {token_id!r}")
    await auth.revoke_token(token_id)
    _audit(request, "token.revoke", user, token.name)
    return web.Response(status=204)


# Bans -----------------------------------------------------------------------------------


async def list_bans(request: web.Request) -> web.Response:
    """The addresses banned from password logins now, with when each ban ends."""
    bans = auth_manager(request.app[KEY_HUB]).banned()
    return json_response(
        [{"address": address, "until": until} for address, until in sorted(bans.items())]
    )


async def delete_ban(request: web.Request) -> web.Response:
    """Lift the ban of an address (and forget its failed logins)."""
    actor = current_user(request)
    address = request.match_info["address"]
    if not await auth_manager(request.app[KEY_HUB]).unban(address):
        _audit(request, "ban.remove", actor, address, "error: not banned")
        raise ApiError(404, "not_found", f"{address} is not banned")
    _audit(request, "ban.remove", actor, address)
    return web.Response(status=204)


_CREDS = {"username": "string", "password": "string"}
# A login's answer: the user and the session's CSRF token (null for a bearer token).
_SIGNED_IN = json_ok(obj({"user": ref("User"), "csrf_token": OPT_STRING}))
_TOKEN = obj(
    {
        "id": STRING,
        "user_id": STRING,
        "username": OPT_STRING,
        "name": STRING,
        "created_at": NUMBER,
        "last_used_at": OPT_NUMBER,
        "expires_at": OPT_NUMBER,
    }
)
_NEW_TOKEN = obj(
    {"id": STRING, "name": STRING, "token": STRING, "created_at": NUMBER, "expires_at": OPT_NUMBER}
)

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/onboarding",
        onboarding_status,
        None,
        "Whether onboarding is needed",
        tag="auth",
        responses=json_ok(obj({"needed": BOOLEAN})),
    ),
    Route(
        "POST",
        "/api/onboarding",
        onboarding,
        None,
        "Create the first admin",
        body=_CREDS,
        tag="auth",
        responses=_SIGNED_IN,
    ),
    Route(
        "POST",
        "/api/auth/login",
        login,
        None,
        "Log in (session cookie)",
        body=_CREDS,
        tag="auth",
        responses=_SIGNED_IN,
    ),
    Route(
        "POST", "/api/auth/logout", logout, Role.VIEWER, "Log out", tag="auth", responses=NO_CONTENT
    ),
    Route(
        "GET",
        "/api/auth/me",
        me,
        Role.VIEWER,
        "The logged-in user",
        tag="auth",
        responses=_SIGNED_IN,
    ),
    Route(
        "POST",
        "/api/auth/password",
        change_password,
        Role.VIEWER,
        "Change one's own password (ends one's other sessions and tokens)",
        body={"current_password": "string", "new_password": "string"},
        tag="auth",
        responses=json_ok(obj({"user": ref("User"), "csrf_token": OPT_STRING})),
    ),
    Route(
        "GET",
        "/api/users",
        list_users,
        Role.ADMIN,
        "List users",
        tag="users",
        responses=json_ok(array(ref("User"))),
    ),
    Route(
        "POST",
        "/api/users",
        add_user,
        Role.ADMIN,
        "Create a user",
        body={**_CREDS, "role": "admin|operator|viewer"},
        tag="users",
        responses=json_ok(ref("User"), "201"),
    ),
    Route(
        "PATCH",
        "/api/users/{user_id}",
        update_user,
        Role.ADMIN,
        "Change a user's role or password",
        body={"role": "admin|operator|viewer", "password": "string"},
        tag="users",
        responses=json_ok(ref("User")),
    ),
    Route(
        "DELETE",
        "/api/users/{user_id}",
        delete_user,
        Role.ADMIN,
        "Delete a user",
        tag="users",
        responses=NO_CONTENT,
    ),
    Route(
        "GET",
        "/api/tokens",
        list_tokens,
        Role.VIEWER,
        "List own access tokens (all=true: every user's, for admins)",
        query=("all",),
        tag="users",
        responses=json_ok(array(_TOKEN)),
    ),
    Route(
        "POST",
        "/api/tokens",
        create_token,
        Role.VIEWER,
        "Create an access token",
        body={"name": "string", "lifespan_days": "number (optional; no expiry if absent)"},
        tag="users",
        responses=json_ok(_NEW_TOKEN, "201"),
    ),
    Route(
        "DELETE",
        "/api/tokens/{token_id}",
        delete_token,
        Role.VIEWER,
        "Revoke a token",
        tag="users",
        responses=NO_CONTENT,
    ),
    Route(
        "GET",
        "/api/bans",
        list_bans,
        Role.ADMIN,
        "Addresses banned from logins",
        tag="users",
        responses=json_ok(array(obj({"address": STRING, "until": NUMBER}))),
    ),
    Route(
        "DELETE",
        "/api/bans/{address}",
        delete_ban,
        Role.ADMIN,
        "Lift a login ban",
        tag="users",
        responses=NO_CONTENT,
    ),
)
