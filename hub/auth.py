"""Users, roles, browser sessions, access tokens and login bans.

Passwords are hashed with scrypt (memory-hard) in the executor; session ids and access
tokens are random and only their SHA-256 is kept. Everything lives in the private store
``.storage/core.auth``, and every change the API acknowledges (users, roles, passwords,
tokens, sessions, unbans) is on disk before the method returns.

Bans stop password logins only: too many failed logins from an address ban it, but a valid
token or session from that address (another user behind the same NAT) still works. A wrong
bearer token is a security event, never a ban (a 320-bit token cannot be guessed; banning
for it would let anyone lock out an office).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from hub.clock import clock
from hub.const import EVENT_HUB_STARTED
from hub.core import Event, Hub, HubKey, Unsubscribe, new_id
from hub.exceptions import HubError
from hub.security import ATTR_USERNAME, SOURCE_API, Severity, audit, security_log
from hub.storage import Store

_LOGGER = logging.getLogger(__name__)

DATA_AUTH: Final[HubKey[AuthManager]] = HubKey("auth.manager")
STORAGE_KEY: Final = "core.auth"
STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 2.0

SESSION_LIFETIME: Final = 30 * 86400.0
MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 1024
USERNAME_RE: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

# scrypt parameters: 16 MiB of memory per hash (128 * r * n bytes).
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_SCRYPT_MAXMEM: Final = 64 * 1024 * 1024

SEC_LOGIN_BANNED: Final = "login_banned"
SEC_LOGIN_FAILED: Final = "login_failed"
SEC_INVALID_TOKEN: Final = "invalid_token"

# A token lives at most this long when it is given a lifespan.
MAX_TOKEN_LIFESPAN_DAYS: Final = 3650
# Wrong bearer tokens from one address are logged at the 1st, 10th, 100th...: counted, not
# flooding the log. The count restarts after this long without one.
INVALID_TOKEN_WINDOW: Final = 3600.0
# Failure bookkeeping is dropped for addresses quiet this long, beyond this many addresses.
MAX_TRACKED_ADDRESSES: Final = 10_000

DEFAULT_LOGIN_ATTEMPTS: Final = 5
DEFAULT_BAN_SECONDS: Final = 3600.0
# After each failure an address waits 2**(failures-1) seconds, at most this, before it may
# try again: brute force slows down long before the ban.
MAX_THROTTLE_SECONDS: Final = 30.0


class Role(enum.StrEnum):
    """What a user may do: viewer reads, operator controls, admin does everything."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order of the roles: viewer < operator < admin."""
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Tell whether this role may do what needs the given role."""
        return self.rank >= needed.rank


_RANK: Final = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class AuthError(HubError):
    """An authentication or user management request was refused."""

    http_status = 400
    error_code = "invalid"


class InvalidCredentialsError(AuthError):
    """Unknown user, wrong password, or an unknown token."""

    http_status = 401
    error_code = "invalid_credentials"


class LoginThrottledError(AuthError):
    """The address must wait (throttled) or is banned."""

    http_status = 429
    error_code = "throttled"

    def __init__(self, message: str, retry_after: float, banned: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.banned = banned


class UserExistsError(AuthError):
    """A user with that name exists already, or onboarding is over."""

    http_status = 409
    error_code = "conflict"


class NotFoundError(AuthError, LookupError):
    """No user or token with that id."""

    http_status = 404
    error_code = "not_found"


# Credentials a connection authenticated with: ("token", token id) or ("session", id hash).
Credential = tuple[str, str]
CREDENTIAL_TOKEN: Final = "token"
CREDENTIAL_SESSION: Final = "session"


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A person who may use the API."""

    id: str
    username: str
    role: Role
    created_at: float
    password_hash: str
    # When the password was last set (None: at created_at, by an evhub that did not say).
    password_changed_at: float | None = None

    def as_public(self) -> dict[str, Any]:
        """The User of the API contract (no hash)."""
        return {
            "id": self.id,
            "username": self.username,
            "role": str(self.role),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessToken:
    """A named long-lived bearer token; only its hash is kept."""

    id: str
    user_id: str
    name: str
    token_hash: str
    created_at: float
    last_used_at: float | None = None
    expires_at: float | None = None  # None: until revoked

    def as_public(self) -> dict[str, Any]:
        """The token as listed (never the token itself)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "name": self.name,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "expires_at": self.expires_at,
        }

    def expired(self, now: float) -> bool:
        """Tell whether the token's lifespan is over."""
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A browser session: the cookie's hash, its CSRF token and expiry."""

    id_hash: str
    user_id: str
    csrf_token: str
    created_at: float
    expires_at: float


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    """Hash a password with scrypt (blocking: run it in the executor)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM
    )
    return "$".join(
        (
            "scrypt",
            str(SCRYPT_N),
            str(SCRYPT_R),
            str(SCRYPT_P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        )
    )


def verify_password(password: str, stored: str) -> bool:
    """Check a password against its scrypt hash (blocking: run it in the executor)."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


def check_username(username: Any) -> str:
    """Return a valid username or raise AuthError saying why not."""
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise AuthError("username must be 1-64 letters, digits or . _ @ -")
    return username


def check_password(password: Any) -> str:
    """Return an acceptable password or raise AuthError saying why not."""
    if not isinstance(password, str):
        raise AuthError("password must be a string")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AuthError(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return password


def check_lifespan(days: Any) -> float | None:
    """Return a token lifespan in seconds (None: no expiry) or raise AuthError."""
    if days is None:
        return None
    if (
        isinstance(days, bool)
        or not isinstance(days, int | float)
        or not 0 < days <= MAX_TOKEN_LIFESPAN_DAYS
    ):
        raise AuthError(
            f"lifespan_days must be a number of days, above 0, at most {MAX_TOKEN_LIFESPAN_DAYS}"
        )
    return float(days) * 86400.0


def check_role(role: Any) -> Role:
    """Return a Role or raise AuthError."""
    try:
        return Role(role)
    except ValueError:
        raise AuthError(f"role must be one of {', '.join(r.value for r in Role)}") from None


class AuthManager:
    """Users, tokens, sessions and the failed-login bookkeeping of one hub."""

    def __init__(
        self,
        hub: Hub,
        *,
        ban_enabled: bool = True,
        login_attempts: int = DEFAULT_LOGIN_ATTEMPTS,
        ban_seconds: float = DEFAULT_BAN_SECONDS,
    ) -> None:
        self.hub = hub
        self.ban_enabled = ban_enabled
        self.login_attempts = login_attempts
        self.ban_seconds = ban_seconds
        self.users: dict[str, User] = {}
        self.tokens: dict[str, AccessToken] = {}
        self._tokens_by_hash: dict[str, str] = {}
        self.sessions: dict[str, Session] = {}
        self.bans: dict[str, float] = {}  # address -> banned until
        self._failures: dict[str, _Failures] = {}
        self._token_failures: dict[str, _Failures] = {}
        self._listeners: list[Callable[[str], None]] = []
        # Audit entries of CLI commands run while the hub was stopped, fired once it runs.
        self.pending_audit: list[dict[str, Any]] = []
        self._store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY, private=True)
        # A real hash to compare against when the user does not exist, so a wrong username
        # costs as much time as a wrong password.
        self._dummy_hash: str | None = None

    # Persistence ---------------------------------------------------------------------

    async def load(self) -> None:
        """Read users, tokens, sessions and bans."""
        data = await self._store.load() or {}
        for raw in data.get("users", []):
            try:
                user = User(**{**raw, "role": Role(raw["role"])})
            except (TypeError, ValueError, KeyError):
                _LOGGER.warning("Skipping a stored user that cannot be read")
                continue
            self.users[user.id] = user
        now = self._now()
        for raw in data.get("tokens", []):
            try:
                token = AccessToken(**raw)
            except TypeError:
                continue
            if token.expired(now) or token.user_id not in self.users:
                continue
            self.tokens[token.id] = token
            self._tokens_by_hash[token.token_hash] = token.id
        for raw in data.get("sessions", []):
            try:
                session = Session(**raw)
            except TypeError:
                continue
            if session.expires_at > now and session.user_id in self.users:
                self.sessions[session.id_hash] = session
        self.bans = {
            str(address): float(until)
            for address, until in (data.get("bans") or {}).items()
            if float(until) > now
        }
        self.pending_audit = [e for e in data.get("pending_audit", []) if isinstance(e, dict)]

    async def flush(self) -> None:
        """Write pending changes now."""
        await self._store.flush()

    def _save(self) -> None:
        """Save soon: for bookkeeping nobody was promised (last use, expiries, bans)."""
        self._store.delay_save(self._data, SAVE_DELAY)

    async def _commit(self) -> None:
        """Save now and wait until it is on disk: for changes the API acknowledges."""
        await self._store.save(self._data())

    def _data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "users": [asdict(user) for user in self.users.values()],
            "tokens": [asdict(token) for token in self.tokens.values()],
            "sessions": [asdict(session) for session in self.sessions.values()],
            "bans": dict(self.bans),
        }
        if self.pending_audit:
            data["pending_audit"] = list(self.pending_audit)
        return data

    def _now(self) -> float:
        return clock(self.hub).time()

    # Changes -------------------------------------------------------------------------

    def listen_changes(self, callback: Callable[[str], None]) -> Unsubscribe:
        """Call back with a user id when that user's rights may have changed.

        Role or password changed, user deleted, a token revoked, a session ended: an open
        connection re-checks its credential (hub.http.websocket_api).
        """
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _changed(self, user_id: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(user_id)
            except Exception:
                _LOGGER.exception("Error in an auth change listener")

    def current_user(self, credential: Credential) -> User | None:
        """The user a credential stands for now; None if revoked, expired or deleted."""
        kind, key = credential
        now = self._now()
        user_id: str | None = None
        if kind == CREDENTIAL_TOKEN:
            token = self.tokens.get(key)
            if token is not None and not token.expired(now):
                user_id = token.user_id
        elif kind == CREDENTIAL_SESSION:
            session = self.sessions.get(key)
            if session is not None and session.expires_at > now:
                user_id = session.user_id
        return self.users.get(user_id) if user_id is not None else None

    def credential_expiry(self, credential: Credential) -> float | None:
        """When a credential expires (None: never, or unknown)."""
        kind, key = credential
        if kind == CREDENTIAL_TOKEN:
            token = self.tokens.get(key)
            return token.expires_at if token is not None else None
        session = self.sessions.get(key)
        return session.expires_at if session is not None else None

    # Audit of commands run while the hub was stopped ------------------------------------

    async def audit_offline(self, action: str, target: str | None, result: str = "ok") -> None:
        """Keep an audit entry of a CLI command, fired on the bus when the hub next runs."""
        self.pending_audit.append(
            {"time": self._now(), "action": action, "target": target, "result": result}
        )
        await self._commit()

    def _fire_pending_audit(self, _event: Event | None = None) -> None:
        if not self.pending_audit:
            return
        entries, self.pending_audit = self.pending_audit, []
        for entry in entries:
            audit(
                self.hub,
                str(entry.get("action")),
                user=None,
                source="cli",
                target=entry.get("target"),
                result=str(entry.get("result", "ok")),
                at=entry.get("time"),
            )
        self._save()

    # Users ---------------------------------------------------------------------------

    @property
    def needs_onboarding(self) -> bool:
        """True while no user exists."""
        return not self.users

    def get_user(self, user_id: str) -> User | None:
        """Return a user by id."""
        return self.users.get(user_id)

    def find_user(self, username: str) -> User | None:
        """Return a user by name (case-insensitive)."""
        lowered = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == lowered), None)

    async def add_user(self, username: Any, password: Any, role: Any) -> User:
        """Create a user; raises AuthError for a bad or taken name, short password, bad role."""
        name = check_username(username)
        secret = check_password(password)
        checked_role = check_role(role)
        if self.find_user(name) is not None:
            raise UserExistsError(f"user {name!r} exists already")
        password_hash = await self.hub.run_in_executor(hash_password, secret)
        if self.find_user(name) is not None:  # added while we hashed
            raise UserExistsError(f"user {name!r} exists already")
        user = User(
            id=new_id(),
            username=name,
            role=checked_role,
            created_at=self._now(),
            password_hash=password_hash,
            password_changed_at=self._now(),
        )
        self.users[user.id] = user
        await self._commit()
        return user

    async def update_user(self, user_id: str, *, password: Any = None, role: Any = None) -> User:
        """Change a user's password and/or role; a new password ends sessions and tokens."""
        user = self.users.get(user_id)
        if user is None:
            raise NotFoundError(f"no user {user_id!r}")
        changes: dict[str, Any] = {}
        if role is not None:
            new_role = check_role(role)
            if user.role is Role.ADMIN and new_role is not Role.ADMIN and self._last_admin(user):
                raise AuthError("cannot demote the last admin")
            changes["role"] = new_role
        if password is not None:
            changes["password_hash"] = await self.hub.run_in_executor(
                hash_password, check_password(password)
            )
            changes["password_changed_at"] = self._now()
        current = self.users.get(user_id)
        if current is None:
            raise NotFoundError(f"no user {user_id!r}")
        if password is not None:
            # Whoever knew the old password may have made a token or a session with it.
            self._drop_sessions(user_id)
            for token in [t for t in self.tokens.values() if t.user_id == user_id]:
                self._drop_token(token)
        user = replace(current, **changes)
        self.users[user_id] = user
        await self._commit()
        self._changed(user_id)
        return user

    async def remove_user(self, user_id: str) -> User:
        """Delete a user with their sessions and tokens; the last admin stays."""
        user = self.users.get(user_id)
        if user is None:
            raise NotFoundError(f"no user {user_id!r}")
        if user.role is Role.ADMIN and self._last_admin(user):
            raise AuthError("cannot delete the last admin")
        del self.users[user_id]
        self._drop_sessions(user_id)
        for token in [t for t in self.tokens.values() if t.user_id == user_id]:
            self._drop_token(token)
        await self._commit()
        self._changed(user_id)
        return user

    def _last_admin(self, user: User) -> bool:
        return not any(u.role is Role.ADMIN and u.id != user.id for u in self.users.values())

    async def authenticate(self, username: Any, password: Any, address: str) -> User:
        """Check credentials from an address, with throttling and bans.

        Raises LoginThrottledError while the address must wait or is banned, and
        InvalidCredentialsError (counted as a failure) for a bad name or password.
        """
        self.check_allowed(address)
        if not isinstance(username, str) or not isinstance(password, str):
            self.record_failure(address, "login with a malformed username or password")
            raise InvalidCredentialsError("invalid username or password")
        user = self.find_user(username)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hub.run_in_executor(hash_password, "not a password")
            stored = self._dummy_hash
        else:
            stored = user.password_hash
        ok = await self.hub.run_in_executor(verify_password, password[:MAX_PASSWORD_LENGTH], stored)
        if user is None or not ok:
            # The name typed goes in the data, which only admins see: it is often a password.
            self.record_failure(address, "failed login", username=username[:64])
            raise InvalidCredentialsError("invalid username or password")
        self._failures.pop(address, None)
        return user

    # Throttling and bans -------------------------------------------------------------

    def check_allowed(self, address: str) -> None:
        """Raise LoginThrottledError if the address may not try a password now."""
        if not self.ban_enabled:
            return
        now = self._now()
        until = self.bans.get(address)
        if until is not None:
            if until > now:
                raise LoginThrottledError(
                    f"{address} is banned after too many failed logins", until - now, True
                )
            del self.bans[address]
            self._save()
        failures = self._failures.get(address)
        if failures is not None:
            wait = min(2.0 ** (failures.count - 1), MAX_THROTTLE_SECONDS)
            if now < failures.last + wait:
                raise LoginThrottledError(
                    f"too many failed logins from {address}; retry later",
                    failures.last + wait - now,
                    False,
                )

    def is_banned(self, address: str) -> bool:
        """Tell whether an address is banned now."""
        until = self.bans.get(address)
        return self.ban_enabled and until is not None and until > self._now()

    def record_failure(self, address: str, what: str, *, username: str | None = None) -> None:
        """Count a failed login; ban the address at the threshold.

        Failures older than the ban duration are forgotten: the threshold counts failures
        within that window, so a typo a week after three others is not a ban.
        """
        if not self.ban_enabled:
            return
        now = self._now()
        failures = self._failures.get(address)
        if failures is None or now - failures.last > self.ban_seconds:
            _prune(self._failures, now - self.ban_seconds)
            failures = self._failures[address] = _Failures(0, now)
        failures.count += 1
        failures.last = now
        data: dict[str, Any] = {"failures": failures.count}
        if username is not None:
            data[ATTR_USERNAME] = username
        security_log(self.hub).record(
            SEC_LOGIN_FAILED,
            f"{what} from {address}",
            severity=Severity.INFO,
            source=SOURCE_API,
            remote=address,
            data=data,
        )
        if failures.count >= self.login_attempts:
            self.bans[address] = now + self.ban_seconds
            self._failures.pop(address, None)
            self._save()
            security_log(self.hub).record(
                SEC_LOGIN_BANNED,
                f"{address} banned for {self.ban_seconds:g} s after {failures.count} failed logins",
                severity=Severity.WARNING,
                source=SOURCE_API,
                remote=address,
                data={"failures": failures.count, "until": now + self.ban_seconds},
            )

    def record_invalid_token(self, address: str, where: str) -> None:
        """Log a wrong bearer token as a security event; never a ban (see the module doc)."""
        now = self._now()
        failures = self._token_failures.get(address)
        if failures is None or now - failures.last > INVALID_TOKEN_WINDOW:
            _prune(self._token_failures, now - INVALID_TOKEN_WINDOW)
            failures = self._token_failures[address] = _Failures(0, now)
        failures.count += 1
        failures.last = now
        count = failures.count
        if count != 10 ** (len(str(count)) - 1):  # logged at the 1st, 10th, 100th...
            return
        security_log(self.hub).record(
            SEC_INVALID_TOKEN,
            f"{where} with an invalid, expired or revoked access token from {address}"
            + (f" ({count} in a row)" if count > 1 else ""),
            severity=Severity.WARNING if count >= 10 else Severity.INFO,
            source=SOURCE_API,
            remote=address,
            data={"count": count},
        )

    def banned(self) -> dict[str, float]:
        """The addresses banned now, with the time each ban ends."""
        now = self._now()
        return {address: until for address, until in self.bans.items() if until > now}

    async def unban(self, address: str) -> bool:
        """Lift a ban (and the address's failure count); tell whether there was one."""
        self._failures.pop(address, None)
        if self.bans.pop(address, None) is None:
            return False
        await self._commit()
        return True

    # Sessions ------------------------------------------------------------------------

    async def create_session(self, user: User) -> tuple[str, Session]:
        """Start a browser session: returns the cookie value (shown once) and the session."""
        cookie = secrets.token_urlsafe(32)
        now = self._now()
        session = Session(
            id_hash=_sha256(cookie),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
        self.sessions[session.id_hash] = session
        await self._commit()
        return cookie, session

    def validate_session(self, cookie: str) -> tuple[User, Session] | None:
        """Return the user and session of a cookie value, if valid and not expired."""
        session = self.sessions.get(_sha256(cookie))
        if session is None:
            return None
        if session.expires_at <= self._now():
            del self.sessions[session.id_hash]
            self._save()
            return None
        user = self.users.get(session.user_id)
        if user is None:
            return None
        return user, session

    async def end_session(self, cookie: str) -> None:
        """Log out: forget the session of a cookie value."""
        session = self.sessions.pop(_sha256(cookie), None)
        if session is not None:
            await self._commit()
            self._changed(session.user_id)

    def session_credential(self, session: Session) -> Credential:
        """The credential of a session, for current_user()."""
        return (CREDENTIAL_SESSION, session.id_hash)

    def _drop_sessions(self, user_id: str) -> None:
        for key in [k for k, s in self.sessions.items() if s.user_id == user_id]:
            del self.sessions[key]

    # Tokens --------------------------------------------------------------------------

    async def create_token(
        self, user: User, name: Any, lifespan_days: Any = None
    ) -> tuple[str, AccessToken]:
        """Make a named token for a user, optionally expiring: returns it (shown once)."""
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
            raise AuthError("token name must be 1-100 characters")
        lifespan = check_lifespan(lifespan_days)
        if user.id not in self.users:
            raise NotFoundError(f"no user {user.id!r}")
        value = "evh_" + secrets.token_urlsafe(40)
        now = self._now()
        token = AccessToken(
            id=new_id(),
            user_id=user.id,
            name=name.strip(),
            token_hash=_sha256(value),
            created_at=now,
            expires_at=now + lifespan if lifespan is not None else None,
        )
        self.tokens[token.id] = token
        self._tokens_by_hash[token.token_hash] = token.id
        await self._commit()
        return value, token

    def validate_token(self, value: str) -> tuple[User, AccessToken] | None:
        """Return the user and token of a bearer token; records its last use."""
        token_id = self._tokens_by_hash.get(_sha256(value))
        token = self.tokens.get(token_id) if token_id is not None else None
        if token is None:
            return None
        if token.expired(self._now()):
            return None
        user = self.users.get(token.user_id)
        if user is None:
            return None
        token = replace(token, last_used_at=self._now())
        self.tokens[token.id] = token
        self._save()
        return user, token

    def user_tokens(self, user_id: str) -> list[AccessToken]:
        """Return a user's tokens, oldest first."""
        return sorted(
            (t for t in self.tokens.values() if t.user_id == user_id), key=lambda t: t.created_at
        )

    async def revoke_token(self, token_id: str) -> AccessToken:
        """Delete a token."""
        token = self.tokens.get(token_id)
        if token is None:
            raise NotFoundError(f"no token {token_id!r}")
        self._drop_token(token)
        await self._commit()
        self._changed(token.user_id)
        return token

    def _drop_token(self, token: AccessToken) -> None:
        self.tokens.pop(token.id, None)
        self._tokens_by_hash.pop(token.token_hash, None)


async def async_load_auth(hub: Hub, config: dict[str, Any] | None = None) -> AuthManager:
    """Load the hub's auth data once, configured by the http section's ban settings."""
    manager = hub.data.get(DATA_AUTH)
    if manager is None:
        config = config or {}
        manager = AuthManager(
            hub,
            ban_enabled=config.get("ip_ban_enabled", True),
            login_attempts=config.get("login_attempts_threshold", DEFAULT_LOGIN_ATTEMPTS),
            ban_seconds=config.get("ban_duration", DEFAULT_BAN_SECONDS),
        )
        await manager.load()
        hub.data[DATA_AUTH] = manager
        if manager.pending_audit:
            # Fired once the recorder listens, so the entries reach its audit table.
            hub.bus.listen_once(EVENT_HUB_STARTED, manager._fire_pending_audit)
    return manager


def _prune(failures: dict[str, _Failures], before: float) -> None:
    """Forget addresses quiet since before, once too many are tracked (oldest first)."""
    if len(failures) < MAX_TRACKED_ADDRESSES:
        return
    for address in [a for a, f in failures.items() if f.last < before]:
        del failures[address]
    if len(failures) >= MAX_TRACKED_ADDRESSES:
        by_age = sorted(failures, key=lambda a: failures[a].last)
        for address in by_age[: len(by_age) - MAX_TRACKED_ADDRESSES // 2]:
            del failures[address]


def auth_manager(hub: Hub) -> AuthManager:
    """Return the hub's auth manager (loaded when HTTP starts)."""
    manager = hub.data.get(DATA_AUTH)
    if manager is None:
        raise AuthError("authentication is not set up (the hub has no http: section)")
    return manager
