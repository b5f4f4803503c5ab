"""Secrets out of events, history and the audit log: redaction at the source.

A service declares its secret fields by wrapping their validators in ``Secret`` inside its
schema; on top of that, conservative rules catch what nobody declared:

- a key whose name says secret (password, passwd, secret, token, credentials, api key,
  authorization key, private key, Authorization, Cookie...; an ``idToken`` is an RFID
  identifier, not a secret);
- a key/value pair whose name says secret: ``{"key": "AuthorizationKey", "value": ...}``
  (OCPP ChangeConfiguration) or ``{"variable": {"name": "BasicAuthPassword"},
  "attributeValue": ...}`` (OCPP 2.0.1 SetVariables);
- credentials inside URLs, in any string: ``ftp://user:pass@host`` keeps the user, drops the
  password; a lone userinfo (``https://TOKEN@host``) is dropped whole; query parameters with
  a secret name (``?access_token=...``) lose their value.

Booleans and None under a secret name are kept (``password_required: true`` says nothing).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

import voluptuous as vol

REDACTED: Final = "**REDACTED**"

Path = tuple[str, ...]

# Words (after splitting camelCase and snake_case) that make a key secret on their own.
_SECRET_WORDS: Final = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "pass",
        "secret",
        "secrets",
        "token",
        "tokens",
        "credential",
        "credentials",
        "apikey",
        "privatekey",
        "psk",
    }
)
# Two adjacent words that make a key secret: AuthorizationKey, api_key, X-Api-Key...
_SECRET_PAIRS: Final = frozenset(
    {
        ("api", "key"),
        ("auth", "key"),
        ("authorization", "key"),
        ("private", "key"),
        ("access", "key"),
        ("signing", "key"),
        ("encryption", "key"),
    }
)
# Whole names that are secret: HTTP headers carrying credentials.
_SECRET_NAMES: Final = frozenset({"authorization", "proxyauthorization", "cookie", "setcookie"})
# Key/value pairs: where the name is, and where the value is.
_NAME_FIELDS: Final = ("key", "name")
_VALUE_FIELDS: Final = ("value", "attributeValue", "attribute_value")

_CAMEL_1: Final = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_2: Final = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NON_ALNUM: Final = re.compile(r"[^A-Za-z0-9]+")
# scheme://userinfo@ : the userinfo may not hold / ? # @ or whitespace.
_URL_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^/?#@\s]+)@")
_URL_QUERY_PARAM: Final = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#\s]+)=(?P<value>[^&;#\s]*)")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Tell whether a key name says its value is a secret."""
    spaced = _CAMEL_2.sub(r"\1 \2", _CAMEL_1.sub(r"\1 \2", name))
    words = [word.lower() for word in _NON_ALNUM.split(spaced) if word]
    if not words:
        return False
    if "".join(words) in _SECRET_NAMES:
        return True
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        if word in _SECRET_WORDS and not (word == "token" and previous == "id"):
            return True
        if (previous, word) in _SECRET_PAIRS:
            return True
    return False


class Secret:
    """Mark a service schema field as secret: ``vol.Required("password"): Secret(str)``.

    Validates with the wrapped validator; the field's value never appears in the
    ``call_service`` event, the recorder or the audit log.
    """

    def __init__(self, validator: Any = None) -> None:
        self.validator = vol.Schema(validator) if validator is not None else None

    def __call__(self, value: Any) -> Any:
        return value if self.validator is None else self.validator(value)

    def __repr__(self) -> str:
        return f"Secret({self.validator!r})"


def secret_paths(schema: Any) -> frozenset[Path]:
    """The key paths a schema marks Secret (list items share their list's path)."""
    found: set[Path] = set()
    _walk_schema(schema, (), found, 0)
    return frozenset(found)


def _walk_schema(schema: Any, path: Path, found: set[Path], depth: int) -> None:
    if depth > 16:
        return
    if isinstance(schema, Secret):
        found.add(path)
        return
    if isinstance(schema, vol.Schema):
        _walk_schema(schema.schema, path, found, depth + 1)
    elif isinstance(schema, Mapping):
        for marker, value in schema.items():
            key = marker.schema if isinstance(marker, vol.Marker) else marker
            if isinstance(key, str):
                _walk_schema(value, (*path, key), found, depth + 1)
    elif isinstance(schema, list | tuple):
        for item in schema:
            _walk_schema(item, path, found, depth + 1)
    else:
        validators = getattr(schema, "validators", None)  # vol.All, vol.Any...
        if isinstance(validators, list | tuple):
            for item in validators:
                _walk_schema(item, path, found, depth + 1)


def redact(data: Any, paths: Collection[Path] = ()) -> Any:
    """A copy of data with its secrets replaced by REDACTED (data itself is not changed)."""
    return _redact(data, (), frozenset(paths), None)


def secret_values(data: Any, paths: Collection[Path] = ()) -> list[str]:
    """The secret strings redact() would remove from data (to scrub them from messages)."""
    found: list[str] = []
    _redact(data, (), frozenset(paths), found)
    return found


def _redact(value: Any, path: Path, paths: frozenset[Path], found: list[str] | None) -> Any:
    if isinstance(value, str):
        return _redact_text(value, found)
    if isinstance(value, Mapping):
        names = _pair_names(value)
        pair_secret = any(is_secret_name(name) for name in names)
        out: dict[Any, Any] = {}
        for key, item in value.items():
            child = (*path, key) if isinstance(key, str) else path
            if isinstance(key, str) and (
                child in paths or is_secret_name(key) or (pair_secret and key in _VALUE_FIELDS)
            ):
                out[key] = _hide(item, found)
            else:
                out[key] = _redact(item, child, paths, found)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item, path, paths, found) for item in value]
    return value


def _pair_names(mapping: Mapping[Any, Any]) -> Iterable[str]:
    for field in _NAME_FIELDS:
        name = mapping.get(field)
        if isinstance(name, str):
            yield name
    variable = mapping.get("variable")
    if isinstance(variable, Mapping) and isinstance(variable.get("name"), str):
        yield variable["name"]


def _hide(value: Any, found: list[str] | None) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if found is not None:
        _collect(value, found)
    return REDACTED


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, str | int | float):
        found.append(str(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, found)


def _redact_text(text: str, found: list[str] | None) -> str:
    if "://" not in text:
        return text

    def userinfo(match: re.Match[str]) -> str:
        info = match["info"]
        user, colon, password = info.partition(":")
        if found is not None:
            found.append(password if colon else info)
        kept = f"{user}:{REDACTED}" if colon else REDACTED
        return f"{match['scheme']}{kept}@"

    def query(match: re.Match[str]) -> str:
        if not match["value"] or not is_secret_name(match["name"]):
            return match[0]
        if found is not None:
            found.append(match["value"])
        return f"{match['sep']}{match['name']}={REDACTED}"

    return _URL_QUERY_PARAM.sub(query, _URL_USERINFO.sub(userinfo, text))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Text with URL credentials and the given secret strings replaced by REDACTED."""
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _redact_text(text, None)
